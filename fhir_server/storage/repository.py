"""The repository port: the only way interactions touch stored resources.

Modelled on Microsoft FHIR Server's IFhirDataStore: read, vread, history, and a unit of
work whose `upsert`/`delete` carry the optimistic-concurrency version and whose search
index is written in the same database transaction as the resource.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class StoredResource:
    """One stored version. `content` is the JSON exactly as the server returns it."""

    res_type: str
    res_id: str
    version_id: int
    last_updated: str
    deleted: bool
    content: str | None
    res_pk: int | None = None
    method: str | None = None
    seq: int | None = None  # history sequence, for system/type history paging

    @property
    def etag(self) -> str:
        return f'W/"{self.version_id}"'


@dataclass(frozen=True)
class WriteResult:
    stored: StoredResource
    created: bool
    resource: dict[str, Any]


@dataclass(frozen=True)
class HistoryQuery:
    res_type: str | None = None
    res_id: str | None = None
    since_us: int | None = None
    at_us: int | None = None
    before_seq: int | None = None
    count: int = 50
    boundary: Any = None  # authorization's search Boundary, applied to the resource's current version


class IndexWriter(Protocol):
    """Writes and removes search-index rows; called inside the write transaction."""

    def write(self, conn: Any, res_pk: int, res_type: str, resource: dict[str, Any]) -> dict[Any, list[Any]] | None:
        """Returns the rows written, per index table (None: not known), for wrappers that need them."""

    def remove(self, conn: Any, res_pk: int) -> None: ...


class UnitOfWork(Protocol):
    """A database transaction: everything in it commits or nothing does."""

    conn: Any

    def read(self, res_type: str, res_id: str, *, for_update: bool = False) -> StoredResource | None: ...

    def upsert(
        self,
        res_type: str,
        res_id: str,
        resource: dict[str, Any],
        *,
        if_match: int | None = None,
        allow_create: bool = True,
        method: str = "PUT",
    ) -> WriteResult: ...

    def delete(self, res_type: str, res_id: str, *, if_match: int | None = None) -> StoredResource | None: ...

    def lock_criteria(self, key: str) -> None:
        """Serialise conditional interactions on the same criteria (no duplicate creates)."""


class Repository(Protocol):
    def read(self, res_type: str, res_id: str) -> StoredResource | None: ...

    def vread(self, res_type: str, res_id: str, version_id: int, conn: Any = None) -> StoredResource | None: ...

    def history(self, query: HistoryQuery, conn: Any = None) -> list[StoredResource]: ...

    def history_count(self, query: HistoryQuery, conn: Any = None) -> int: ...

    def unit_of_work(self) -> AbstractContextManager[UnitOfWork]: ...

    def read_connection(self) -> AbstractContextManager[Any]: ...

    def search_connection(self) -> AbstractContextManager[Any]:
        """A connection for a search's few read-only statements (may keep prepared statements)."""

    def iter_current(self, res_type: str | None = None, batch: int = 500) -> Iterator[StoredResource]: ...
