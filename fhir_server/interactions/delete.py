"""delete: DELETE [type]/[id] and conditional delete; later reads answer 410 Gone."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode

from fhir_server.errors import BadRequest
from fhir_server.interactions.common import (
    if_match_version,
    require_id,
    require_type,
    single_match,
    unit_of_work,
)
from fhir_server.interactions.model import FhirRequest, FhirResponse
from fhir_server.interactions.read import not_found

if TYPE_CHECKING:
    from fhir_server.service import FhirService


def delete(svc: FhirService, req: FhirRequest) -> FhirResponse:
    cfg = require_type(req.res_type, "delete")
    assert req.res_type is not None
    if_match = if_match_version(req)
    with unit_of_work(svc, req) as uow:
        if req.res_id is None:
            if not cfg.conditional_delete:
                raise BadRequest("Conditional delete is not supported for this type",
                                 "Không hỗ trợ xóa có điều kiện cho loại này")
            criteria = urlencode(req.params)
            if not criteria:
                raise BadRequest("Conditional delete needs search criteria", "Xóa có điều kiện cần tiêu chí tìm kiếm")
            matches = single_match(svc, uow, req.res_type, criteria, "delete", req)
            if not matches:
                return FhirResponse(status=204, is_write=True)
            res_id = matches[0].res_id
        else:
            res_id = require_id(req.res_id)
        current = uow.read(req.res_type, res_id, for_update=True)
        if current is not None and not current.deleted:
            if not svc.visible(req, current):
                raise not_found(req.res_type, res_id)
            svc.authorize_delete(req, current)
        tombstone = uow.delete(req.res_type, res_id, if_match=if_match)
    return FhirResponse(status=204, stored=tombstone, is_write=True)
