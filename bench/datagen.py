"""Realistic synthetic data for the search benchmark (issue #3), loaded in bulk.

Scale 1.0: 1,000 organizations, 10,000 practitioners (one Schedule each), 100,000 patients,
1,000,000 slots and 1,000,000 appointments, with Vietnamese names (diacritics included) in
realistic frequencies (Nguyễn ~ 38 %, a rare family name `Khổng` ~ 0.1 %).

Bulk, but exactly the server's write path: each resource's stored JSON is built by
`fhir_server.storage.sql.version_body` (what `upsert` stores) and its index rows by
`IndexWriter.unique_rows` (what `write` inserts); a sample is validated with the server's
structure validator. Only the mechanics differ: rows go in with executemany (SQLite) or
COPY (PostgreSQL) in large transactions, with the index tables' secondary indexes dropped
during the load and re-created (same definitions) afterwards.

Everything is deterministic (seeded), so ids and values are the same on both backends
and for the peer: the query targets below (`targets`) come from the same arithmetic.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Engine, func, select, text

from fhir_server.search.index import IndexWriter
from fhir_server.search.tables import ALL_INDEX_TABLES
from fhir_server.storage.engine import is_postgres
from fhir_server.storage.sql import version_body
from fhir_server.storage.tables import resource_history, resources

FAMILIES = [("Nguyễn", 380), ("Trần", 110), ("Lê", 95), ("Phạm", 70), ("Hoàng", 50), ("Huỳnh", 40),
            ("Phan", 45), ("Vũ", 39), ("Võ", 30), ("Đặng", 21), ("Bùi", 20), ("Đỗ", 14), ("Hồ", 13),
            ("Ngô", 13), ("Dương", 10), ("Lý", 5), ("Đinh", 8), ("Trịnh", 6), ("Mai", 5), ("Khổng", 1)]
MIDDLE_M = ["Văn", "Hữu", "Đức", "Minh", "Quốc", "Thanh", "Công", "Xuân"]
MIDDLE_F = ["Thị", "Ngọc", "Thu", "Minh", "Thanh", "Kim", "Bích", "Hồng"]
GIVEN_M = ["An", "Bình", "Cường", "Dũng", "Đức", "Hải", "Hùng", "Huy", "Khoa", "Long", "Nam", "Phúc", "Quang",
           "Sơn", "Tâm", "Thắng", "Tuấn", "Việt", "Vinh", "Trung"]
GIVEN_F = ["Anh", "Chi", "Giang", "Hà", "Hạnh", "Hằng", "Hương", "Lan", "Linh", "Mai", "Nga", "Ngân", "Nhung",
           "Phương", "Thảo", "Trang", "Uyên", "Vy", "Xuân", "Yến"]
PROVINCES = [("75", "Tỉnh Đồng Nai"), ("62", "Tỉnh Kon Tum"), ("01", "Thành phố Hà Nội"),
             ("79", "Thành phố Hồ Chí Minh"), ("48", "Thành phố Đà Nẵng"), ("92", "Thành phố Cần Thơ")]
TIERS = ["central", "provincial", "district", "commune"]
SID = "http://fhir.vntelehealth.org/r4/sid"
CS = "http://fhir.vntelehealth.org/r4/CodeSystem"
NATIONAL_ID = "http://fhir.ehealth.gov.vn/core/sid/national_id"
LICENSE = "http://fhir.ehealth.gov.vn/core/sid/provider-license-number"
SERVICE = {"coding": [{"system": f"{CS}/telehealth-service", "code": "teleconsultation",
                       "display": "Hội chẩn từ xa"}]}
TAG = {"tag": [{"system": f"{CS}/data-origin", "code": "synthetic", "display": "Dữ liệu giả lập (hư cấu)"}]}
# The slot/appointment calendar: 100 working days from Monday 2026-09-07, 08:00-17:00 (+07:00).
DAY0 = datetime(2026, 9, 7, 8, 0, tzinfo=UTC) - timedelta(hours=7)
SLOTS_PER_DAY = 18  # 30-minute slots
VN = "+07:00"
LAST_UPDATED = "2026-12-01T00:00:00.000+00:00"
UPDATED_US = int(datetime(2026, 12, 1, tzinfo=UTC).timestamp() * 1_000_000)


@dataclass(frozen=True)
class Counts:
    organizations: int
    practitioners: int
    patients: int
    appointments: int
    slots: int

    @classmethod
    def at(cls, scale: float) -> Counts:
        def n(full: int) -> int:
            return max(1, round(full * scale))
        return cls(n(1_000), n(10_000), n(100_000), n(1_000_000), n(1_000_000))

    @property
    def total(self) -> int:
        return self.organizations + 2 * self.practitioners + self.patients + self.appointments + self.slots


def _weighted(rng: random.Random, table: list[tuple[str, int]]) -> str:
    return rng.choices([n for n, _ in table], weights=[w for _, w in table])[0]


def person_name(rng: random.Random) -> tuple[dict[str, Any], str]:
    female = rng.random() < 0.5
    family = _weighted(rng, FAMILIES)
    given = [rng.choice(MIDDLE_F if female else MIDDLE_M), rng.choice(GIVEN_F if female else GIVEN_M)]
    text = " ".join([family, *given])
    return {"use": "official", "text": text, "family": family, "given": given}, "female" if female else "male"


def _instant(slot_index: int) -> tuple[str, str]:
    """Start/end of the n-th 30-minute slot of the calendar, as +07:00 dateTimes."""
    day, k = divmod(slot_index, SLOTS_PER_DAY)
    start = DAY0 + timedelta(days=day + 2 * (day // 5), minutes=30 * k)  # skip weekends
    local = start + timedelta(hours=7)
    end = local + timedelta(minutes=30)
    return local.strftime("%Y-%m-%dT%H:%M:%S") + VN, end.strftime("%Y-%m-%dT%H:%M:%S") + VN


def slot_time(slot_index: int) -> datetime:
    day, k = divmod(slot_index, SLOTS_PER_DAY)
    return DAY0 + timedelta(days=day + 2 * (day // 5), minutes=30 * k)


def generate(counts: Counts, seed: int = 20261201) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(type, id, resource) in reference order: organizations, practitioners, schedules, patients, slots,
    appointments."""
    rng = random.Random(seed)
    for i in range(counts.organizations):
        code, province = PROVINCES[i % len(PROVINCES)]
        tier = TIERS[min(3, i % 10 // 3)] if i else "central"
        yield "Organization", f"org-{i}", {
            "resourceType": "Organization", "meta": TAG, "active": True,
            "identifier": [{"system": f"{SID}/facility-code", "value": f"{10000 + i:05d}"}],
            "type": [{"coding": [{"system": f"{CS}/facility-tier", "code": tier}]}],
            "name": f"{'Trạm Y tế' if tier == 'commune' else 'Bệnh viện'} số {i} {province}",
            "address": [{"state": province, "country": "VN"}]}
    for i in range(counts.practitioners):
        name, gender = person_name(rng)
        yield "Practitioner", f"prac-{i}", {
            "resourceType": "Practitioner", "meta": TAG, "active": True,
            "identifier": [{"system": LICENSE, "value": f"{i:06d}/BYT-CCHN"}],
            "name": [{**name, "prefix": ["BS"]}], "gender": gender}
    for i in range(counts.practitioners):
        yield "Schedule", f"sch-{i}", {
            "resourceType": "Schedule", "meta": TAG, "active": True, "serviceType": [SERVICE],
            "actor": [{"reference": f"Practitioner/prac-{i}"}],
            "planningHorizon": {"start": _instant(0)[0], "end": _instant(100 * SLOTS_PER_DAY - 1)[1]}}
    for i in range(counts.patients):
        name, gender = person_name(rng)
        code, province = PROVINCES[i % len(PROVINCES)]
        yield "Patient", f"pat-{i}", {
            "resourceType": "Patient", "meta": TAG, "active": True,
            "identifier": [{"use": "official", "system": NATIONAL_ID, "value": f"{code:0>3}{i:09d}"}],
            "name": [name], "gender": gender,
            "birthDate": f"{1940 + i % 80}-{1 + i % 12:02d}-{1 + i % 28:02d}",
            "address": [{"state": province, "country": "VN"}]}
    per_prac = max(1, counts.slots // counts.practitioners)
    for i in range(counts.slots):
        prac, k = divmod(i, per_prac)
        prac %= counts.practitioners
        start, end = _instant(slot_calendar_index(k, per_prac))
        yield "Slot", f"slot-{i}", {
            "resourceType": "Slot", "meta": TAG, "serviceType": [SERVICE],
            "schedule": {"reference": f"Schedule/sch-{prac}"},
            "status": "busy" if i < counts.appointments and appointment_books_slot(i) else "free",
            "start": start, "end": end}
    for i in range(counts.appointments):
        prac, k = divmod(i, per_prac)
        prac %= counts.practitioners
        pat = appointment_patient(i, counts)
        start, end = _instant(slot_calendar_index(k, per_prac))
        body: dict[str, Any] = {
            "resourceType": "Appointment", "meta": TAG,
            "status": "booked" if appointment_books_slot(i) else "proposed",
            "serviceType": [SERVICE], "start": start, "end": end,
            "participant": [
                {"actor": {"reference": f"Practitioner/prac-{prac}"}, "status": "accepted"},
                {"actor": {"reference": f"Patient/pat-{pat}"}, "status": "accepted"}]}
        if appointment_books_slot(i) and i < counts.slots:
            body["slot"] = [{"reference": f"Slot/slot-{i}"}]
        yield "Appointment", f"appt-{i}", body


def slot_calendar_index(k: int, per_prac: int) -> int:
    """A practitioner's k-th slot: spread over the 100-day calendar (one or two a day at full scale)."""
    total = 100 * SLOTS_PER_DAY
    return (k * max(1, total // max(per_prac, 1)) + k % 7) % total


def appointment_books_slot(i: int) -> bool:
    return i % 3 != 0  # two slots in three are booked


def appointment_patient(i: int, counts: Counts) -> int:
    return (i * 7919) % counts.patients


# -- bulk load ----------------------------------------------------------------------------
_RES_COLS = ("res_pk", "res_type", "res_id", "version_id", "last_updated", "updated_us", "deleted", "content")
_HIST_COLS = ("res_type", "res_id", "version_id", "last_updated", "updated_us", "method", "deleted", "content")


def _columns(table: Any) -> list[str]:
    return [c.name for c in table.columns]


def load(engine: Engine, writer: IndexWriter, counts: Counts, batch: int = 20_000, log: Any = print) -> float:
    """Bulk-load the data set into an empty store; returns seconds taken."""
    t0 = time.perf_counter()
    pg = is_postgres(engine)
    with engine.connect() as conn:
        start_pk = int(conn.execute(select(func.coalesce(func.max(resources.c.res_pk), 0))).scalar_one())
    _drop_indexes(engine)
    pk = start_pk
    pending: list[tuple[str, str, dict[str, Any]]] = []
    done = 0

    def flush() -> None:
        nonlocal pk
        res_rows: list[tuple[Any, ...]] = []
        hist_rows: list[tuple[Any, ...]] = []
        index_rows: dict[Any, list[dict[str, Any]]] = {}
        for res_type, res_id, resource in pending:
            pk += 1
            body = version_body(res_type, res_id, 1, LAST_UPDATED, resource)
            content = orjson.dumps(body).decode()
            res_rows.append((pk, res_type, res_id, 1, LAST_UPDATED, UPDATED_US, False, content))
            hist_rows.append((res_type, res_id, 1, LAST_UPDATED, UPDATED_US, "PUT", False, content))
            for table, rows in writer.unique_rows(pk, res_type, body).items():
                index_rows.setdefault(table, []).extend(rows)
        with engine.connect().execution_options(fhir_write=True) as conn, conn.begin():
            _insert(conn, pg, "resources", _RES_COLS, res_rows)
            _insert(conn, pg, "resource_history", _HIST_COLS, hist_rows)
            for table, rows in index_rows.items():
                cols = _columns(table)
                _insert(conn, pg, table.name, tuple(cols), [tuple(r.get(c) for c in cols) for r in rows])
        pending.clear()

    for item in generate(counts):
        pending.append(item)
        if len(pending) >= batch:
            done += len(pending)
            flush()
            if done % 200_000 < batch:
                log(f"  loaded {done:,} / {counts.total:,} resources ({time.perf_counter() - t0:.0f} s)")
    if pending:
        flush()
    log(f"  rows in; creating indexes ({time.perf_counter() - t0:.0f} s)")
    _create_indexes(engine)
    with engine.connect().execution_options(fhir_write=True) as conn, conn.begin():
        if pg:
            conn.execute(text("SELECT setval(pg_get_serial_sequence('resources', 'res_pk'), "
                              "(SELECT max(res_pk) FROM resources))"))
            conn.execute(text("ANALYZE"))
        else:
            conn.exec_driver_sql("ANALYZE")
    return time.perf_counter() - t0


def _insert(conn: Any, pg: bool, table: str, cols: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    if not rows:
        return
    raw = conn.connection.driver_connection
    if pg:
        cur = raw.cursor()
        with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cur.close()
    else:
        marks = ", ".join("?" for _ in cols)
        raw.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", rows)


def _secondary_indexes() -> list[Any]:
    return [idx for table in (*ALL_INDEX_TABLES, resource_history) for idx in table.indexes]


def _drop_indexes(engine: Engine) -> None:
    with engine.connect().execution_options(fhir_write=True) as conn, conn.begin():
        for idx in _secondary_indexes():
            idx.drop(conn, checkfirst=True)


def _create_indexes(engine: Engine) -> None:
    with engine.connect().execution_options(fhir_write=True) as conn, conn.begin():
        for idx in _secondary_indexes():
            idx.create(conn, checkfirst=True)


def bundles(counts: Counts, size: int, n: int, tag: str) -> Iterator[bytes]:
    """Transaction Bundles of fresh Appointments (the ingest test), `size` entries each."""
    for b in range(n):
        entries = []
        for j in range(size):
            i = b * size + j
            prac = i % counts.practitioners
            start, end = _instant(i % (100 * SLOTS_PER_DAY))
            entries.append({"fullUrl": f"urn:uuid:00000000-0000-4000-8000-{tag}{i:08d}",
                            "resource": {"resourceType": "Appointment", "status": "booked",
                                         "serviceType": [SERVICE], "start": start, "end": end,
                                         "participant": [
                                             {"actor": {"reference": f"Practitioner/prac-{prac}"},
                                              "status": "accepted"},
                                             {"actor": {"reference": f"Patient/pat-{i % counts.patients}"},
                                              "status": "accepted"}]},
                            "request": {"method": "POST", "url": "Appointment"}})
        yield orjson.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries})
