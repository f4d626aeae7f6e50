"""patch: PATCH [type]/[id] with JSON Patch (RFC 6902), and conditional patch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import jsonpatch
import orjson

from fhir_server.errors import BadRequest, Unprocessable, UnsupportedMediaType
from fhir_server.interactions.common import (
    if_match_version,
    require_id,
    require_type,
    single_match,
    unit_of_work,
    write_response,
)
from fhir_server.interactions.model import FhirRequest, FhirResponse
from fhir_server.interactions.read import not_found

if TYPE_CHECKING:
    from fhir_server.service import FhirService

JSON_PATCH = "application/json-patch+json"


def _patch_document(req: FhirRequest) -> list[dict[str, Any]]:
    if req.content_type is not None and req.content_type != JSON_PATCH and req.entry_index is None:
        raise UnsupportedMediaType(f"PATCH needs {JSON_PATCH}", f"PATCH cần kiểu nội dung {JSON_PATCH}")
    body = req.body
    # In a Bundle, the patch travels as a Binary resource with base64 data.
    if isinstance(body, dict) and body.get("resourceType") == "Binary":
        import base64

        try:
            body = orjson.loads(base64.b64decode(body.get("data", "")))
        except (ValueError, orjson.JSONDecodeError) as exc:
            raise BadRequest("Binary patch data is not JSON Patch", "Dữ liệu Binary không phải JSON Patch") from exc
    if not isinstance(body, list) or not all(isinstance(op, dict) for op in body):
        raise BadRequest("A JSON Patch document is an array of operations",
                         "Tài liệu JSON Patch phải là một mảng các thao tác")
    return body


def patch(svc: FhirService, req: FhirRequest) -> FhirResponse:
    require_type(req.res_type, "patch")
    assert req.res_type is not None
    operations = _patch_document(req)
    if_match = if_match_version(req)
    with unit_of_work(svc, req) as uow:
        if req.res_id is None:
            criteria = urlencode(req.params)
            if not criteria:
                raise BadRequest("Conditional patch needs search criteria", "PATCH có điều kiện cần tiêu chí")
            matches = single_match(svc, uow, req.res_type, criteria, "patch", req)
            if not matches:
                raise not_found(req.res_type, criteria)
            res_id = matches[0].res_id
        else:
            res_id = require_id(req.res_id)
        current = uow.read(req.res_type, res_id, for_update=True)
        if current is None or current.deleted or current.content is None or not svc.visible(req, current):
            raise not_found(req.res_type, res_id)
        original = orjson.loads(current.content)
        try:
            patched = jsonpatch.JsonPatch(operations).apply(original)
        except jsonpatch.JsonPatchTestFailed as exc:
            raise Unprocessable(f"JSON Patch test failed: {exc}", f"Phép kiểm tra JSON Patch thất bại: {exc}") from exc
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, KeyError) as exc:
            raise Unprocessable(f"JSON Patch could not be applied: {exc}",
                                f"Không áp dụng được JSON Patch: {exc}") from exc
        if not isinstance(patched, dict) or patched.get("resourceType") != req.res_type or patched.get("id") != res_id:
            raise Unprocessable("A patch may not change resourceType or id",
                                "Bản vá không được thay đổi resourceType hoặc id")
        svc.validate(patched, req.res_type, req, mode="update")
        svc.authorize_write(req, patched, current=current)
        # Without If-Match the version read above still guards against a lost update.
        result = uow.upsert(req.res_type, res_id, patched,
                            if_match=if_match if if_match is not None else current.version_id, method="PATCH")
        svc.after_write(req, uow, result)
    return write_response(result)
