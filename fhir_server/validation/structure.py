"""Structural validation of R4 resources.

Decision: fhir.resources 8.x (pydantic v2) carries R4B models, not R4 4.0.1 (last in the
6.x line on pydantic v1, which cannot live beside our pydantic-v2 stack). Every write is
therefore checked twice, both compiled once per type:
1. HL7's official R4 4.0.1 JSON Schema (`fhir.schema.json`, vendored by
   scripts/vendor_r4.py) with `jsonschema` — authoritative for element names, types,
   codes of required bindings and id/date patterns;
2. the R4B pydantic model (`fhir.resources.R4B`) — adds cardinality (e.g. required
   `status`) and value checks the schema cannot express. Where R4B and R4 differ
   (`R4B_ONLY_ERRORS`), the R4 schema wins and the model's complaint is dropped.
Contained resources and Bundle entries are validated against their own type, instead of
the schema's 146-way `oneOf`, so errors point at the right element and cost stays flat.
"""

from __future__ import annotations

import copy
import gzip
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from fhir.resources.R4B import get_fhir_model_class
from jsonschema import Draft6Validator
from pydantic import ValidationError

from fhir_server.errors import BadRequest, InvalidResource, Issue

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "data" / "r4" / "fhir.schema.json.gz"
MAX_ISSUES = 20

# (resource type, pydantic error type, last path element) complaints that R4 allows.
R4B_ONLY_ERRORS: set[tuple[str, str, str]] = set()


@cache
def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = orjson.loads(gzip.decompress(SCHEMA_PATH.read_bytes()))
    # Nested resources are validated by type below rather than through a oneOf of every type.
    schema["definitions"]["ResourceList"] = {"type": "object", "required": ["resourceType"]}
    _add_fhir_version_401(schema)
    return schema


def _add_fhir_version_401(node: Any) -> None:
    """HL7's R4 schema lists FHIR versions up to 4.0.0 only; R4 itself is 4.0.1 (errata)."""
    if isinstance(node, dict):
        enum = node.get("enum")
        if isinstance(enum, list) and "4.0.0" in enum and "4.0.1" not in enum:
            enum.append("4.0.1")
        for value in node.values():
            _add_fhir_version_401(value)
    elif isinstance(node, list):
        for value in node:
            _add_fhir_version_401(value)


def known_resource_types() -> frozenset[str]:
    return frozenset(_schema()["discriminator"]["mapping"])


@cache
def _validator(res_type: str) -> Draft6Validator:
    schema = _schema()
    root = {"$schema": schema["$schema"], "$ref": f"#/definitions/{res_type}",
            "definitions": schema["definitions"]}
    return Draft6Validator(root)


def _fhirpath(res_type: str, path: Iterable[Any]) -> str:
    out = res_type
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _schema_issues(resource: dict[str, Any], res_type: str, prefix: str) -> list[Issue]:
    issues: list[Issue] = []
    for err in _validator(res_type).iter_errors(resource):
        where = _fhirpath(prefix, err.absolute_path)
        kind = err.validator
        if kind == "additionalProperties":
            extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            for name in extra:
                issues.append(Issue(en=f"Unknown element '{name}'", vi=f"Phần tử không được biết '{name}'",
                                    code="structure", expression=(f"{where}.{name}",)))
            continue
        if kind == "required":
            missing = err.message.split("'")[1] if "'" in err.message else "?"
            issues.append(Issue(en=f"Missing required element '{missing}'",
                                vi=f"Thiếu phần tử bắt buộc '{missing}'", code="required",
                                expression=(f"{where}.{missing}",)))
            continue
        if kind == "enum":
            en, vi = (f"Invalid code '{err.instance}'", f"Mã không hợp lệ '{err.instance}'")
        elif kind == "const" and where.endswith("resourceType"):
            en, vi = (f"resourceType must be {err.validator_value}", f"resourceType phải là {err.validator_value}")
        elif kind in ("type", "pattern"):
            en = f"Invalid value {orjson.dumps(err.instance).decode()[:80]} for this element"
            vi = f"Giá trị không hợp lệ {orjson.dumps(err.instance).decode()[:80]} cho phần tử này"
        else:
            en, vi = (f"Invalid element: {err.message[:200]}", f"Phần tử không hợp lệ: {err.message[:200]}")
        issues.append(Issue(en=en, vi=vi, code="value" if kind != "type" else "structure", expression=(where,)))
    return issues


def _model_issues(resource: dict[str, Any], res_type: str, prefix: str) -> list[Issue]:
    try:
        get_fhir_model_class(res_type).model_validate(resource)
    except ValidationError as exc:
        issues = []
        for err in exc.errors():
            loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
            last = str(loc[-1]) if loc else ""
            if (res_type, err["type"], last) in R4B_ONLY_ERRORS or err["type"] == "extra_forbidden":
                continue  # unknown elements are reported from the R4 schema
            issues.append(Issue(en=f"Invalid element: {err['msg']}", vi=f"Phần tử không hợp lệ: {err['msg']}",
                                code="required" if err["type"] == "missing" else "structure",
                                expression=(_fhirpath(prefix, loc),)))
        return issues
    except (ValueError, TypeError) as exc:  # raised by some model validators outside pydantic's wrapper
        return [Issue(en=f"Invalid resource: {exc}", vi=f"Tài nguyên không hợp lệ: {exc}", code="structure",
                      expression=(prefix,))]
    return []


def _nested(resource: dict[str, Any], prefix: str) -> Iterable[tuple[dict[str, Any], str]]:
    for i, contained in enumerate(resource.get("contained") or []):
        if isinstance(contained, dict):
            yield contained, f"{prefix}.contained[{i}]"
    if resource.get("resourceType") == "Bundle":
        for i, entry in enumerate(resource.get("entry") or []):
            if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                yield entry["resource"], f"{prefix}.entry[{i}].resource"
    if resource.get("resourceType") == "Parameters":
        for i, param in enumerate(resource.get("parameter") or []):
            if isinstance(param, dict) and isinstance(param.get("resource"), dict):
                yield param["resource"], f"{prefix}.parameter[{i}].resource"


def structure_issues(resource: dict[str, Any], res_type: str, prefix: str | None = None) -> list[Issue]:
    prefix = prefix or res_type
    issues = _schema_issues(resource, res_type, prefix)
    nested = list(_nested(resource, prefix))
    if not issues:
        # The model re-validates nested resources by itself; validate a shallow copy so the
        # nested ones are checked once, below, against their own type.
        shallow = _without_nested(resource) if nested else resource
        issues = _model_issues(shallow, res_type, prefix)
    for child, where in nested:
        child_type = child.get("resourceType")
        if not isinstance(child_type, str) or child_type not in known_resource_types():
            issues.append(Issue(en=f"Unknown resourceType '{child_type}'", vi=f"resourceType không rõ '{child_type}'",
                                code="structure", expression=(f"{where}.resourceType",)))
            continue
        issues += structure_issues(child, child_type, where)
    return issues


def _without_nested(resource: dict[str, Any]) -> dict[str, Any]:
    stub = {"resourceType": "Basic", "id": "stub", "code": {"text": "stub"}}
    shallow = copy.copy(resource)
    if "contained" in shallow:
        shallow["contained"] = [stub for _ in shallow["contained"]]
    if resource.get("resourceType") == "Bundle" and "entry" in shallow:
        shallow["entry"] = [{**e, "resource": stub} if isinstance(e, dict) and "resource" in e else e
                            for e in shallow["entry"]]
    if resource.get("resourceType") == "Parameters" and "parameter" in shallow:
        shallow["parameter"] = [{**p, "resource": stub} if isinstance(p, dict) and "resource" in p else p
                                for p in shallow["parameter"]]
    return shallow


def validate_structure(resource: dict[str, Any], expected_type: str | None = None) -> None:
    """Raise InvalidResource (400) naming each faulty element by FHIRPath."""
    declared = resource.get("resourceType")
    if not isinstance(declared, str) or declared not in known_resource_types():
        raise InvalidResource(f"Unknown or missing resourceType '{declared}'",
                              f"resourceType không rõ hoặc bị thiếu '{declared}'", expression="resourceType")
    if expected_type is not None and declared != expected_type:
        raise InvalidResource(f"resourceType '{declared}' does not match the expected type '{expected_type}'",
                              f"resourceType '{declared}' không khớp với loại mong đợi '{expected_type}'",
                              expression=f"{declared}.resourceType")
    issues = structure_issues(resource, declared)
    if issues:
        first = issues[0]
        raise InvalidResource(first.en, first.vi, issues=issues[:MAX_ISSUES])


def parse_json_body(raw: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}", f"Nội dung không phải JSON hợp lệ: {exc}") from exc
    if not isinstance(value, dict):
        raise BadRequest("The body must be a JSON object", "Nội dung phải là một đối tượng JSON")
    return value
