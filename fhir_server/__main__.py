"""Operator commands: `python -m fhir_server init-db | load PATH... | load-demo`.

They act on the database that FHIR_DATABASE_URL selects, so they work against the
store of a running server.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEMO_DIR = Path(__file__).parent / "demo_data"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fhir_server")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("init-db", help="create or upgrade the schema")
    load = sub.add_parser("load", help="load FHIR JSON / NDJSON / Bundles from files or directories")
    load.add_argument("paths", nargs="+", type=Path)
    sub.add_parser("load-demo", help="load the demo data set (Đồng Nai and Kon Tum facilities, staff, schedules)")
    args = parser.parse_args(argv)

    from fhir_server.app import build_service
    from fhir_server.loader import load_paths
    from fhir_server.settings import Settings

    # Operator commands act as the operator on the local store: no HTTP authorization applies.
    svc = build_service(Settings.from_env(auth_enabled=False, audit_enabled=False))
    if args.command == "init-db":
        print("schema ready")
        return 0
    paths = args.paths if args.command == "load" else [DEMO_DIR]
    report = load_paths(svc, paths)
    print(report.line())
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
