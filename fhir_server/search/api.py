"""The contract between interactions and the search engine.

Interactions (search, conditional create/update/delete/patch, transaction references,
_include) only use these types; the engine behind them compiles SearchParameter
resources into index extractors and SQL. Authorization adds its data boundary as a SQL
predicate (`Boundary`) inside the same query so paging and totals stay correct.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from fhir_server.errors import Issue
from fhir_server.storage.repository import StoredResource


class Boundary(Protocol):
    """A data boundary (from authorization) expressed as SQL over the resources table."""

    def predicate(self, resources_table: Any, res_type: str | None) -> Any:
        """A SQLAlchemy boolean expression restricting rows of `resources_table` (or None for no limit)."""


@dataclass(frozen=True)
class SearchRequest:
    res_type: str | None  # None = system-level search (uses _type)
    params: list[tuple[str, str]]  # raw (name[:modifier], value) pairs in request order
    strict: bool = False  # Prefer: handling=strict
    boundary: Boundary | None = None
    base_url: str = ""  # absolute references to this server are local references


@dataclass
class SearchResult:
    matches: list[StoredResource]  # search.mode = match, in order
    includes: list[StoredResource] = field(default_factory=list)  # search.mode = include
    total: int | None = None
    # Query strings relative to the base URL, e.g. "Patient?name=x&_count=10&_page=..."
    self_link: str = ""
    next_link: str | None = None
    previous_link: str | None = None
    first_link: str | None = None
    issues: list[Issue] = field(default_factory=list)  # warnings (e.g. ignored parameters)
    summary_count_only: bool = False
    # Applied to each entry's resource before output (_summary/_elements); None = as stored.
    shape: Any = None


class SearchEngine(Protocol):
    def index_writer(self) -> Any:
        """The IndexWriter the repository calls inside each write transaction."""

    def search(self, conn: Any, request: SearchRequest) -> SearchResult: ...

    def match(self, conn: Any, res_type: str, criteria: str, limit: int = 2) -> list[StoredResource]:
        """Resources matching conditional criteria ("identifier=a|b&_id=x"); at most `limit`."""

    def reindex(self, repo: Any, res_type: str | None = None) -> int: ...
