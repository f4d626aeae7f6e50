"""Report periods: `2024-Q2`, `2024-H1`, `2024`, `2024-05`, or start/end dates (Vietnam time, UTC+07:00)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from fhir_server.errors import BadRequest
from fhir_server.search.date import LOCAL_TZ

_PERIOD = re.compile(r"^(?P<y>\d{4})(?:-(?:(?P<q>Q[1-4])|(?P<h>H[12])|(?P<m>0[1-9]|1[0-2])))?$")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Period:
    start: datetime  # inclusive
    end: datetime  # exclusive
    label: str

    def us(self, moment: datetime) -> int:
        delta = moment - EPOCH
        return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds

    @property
    def start_us(self) -> int:
        return self.us(self.start)

    @property
    def end_us(self) -> int:
        return self.us(self.end)

    @property
    def last_day(self) -> date:
        return (self.end - timedelta(days=1)).date()

    def quarters(self) -> list[Period]:
        """The calendar quarters overlapping the period (trend buckets), clipped to it."""
        out = []
        y, q = self.start.year, (self.start.month - 1) // 3 + 1
        while True:
            qs = _month(y, 3 * q - 2)
            qe = _month(y + (q == 4), (3 * q) % 12 + 1)
            if qs >= self.end:
                break
            out.append(Period(max(qs, self.start), min(qe, self.end), f"{y}-Q{q}"))
            y, q = (y + 1, 1) if q == 4 else (y, q + 1)
        return out


def _month(y: int, m: int) -> datetime:
    return datetime(y, m, 1, tzinfo=LOCAL_TZ)


def _bad(name: str, value: str, en: str, vi: str) -> BadRequest:
    return BadRequest(f"Invalid parameter '{name}' = '{value}': {en}",
                      f"Tham số '{name}' = '{value}' không hợp lệ: {vi}", expression=name)


def _date(name: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _bad(name, value, "expected a date YYYY-MM-DD", "cần một ngày dạng YYYY-MM-DD") from None


def parse_period(period: str | None, start: str | None, end: str | None) -> Period:
    if period and (start or end):
        raise _bad("period", period, "give either period or start/end, not both",
                   "chỉ dùng period hoặc start/end, không dùng cả hai")
    if period:
        m = _PERIOD.match(period.strip())
        if not m:
            raise _bad("period", period, "expected 2024, 2024-Q2, 2024-H1 or 2024-05",
                       "cần dạng 2024, 2024-Q2, 2024-H1 hoặc 2024-05")
        y = int(m["y"])
        if m["q"]:
            q = int(m["q"][1])
            s, e = _month(y, 3 * q - 2), _month(y + (q == 4), (3 * q) % 12 + 1)
        elif m["h"]:
            s, e = (_month(y, 1), _month(y, 7)) if m["h"] == "H1" else (_month(y, 7), _month(y + 1, 1))
        elif m["m"]:
            mo = int(m["m"])
            s, e = _month(y, mo), _month(y + (mo == 12), mo % 12 + 1)
        else:
            s, e = _month(y, 1), _month(y + 1, 1)
        return Period(s, e, period.strip())
    if start and end:
        ds, de = _date("start", start), _date("end", end)
        if de < ds:
            raise _bad("end", end, "end is before start", "ngày kết thúc trước ngày bắt đầu")
        s = datetime(ds.year, ds.month, ds.day, tzinfo=LOCAL_TZ)
        e = datetime(de.year, de.month, de.day, tzinfo=LOCAL_TZ) + timedelta(days=1)
        return Period(s, e, f"{ds.isoformat()}/{de.isoformat()}")
    missing = "end" if start else "start" if end else "period"
    raise BadRequest(f"Parameter '{missing}' is required (period, or start and end)",
                     f"Thiếu tham số '{missing}' (period, hoặc start và end)", expression=missing)
