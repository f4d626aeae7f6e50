"""vread: GET [type]/[id]/_history/[vid]."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fhir_server.errors import Gone, NotFound
from fhir_server.interactions.common import require_id, require_type
from fhir_server.interactions.model import FhirRequest, FhirResponse

if TYPE_CHECKING:
    from fhir_server.service import FhirService


def vread(svc: FhirService, req: FhirRequest) -> FhirResponse:
    require_type(req.res_type, "vread")
    assert req.res_type is not None
    res_id = require_id(req.res_id)
    vid = req.version_id or ""
    conn = req.uow.conn if req.uow is not None else None
    stored = svc.repo.vread(req.res_type, res_id, int(vid), conn=conn) if vid.isdigit() else None
    if stored is None or not svc.visible(req, stored):
        raise NotFound(f"{req.res_type}/{res_id}/_history/{vid} not found",
                       f"Không tìm thấy {req.res_type}/{res_id}/_history/{vid}")
    if stored.deleted:
        raise Gone(f"Version {vid} of {req.res_type}/{res_id} is a deletion",
                   f"Phiên bản {vid} của {req.res_type}/{res_id} là bản xóa", headers={"ETag": stored.etag})
    return FhirResponse(status=200, content=stored.content, stored=stored)
