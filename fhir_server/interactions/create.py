"""create: POST [type], with conditional create (If-None-Exist)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from fhir_server.interactions.common import (
    body_resource,
    check_body_type,
    require_type,
    single_match,
    unit_of_work,
    write_response,
)
from fhir_server.interactions.model import FhirRequest, FhirResponse

if TYPE_CHECKING:
    from fhir_server.service import FhirService


def criteria_from_header(value: str, res_type: str) -> str:
    value = value.strip()
    if value.startswith(f"{res_type}?"):
        value = value[len(res_type) + 1:]
    return value.lstrip("?")


def create(svc: FhirService, req: FhirRequest, new_id: str | None = None) -> FhirResponse:
    require_type(req.res_type, "create")
    assert req.res_type is not None
    resource = body_resource(req)
    check_body_type(resource, req.res_type)
    # R4 http.html: on create the server ignores any id in the body and assigns its own.
    resource = {k: v for k, v in resource.items() if k != "id"}
    svc.validate(resource, req.res_type, req, mode="create")
    with unit_of_work(svc, req) as uow:
        if_none_exist = req.header("if-none-exist")
        if if_none_exist:
            criteria = criteria_from_header(if_none_exist, req.res_type)
            existing = single_match(svc, uow, req.res_type, criteria, "create", req)
            if existing:
                found = existing[0]
                return FhirResponse(status=200, content=found.content, stored=found, is_write=True,
                                    location=f"{found.res_type}/{found.res_id}/_history/{found.version_id}")
        svc.authorize_write(req, resource)
        result = uow.upsert(req.res_type, new_id or str(uuid.uuid4()), resource, method="POST")
        svc.after_write(req, uow, result)
    return write_response(result, 201)
