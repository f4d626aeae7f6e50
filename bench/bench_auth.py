"""Cost of authorization + auditing (issue #5): read-by-id and a typical search, auth+audit on vs off.

The servers run the same code under the same gunicorn settings (bench/common.py: the shipped
gunicorn.conf.py, gthread × 2, with 2 workers) on copies of the same database content (SQLite)
or one database (PostgreSQL), all at once; wrk (2 threads) measures them in alternation, round
after round, and the median of the rounds is compared, so a change in the machine's load hits every configuration alike.
"on" = FHIR_AUTH_ENABLED + FHIR_AUDIT_ENABLED: every request carries a JWT access token of a
central-hospital client, is checked against the policy, its Appointment reads pass the SQL
boundary, and an AuditEvent is written for it. "off" = both disabled. The ratio on/off is
printed (aim ≥ 0.8). Other helpers load the machine: compare ratios measured in one run.

Usage: .venv/bin/python bench/bench_auth.py [--split] [--rounds 3] [--duration 5] [--connections 16]
                                           [--postgres URL-of-an-empty-schema]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import GUNICORN, ROOT, free_port, run_wrk, server


def prepare(db: str) -> tuple[list[str], str, str]:
    """Data (20 patients, 400 appointments of one central hospital) and one client; returns ids and credentials."""
    from auth.store import AuthStore
    from fhir_server.app import build_service
    from fhir_server.interactions.model import FhirRequest
    from fhir_server.settings import Settings

    svc = build_service(Settings(database_url=db, auth_enabled=False, audit_enabled=False))
    tier = {"system": "http://fhir.vntelehealth.org/r4/CodeSystem/facility-tier", "code": "central"}
    entries: list[dict[str, object]] = [
        {"resource": {"resourceType": "Organization", "id": "org-c", "name": "BV Trung ương", "type": [
            {"coding": [tier]}]}, "request": {"method": "PUT", "url": "Organization/org-c"}},
        {"resource": {"resourceType": "PractitionerRole", "id": "role-c", "organization": {
            "reference": "Organization/org-c"}}, "request": {"method": "PUT", "url": "PractitionerRole/role-c"}},
    ]
    for p in range(1, 21):
        entries.append({"resource": {"resourceType": "Patient", "id": f"pat-{p}", "managingOrganization": {
            "reference": "Organization/org-c"}}, "request": {"method": "PUT", "url": f"Patient/pat-{p}"}})
    ids = []
    for a in range(400):
        ids.append(f"appt-{a}")
        entries.append({"resource": {
            "resourceType": "Appointment", "id": f"appt-{a}", "status": "booked",
            "start": "2026-12-07T08:00:00+07:00", "end": "2026-12-07T08:30:00+07:00",
            "participant": [{"actor": {"reference": "PractitionerRole/role-c"}, "status": "accepted"},
                            {"actor": {"reference": f"Patient/pat-{a % 20 + 1}"}, "status": "accepted"}]},
            "request": {"method": "PUT", "url": f"Appointment/appt-{a}"}})
    svc.dispatch(FhirRequest(method="POST", body={"resourceType": "Bundle", "type": "transaction",
                                                  "entry": entries}, base_url="http://127.0.0.1/fhir"))
    if svc.repo.postgres:  # planner statistics, as a production database has them
        with svc.repo.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
    client, secret = AuthStore(svc.repo.engine).create_client(
        name="bench HIS", scope="system/*.cruds", role="facility", organization="Organization/org-c")
    svc.repo.engine.dispose()
    assert secret
    return ids, client.client_id, secret


def get_token(base: str, client_id: str, secret: str) -> str:
    req = urllib.request.Request(f"{base}/auth/token", data=b"grant_type=client_credentials&scope=system/*.rs",
                                 headers={"Authorization": "Basic " + base64.b64encode(
                                     f"{client_id}:{secret}".encode()).decode()})
    with urllib.request.urlopen(req, timeout=30) as resp:
        token: str = json.loads(resp.read())["access_token"]
        return token


def _proc_cpu(match: Any) -> float:
    """CPU seconds (user + system) of the processes `match(pgrp, comm)` selects, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as fh:
                raw = fh.read()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1:raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2:].split()
        if match(int(fields[2]), comm):
            total += int(fields[11]) + int(fields[12])
    return total / tick


def server_cpu(pgid: int, postgres: bool) -> float:
    """CPU the server has used: its gunicorn processes (workers and their audit writer threads) and,
    on PostgreSQL, the database's processes (the three servers share them; the idle ones use ~none)."""
    return _proc_cpu(lambda pgrp, comm: pgrp == pgid or (postgres and comm.startswith("postgres")))


def run(base: str, mode: str, ids: list[str], token: str, duration: int, connections: int,
        cpu: Any = None) -> dict[str, float]:
    before = cpu() if cpu else 0.0
    result = run_wrk(base, mode, ids, duration, connections, token)
    if cpu:
        time.sleep(1.5)  # the audit writer's last batch (every 0.5 s) belongs to this measurement
    used = cpu() - before if cpu else 0.0
    result["cpu_us_per_request"] = used / max(int(result["requests"]), 1) * 1e6
    return result


def _ratio(off: float, other: float, inverse: bool) -> float:
    return off / other if inverse else other / off


def report(title: str, values: dict[str, dict[str, float]], unit: str, inverse: bool) -> None:
    """One line per mode: off, on, their ratio (and auth alone); `inverse` for costs (off/on)."""
    print(f"\n{title}:")
    for mode in ("read", "search"):
        off, on = values["off"][mode], values["on"][mode]
        line = f"  {mode:6s} off {off:8.1f} {unit}  on {on:8.1f} {unit}  ratio {_ratio(off, on, inverse):5.2f}"
        if "auth" in values:
            alone = values["auth"][mode]
            line += f"   (auth alone {alone:8.1f} {unit}, ratio {_ratio(off, alone, inverse):5.2f})"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (the median is reported)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--postgres", help="database URL (an empty schema) instead of a fresh SQLite file")
    parser.add_argument("--split", action="store_true", help="also measure auth on with auditing off")
    args = parser.parse_args()
    import shutil
    import statistics
    from contextlib import ExitStack

    configs = [("off", "false", "false"), ("auth", "true", "false"), ("on", "true", "true")]
    if not args.split:
        configs = [configs[0], configs[2]]
    samples: dict[str, dict[str, list[dict[str, float]]]] = {name: {"read": [], "search": []} for name, *_ in configs}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        db = args.postgres or f"sqlite:///{tmp}/bench.sqlite3"
        ids, client_id, secret = prepare(db)
        bases: dict[str, tuple[str, str, Any]] = {}
        for name, flag, audit in configs:
            url = db
            if not args.postgres:  # each server its own copy: the audit writes of one do not slow the others
                shutil.copy(f"{tmp}/bench.sqlite3", f"{tmp}/{name}.sqlite3")
                url = f"sqlite:///{tmp}/{name}.sqlite3"
            env = {"FHIR_DATABASE_URL": url, "FHIR_AUTH_ENABLED": flag, "FHIR_AUDIT_ENABLED": audit}
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            proc = stack.enter_context(server([*GUNICORN, "--bind", f"127.0.0.1:{port}", "wsgi:app"],
                                              f"{base}/fhir/metadata", env))
            bases[name] = (base, get_token(base, client_id, secret) if flag == "true" else "none",
                           lambda pgid=proc.pid: server_cpu(pgid, bool(args.postgres)))
        for base, token, _cpu in bases.values():
            for mode in ("read", "search"):
                run(base, mode, ids, token, 2, args.connections)  # warm-up
        # Alternate the servers, round after round, so a change in the machine's load hits all alike.
        for _ in range(args.rounds):
            for mode in ("read", "search"):
                for name, (base, token, cpu) in bases.items():
                    r = run(base, mode, ids, token, args.duration, args.connections, cpu)
                    samples[name][mode].append(r)
                    print(f"  {name:4s} {mode:6s} {r['rps']:8.1f} req/s  p50 {r['p50_ms']:6.2f} ms  "
                          f"p95 {r['p95_ms']:6.2f} ms  server CPU {r['cpu_us_per_request']:7.0f} µs/req  "
                          f"errors {r['errors']}", flush=True)
    med = {name: {mode: statistics.median(x["rps"] for x in runs) for mode, runs in by.items()}
           for name, by in samples.items()}
    cpu_med = {name: {mode: statistics.median(x["cpu_us_per_request"] for x in runs) for mode, runs in by.items()}
               for name, by in samples.items()}
    report("median req/s and ratio on/off (aim >= 0.8)", med, "req/s", inverse=False)
    # Throughput at saturation is inversely proportional to the CPU a request costs the server (and its
    # database): this ratio is the same comparison, without the req/s swings of a shared machine.
    report("median server CPU per request (gunicorn + audit writer [+ PostgreSQL]) and ratio off/on", cpu_med,
           "µs", inverse=True)
    # The same comparison paired by round (each round measures every server back to back): the median
    # of the per-round ratios, which a drift of the machine's load between rounds does not move.
    print("\nmedian of the per-round ratios (paired; req/s on/off, CPU off/on):")
    paired: dict[str, dict[str, dict[str, float]]] = {}
    for name in samples:
        if name == "off":
            continue
        for mode in ("read", "search"):
            pairs = list(zip(samples["off"][mode], samples[name][mode], strict=True))
            rps = statistics.median(b["rps"] / a["rps"] for a, b in pairs)
            cpu = statistics.median(a["cpu_us_per_request"] / b["cpu_us_per_request"] for a, b in pairs)
            paired.setdefault(name, {})[mode] = {"rps": rps, "cpu": cpu}
            print(f"  {name:4s} {mode:6s} req/s {rps:5.2f}   CPU {cpu:5.2f}")
    out_dir = ROOT / "bench" / "out"
    out_dir.mkdir(exist_ok=True)
    report_json = {"samples": samples, "median_rps": med, "median_cpu_us_per_request": cpu_med,
                   "median_paired_ratio": paired}
    (out_dir / "bench_auth.json").write_text(json.dumps(report_json, indent=1))


if __name__ == "__main__":
    main()
