"""Operation inputs: query parameters and/or a ``Parameters`` body, read one way (R4 operations.html)."""

from __future__ import annotations

from typing import Any

from fhir_server.errors import BadRequest
from fhir_server.interactions.model import FhirRequest


def _value(param: dict[str, Any]) -> Any:
    if "resource" in param:
        return param["resource"]
    for key, value in param.items():
        if key.startswith("value"):
            return value
    if "part" in param:
        return {p.get("name"): _value(p) for p in param["part"] if isinstance(p, dict)}
    return None


def operation_inputs(req: FhirRequest) -> dict[str, list[Any]]:
    """name → values, from the query string and a Parameters body (a non-Parameters body is `resource`)."""
    out: dict[str, list[Any]] = {}
    for k, v in req.params:
        out.setdefault(k, []).append(v)
    body = req.body
    if isinstance(body, dict):
        if body.get("resourceType") == "Parameters":
            for p in body.get("parameter") or []:
                if not isinstance(p, dict) or not isinstance(p.get("name"), str):
                    raise BadRequest("Every Parameters.parameter needs a name", "Mỗi Parameters.parameter cần có name",
                                     expression="Parameters.parameter")
                out.setdefault(p["name"], []).append(_value(p))
        else:
            out.setdefault("resource", []).append(body)
    elif body is not None:
        raise BadRequest("The body must be a Parameters resource or a resource",
                         "Nội dung phải là tài nguyên Parameters hoặc một tài nguyên")
    return out


def first(inputs: dict[str, list[Any]], name: str) -> Any:
    values = inputs.get(name) or []
    return values[0] if values else None


def integer(inputs: dict[str, list[Any]], name: str, default: int | None = None) -> int | None:
    raw = first(inputs, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise BadRequest(f"{name} must be an integer", f"{name} phải là số nguyên", expression=name) from None
    if value < 0:
        raise BadRequest(f"{name} must not be negative", f"{name} không được âm", expression=name)
    return value
