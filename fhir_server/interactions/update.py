"""update: PUT [type]/[id] (update-as-create with a client id) and conditional update."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fhir_server.errors import BadRequest
from fhir_server.interactions.common import (
    body_resource,
    check_body_type,
    if_match_version,
    require_id,
    require_type,
    single_match,
    unit_of_work,
    write_response,
)
from fhir_server.interactions.model import FhirRequest, FhirResponse

if TYPE_CHECKING:
    from fhir_server.service import FhirService


def _body_id_matches(resource: dict[str, Any], res_id: str, res_type: str) -> None:
    body_id = resource.get("id")
    if body_id is None:
        raise BadRequest("The resource must carry an id equal to the id in the URL",
                         "Tài nguyên phải có id trùng với id trong URL", expression=f"{res_type}.id")
    if body_id != res_id:
        raise BadRequest(f"The id in the body ('{body_id}') differs from the id in the URL ('{res_id}')",
                         f"Id trong nội dung ('{body_id}') khác với id trong URL ('{res_id}')",
                         expression=f"{res_type}.id")


def update(svc: FhirService, req: FhirRequest) -> FhirResponse:
    cfg = require_type(req.res_type, "update")
    assert req.res_type is not None
    resource = body_resource(req)
    check_body_type(resource, req.res_type)
    if_match = if_match_version(req)
    with unit_of_work(svc, req) as uow:
        if req.res_id is None:
            if not cfg.conditional_update:
                raise BadRequest("Conditional update is not supported for this type",
                                 "Không hỗ trợ cập nhật có điều kiện cho loại này")
            criteria = urlencode(req.params)
            if not criteria:
                raise BadRequest("Conditional update needs search criteria",
                                 "Cập nhật có điều kiện cần tiêu chí tìm kiếm")
            matches = single_match(svc, uow, req.res_type, criteria, "update", req)
            if matches:
                res_id = matches[0].res_id
                if resource.get("id") not in (None, res_id):
                    raise BadRequest(
                        f"The id in the body differs from the matched resource {req.res_type}/{res_id}",
                        f"Id trong nội dung khác với tài nguyên khớp {req.res_type}/{res_id}",
                        expression=f"{req.res_type}.id",
                    )
            else:
                body_id = resource.get("id")
                res_id = require_id(body_id, f"{req.res_type}.id") if body_id else str(uuid.uuid4())
            resource = {**resource, "id": res_id}
        else:
            res_id = require_id(req.res_id)
            _body_id_matches(resource, res_id, req.res_type)
        svc.validate(resource, req.res_type, req, mode="update")
        current = uow.read(req.res_type, res_id, for_update=True)
        svc.authorize_write(req, resource, current=current)
        result = uow.upsert(req.res_type, res_id, resource, if_match=if_match, method="PUT")
        svc.after_write(req, uow, result)
    return write_response(result)
