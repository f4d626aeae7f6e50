"""number and quantity parameters (R4 search.html#number, #quantity).

Stored as [low, high]; a search value's precision defines its range (`100` means
[99.5, 100.5)), and prefixes compare ranges as for dates. Quantities add system and
code (matched against code or unit).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import and_, or_

from fhir_server.errors import BadRequest
from fhir_server.search.date import PREFIXES, split_prefix
from fhir_server.search.token import split_token


def index_rows(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [{"low": float(value), "high": float(value), "system": None, "code": None}]
    if isinstance(value, dict):
        if isinstance(value.get("value"), int | float):  # Quantity, Money, Age, Duration …
            v = float(value["value"])
            return [{"low": v, "high": v, "system": value.get("system"),
                     "code": value.get("code") or value.get("unit") or value.get("currency")}]
        if "low" in value or "high" in value:  # Range
            low = (value.get("low") or {}).get("value")
            high = (value.get("high") or {}).get("value")
            return [{"low": float(low) if low is not None else -1e308, "high": float(high) if high is not None
                     else 1e308, "system": (value.get("low") or value.get("high") or {}).get("system"),
                     "code": (value.get("low") or value.get("high") or {}).get("code")}]
    return []


def _number_range(text: str, name: str) -> tuple[float, float]:
    try:
        d = Decimal(text)
    except InvalidOperation as exc:
        raise BadRequest(f"Invalid number '{text}' in {name}", f"Số không hợp lệ '{text}' trong {name}",
                         expression=name) from exc
    exponent = d.as_tuple().exponent
    half = Decimal(5) * Decimal(10) ** (int(exponent) - 1) if isinstance(exponent, int) else Decimal(0)
    return float(d - half), float(d + half)


def compare(table: Any, prefix: str, s_low: float, s_high: float, value: float) -> Any:
    low, high = table.c.low, table.c.high
    near_low, near_high = sorted((value * 0.9, value * 1.1))  # ap: within 10 %
    return {
        "eq": and_(low >= s_low, high < s_high),
        "ne": or_(low < s_low, high >= s_high),
        "gt": high > value,
        "lt": low < value,
        "ge": high >= value,
        "le": low <= value,
        "sa": low > value,
        "eb": high < value,
        "ap": and_(low <= near_high, high >= near_low),
    }[prefix]


def clause(table: Any, raw: str, name: str, quantity: bool) -> Any:
    if raw[:2].isalpha() and raw[:2] not in PREFIXES:
        raise BadRequest(f"Unknown prefix '{raw[:2]}' in {name}", f"Tiền tố không hợp lệ '{raw[:2]}' trong {name}",
                         expression=name)
    prefix, rest = split_prefix(raw)
    number, system, code = rest, None, None
    if quantity and "|" in rest:
        number, remainder = rest.split("|", 1)
        system, code = split_token(remainder)
        if system is None:
            system, code = remainder.split("|", 1) if "|" in remainder else ("", remainder)
    s_low, s_high = _number_range(number, name)
    cond = compare(table, prefix, s_low, s_high, float(Decimal(number)))
    if system:
        cond = and_(cond, table.c.system == system)
    if code:
        cond = and_(cond, table.c.code == code)
    return cond
