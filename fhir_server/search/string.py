"""string parameters (R4 search.html#string): starts-with by default, `:exact`, `:contains`.

Matching is on the folded value (case- and accent-insensitive, `đ` → `d`); `:exact`
compares the original text.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_

from fhir_server.search.normalize import fold

_NAME_PARTS = ("family", "given", "text", "prefix", "suffix")
_ADDRESS_PARTS = ("line", "city", "district", "state", "postalCode", "country", "text")


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        keys = _NAME_PARTS if ("family" in value or "given" in value) else _ADDRESS_PARTS
        out: list[str] = []
        for key in keys:
            part = value.get(key)
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, list):
                out += [p for p in part if isinstance(p, str)]
        if "family" in value or "given" in value:
            given = [g for g in value.get("given", []) if isinstance(g, str)]
            full = " ".join([*([value["family"]] if isinstance(value.get("family"), str) else []), *given])
            if full and full not in out:
                out.append(full)  # Vietnamese order: họ tên đệm tên
        return out
    return []


def index_rows(value: Any) -> list[dict[str, Any]]:
    return [{"value": fold(t), "exact": t[:1000]} for t in _texts(value) if t.strip()]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def clause(table: Any, raw: str, modifier: str | None) -> Any:
    if modifier == "exact":
        return table.c.exact == raw
    folded = fold(raw)
    if modifier == "contains":
        return table.c.value.like(f"%{_escape_like(folded)}%", escape="\\")
    # Starts-with as a range, so a plain B-tree index serves it on both databases.
    return and_(table.c.value >= folded, table.c.value < folded + "\U0010ffff")
