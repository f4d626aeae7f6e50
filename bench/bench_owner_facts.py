"""Cost of keeping the ownership facts (auth/owner_facts.py) on the write path.

Every write refreshes the facts of what it changes, in its own transaction. This measures
transaction Bundles of Appointments (each pointing at a PractitionerRole and a Patient, so each
create adds to its Patient's facts) in-process, with the facts kept and with the upkeep taken out
(the index writer unwrapped), on fresh stores of the same backend, alternating round by round,
and prints entries/s and the ratio kept/not kept (the floor is the write path without them).

Usage: .venv/bin/python bench/bench_owner_facts.py [--rounds 4] [--entries 500]
                                                   [--postgres URL-of-an-empty-database]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def service(url: str, kept: bool) -> Any:
    from auth.owner_facts import OwnerFactsIndexWriter
    from fhir_server.app import build_service
    from fhir_server.interactions.model import FhirRequest
    from fhir_server.settings import Settings

    svc = build_service(Settings(database_url=url, auth_enabled=False, audit_enabled=False))
    if not kept:
        repo = getattr(svc.repo, "_inner", svc.repo)
        if isinstance(repo.index, OwnerFactsIndexWriter):
            repo.index = repo.index.inner
        if isinstance(svc.search.writer, OwnerFactsIndexWriter):
            svc.search.writer = svc.search.writer.inner
    entries: list[dict[str, Any]] = [
        {"resource": {"resourceType": "Organization", "id": "org-c", "name": "BV Trung ương"},
         "request": {"method": "PUT", "url": "Organization/org-c"}},
        {"resource": {"resourceType": "PractitionerRole", "id": "role-c",
                      "organization": {"reference": "Organization/org-c"}},
         "request": {"method": "PUT", "url": "PractitionerRole/role-c"}}]
    entries += [{"resource": {"resourceType": "Patient", "id": f"pat-{p}"},
                 "request": {"method": "PUT", "url": f"Patient/pat-{p}"}} for p in range(20)]
    svc.dispatch(FhirRequest(method="POST", body={"resourceType": "Bundle", "type": "transaction", "entry": entries},
                             base_url="http://127.0.0.1/fhir"))
    return svc


def bundle(n: int) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": [{
        "resource": {"resourceType": "Appointment", "status": "booked", "start": "2026-12-07T08:00:00+07:00",
                     "end": "2026-12-07T08:30:00+07:00",
                     "participant": [{"actor": {"reference": "PractitionerRole/role-c"}, "status": "accepted"},
                                     {"actor": {"reference": f"Patient/pat-{a % 20}"}, "status": "accepted"}]},
        "request": {"method": "POST", "url": "Appointment"}} for a in range(n)]}


def ingest(svc: Any, n: int) -> float:
    from fhir_server.interactions.model import FhirRequest

    body = bundle(n)
    t0 = time.perf_counter()
    resp = svc.dispatch(FhirRequest(method="POST", body=body, base_url="http://127.0.0.1/fhir"))
    took = time.perf_counter() - t0
    assert resp.status == 200, resp.resource
    return n / took


def fresh_postgres(url: str, name: str) -> str:
    from sqlalchemy import create_engine, text

    from fhir_server.storage.engine import normalise_url

    admin = create_engine(normalise_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    admin.dispose()
    sep = "&" if "?" in url else "?"
    return f"{normalise_url(url)}{sep}options=-csearch_path%3D{name}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--entries", type=int, default=500)
    ap.add_argument("--postgres", default=None)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-facts-"))
    urls = {kept: (fresh_postgres(args.postgres, f"bench_facts_{int(kept)}") if args.postgres
                   else f"sqlite:///{tmp / f'facts-{int(kept)}.sqlite3'}") for kept in (True, False)}
    services = {kept: service(url, kept) for kept, url in urls.items()}
    rates: dict[bool, list[float]] = {True: [], False: []}
    for r in range(args.rounds):
        for kept in ((True, False) if r % 2 == 0 else (False, True)):
            rates[kept].append(ingest(services[kept], args.entries))
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print(f"{backend}: transaction Bundles of {args.entries} Appointment creates, {args.rounds} rounds")
    for kept in (True, False):
        print(f"  facts {'kept    ' if kept else 'not kept'}  entries/s per round "
              f"{[round(x) for x in rates[kept]]}  median {statistics.median(rates[kept]):.0f}")
    ratio = statistics.median(rates[True]) / statistics.median(rates[False])
    paired = statistics.median(k / n for k, n in zip(rates[True], rates[False], strict=True))
    print(f"  ratio kept / not kept: {ratio:.2f} (paired per round {paired:.2f})")
    for svc in services.values():
        svc.repo.engine.dispose()


if __name__ == "__main__":
    main()
