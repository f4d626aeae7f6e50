"""Operator commands: `python -m fhir_server init-db | load PATH... | load-demo | reindex [--type T]`.

They act on the database that FHIR_DATABASE_URL selects, so they work against the
store of a running server.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

DEMO_DIR = Path(__file__).parent / "demo_data"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fhir_server")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("init-db", help="create or upgrade the schema")
    load = sub.add_parser("load", help="load FHIR JSON / NDJSON / Bundles from files or directories")
    load.add_argument("paths", nargs="+", type=Path)
    sub.add_parser("load-demo", help="load the demo data set (Đồng Nai and Kon Tum facilities, staff, schedules)")
    reindex = sub.add_parser("reindex", help="rebuild the search index (after SearchParameters changed)")
    reindex.add_argument("--type", dest="res_type", help="only this resource type")
    args = parser.parse_args(argv)

    from fhir_server.app import build_service
    from fhir_server.settings import Settings

    # Operator commands act as the operator on the local store: no HTTP authorization applies.
    svc = build_service(Settings.from_env(auth_enabled=False, audit_enabled=False))
    try:
        return _run(svc, args)
    finally:
        svc.repo.engine.dispose()


def _run(svc: Any, args: argparse.Namespace) -> int:
    from fhir_server.loader import load_paths

    if args.command == "init-db":
        print("schema ready")
        return 0
    if args.command == "reindex":
        return _reindex(svc, args.res_type)
    paths = args.paths if args.command == "load" else [DEMO_DIR]
    report = load_paths(svc, paths)
    print(report.line())
    return 1 if report.errors else 0


def _reindex(svc: Any, res_type: str | None) -> int:
    from fhir_server.registry import RESOURCE_TYPES

    if res_type is not None and res_type not in RESOURCE_TYPES:
        print(f"unknown resource type {res_type}", file=sys.stderr)
        return 2
    # build_service compiled the stored SearchParameters; rebuild the rows, then tell running
    # servers (they check every few seconds) to compile them too.
    done = svc.search.reindex(svc.repo, res_type)
    with svc.repo.unit_of_work() as uow:
        svc.search.bump_generation(uow.conn)
    print(f"reindexed {done} resources" + (f" of type {res_type}" if res_type else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
