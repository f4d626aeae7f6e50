"""reference parameters (R4 search.html#reference): id, Type/id, absolute URL, :Type, :identifier.

Literal references are stored as (target type, target id); absolute URLs to other
servers and canonical references as `url`; Reference.identifier as hashes for
`:identifier`.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import and_, or_

from fhir_server.search.hashing import h64
from fhir_server.search.registry import SearchParam
from fhir_server.search.token import split_token

_RELATIVE = re.compile(r"^(?:(?P<base>https?://.+)/)?(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})"
                       r"(?:/_history/[A-Za-z0-9\-.]+)?$")


def parse_literal(ref: str) -> tuple[str | None, str | None, str | None]:
    """→ (base URL or None, type, id) for `Type/id` or `http…/Type/id`."""
    m = _RELATIVE.match(ref)
    if not m:
        return None, None, None
    return m["base"], m["type"], m["id"]


def index_rows(param: SearchParam, value: Any, target_filter: str | None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    if isinstance(value, str):  # canonical / uri
        return [{"target_type": None, "target_id": None, "url": value, "hash_identifier": None,
                 "hash_identifier_value": None}]
    if not isinstance(value, dict):
        return rows
    ref = value.get("reference")
    ident = value.get("identifier") if isinstance(value.get("identifier"), dict) else None
    row: dict[str, Any] = {"target_type": None, "target_id": None, "url": None, "hash_identifier": None,
                           "hash_identifier_value": None}
    if isinstance(ref, str) and not ref.startswith("#"):
        base, rtype, rid = parse_literal(ref)
        if target_filter and rtype != target_filter:
            return rows
        if rtype and base is None:
            row.update(target_type=rtype, target_id=rid)
        else:
            row.update(url=ref, target_type=rtype, target_id=rid if rtype else None)
            row["url"] = ref
    elif target_filter:
        return rows
    if ident and ident.get("value"):
        row["hash_identifier"] = h64(param.res_type, param.code, ident.get("system") or "", str(ident["value"]))
        row["hash_identifier_value"] = h64(param.res_type, param.code, "", str(ident["value"]))
    if any(v is not None for v in row.values()):
        rows.append(row)
    return rows


def target_of(raw: str, base_url: str, type_modifier: str | None) -> tuple[str | None, str | None, str | None]:
    """Search value → (type, id, url); the URL form is for references outside this server."""
    if base_url and raw.startswith(base_url + "/"):
        raw = raw[len(base_url) + 1:]
    base, rtype, rid = parse_literal(raw)
    if rtype and base is None:
        return rtype, rid, None
    if base is not None:
        return None, None, raw
    if "/" in raw or ":" in raw:
        return None, None, raw
    return type_modifier, raw, None


def clause(table: Any, param: SearchParam, raw: str, modifier: str | None, base_url: str) -> Any:
    if modifier == "identifier":
        system, value = split_token(raw)
        if system is None:
            return table.c.hash_identifier_value == h64(param.res_type, param.code, "", value)
        return table.c.hash_identifier == h64(param.res_type, param.code, system, value)
    type_modifier = modifier if modifier and modifier[0].isupper() else None
    rtype, rid, url = target_of(raw, base_url, type_modifier)
    if url is not None:
        return table.c.url == url
    conds = [table.c.target_id == rid]
    if rtype:
        conds.append(table.c.target_type == rtype)
    elif len(param.targets) == 1:
        conds.append(table.c.target_type == param.targets[0])
    return and_(*conds)


def any_of(table: Any, clauses: list[Any]) -> Any:
    return or_(*clauses)
