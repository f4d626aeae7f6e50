"""Load a directory of FHIR JSON, NDJSON and Bundles into the store.

Everything passes through the same dispatcher as HTTP requests (validation, indexing,
transactions); resources with an id are written with PUT so loading is idempotent.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from fhir_server.errors import FhirError
from fhir_server.interactions.model import FhirRequest
from fhir_server.service import FhirService

BATCH = 500


@dataclass
class LoadReport:
    files: int = 0
    resources: int = 0
    errors: int = 0

    def line(self) -> str:
        return f"loaded {self.resources} resources from {self.files} files ({self.errors} errors)"


def _entry(resource: dict[str, Any]) -> dict[str, Any]:
    rt = resource.get("resourceType")
    if resource.get("id"):
        return {"resource": resource, "request": {"method": "PUT", "url": f"{rt}/{resource['id']}"}}
    return {"resource": resource, "request": {"method": "POST", "url": rt}}


def _resources_of(path: Path) -> Iterator[dict[str, Any]]:
    if path.suffix == ".ndjson":
        with path.open("rb") as fh:
            for line in fh:
                if line.strip():
                    yield orjson.loads(line)
        return
    yield orjson.loads(path.read_bytes())


def iter_files(paths: Iterable[Path]) -> Iterator[Path]:
    for p in paths:
        if p.is_dir():
            yield from sorted(f for f in p.rglob("*") if f.suffix in (".json", ".ndjson") and f.is_file())
        else:
            yield p


def _post_bundle(svc: FhirService, bundle: dict[str, Any], base_url: str) -> int:
    req = FhirRequest(method="POST", body=bundle, base_url=base_url, lang="en",
                      headers={"prefer": "return=minimal"})
    svc.dispatch(req)
    return len(bundle.get("entry") or [])


def load_paths(svc: FhirService, paths: Iterable[Path], base_url: str = "http://localhost/fhir",
               log: Any = print) -> LoadReport:
    report = LoadReport()
    pending: list[dict[str, Any]] = []

    def flush() -> None:
        nonlocal pending
        if pending:
            report.resources += _post_bundle(svc, {"resourceType": "Bundle", "type": "transaction",
                                                   "entry": pending}, base_url)
            pending = []

    for path in iter_files(paths):
        if path.name in ("package.json",) or path.name.startswith("."):
            continue
        report.files += 1
        try:
            for resource in _resources_of(path):
                if not isinstance(resource, dict):
                    continue
                if resource.get("resourceType") == "Bundle" and resource.get("type") in ("transaction", "batch"):
                    flush()
                    report.resources += _post_bundle(svc, resource, base_url)
                elif resource.get("resourceType") == "Bundle" and resource.get("type") == "collection":
                    pending += [_entry(e["resource"]) for e in resource.get("entry", []) if e.get("resource")]
                else:
                    pending.append(_entry(resource))
                if len(pending) >= BATCH:
                    flush()
            flush()
        except (FhirError, orjson.JSONDecodeError) as exc:
            report.errors += 1
            pending = []
            detail = exc.outcome("en") if isinstance(exc, FhirError) else str(exc)
            log(f"error in {path}: {orjson.dumps(detail).decode()[:500]}")
    return report
