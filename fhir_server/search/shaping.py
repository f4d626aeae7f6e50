"""_summary and _elements (R4 search.html#summary, #elements): shrink each returned resource."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from fhir_server.errors import BadRequest

SUMMARY_FILE = Path(__file__).resolve().parent.parent / "data" / "r4" / "summary-elements.json"
SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}
ALWAYS = {"resourceType", "id", "meta"}


@cache
def _elements() -> dict[str, dict[str, list[str]]]:
    data: dict[str, dict[str, list[str]]] = orjson.loads(SUMMARY_FILE.read_bytes())
    return data


def _wanted(key: str, names: set[str]) -> bool:
    """Element names match JSON keys, choice types included (`deceased` ↔ `deceasedBoolean`)."""
    if key in names or key.lstrip("_") in names:
        return True
    return any(key.startswith(n) and len(key) > len(n) and key[len(n)].isupper() for n in names)


def _mark(resource: dict[str, Any]) -> dict[str, Any]:
    meta = dict(resource.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    resource["meta"] = meta
    return resource


def _keep(keys: set[str]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def shape(resource: dict[str, Any]) -> dict[str, Any]:
        info = _elements().get(resource.get("resourceType", ""), {})
        wanted = keys | ALWAYS | set(info.get("mandatory", []))
        return _mark({k: v for k, v in resource.items() if _wanted(k, wanted)})

    return shape


def summary_shape(value: str) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
    if value == "false":
        return None
    if value == "true":
        def summary(resource: dict[str, Any]) -> dict[str, Any]:
            info = _elements().get(resource.get("resourceType", ""), {})
            wanted = set(info.get("summary", [])) | ALWAYS
            return _mark({k: v for k, v in resource.items() if _wanted(k, wanted)})

        return summary
    if value == "text":
        return _keep({"text"})
    if value == "data":
        return lambda r: _mark({k: v for k, v in r.items() if k != "text"})
    raise BadRequest(f"Unknown _summary value '{value}'", f"Giá trị _summary không hợp lệ '{value}'",
                     expression="_summary")


def elements_shape(value: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    names = {n.strip().split(".")[-1] for n in value.split(",") if n.strip()}
    return _keep(names)
