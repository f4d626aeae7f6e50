"""date parameters (R4 search.html#date): values and searches as [low, high] ranges.

A partial date denotes the range it covers; dates without a time zone are read in the
server's local zone (Vietnam, UTC+07:00). Prefixes compare the resource range R with
the search range S exactly as the R4 table says (eq: R ⊆ S; gt: R reaches past S; …).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, false, or_

from fhir_server.errors import BadRequest

LOCAL_TZ = timezone(timedelta(hours=7))
MIN_US = -(2**62)
MAX_US = 2**62
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
_DT = re.compile(
    r"^(?P<y>\d{4})(-(?P<m>\d{2})(-(?P<d>\d{2})(T(?P<H>\d{2})(:(?P<M>\d{2})(:(?P<S>\d{2})(?P<f>\.\d+)?)?)?"
    r"(?P<tz>Z|[+-]\d{2}:?\d{2})?)?)?)?$"
)


def _us(dt: datetime) -> int:
    return int((dt - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1_000_000)


def parse_range(text: str) -> tuple[int, int] | None:
    """A FHIR date/dateTime/instant as an inclusive [low, high] in microseconds, or None."""
    m = _DT.match(text.strip())
    if not m:
        return None
    try:
        tz: Any = LOCAL_TZ
        if m["tz"]:
            tz = UTC if m["tz"] == "Z" else datetime.strptime(m["tz"].replace(":", ""), "%z").tzinfo
        y = int(m["y"])
        if m["m"] is None:
            start, end = datetime(y, 1, 1, tzinfo=tz), datetime(y + 1, 1, 1, tzinfo=tz)
        elif m["d"] is None:
            mo = int(m["m"])
            start = datetime(y, mo, 1, tzinfo=tz)
            end = datetime(y + (mo == 12), mo % 12 + 1, 1, tzinfo=tz)
        elif m["H"] is None:
            start = datetime(y, int(m["m"]), int(m["d"]), tzinfo=tz)
            end = start + timedelta(days=1)
        else:
            frac = m["f"] or ""
            micro = int((frac[1:] + "000000")[:6]) if frac else 0
            start = datetime(y, int(m["m"]), int(m["d"]), int(m["H"]), int(m["M"] or 0), int(m["S"] or 0), micro,
                             tzinfo=tz)
            if frac:
                end = start + timedelta(microseconds=10 ** (6 - min(len(frac) - 1, 6)))
            elif m["S"] is not None:
                end = start + timedelta(seconds=1)
            elif m["M"] is not None:
                end = start + timedelta(minutes=1)
            else:
                end = start + timedelta(hours=1)
    except ValueError:
        return None
    return _us(start), _us(end) - 1


def index_rows(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        r = parse_range(value)
        return [{"low": r[0], "high": r[1]}] if r else []
    if isinstance(value, dict):
        if "start" in value or "end" in value:  # Period
            low = parse_range(value["start"]) if isinstance(value.get("start"), str) else None
            high = parse_range(value["end"]) if isinstance(value.get("end"), str) else None
            if low is None and high is None:
                return []
            return [{"low": low[0] if low else MIN_US, "high": high[1] if high else MAX_US}]
        if "event" in value or "repeat" in value:  # Timing
            rows = [row for e in value.get("event", []) for row in index_rows(e)]
            bounds = (value.get("repeat") or {}).get("boundsPeriod")
            return rows + (index_rows(bounds) if bounds else [])
    return []


def split_prefix(raw: str) -> tuple[str, str]:
    if len(raw) > 2 and raw[:2] in PREFIXES and not raw[:2].isdigit():
        return raw[:2], raw[2:]
    return "eq", raw


def parse_search_value(raw: str, name: str) -> tuple[str, int, int]:
    prefix, text = split_prefix(raw)
    if raw[:2].isalpha() and raw[:2] not in PREFIXES:
        raise BadRequest(f"Unknown prefix '{raw[:2]}' in {name}", f"Tiền tố không hợp lệ '{raw[:2]}' trong {name}",
                         expression=name)
    r = parse_range(text)
    if r is None:
        raise BadRequest(f"Invalid date '{text}' in {name}", f"Ngày không hợp lệ '{text}' trong {name}",
                         expression=name)
    return prefix, r[0], r[1]


def compare(low: Any, high: Any, prefix: str, s_low: int, s_high: int) -> Any:
    """SQL for "resource range [low, high] matches prefix + search range [s_low, s_high]"."""
    if prefix == "eq":
        return and_(low >= s_low, high <= s_high)
    if prefix == "ne":
        return or_(low < s_low, high > s_high)
    if prefix == "gt":
        return high > s_high
    if prefix == "lt":
        return low < s_low
    if prefix == "ge":
        return high >= s_low
    if prefix == "le":
        return low <= s_high
    if prefix == "sa":
        return low > s_high
    if prefix == "eb":
        return high < s_low
    if prefix == "ap":
        now = _us(datetime.now(UTC))
        gap = max(abs(now - s_low) // 10, 24 * 3600 * 1_000_000 // 2)
        return and_(low <= s_high + gap, high >= s_low - gap)
    return false()


def clause(table: Any, raw: str, name: str) -> Any:
    prefix, s_low, s_high = parse_search_value(raw, name)
    return compare(table.c.low, table.c.high, prefix, s_low, s_high)
