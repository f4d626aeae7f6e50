"""FHIR instant/dateTime parsing shared by history and HTTP date headers."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from fhir_server.errors import BadRequest

_DT_RE = re.compile(
    r"^(?P<y>\d{4})(-(?P<m>\d{2})(-(?P<d>\d{2})(T(?P<H>\d{2}):(?P<M>\d{2})(:(?P<S>\d{2})(?P<f>\.\d+)?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


def instant_to_datetime(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def to_us(dt: datetime) -> int:
    return int(dt.timestamp() * 1_000_000)


def parse_datetime_range(value: str, name: str) -> tuple[datetime, datetime]:
    """A FHIR date/dateTime (possibly partial) as the [start, end) range it denotes (UTC)."""
    m = _DT_RE.match(value.strip())
    if not m:
        raise BadRequest(f"Invalid date/time '{value}' for parameter {name}",
                         f"Ngày/giờ không hợp lệ '{value}' cho tham số {name}", expression=name)
    try:
        y = int(m["y"])
        if m["m"] is None:
            start = datetime(y, 1, 1, tzinfo=UTC)
            return start, datetime(y + 1, 1, 1, tzinfo=UTC)
        mo = int(m["m"])
        if m["d"] is None:
            start = datetime(y, mo, 1, tzinfo=UTC)
            end = datetime(y + (mo == 12), mo % 12 + 1, 1, tzinfo=UTC)
            return start, end
        d = int(m["d"])
        if m["H"] is None:
            start = datetime(y, mo, d, tzinfo=UTC)
            return start, start + timedelta(days=1)
        tz = m["tz"] or "Z"
        text = f"{m['y']}-{m['m']}-{m['d']}T{m['H']}:{m['M']}:{m['S'] or '00'}{m['f'] or ''}"
        start = datetime.fromisoformat(text + ("+00:00" if tz == "Z" else tz)).astimezone(UTC)
        step = timedelta(seconds=1) if m["S"] is not None else timedelta(minutes=1)
        if m["f"]:
            step = timedelta(microseconds=1)
        return start, start + step
    except ValueError as exc:
        raise BadRequest(f"Invalid date/time '{value}' for parameter {name}",
                         f"Ngày/giờ không hợp lệ '{value}' cho tham số {name}", expression=name) from exc
