"""read: GET [type]/[id] — served from the stored JSON without re-parsing."""

from __future__ import annotations

from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

from fhir_server.errors import Gone, NotFound
from fhir_server.interactions.common import require_id, require_type
from fhir_server.interactions.model import FhirRequest, FhirResponse, parse_etag
from fhir_server.storage.repository import StoredResource
from fhir_server.timeutil import instant_to_datetime

if TYPE_CHECKING:
    from fhir_server.service import FhirService


def not_found(res_type: str, res_id: str) -> NotFound:
    return NotFound(f"{res_type}/{res_id} not found", f"Không tìm thấy {res_type}/{res_id}")


def load_current(svc: FhirService, req: FhirRequest) -> StoredResource:
    assert req.res_type is not None
    res_id = require_id(req.res_id)
    stored = svc.read_visible(req, req.res_type, res_id)
    if stored is None:
        raise not_found(req.res_type, res_id)
    if stored.deleted:
        raise Gone(f"{req.res_type}/{res_id} was deleted", f"{req.res_type}/{res_id} đã bị xóa",
                   headers={"ETag": stored.etag})
    return stored


def not_modified(req: FhirRequest, stored: StoredResource) -> bool:
    inm = req.header("if-none-match")
    if inm is not None:
        return any(parse_etag(tag) == stored.version_id or tag.strip() == "*" for tag in inm.split(","))
    ims = req.header("if-modified-since")
    if ims:
        try:
            since = parsedate_to_datetime(ims)
        except (TypeError, ValueError):
            return False
        return instant_to_datetime(stored.last_updated).replace(microsecond=0) <= since
    return False


def read(svc: FhirService, req: FhirRequest) -> FhirResponse:
    require_type(req.res_type, "read")
    stored = load_current(svc, req)
    if not_modified(req, stored):
        return FhirResponse(status=304, stored=stored)
    return FhirResponse(status=200, content=stored.content, stored=stored)
