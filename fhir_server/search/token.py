"""token parameters (R4 search.html#token): code, system|code, |code, system|, :not, :text, :of-type.

Each coded value is stored with hashes of (type, param, code), (type, param, system,
code) and (type, param, system), so every form is one integer equality.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_

from fhir_server.errors import BadRequest
from fhir_server.search.hashing import h64
from fhir_server.search.normalize import fold
from fhir_server.search.registry import SearchParam

NO_SYSTEM = ""


Coded = tuple[str | None, str | None, str | None, tuple[str, str] | None]


def _codings(value: Any) -> list[Coded]:
    """(system, code, text, identifier type) for each coded value in an element."""
    if isinstance(value, bool):
        return [(None, "true" if value else "false", None, None)]
    if isinstance(value, str | int | float):
        return [(None, str(value), None, None)]
    if not isinstance(value, dict):
        return []
    if "coding" in value or ("text" in value and "value" not in value and "code" not in value):
        out: list[Coded] = [(c.get("system"), c.get("code"), c.get("display") or value.get("text"), None)
                            for c in value.get("coding", []) if isinstance(c, dict) and c.get("code")]
        if not out and value.get("text"):
            out.append((None, None, value["text"], None))
        return out
    if "code" in value:  # Coding
        return [(value.get("system"), value["code"], value.get("display"), None)]
    if "value" in value:  # Identifier or ContactPoint
        id_type = None
        for c in (value.get("type") or {}).get("coding", []):
            if isinstance(c, dict) and c.get("code"):
                id_type = (c.get("system") or "", c["code"])
                break
        text = (value.get("type") or {}).get("text")
        return [(value.get("system"), str(value["value"]), text, id_type)]
    return []


def index_rows(param: SearchParam, value: Any) -> list[dict[str, Any]]:
    rows = []
    t, p = param.res_type, param.code
    for system, code, text, id_type in _codings(value):
        code_s = code or ""
        sys_s = system or NO_SYSTEM
        rows.append({
            "hash_code": h64(t, p, code_s),
            "hash_sys_code": h64(t, p, sys_s, code_s),
            "hash_sys": h64(t, p, sys_s),
            "hash_type_value": h64(t, p, id_type[0], id_type[1], code_s) if id_type else None,
            "system": system,
            "code": code,
            "text": fold(text) if text else None,
        })
    return rows


def split_token(raw: str) -> tuple[str | None, str]:
    """`a|b` → ("a", "b"); `|b` → ("", "b"); `b` → (None, "b"); escaped `\\|` stays literal."""
    parts: list[str] = []
    current, i = "", 0
    while i < len(raw):
        if raw[i] == "\\" and i + 1 < len(raw):
            current += raw[i + 1]
            i += 2
            continue
        if raw[i] == "|" and len(parts) < 1:
            parts.append(current)
            current = ""
        else:
            current += raw[i]
        i += 1
    if parts:
        return parts[0], current
    return None, current


def clause(table: Any, param: SearchParam, raw: str, modifier: str | None, name: str) -> Any:
    t, p = param.res_type, param.code
    if modifier == "text":
        folded = fold(raw)
        return and_(table.c.text >= folded, table.c.text < folded + "\U0010ffff")
    if modifier == "of-type":
        pieces = raw.split("|")
        if len(pieces) != 3:
            raise BadRequest(f"{name} needs system|code|value", f"{name} cần dạng system|code|value",
                             expression=name)
        return table.c.hash_type_value == h64(t, p, pieces[0], pieces[1], pieces[2])
    system, code = split_token(raw)
    if system is None:
        return table.c.hash_code == h64(t, p, code)
    if code == "":
        return table.c.hash_sys == h64(t, p, system)
    return table.c.hash_sys_code == h64(t, p, system, code)


def codes_clause(table: Any, param: SearchParam, codes: list[tuple[str, str]]) -> Any:
    """Match any of (system, code) — used by :in / :not-in with an expanded ValueSet."""
    hashes = [h64(param.res_type, param.code, s, c) for s, c in codes]
    return table.c.hash_sys_code.in_(hashes) if hashes else or_(False)
