"""Telehealth activity reports (issue #7): indicators as Measures, computed in SQL over the search index.

`install` registers the two SearchParameters the counts need (Encounter
`requesting-organization`, `telehealth-cost`) unless the profiles already define them; the
operation is listed in fhir_server/operations/catalog.py and the dashboard pages in
fhir_server/reports/web.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from fhir_server.reports import facts as _facts  # noqa: F401  (its table joins the shared metadata)

SEARCH_PARAMETERS = Path(__file__).resolve().parent / "search-parameters.json"


def search_parameters() -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = orjson.loads(SEARCH_PARAMETERS.read_bytes())
    return data


def install(svc: Any, settings: Any, engine: Any) -> None:
    from fhir_server.reports.definitions import load_indicators, load_population
    from fhir_server.reports.facts import install_writer

    registry = getattr(svc.search, "registry", None)
    missing = [d for d in search_parameters()
               if registry is None or all(registry.get(b, d["code"]) is None for b in d["base"])]
    if missing and hasattr(svc.search, "add_parameters"):
        svc.search.add_parameters(missing)
    install_writer(svc)
    load_indicators()
    load_population()
