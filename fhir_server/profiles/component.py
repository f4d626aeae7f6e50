"""install(svc, settings, engine): profiles, terminology and Vietnamese search parameters (issue #4).

Everything is compiled once per process (profiles, ValueSet expansions, FHIRPath) and shared by every app
built in it; install only wires the compiled objects into the service.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from fhir_server.errors import BadRequest
from fhir_server.profiles.conformance import (
    PROFILES_DIR,
    ConformanceStore,
    OverlayRepository,
    OverlaySearch,
    own_resources,
    protect,
)
from fhir_server.profiles.terminology import Terminology, default_terminology
from fhir_server.profiles.validator import ProfileValidator, compiled_profiles


@cache
def conformance_store() -> ConformanceStore:
    return ConformanceStore(own_resources())


@cache
def search_parameters() -> list[dict[str, Any]]:
    """The Vietnamese SearchParameter resources of profiles/ (compiled by the search registry at start-up)."""
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(PROFILES_DIR.glob("SearchParameter-*.json"))]


def expander(terminology: Terminology) -> Any:
    def expand(raw: str) -> list[tuple[str, str]]:
        if not terminology.knows_valueset(raw):
            raise BadRequest(f"Unknown ValueSet {raw} for :in / :not-in",
                             f"Không biết ValueSet {raw} cho :in / :not-in")
        return terminology.codes_of(raw)

    return expand


def install(svc: Any, settings: Any, engine: Any) -> None:
    terminology = default_terminology()
    store = conformance_store()
    repo = svc.repo
    validator = ProfileValidator(compiled_profiles(), terminology, repo=repo, settings=settings)
    svc.validators.append(protect(store))
    svc.validators.append(validator)
    svc.profile_provider = validator.profiles_for
    svc.profile_validator = validator
    svc.terminology = terminology
    search = svc.search
    search.expander = expander(terminology)
    if hasattr(search, "add_parameters"):
        search.add_parameters(search_parameters())
    svc.repo = OverlayRepository(repo, store, delete_check=validator.delete_issues)
    svc.search = OverlaySearch(search, store)
