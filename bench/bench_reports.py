"""#7: the quarterly $telehealth-report for one province with 1,000,000 encounters (SQLite and PostgreSQL).

    .venv/bin/python bench/bench_reports.py [--encounters 1000000] [--backend sqlite|postgresql|both]

Data: the seed directory (Kon Tum + Đồng Nai, fhir_server/demo_data) and synthetic staff and
patients go through the normal transaction path; the encounters (plus e-prescriptions and
minutes) are bulk-inserted: their index rows come from the real IndexWriter, computed once per
encounter *shape* (kind, provider, requester, status, cost, number of participants) on a
template with placeholder ids and then re-targeted per encounter, so they are exactly the
rows a normal write produces. `--encounters` go to Kon Tum (province 51) in 2024-Q2, plus
25 % more in 2024-Q1 and 25 % in Đồng Nai (75) as noise the report must skip. The database is
cached (var/bench/reports-<n>.sqlite3, PostgreSQL schema bench_reports_<n>) and reused.

Prints the report time (median of 3, warm) and its ratio to a floor: one bare indexed scan
counting the period's Encounter date rows, measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from fhir_server.app import build_service  # noqa: E402
from fhir_server.interactions.model import FhirRequest  # noqa: E402
from fhir_server.reports.facts import fact_row, report_encounter, report_link  # noqa: E402
from fhir_server.reports.period import parse_period  # noqa: E402
from fhir_server.reports.query import P_DATE  # noqa: E402
from fhir_server.reports.synthetic import Generator, quarter_start, transaction  # noqa: E402
from fhir_server.search.date import parse_range  # noqa: E402
from fhir_server.search.tables import ALL_INDEX_TABLES  # noqa: E402
from fhir_server.settings import Settings  # noqa: E402
from fhir_server.storage.engine import normalise_url  # noqa: E402

PG_BASE = os.environ.get("FHIR_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
CONSULT = ("consultation-general", "consultation-imaging", "consultation-laboratory", "consultation-surgery")
MARK = "bench-reports-v3"


def pg_url(schema: str) -> str:
    return f"{normalise_url(PG_BASE)}?options=-csearch_path%3D{schema}"


class Bulk:
    """Index rows per resource shape, from the real IndexWriter, re-targeted per resource."""

    def __init__(self, svc: Any) -> None:
        self.writer = svc.repo.index
        self.cache: dict[bytes, list[tuple[Any, dict[str, Any]]]] = {}
        self.columns = {t: [c.name for c in t.columns] for t in ALL_INDEX_TABLES}

    def rows(self, res_type: str, resource: dict[str, Any], subst: dict[str, str], t0: int, shift: int
             ) -> list[tuple[Any, dict[str, Any]]]:
        key = orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)
        if key not in self.cache:
            rows = []
            for table, trs in self.writer.rows(res_type, resource).items():
                unique = {tuple(sorted(r.items())): r for r in trs}
                rows += [(table, r) for r in unique.values()]
            self.cache[key] = rows
        out = []
        for table, r in self.cache[key]:
            if "target_id" in r and r["target_id"] in subst:
                r = {**r, "target_id": subst[r["target_id"]]}
            elif "low" in r and table.name == "search_date" and shift:
                r = {**r, "low": r["low"] + shift, "high": r["high"] + shift}
            out.append((table, r))
        return out


def generate(svc: Any, engine: Any, n: int, seed: int = 7) -> None:
    gen = Generator(seed=seed, quarters=(), per_quarter=0)
    base = gen.generate()  # directory, staff, patients (no activity: quarters=())
    svc.dispatch(FhirRequest(method="POST", body=transaction(base.resources), base_url="http://localhost/fhir"))
    patients = [r["id"] for r in base.of("Patient")]
    rnd = random.Random(seed)
    bulk = Bulk(svc)
    kt = [o for o in gen.lower_facilities() if o in gen.roles and gen.orgs[o].get("address", [{}])[0].get(
        "state", "").endswith("Quảng Ngãi")]
    dn = [o for o in gen.lower_facilities() if o in gen.roles and o not in kt]
    plan = [(kt, 2024, 2, n), (kt, 2024, 1, n // 4), (dn, 2024, 2, n // 4)]
    with engine.connect() as conn:
        next_pk = (conn.execute(text("SELECT COALESCE(MAX(res_pk), 0) FROM resources")).scalar() or 0) + 1
    t0_dt = quarter_start(2024, 1)
    t0 = parse_range(t0_dt.isoformat())
    assert t0 is not None
    started = time.time()
    done = 0
    for facilities, year, q, count in plan:
        qs = quarter_start(year, q)
        remaining = count
        while remaining:
            chunk = min(remaining, 50_000)
            remaining -= chunk
            res_rows: list[dict[str, Any]] = []
            idx_rows: dict[Any, list[dict[str, Any]]] = {}
            for _ in range(chunk):
                org = rnd.choice(facilities)
                kind = rnd.choice(("advice", "advice", "examination", "examination", "consultation"))
                if kind == "consultation":
                    kind = rnd.choice(CONSULT)
                uppers = [u for u in gen.uppers_of(org, kind) if u in gen.roles]
                referred = bool(uppers) and (kind.startswith("consultation") or rnd.random() < 0.4)
                provider = rnd.choice(uppers) if referred else org
                status = "cancelled" if rnd.random() < 0.05 else "finished"
                cost = rnd.choice((None, 150000, 300000)) if kind.startswith("consultation") else None
                start = qs + timedelta(days=rnd.randint(0, 89), minutes=rnd.randint(7 * 60, 17 * 60))
                appt = f"appt-b{next_pk}" if rnd.random() < 0.7 else None
                enc = gen.encounter(kind, provider, org if referred else None, "P", t0_dt, "A" if appt else None,
                                    status, cost)
                roles = [p["individual"]["reference"].split("/")[1] for p in enc["participant"]]
                for i, p in enumerate(enc["participant"]):
                    p["individual"]["reference"] = f"PractitionerRole/R{i}"
                enc["id"] = "X"
                shift = parse_range(start.isoformat())[0] - t0[0]  # type: ignore[index]
                eid = f"enc-b{next_pk}"
                patient = rnd.choice(patients)
                subst = {"P": patient, "A": appt or "", **{f"R{i}": r for i, r in enumerate(roles)}}
                for table, r in bulk.rows("Encounter", enc, subst, t0[0], shift):
                    idx_rows.setdefault(table, []).append({**r, "res_pk": next_pk})
                real = orjson.loads(orjson.dumps(enc))
                real["id"], real["subject"]["reference"] = eid, f"Patient/{patient}"
                real["period"] = {"start": start.isoformat(), "end": (start + timedelta(minutes=30)).isoformat()}
                for i, p in enumerate(real["participant"]):
                    p["individual"]["reference"] = f"PractitionerRole/{roles[i]}"
                if appt:
                    real["appointment"] = [{"reference": f"Appointment/{appt}"}]
                res_rows.append(_resource_row(next_pk, "Encounter", eid, real))
                fact = fact_row(next_pk, real)
                enc_pk = next_pk
                next_pk += 1
                if kind == "examination" and rnd.random() < 0.5:
                    mr = {"resourceType": "MedicationRequest", "id": "X", "status": "active", "intent": "order",
                          "subject": {"reference": "Patient/P"}, "encounter": {"reference": "Encounter/E"},
                          "medicationCodeableConcept": {"text": "Paracetamol 500mg"}}
                    for table, r in bulk.rows("MedicationRequest", mr, {"P": patient, "E": eid}, 0, 0):
                        idx_rows.setdefault(table, []).append({**r, "res_pk": next_pk})
                    res_rows.append(_resource_row(next_pk, "MedicationRequest", f"mr-b{next_pk}",
                                                  {**mr, "id": f"mr-b{next_pk}"}))
                    idx_rows.setdefault(report_link, []).append({"res_pk": next_pk, "kind": "rx", "encounter_id": eid})
                    if fact is not None:
                        fact["rx"] = 1
                    next_pk += 1
                if kind.startswith("consultation") and referred and rnd.random() < 0.8:
                    comp = gen.minutes({**enc, "id": "E", "subject": {"reference": "Patient/P"}}, org)
                    comp["id"] = "X"
                    for table, r in bulk.rows("Composition", comp, {"P": patient, "E": eid}, 0, 0):
                        idx_rows.setdefault(table, []).append({**r, "res_pk": next_pk})
                    res_rows.append(_resource_row(next_pk, "Composition", f"cmp-b{next_pk}",
                                                  {**comp, "id": f"cmp-b{next_pk}"}))
                    idx_rows.setdefault(report_link, []).append(
                        {"res_pk": next_pk, "kind": "minutes", "encounter_id": eid})
                    if fact is not None:
                        fact["minutes"] = 1
                    next_pk += 1
                if fact is not None:  # each bulk appointment has one encounter: it leads its session
                    idx_rows.setdefault(report_encounter, []).append(fact)
                assert enc_pk
            _insert(engine, bulk, res_rows, idx_rows)
            done += chunk
            print(f"  {done:,} encounters ({time.time() - started:.0f} s, {len(bulk.cache)} shapes)", flush=True)
    if svc.owner_facts is not None:  # the rows went in around the write path: build the ownership facts
        from auth.owner_facts import ensure_built

        ensure_built(svc.repo, svc.owner_facts, force=True)


def _resource_row(pk: int, res_type: str, res_id: str, resource: dict[str, Any]) -> dict[str, Any]:
    resource["meta"] = {"versionId": "1", "lastUpdated": "2024-07-01T00:00:00+07:00"}
    return {"res_pk": pk, "res_type": res_type, "res_id": res_id, "version_id": 1,
            "last_updated": "2024-07-01T00:00:00+07:00", "updated_us": 1719766800000000, "deleted": False,
            "content": orjson.dumps(resource).decode()}


def _insert(engine: Any, bulk: Bulk, res_rows: list[dict[str, Any]], idx_rows: dict[Any, list[dict[str, Any]]]
            ) -> None:
    from fhir_server.storage.tables import resources

    if engine.dialect.name == "postgresql":
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            for table, rows in [(resources, res_rows), *idx_rows.items()]:
                cols = [c.name for c in table.columns]
                with cur.copy(f"COPY {table.name} ({', '.join(cols)}) FROM STDIN") as cp:
                    for r in rows:
                        cp.write_row([r.get(c) for c in cols])
            raw.commit()
        finally:
            raw.close()
        return
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("BEGIN")
        for table, rows in [(resources, res_rows), *idx_rows.items()]:
            cols = [c.name for c in table.columns]
            cur.executemany(f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                            [tuple(r.get(c) for c in cols) for r in rows])
        cur.execute("COMMIT")
    finally:
        raw.close()


def prepare(backend: str, n: int) -> tuple[Any, Any]:
    if backend == "sqlite":
        path = ROOT / "var" / "bench" / f"reports-{n}.sqlite3"
        url = f"sqlite:///{path}"
    else:
        schema = f"bench_reports_{n}"
        admin = create_engine(normalise_url(PG_BASE), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
        admin.dispose()
        url = pg_url(schema)
    settings = Settings(database_url=url, secret_key="bench", auth_enabled=False, audit_enabled=False,
                        max_body_bytes=64 * 1024 * 1024)
    svc = build_service(settings)
    engine = svc.repo.engine
    with engine.connect() as conn:
        ready = conn.execute(text("SELECT value FROM server_state WHERE name = :n"), {"n": MARK}).scalar()
    if ready:
        print(f"{backend}: cached data set ({url})")
        return svc, engine
    print(f"{backend}: generating {n:,} encounters (+50 % noise) into {url}")
    generate(svc, engine, n)
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.execute(text("INSERT INTO server_state (name, value) VALUES (:n, 'ready')"), {"n": MARK})
        conn.commit()
    return svc, engine


def run(backend: str, n: int) -> dict[str, float]:
    svc, engine = prepare(backend, n)
    period = parse_period("2024-Q2", None, None)
    floor_sql = text("SELECT COUNT(*) FROM search_date WHERE param = :p AND low >= :s AND low < :e")

    def floor() -> float:
        t = time.perf_counter()
        with engine.connect() as conn:
            conn.execute(floor_sql, {"p": P_DATE, "s": period.start_us, "e": period.end_us}).scalar()
        return time.perf_counter() - t

    def report(breakdown: str | None) -> float:
        params = [("period", "2024-Q2"), ("jurisdiction", "51")] + ([("breakdown", breakdown)] if breakdown else [])
        t = time.perf_counter()
        resp = svc.dispatch(FhirRequest(method="GET", operation="$telehealth-report", params=params,
                                        base_url="http://localhost/fhir"))
        elapsed = time.perf_counter() - t
        assert resp.status == 200 and resp.resource is not None
        cases = next(e["resource"]["group"][0]["population"][0]["count"] for e in resp.resource["entry"]
                     if e["resource"]["measure"].endswith("/kt-04-advice"))
        report.cases = cases  # type: ignore[attr-defined]
        return elapsed

    floor()
    report(None)  # warm caches
    f = statistics.median(floor() for _ in range(3))
    plain = statistics.median(report(None) for _ in range(3))
    by_facility = statistics.median(report("facility") for _ in range(3))
    print(f"{backend}: floor (bare date-index count of the quarter) {f:.3f} s")
    print(f"{backend}: $telehealth-report 51 2024-Q2            {plain:.3f} s  ({plain / f:.1f}× floor)")
    print(f"{backend}: … with breakdown=facility              {by_facility:.3f} s  ({by_facility / f:.1f}× floor)")
    print(f"{backend}: (advice sessions counted: {report.cases:,})")  # type: ignore[attr-defined]
    return {"floor": f, "report": plain, "facility": by_facility}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--encounters", type=int, default=1_000_000)
    ap.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    args = ap.parse_args()
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    for b in backends:
        run(b, args.encounters)


if __name__ == "__main__":
    main()
