"""Search benchmark (issue #3): the Vtelehealth queries over HTTP at a million appointments.

Builds (once; cached) the data set of bench/datagen.py at `--scale` on SQLite (a file under
bench/out/) or PostgreSQL (`--postgres URL`, a database or schema of its own), starts our
server under gunicorn on it and measures, for each query:
  (a1) Slot?schedule.actor=Practitioner/X&start=ge..&start=lt..&status=free
  (a2) Appointment?practitioner=Practitioner/X&date=ge..&date=lt..
  (b)  Appointment?patient=Patient/P&_include=Appointment:practitioner
  (c1) Patient?name=nguyen (common, ~38 %)   (c2) Patient?name=khong (rare, ~0.1 %)
  (d)  Patient?identifier=<national id system>|<value>
  (e)  ingest: transaction Bundles of 500 Appointments, entries/s
p50/p95 of sequential requests (one keep-alive connection, targets rotating), throughput
under wrk (4 connections), and the ratio to the floor: the same result (page rows, and the
total when the server computes one) fetched by hand-written SQL on the index tables,
timed in this script on the same database. Every query's ids are checked against the
floor's, which also proves that the bulk-loaded rows are what the server searches.

With `--peer-scale S`, both our server and sekmet-fhir (its own venv, loaded through its
own write path) are measured on the data set at scale S, and the ratios printed.

Usage: .venv/bin/python bench/bench_search.py [--scale 1.0] [--postgres URL] [--peer-scale 0.01]
       [--requests 200] [--duration 10] [--ingest-bundles 6]
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import datagen
from common import GUNICORN, ROOT, ensure_wrk, free_port, server
from sqlalchemy import Engine, text

from fhir_server.search.hashing import h64, param_key
from fhir_server.search.normalize import fold
from fhir_server.storage.engine import make_engine
from fhir_server.storage.tables import metadata

OUT = ROOT / "bench" / "out"
SEKMET_VENV = ROOT / "bench" / ".venv-sekmet"
GEN_VERSION = hashlib.sha256((Path(__file__).parent / "datagen.py").read_bytes()).hexdigest()[:12]
WEEK = ("2026-10-05", "2026-10-12")  # a Monday-to-Monday week inside the calendar
ROTATE = 20  # distinct targets per query
PAGE = 20  # the server's default _count


# -- data set -----------------------------------------------------------------------------
def ensure_data(url: str, scale: float, log: Callable[[str], None] = print) -> tuple[Engine, float | None]:
    """The engine of a store holding the data set at `scale`, generating it if the stamp differs."""
    from fhir_server.app import build_service
    from fhir_server.settings import Settings

    stamp = f"{scale}:{GEN_VERSION}"
    engine = make_engine(url)
    with engine.connect() as conn:
        try:
            have = conn.execute(text("SELECT value FROM server_state WHERE name = 'bench-datagen'")).scalar()
        except Exception:
            have = None
    if have == stamp:
        log(f"  data set at scale {scale} found ({url.split('@')[-1]}); skipping generation")
        return engine, None
    log(f"  generating the data set at scale {scale} into {url.split('@')[-1]} …")
    with engine.connect().execution_options(fhir_write=True) as conn, conn.begin():
        metadata.drop_all(conn)
    svc = build_service(Settings(database_url=url, auth_enabled=False, audit_enabled=False), engine=engine)
    seconds = datagen.load(engine, svc.search.writer, datagen.Counts.at(scale), log=log)
    if svc.owner_facts is not None:  # the rows went in around the write path: build the ownership facts
        from auth.owner_facts import ensure_built

        ensure_built(svc.repo, svc.owner_facts, force=True)
    if engine.dialect.name == "postgresql":
        # As autovacuum would do after a bulk load: the visibility map lets counts use index-only scans.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    with engine.connect().execution_options(fhir_write=True) as conn, conn.begin():
        conn.execute(text("INSERT INTO server_state (name, value) VALUES ('bench-datagen', :v)"), {"v": stamp})
    log(f"  generated in {seconds:.0f} s")
    return engine, seconds


# -- queries and their floors ---------------------------------------------------------------
def _us(day: str) -> int:
    from fhir_server.search.date import parse_range

    r = parse_range(day)
    assert r
    return r[0]


class Queries:
    """Paths (rotating targets) and hand-written SQL producing the same first page."""

    def __init__(self, counts: datagen.Counts) -> None:
        self.counts = counts
        n = counts.practitioners
        self.pracs = [f"prac-{(k * 7 + n // 3) % n}" for k in range(ROTATE)]
        self.patients = [f"pat-{datagen.appointment_patient(k * 97 + 11, counts)}" for k in range(ROTATE)]
        self.identifiers = [f"{datagen.PROVINCES[i % 6][0]:0>3}{i:09d}"
                            for i in ((k * 4999 + 17) % counts.patients for k in range(ROTATE))]

    def paths(self, name: str) -> list[str]:
        lo, hi = WEEK
        if name == "a1":
            return [f"/fhir/Slot?schedule.actor=Practitioner/{p}&start=ge{lo}&start=lt{hi}&status=free"
                    for p in self.pracs]
        if name == "a2":
            return [f"/fhir/Appointment?practitioner=Practitioner/{p}&date=ge{lo}&date=lt{hi}" for p in self.pracs]
        if name == "b":
            return [f"/fhir/Appointment?patient=Patient/{p}&_include=Appointment:practitioner"
                    for p in self.patients]
        if name == "c1":
            return ["/fhir/Patient?name=nguyen", "/fhir/Patient?name=" + quote("NGUYỄN"),
                    "/fhir/Patient?name=nguyen%20van"]
        if name == "c2":
            return ["/fhir/Patient?name=khong", "/fhir/Patient?name=" + quote("Khổng")]
        if name == "d":
            return [f"/fhir/Patient?identifier={quote(datagen.NATIONAL_ID, safe='')}|{v}" for v in self.identifiers]
        raise KeyError(name)

    def floor(self, name: str, k: int) -> tuple[str, dict[str, Any], str | None]:
        """(page SQL, params, count SQL or None) for the k-th rotating target."""
        lo, hi = (_us(d) for d in WEEK)
        page = ("SELECT r.res_pk, r.res_id, r.content FROM resources r WHERE r.res_type = :t AND NOT r.deleted "
                "AND {where} ORDER BY r.res_pk LIMIT 21")
        if name == "a1":
            # The practitioner's schedules first (a handful of rows), then their slots.
            sql = ("SELECT r.res_pk, r.res_id, r.content FROM resources r WHERE r.res_pk IN ("
                   "SELECT sr.res_pk FROM search_reference sa JOIN resources s ON s.res_pk = sa.res_pk "
                   "JOIN search_reference sr ON sr.param = :p_sched AND sr.target_type = 'Schedule' "
                   "AND sr.target_id = s.res_id WHERE sa.param = :p_actor AND sa.target_type = 'Practitioner' "
                   "AND sa.target_id = :x AND s.res_type = 'Schedule' AND NOT s.deleted) "
                   "AND r.res_type = 'Slot' AND NOT r.deleted "
                   "AND EXISTS (SELECT 1 FROM search_date d WHERE d.res_pk = r.res_pk AND d.param = :p_start "
                   "AND d.high >= :lo AND d.low < :hi) "
                   "AND EXISTS (SELECT 1 FROM search_token tk WHERE tk.res_pk = r.res_pk AND tk.param = :p_status "
                   "AND tk.hash_code = :free) ORDER BY r.res_pk LIMIT 21")
            params = {"p_sched": param_key("Slot", "schedule"), "p_actor": param_key("Schedule", "actor"),
                      "x": self.pracs[k % ROTATE], "p_start": param_key("Slot", "start"), "lo": lo, "hi": hi,
                      "p_status": param_key("Slot", "status"), "free": h64("Slot", "status", "free")}
            return sql, params, None
        if name == "a2":
            sql = ("SELECT r.res_pk, r.res_id, r.content FROM search_reference sr JOIN resources r ON r.res_pk = "
                   "sr.res_pk WHERE sr.param = :p_prac AND sr.target_id = :x AND sr.target_type = 'Practitioner' "
                   "AND r.res_type = 'Appointment' AND NOT r.deleted AND EXISTS (SELECT 1 FROM search_date d WHERE "
                   "d.res_pk = r.res_pk AND d.param = :p_date AND d.high >= :lo AND d.low < :hi) "
                   "ORDER BY r.res_pk LIMIT 21")
            return sql, {"p_prac": param_key("Appointment", "practitioner"), "x": self.pracs[k % ROTATE],
                         "p_date": param_key("Appointment", "date"), "lo": lo, "hi": hi}, None
        if name == "b":
            sql = ("SELECT r.res_pk, r.res_id, r.content FROM search_reference sr JOIN resources r ON r.res_pk = "
                   "sr.res_pk WHERE sr.param = :p_pat AND sr.target_id = :x AND sr.target_type = 'Patient' "
                   "AND r.res_type = 'Appointment' AND NOT r.deleted ORDER BY r.res_pk LIMIT 21")
            return sql, {"p_pat": param_key("Appointment", "patient"), "x": self.patients[k % ROTATE]}, "include"
        if name in ("c1", "c2"):
            values = {"c1": ["nguyen", "nguyen", "nguyen van"], "c2": ["khong", "khong"]}[name]
            v = fold(values[k % len(values)])
            where = ("r.res_pk IN (SELECT s.res_pk FROM search_string s WHERE s.param = :p_name AND s.value >= :v "
                     "AND s.value < :v2)")
            params = {"t": "Patient", "p_name": param_key("Patient", "name"), "v": v, "v2": v + "\U0010ffff"}
            # Index rows exist only for current, non-deleted resources: the total needs no resources probe.
            count = ("SELECT count(DISTINCT s.res_pk) FROM search_string s WHERE s.param = :p_name "
                     "AND s.value >= :v AND s.value < :v2")
            return page.format(where=where), params, count
        if name == "d":
            sql = ("SELECT r.res_pk, r.res_id, r.content FROM search_token tk JOIN resources r ON r.res_pk = "
                   "tk.res_pk WHERE tk.hash_sys_code = :h AND tk.param = :p AND r.res_type = 'Patient' "
                   "AND NOT r.deleted ORDER BY r.res_pk LIMIT 21")
            value = self.identifiers[k % ROTATE]
            return sql, {"h": h64("Patient", "identifier", datagen.NATIONAL_ID, value),
                         "p": param_key("Patient", "identifier")}, None
        raise KeyError(name)


QUERY_NAMES = ["a1", "a2", "b", "c1", "c2", "d"]


def run_floor(engine: Engine, q: Queries, name: str, k: int) -> list[str]:
    sql, params, count = q.floor(name, k)
    with engine.connect() as conn:
        rows = list(conn.execute(text(sql), params))
        ids = [r[1] for r in rows[:PAGE]]
        _ = [json.loads(r[2]) for r in rows[:PAGE]]  # the server sends the stored JSON; the floor reads it
        if count == "include" and rows:
            pks = [r[0] for r in rows[:PAGE]]
            marks = ", ".join(str(int(p)) for p in pks)
            targets = list(conn.execute(text(
                f"SELECT DISTINCT target_id FROM search_reference WHERE res_pk IN ({marks}) AND param = :p "
                "AND target_type = 'Practitioner'"), {"p": param_key("Appointment", "practitioner")}))
            got = list(conn.execute(text("SELECT res_id, content FROM resources WHERE res_type = 'Practitioner' "
                                         "AND res_id IN (" + ", ".join(f"'{t[0]}'" for t in targets) + ")")))
            ids += sorted(g[0] for g in got)
        elif count and count != "include" and len(rows) > PAGE:
            conn.execute(text(count), params).scalar()
    return ids


def http_get(conn: http.client.HTTPConnection, path: str) -> bytes:
    conn.request("GET", path, headers={"Accept": "application/fhir+json"})
    resp = conn.getresponse()
    body = resp.read()
    if resp.status != 200:
        raise RuntimeError(f"{path}: HTTP {resp.status} {body[:300]!r}")
    return body


def bundle_ids(body: bytes) -> list[str]:
    bundle = json.loads(body)
    entries = bundle.get("entry", [])
    match = [e["resource"]["id"] for e in entries if e["search"]["mode"] == "match"]
    inc = sorted(e["resource"]["id"] for e in entries if e["search"]["mode"] == "include")
    return match + inc


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def measure_query(port: int, path_list: list[str], n: int, check: Callable[[int, bytes], None] | None = None
                  ) -> dict[str, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for i, path in enumerate(path_list):  # warm-up + correctness
        body = http_get(conn, path)
        if check:
            check(i, body)
    times = []
    for i in range(n):
        t = time.perf_counter()
        http_get(conn, path_list[i % len(path_list)])
        times.append((time.perf_counter() - t) * 1000)
    conn.close()
    return {"p50_ms": statistics.median(times), "p95_ms": pct(times, 95)}


def measure_floor(engine: Engine, q: Queries, name: str, n: int) -> dict[str, float]:
    for k in range(ROTATE):
        run_floor(engine, q, name, k)
    times = []
    for i in range(n):
        t = time.perf_counter()
        run_floor(engine, q, name, i)
        times.append((time.perf_counter() - t) * 1000)
    return {"p50_ms": statistics.median(times), "p95_ms": pct(times, 95)}


WRK_PATHS = r"""
local paths = {%(paths)s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1], {["Accept"] = "application/fhir+json"})
end
done = function(summary, latency, requests)
  io.write(string.format("BENCH req=%%d errors=%%d\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout))
end
"""


def throughput(port: int, paths: list[str], duration: int, connections: int = 4) -> float:
    import re

    script = WRK_PATHS % {"paths": ",".join(json.dumps(p) for p in paths)}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(script)
    out = subprocess.run([ensure_wrk(), "-t2", f"-c{connections}", f"-d{duration}s", "-s", fh.name,
                          f"http://127.0.0.1:{port}"], capture_output=True, text=True, timeout=duration + 120).stdout
    os.unlink(fh.name)
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"errors=(\d+)", out)
    if errors and int(errors.group(1)):
        print(f"    wrk reported {errors.group(1)} errors", flush=True)
    return float(m.group(1)) if m else 0.0


def ingest(port: int, counts: datagen.Counts, n: int, tag: str) -> float:
    """Entries per second for n transaction Bundles of 500 Appointments (references to existing data
    would shift the query results between runs, so they point at ingest-only ids)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    ingest_counts = datagen.Counts(1, 1, 1, 1, 1)
    total = 0.0
    for body in datagen.bundles(ingest_counts, 500, n, tag):
        body = body.replace(b"Practitioner/prac-0", b"Practitioner/ingest-prac").replace(b"Patient/pat-0",
                                                                                          b"Patient/ingest-pat")
        t = time.perf_counter()
        conn.request("POST", "/fhir", body=body, headers={"Content-Type": "application/fhir+json"})
        resp = conn.getresponse()
        data = resp.read()
        total += time.perf_counter() - t
        if resp.status != 200:
            raise RuntimeError(f"transaction: HTTP {resp.status} {data[:300]!r}")
    conn.close()
    return 500 * n / total


class InProcess:
    """The same searches through FhirService.dispatch in this process: the engine without HTTP."""

    def __init__(self, url: str) -> None:
        from fhir_server.app import build_service
        from fhir_server.settings import Settings

        self.svc = build_service(Settings(database_url=url, auth_enabled=False, audit_enabled=False))

    def run(self, path: str) -> None:
        from urllib.parse import parse_qsl, unquote, urlsplit

        from fhir_server.interactions.model import FhirRequest

        u = urlsplit(path)
        params = [(k, unquote(v)) for k, v in parse_qsl(u.query, keep_blank_values=True)]
        req = FhirRequest(method="GET", res_type=u.path.rsplit("/", 1)[-1], params=params,
                          base_url="http://127.0.0.1/fhir")
        self.svc.dispatch(req)

    def measure(self, paths: list[str], n: int) -> dict[str, float]:
        for p in paths:
            self.run(p)
        times = []
        for i in range(n):
            t = time.perf_counter()
            self.run(paths[i % len(paths)])
            times.append((time.perf_counter() - t) * 1000)
        return {"p50_ms": statistics.median(times), "p95_ms": pct(times, 95)}

    def close(self) -> None:
        self.svc.repo.engine.dispose()


def suite(name: str, port: int, q: Queries, args: argparse.Namespace, engine: Engine | None,
          ingest_tag: str, only: list[str] | None = None, url: str | None = None) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    # The transport floor: a read-by-id over the same kind of connection.
    read = measure_query(port, ["/fhir/Patient/pat-0", "/fhir/Patient/pat-1"], args.requests)
    out["read"] = read
    print(f"  {name:7s} read-by-id (HTTP floor) p50 {read['p50_ms']:6.2f} ms  p95 {read['p95_ms']:6.2f} ms", flush=True)
    local = InProcess(url) if url and engine is not None else None
    for query in only or (args.only.split(",") if args.only else QUERY_NAMES):
        paths = q.paths(query)
        check = None
        if engine is not None:
            def check(i: int, body: bytes, query: str = query) -> None:
                want = run_floor(engine, q, query, i)
                got = bundle_ids(body)
                if got != want:
                    raise SystemExit(f"{query}: server ids {got[:5]}… differ from the floor's {want[:5]}…")
        m = measure_query(port, paths, args.requests, check)
        m["rps"] = throughput(port, paths, args.duration)
        if engine is not None:
            f = measure_floor(engine, q, query, args.requests)
            m["floor_p50_ms"], m["floor_p95_ms"] = f["p50_ms"], f["p95_ms"]
            m["x_floor_p50"] = m["p50_ms"] / f["p50_ms"]
            m["x_floor_p95"] = m["p95_ms"] / f["p95_ms"]
        if local is not None:
            e = local.measure(paths, args.requests)
            m["engine_p50_ms"], m["engine_p95_ms"] = e["p50_ms"], e["p95_ms"]
        out[query] = m
        line = (f"  {name:7s} {query:3s} p50 {m['p50_ms']:7.2f} ms  p95 {m['p95_ms']:7.2f} ms  {m['rps']:8.1f} req/s")
        if "x_floor_p50" in m:
            line += (f"   floor p50 {m['floor_p50_ms']:6.2f} p95 {m['floor_p95_ms']:6.2f} ms"
                     f"  → {m['x_floor_p50']:4.1f}× / {m['x_floor_p95']:4.1f}×")
        if "engine_p50_ms" in m:
            line += (f"   in-process p50 {m['engine_p50_ms']:6.2f} p95 {m['engine_p95_ms']:6.2f} ms"
                     f" → {m['engine_p50_ms'] / m['floor_p50_ms']:4.1f}× / "
                     f"{m['engine_p95_ms'] / m['floor_p95_ms']:4.1f}×")
        print(line, flush=True)
    if local is not None:
        local.close()
    if args.ingest_bundles:
        rate = ingest(port, q.counts, args.ingest_bundles, ingest_tag)
        out["e"] = {"entries_per_s": rate}
        print(f"  {name:7s} e   {rate:8.0f} entries/s (transaction Bundles of 500)", flush=True)
    return out


def ours(url: str, args: argparse.Namespace, scale: float, tag: str, label: str = "ours"
         ) -> tuple[dict[str, Any], float | None]:
    engine, gen_seconds = ensure_data(url, scale)
    counts = datagen.Counts.at(scale)
    port = free_port()
    env = {"FHIR_DATABASE_URL": url, "FHIR_AUTH_ENABLED": "false", "FHIR_AUDIT_ENABLED": "false"}
    with server([*GUNICORN, "--timeout", "300", "--bind", f"127.0.0.1:{port}", "wsgi:app"],
                f"http://127.0.0.1:{port}/fhir/metadata", env):
        results = suite(label, port, Queries(counts), args, engine, tag, url=url)
    engine.dispose()
    return results, gen_seconds


def sekmet_db(scale: float) -> Path:
    """sekmet-fhir's SQLite store holding the data set at `scale` (loaded once through its write path)."""
    exe = SEKMET_VENV / "bin" / "sekmet"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(SEKMET_VENV)], check=True)
        subprocess.run([str(SEKMET_VENV / "bin" / "pip"), "install", "-q", "sekmet-fhir==0.1.1"], check=True)
    db = OUT / f"sekmet-{scale}-{GEN_VERSION}.db"
    if not db.exists():
        counts = datagen.Counts.at(scale)
        tmp = db.with_suffix(".loading")
        tmp.unlink(missing_ok=True)
        ndjson = b"".join(json.dumps({**r, "id": i}, ensure_ascii=False).encode() + b"\n"
                          for _, i, r in datagen.generate(counts))
        print(f"  loading {counts.total:,} resources into sekmet-fhir through its own write path …", flush=True)
        out = subprocess.run([str(SEKMET_VENV / "bin" / "python"), str(ROOT / "bench" / "sekmet_load.py"),
                              str(tmp)], input=ndjson, capture_output=True, check=True).stdout
        print(f"  sekmet-fhir loaded in {float(out):.0f} s", flush=True)
        tmp.rename(db)
    return db


def sekmet(args: argparse.Namespace, scale: float) -> dict[str, Any]:
    exe = SEKMET_VENV / "bin" / "sekmet"
    db = sekmet_db(scale)
    port = free_port()
    with tempfile.TemporaryDirectory() as tmpdir:
        # It writes traffic logs into its store: serve a copy so the cached store stays clean.
        copy = Path(tmpdir) / "sekmet.db"
        copy.write_bytes(db.read_bytes())
        with server([str(exe), "serve", "--host", "127.0.0.1", "--port", str(port)],
                    f"http://127.0.0.1:{port}/fhir/metadata", {"SEKMET_DB": str(copy)}, cwd=tmpdir):
            return suite("sekmet", port, Queries(datagen.Counts.at(scale)), args, None, "5e4e")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--postgres", help="database URL (a database or schema of its own) instead of SQLite")
    parser.add_argument("--peer-scale", type=float, help="also compare with sekmet-fhir on the data set at this scale")
    parser.add_argument("--requests", type=int, default=200, help="sequential requests per query")
    parser.add_argument("--duration", type=int, default=8, help="wrk seconds per query")
    parser.add_argument("--ingest-bundles", type=int, default=6)
    parser.add_argument("--skip-main", action="store_true", help="only the peer comparison")
    parser.add_argument("--generate-only", action="store_true", help="build (or find) the data set and stop")
    parser.add_argument("--only", help="comma-separated subset of the queries (a1,a2,b,c1,c2,d)")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    backend = "postgresql" if args.postgres else "sqlite"

    def url_for(scale: float) -> str:
        if args.postgres:
            return args.postgres
        return f"sqlite:///{OUT / f'search-{scale}.sqlite3'}"

    report: dict[str, Any] = {"backend": backend, "scale": args.scale, "counts": datagen.Counts.at(args.scale).__dict__,
                              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    if args.generate_only:
        t0 = time.perf_counter()
        ensure_data(url_for(args.scale), args.scale)[0].dispose()
        print(f"data set ready in {time.perf_counter() - t0:.0f} s")
        return
    if not args.skip_main:
        print(f"ours on {backend}, scale {args.scale}: {datagen.Counts.at(args.scale)}", flush=True)
        report["ours"], report["generation_s"] = ours(url_for(args.scale), args, args.scale, "0a0a")
    if args.peer_scale:
        print(f"\npeer comparison at scale {args.peer_scale} ({datagen.Counts.at(args.peer_scale)})", flush=True)
        peer_url = url_for(args.peer_scale) if not args.postgres or args.skip_main else None
        if peer_url is None:
            raise SystemExit("with --postgres, run the peer comparison separately (--skip-main --peer-scale S) on a "
                             "database holding that scale")
        mine, _ = ours(peer_url, args, args.peer_scale, "0b0b", label="ours@S")
        theirs = sekmet(args, args.peer_scale)
        report["peer"] = {"scale": args.peer_scale, "ours": mine, "sekmet": theirs}
        print("\nratio of sekmet-fhir's latency to ours (p50 / p95; >1 means we are faster), ingest ratio ours/theirs:")
        for q in QUERY_NAMES:
            if q in theirs:
                print(f"  {q:3s} {theirs[q]['p50_ms'] / mine[q]['p50_ms']:6.2f}× / "
                      f"{theirs[q]['p95_ms'] / mine[q]['p95_ms']:6.2f}×   throughput ours/theirs "
                      f"{mine[q]['rps'] / max(theirs[q]['rps'], 0.01):6.2f}×")
        if "e" in theirs:
            print(f"  e   {mine['e']['entries_per_s'] / theirs['e']['entries_per_s']:6.2f}×")
    name = f"bench_search-{backend}-{args.peer_scale if args.skip_main else args.scale}.json"
    (OUT / name).write_text(json.dumps(report, indent=1))
    print(f"\nwritten to bench/out/{name}")


if __name__ == "__main__":
    main()
