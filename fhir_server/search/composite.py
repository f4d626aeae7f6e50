"""composite parameters (R4 search.html#composite): `a$b` matched on one element.

Each element's component values are combined into one token hash (codes only; the
systems of the components are not part of the key), stored in the token table.
"""

from __future__ import annotations

from typing import Any

from fhir_server.search.hashing import h64
from fhir_server.search.registry import SearchParam
from fhir_server.search.token import _codings, split_token


def _component_codes(sub: SearchParam, values: list[Any]) -> list[str]:
    """Comparable text of each component value, whatever its FHIR type (R4's own
    DocumentReference-relationship swaps its components' declared types, so the value's
    shape decides, not the declaration)."""
    out: list[str] = []
    for v in values:
        if isinstance(v, dict) and isinstance(v.get("reference"), str):
            out.append(v["reference"])
        elif isinstance(v, dict) and "value" in v and "code" not in v and "coding" not in v:
            out.append(str(v["value"]))
        elif isinstance(v, str | int | float | dict):
            out += [c for _, c, _, _ in _codings(v) if c]
    return out


def index_rows(param: SearchParam, element: Any) -> list[dict[str, Any]]:
    combos: list[list[str]] = [[]]
    for sub, extractor in param.components:
        codes = _component_codes(sub, extractor.fn(element))
        combos = [[*c, code] for c in combos for code in codes]
    rows = []
    for combo in combos:
        key = h64(param.res_type, param.code, *combo)
        rows.append({"hash_code": key, "hash_sys_code": key, "hash_sys": key, "hash_type_value": None,
                     "system": None, "code": "$".join(combo)[:500], "text": None})
    return rows


def clause(table: Any, param: SearchParam, raw: str) -> Any:
    parts = [split_token(p)[1] for p in raw.split("$")]
    return table.c.hash_code == h64(param.res_type, param.code, *parts)
