"""uri parameters (R4 search.html#uri): exact match, `:below` (prefix), `:above`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, literal


def index_rows(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return [{"uri": value[:255]}]
    if isinstance(value, dict) and isinstance(value.get("reference"), str):
        return [{"uri": value["reference"][:255]}]
    return []


def clause(table: Any, raw: str, modifier: str | None) -> Any:
    if modifier == "below":
        return and_(table.c.uri >= raw, table.c.uri < raw + "\U0010ffff")
    if modifier == "above":
        # Stored URIs that are a prefix of the search value.
        return literal(raw).like(table.c.uri + "%")
    return table.c.uri == raw
