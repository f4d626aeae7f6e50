"""Profile validation benchmark (issue #4): throughput per profile and share of write latency.

1. Throughput: each valid example of tests/fixtures/profiles/ validated N times against its profile (compiled
   tree + FHIRPath + Vietnamese rules, references read from SQLite) — resources/s and µs per resource — next
   to the R4 structural validation of the same resource (JSON Schema + R4B model), the floor every write pays.
2. Share of write latency: POST of the same examples through the real service (Flask test client, SQLite,
   no auth/audit); the profile validator is wrapped with a timer, so the share is measured inside the same
   requests. A second pass with the validator removed gives the end-to-end difference.

Run by hand (not in the test suite): .venv/bin/python bench/bench_validation.py [--n 300] [--writes 200]
Other helpers share the machine: compare the ratios of one run; absolute figures vary with load.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fhir_server.app import create_app  # noqa: E402
from fhir_server.profiles.validator import ProfileValidator  # noqa: E402
from fhir_server.settings import Settings  # noqa: E402
from fhir_server.validation.structure import validate_structure  # noqa: E402

FIX = ROOT / "tests" / "fixtures" / "profiles"
DEMO = ROOT / "fhir_server" / "demo_data"
HEADERS = {"Content-Type": "application/fhir+json"}


def examples() -> dict[str, dict[str, Any]]:
    cases = json.loads((FIX / "cases.json").read_text(encoding="utf-8"))
    out = {}
    for c in cases["cases"]:
        if c["valid"]:
            r = json.loads((FIX / c["file"]).read_text(encoding="utf-8"))
            out.setdefault(r["meta"]["profile"][0].rsplit("/", 1)[-1], r)
    return out


def per_call(fn: Any, n: int) -> float:
    """Median of 5 rounds, seconds per call."""
    rounds = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        rounds.append((time.perf_counter() - t) / n)
    return statistics.median(rounds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--writes", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(database_url=f"sqlite:///{tmp}/bench.sqlite3", secret_key="b", auth_enabled=False,
                                  audit_enabled=False))
        svc = app.extensions["fhir_service"]
        client = app.test_client()
        manifest = json.loads((FIX / "cases.json").read_text(encoding="utf-8"))
        demo = {}
        for f in sorted(DEMO.glob("*.json")):
            for e in json.loads(f.read_text(encoding="utf-8"))["entry"]:
                demo[f"{e['resource']['resourceType']}/{e['resource']['id']}"] = e["resource"]
        for key in manifest["prerequisites"]:
            client.put(f"/fhir/{key}", json=demo[key], headers=HEADERS)
        validator: ProfileValidator = svc.profile_validator

        print(f"{'profile':32s} {'profile res/s':>14s} {'µs':>8s} {'structure µs':>13s} {'profile/structure':>18s}")
        results: dict[str, Any] = {"throughput": {}}
        for name, r in sorted(examples().items()):
            rt = r["resourceType"]
            assert not [i for i in validator.issues(r, rt) if i.severity == "error"], name
            prof = per_call(lambda r=r, rt=rt: validator.issues(r, rt), args.n)
            struct = per_call(lambda r=r, rt=rt: validate_structure(r, rt), max(args.n // 3, 20))
            results["throughput"][name] = {"per_second": 1 / prof, "profile_us": prof * 1e6,
                                           "structure_us": struct * 1e6}
            print(f"{name:32s} {1 / prof:14.0f} {prof * 1e6:8.0f} {struct * 1e6:13.0f} {prof / struct:17.2f}×")

        # Share of write latency, measured inside the same requests.
        spent = [0.0]

        def timed(resource: dict[str, Any], res_type: str, mode: str) -> None:
            t = time.perf_counter()
            try:
                validator(resource, res_type, mode)
            finally:
                spent[0] += time.perf_counter() - t

        index = svc.validators.index(validator)
        bodies = list(examples().values())

        def writes(n: int) -> float:
            t = time.perf_counter()
            for i in range(n):
                body = bodies[i % len(bodies)]
                resp = client.post(f"/fhir/{body['resourceType']}", json=body, headers=HEADERS)
                assert resp.status_code == 201, resp.get_json()
            return time.perf_counter() - t

        writes(30)  # warm-up
        # Alternate chunks with and without the validator, so machine load hits both alike.
        with_profiles = without = 0.0
        spent[0] = 0.0
        for _ in range(max(args.writes // 10, 1)):
            svc.validators[index] = timed
            with_profiles += writes(10)
            svc.validators[index] = lambda *a: None
            without += writes(10)
        svc.validators[index] = validator
        args.writes = max(args.writes // 10, 1) * 10
        share = spent[0] / with_profiles
        per_write = with_profiles / args.writes * 1e3
        added = (with_profiles - without) / args.writes * 1e3
        results["writes"] = {"ms_per_write": per_write, "validator_ms_per_write": spent[0] / args.writes * 1e3,
                             "share": share, "end_to_end_added_ms": added}
        print(f"\nwrites: {per_write:.2f} ms per create; profile validation {spent[0] / args.writes * 1e3:.3f} ms "
              f"per write = {share * 100:.1f} % of write latency (end-to-end difference {added:.3f} ms)")
        mean_us = statistics.mean(v["profile_us"] for v in results["throughput"].values())
        print(f"mean profile validation {mean_us:.0f} µs per resource (aim < 1000 µs)")
        out = ROOT / "bench" / "out"
        out.mkdir(exist_ok=True)
        (out / "bench_validation.json").write_text(json.dumps(results, indent=1))
        svc.repo.engine.dispose()


if __name__ == "__main__":
    main()
