"""SQLAlchemy implementation of the repository, for SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Engine, and_, create_engine, event, func, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.pool import QueuePool

from fhir_server.errors import Conflict, PreconditionFailed
from fhir_server.storage.engine import is_postgres
from fhir_server.storage.hot_connections import HotConnections
from fhir_server.storage.repository import HistoryQuery, IndexWriter, StoredResource, WriteResult
from fhir_server.storage.tables import metadata, resource_history, resources, server_state

_R = resources.c
_H = resource_history.c
TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock detected, serialization failure


def _generic_plans(dbapi_conn: Any) -> None:
    """Hot single-row statements (read by id, boundary lookups) are planned once per connection."""
    dbapi_conn.execute("SET plan_cache_mode = force_generic_plan")


def now_instant() -> tuple[str, int]:
    """The current instant as FHIR text (ms precision, UTC) and as integer microseconds."""
    now = datetime.now(UTC)
    now = now.replace(microsecond=(now.microsecond // 1000) * 1000)
    text = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}" + "+00:00"
    return text, int(now.timestamp() * 1_000_000)


def dumps(resource: dict[str, Any]) -> str:
    return orjson.dumps(resource).decode()


def version_body(res_type: str, res_id: str, version: int, last_updated: str, resource: dict[str, Any]
                 ) -> dict[str, Any]:
    """The stored form of a version: server-set id and meta first, then the client's elements."""
    meta = {k: v for k, v in (resource.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")}
    body: dict[str, Any] = {"resourceType": res_type, "id": res_id,
                            "meta": {"versionId": str(version), "lastUpdated": last_updated, **meta}}
    body.update({k: v for k, v in resource.items() if k not in ("resourceType", "id", "meta")})
    return body


def _row_to_stored(row: Any, seq: bool = False) -> StoredResource:
    m = row._mapping
    return StoredResource(
        res_type=m["res_type"],
        res_id=m["res_id"],
        version_id=m["version_id"],
        last_updated=m["last_updated"],
        deleted=bool(m["deleted"]),
        content=m["content"],
        res_pk=m.get("res_pk"),
        method=m.get("method"),
        seq=m.get("hist_pk") if seq else None,
    )


def _current(res_type: str, res_id: str, row: Any) -> StoredResource:
    """A hot read's row (res_pk, version_id, last_updated, deleted, content[, …]) as the current version."""
    res_pk, version_id, last_updated, deleted, content = row[:5]
    return StoredResource(res_type, res_id, version_id, last_updated, bool(deleted), content, res_pk)


class NullIndex:
    def write(self, conn: Any, res_pk: int, res_type: str, resource: dict[str, Any]) -> dict[Any, list[Any]] | None:
        return None

    def remove(self, conn: Any, res_pk: int) -> None:
        return None


_COLS = "res_pk, res_type, res_id, version_id, last_updated, updated_us, deleted, content"
_VALUES = "version_id, last_updated, updated_us, deleted, content"


def _statements(postgres: bool) -> dict[str, str]:
    """The write path's fixed statements as driver SQL (no per-call compile or cache-key work)."""
    m = "%s" if postgres else "?"
    return {
        "read": f"SELECT {_COLS} FROM resources WHERE res_type = {m} AND res_id = {m}",
        "read_for_update": f"SELECT {_COLS} FROM resources WHERE res_type = {m} AND res_id = {m}"
                           + (" FOR UPDATE" if postgres else ""),
        "insert": f"INSERT INTO resources (res_type, res_id, {_VALUES}) VALUES ({m}, {m}, {m}, {m}, {m}, {m}, {m}) "
                  "RETURNING res_pk",
        "history": f"INSERT INTO resource_history (res_type, res_id, method, {_VALUES}) "
                   f"VALUES ({m}, {m}, {m}, {m}, {m}, {m}, {m}, {m})",
    }


_STATEMENTS = {True: _statements(True), False: _statements(False)}


class SqlUnitOfWork:
    def __init__(self, conn: Any, index: IndexWriter, postgres: bool) -> None:
        self.conn = conn
        self._index = index
        self._postgres = postgres
        self._sql = _STATEMENTS[postgres]

    def read(self, res_type: str, res_id: str, *, for_update: bool = False) -> StoredResource | None:
        row = self.conn.exec_driver_sql(self._sql["read_for_update" if for_update else "read"],
                                        (res_type, res_id)).first()
        return _row_to_stored(row) if row else None

    def lock_criteria(self, key: str) -> None:
        if self._postgres:
            lock_id = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
            self.conn.execute(select(func.pg_advisory_xact_lock(lock_id)))
        # SQLite write transactions are already serialised by BEGIN IMMEDIATE.

    def upsert(
        self,
        res_type: str,
        res_id: str,
        resource: dict[str, Any],
        *,
        if_match: int | None = None,
        allow_create: bool = True,
        method: str = "PUT",
    ) -> WriteResult:
        current = self.read(res_type, res_id, for_update=True)
        if if_match is not None and (current is None or current.deleted or current.version_id != if_match):
            have = "none" if current is None or current.deleted else str(current.version_id)
            raise PreconditionFailed(
                f"Version conflict: If-Match expects version {if_match}, current is {have}",
                f"Xung đột phiên bản: If-Match yêu cầu phiên bản {if_match}, phiên bản hiện tại là {have}",
            )
        if current is None and not allow_create:
            raise PreconditionFailed("Resource does not exist", "Tài nguyên không tồn tại")
        version = 1 if current is None else current.version_id + 1
        last_updated, updated_us = now_instant()
        body = version_body(res_type, res_id, version, last_updated, resource)
        content = dumps(body)
        values = dict(version_id=version, last_updated=last_updated, updated_us=updated_us, deleted=False,
                      content=content)
        if current is None:
            try:
                res_pk = self.conn.exec_driver_sql(self._sql["insert"], (
                    res_type, res_id, version, last_updated, updated_us, False, content)).scalar_one()
            except IntegrityError as exc:  # a concurrent create of the same client id
                raise Conflict("Concurrent write to the same resource", "Ghi đồng thời vào cùng tài nguyên") from exc
        else:
            assert current.res_pk is not None
            res_pk = current.res_pk
            result = self.conn.execute(
                update(resources)
                .where(_R.res_pk == res_pk, _R.version_id == current.version_id)
                .values(**values)
            )
            if result.rowcount != 1:
                raise PreconditionFailed("Concurrent update", "Cập nhật đồng thời")
            if not current.deleted:  # (a tombstone's index rows went with the delete)
                self._index.remove(self.conn, res_pk)
        self._insert_history(res_type, res_id, method, values)
        self._index.write(self.conn, res_pk, res_type, body)
        stored = StoredResource(res_type, res_id, version, last_updated, False, content, res_pk)
        return WriteResult(stored=stored, created=current is None or current.deleted, resource=body)

    def delete(self, res_type: str, res_id: str, *, if_match: int | None = None) -> StoredResource | None:
        """Delete (tombstone) the resource; returns the tombstone, or None if there was nothing to delete."""
        current = self.read(res_type, res_id, for_update=True)
        if if_match is not None and (current is None or current.deleted or current.version_id != if_match):
            raise PreconditionFailed(
                f"Version conflict: If-Match expects version {if_match}",
                f"Xung đột phiên bản: If-Match yêu cầu phiên bản {if_match}",
            )
        if current is None or current.deleted:
            return None
        last_updated, updated_us = now_instant()
        values = dict(version_id=current.version_id + 1, last_updated=last_updated, updated_us=updated_us,
                      deleted=True, content=None)
        self.conn.execute(update(resources).where(_R.res_pk == current.res_pk).values(**values))
        self._insert_history(res_type, res_id, "DELETE", values)
        assert current.res_pk is not None
        self._index.remove(self.conn, current.res_pk)
        return StoredResource(res_type, res_id, current.version_id + 1, last_updated, True, None, current.res_pk)

    def _insert_history(self, res_type: str, res_id: str, method: str, values: dict[str, Any]) -> None:
        try:
            self.conn.exec_driver_sql(self._sql["history"], (
                res_type, res_id, method, values["version_id"], values["last_updated"], values["updated_us"],
                values["deleted"], values["content"]))
        except IntegrityError as exc:
            raise Conflict("Concurrent write to the same resource", "Ghi đồng thời vào cùng tài nguyên") from exc


class SqlRepository:
    def __init__(self, engine: Engine, index: IndexWriter | None = None) -> None:
        self.engine = engine
        self.index: IndexWriter = index or NullIndex()
        self.postgres = is_postgres(engine)
        mark = self._mark = "%s" if engine.dialect.paramstyle in ("format", "pyformat") else "?"
        self._joined: dict[str, str] = {}
        self._checked: dict[str, str] = {}
        self._read_sql = ("SELECT res_pk, version_id, last_updated, deleted, content FROM resources "
                          f"WHERE res_type = {mark} AND res_id = {mark}")
        # PostgreSQL reads: an autocommit pool with no reset (no BEGIN/ROLLBACK round trips). Single hot
        # statements run on per-thread connections taken from it (HotConnections: one round trip, a dead
        # connection is replaced once); searches check connections out of it (pre-pinged).
        self._read_engine = engine
        # SQLite: a kept handle closed under a thread (engine disposal racing a read) is reopened once.
        self._disconnect: tuple[type[BaseException], ...] = (engine.dialect.loaded_dbapi.ProgrammingError,)
        if self.postgres:
            # Autocommit also keeps psycopg's prepared statements alive across checkouts (a ROLLBACK
            # clears them): hot single-row statements (the read, the authorizer's boundary check) use
            # the generic plan, planned once per connection; repeated search texts stop being planned.
            self._read_engine = create_engine(engine.url, isolation_level="AUTOCOMMIT", pool_pre_ping=True,
                                              # idle connections kept for as many concurrent searches as a
                                              # gthread worker has threads (8): no connect churn, and
                                              # their prepared statements stay
                                              pool_reset_on_return=None, pool_size=8, max_overflow=8,
                                              connect_args={"prepare_threshold": 2})

            self._disconnect = (engine.dialect.loaded_dbapi.OperationalError,
                                engine.dialect.loaded_dbapi.InterfaceError)
            read_engine = self._read_engine
            event.listen(engine, "engine_disposed", lambda _e: read_engine.dispose())
        # Per-thread connections for single hot statements, where the pool hands out real connections
        # (not SQLite :memory:, whose one shared connection is the database).
        self._hot: HotConnections | None = None
        if isinstance(self._read_engine.pool, QueuePool):
            hot = self._hot = HotConnections(self._read_engine, self._disconnect,
                                             _generic_plans if self.postgres else None)
            event.listen(engine, "engine_disposed", lambda _e: hot.close_all())

    def create_schema(self) -> None:
        metadata.create_all(self.engine)

    # -- reads: one statement each, no explicit transaction needed --------------------
    @contextmanager
    def read_connection(self) -> Iterator[Any]:
        """A connection whose statements see one snapshot (search: page, includes, total)."""
        with self.engine.connect().execution_options(fhir_snapshot=True) as conn:
            yield conn

    @contextmanager
    def search_connection(self) -> Iterator[Any]:
        """On PostgreSQL an autocommit connection of the read pool, where psycopg's prepared statements
        survive (a search's statement texts repeat: its values are bound, a principal's boundary is fixed
        text), so PostgreSQL stops planning them after a few executions (plan_cache_mode auto). Under
        READ COMMITTED each statement had its own snapshot anyway. SQLite: `read_connection`."""
        if not self.postgres:
            with self.read_connection() as conn:
                yield conn
            return
        with self._read_engine.connect() as conn:
            yield conn

    def fetch_one(self, sql: str, params: tuple[Any, ...]) -> Any:
        """One read-only statement (driver SQL) on the hot-path pool: its first row or None."""
        return self._fetch(sql, params, False)

    def fetch_all(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        """One read-only statement (driver SQL) on the hot-path pool: all its rows."""
        rows: list[Any] = self._fetch(sql, params, True)
        return rows

    def _fetch(self, sql: str, params: tuple[Any, ...], all_rows: bool) -> Any:
        if self._hot is not None:
            return self._hot.fetch(sql, params, all_rows)
        for attempt in (1, 2):
            conn = self._read_engine.raw_connection()
            try:
                cur = conn.cursor()
                cur.execute(sql, params)
                row = cur.fetchall() if all_rows else cur.fetchone()
                cur.close()
            except self._disconnect:
                conn.invalidate()
                if attempt == 2:
                    raise
                continue
            finally:
                conn.close()
            return row
        return None

    def read_with(self, res_type: str, res_id: str, sql: str, params: tuple[Any, ...], width: int
                  ) -> tuple[StoredResource | None, list[Any] | None]:
        """The current version and, in the same statement and the same row, the rows of another
        read-only statement whose columns are named c0..c{width-1} (the authorizer's boundary lookups
        for this resource), aggregated into one JSON array.

        One row, not a UNION ALL of several: SQLite's driver releases the GIL at every row it steps
        to, and with a few busy request threads each hand-over costs more CPU than the row itself.
        """
        joined = self._joined.get(sql)
        if joined is None:
            cols = ", ".join(f"j.c{i}" for i in range(width))
            agg = f"json_agg(json_build_array({cols}))" if self.postgres else f"json_group_array(json_array({cols}))"
            joined = self._joined[sql] = (
                f"SELECT res_pk, version_id, last_updated, deleted, content, (SELECT {agg} FROM ({sql}) j) "
                f"FROM resources WHERE res_type = {self._mark} AND res_id = {self._mark}")
        row = self.fetch_one(joined, (*params, res_type, res_id))
        if row is None:
            return None, []
        stored = _current(res_type, res_id, row)
        other = row[5]
        if other is None:  # PostgreSQL's json_agg of no rows
            return stored, []
        return stored, orjson.loads(other) if isinstance(other, str | bytes) else other

    def read_checked(self, res_type: str, res_id: str, condition: str, params: tuple[Any, ...]
                     ) -> tuple[StoredResource | None, bool | None]:
        """The current version and, in the same statement, whether `condition` (a SELECT correlated to
        `resources.res_pk`, e.g. the authorizer's ownership facts) has a row: one round trip, one probe."""
        sql = self._checked.get(condition)
        if sql is None:
            sql = self._checked[condition] = (
                f"SELECT res_pk, version_id, last_updated, deleted, content, EXISTS ({condition}) "
                f"FROM resources WHERE res_type = {self._mark} AND res_id = {self._mark}")
        row = self.fetch_one(sql, (*params, res_type, res_id))
        if row is None:
            return None, None
        return _current(res_type, res_id, row), bool(row[5])

    def read(self, res_type: str, res_id: str) -> StoredResource | None:
        """The hot path: one indexed SELECT through the pooled DB-API connection."""
        row = self.fetch_one(self._read_sql, (res_type, res_id))
        return _current(res_type, res_id, row) if row is not None else None

    @contextmanager
    def _conn(self, conn: Any = None) -> Iterator[Any]:
        if conn is not None:
            yield conn
        else:
            with self.engine.connect() as own:
                yield own

    def vread(self, res_type: str, res_id: str, version_id: int, conn: Any = None) -> StoredResource | None:
        stmt = select(resource_history).where(
            _H.res_type == res_type, _H.res_id == res_id, _H.version_id == version_id
        )
        with self._conn(conn) as c:
            row = c.execute(stmt).first()
        return _row_to_stored(row, seq=True) if row else None

    def _history_filter(self, q: HistoryQuery) -> list[Any]:
        conds: list[Any] = []
        if q.res_type:
            conds.append(_H.res_type == q.res_type)
        if q.res_id:
            conds.append(_H.res_id == q.res_id)
        if q.since_us is not None:
            conds.append(_H.updated_us >= q.since_us)
        if q.at_us is not None:
            # Versions current at the instant: written at or before it and not superseded before it.
            later = resource_history.alias("later")
            conds.append(_H.updated_us <= q.at_us)
            conds.append(
                ~select(later.c.hist_pk)
                .where(
                    later.c.res_type == _H.res_type,
                    later.c.res_id == _H.res_id,
                    later.c.version_id > _H.version_id,
                    later.c.updated_us <= q.at_us,
                )
                .exists()
            )
        if q.boundary is not None:
            # Versions of resources whose current version lies inside the requester's boundary.
            cur = resources.alias("hb")
            pred = q.boundary.predicate(cur, q.res_type)
            if pred is not None:
                conds.append(select(cur.c.res_pk).where(cur.c.res_type == _H.res_type, cur.c.res_id == _H.res_id,
                                                        pred).exists())
        return conds

    def history(self, query: HistoryQuery, conn: Any = None) -> list[StoredResource]:
        conds = self._history_filter(query)
        if query.before_seq is not None:
            conds.append(_H.hist_pk < query.before_seq)
        stmt = select(resource_history).where(and_(True, *conds)).order_by(_H.hist_pk.desc()).limit(query.count)
        with self._conn(conn) as c:
            return [_row_to_stored(r, seq=True) for r in c.execute(stmt)]

    def history_count(self, query: HistoryQuery, conn: Any = None) -> int:
        stmt = select(func.count()).select_from(resource_history).where(and_(True, *self._history_filter(query)))
        with self._conn(conn) as c:
            return int(c.execute(stmt).scalar_one())

    def iter_current(self, res_type: str | None = None, batch: int = 500) -> Iterator[StoredResource]:
        last = 0
        while True:
            stmt = select(resources).where(_R.res_pk > last, _R.deleted.is_(False))
            if res_type:
                stmt = stmt.where(_R.res_type == res_type)
            with self.engine.connect() as conn:
                rows = [_row_to_stored(r) for r in conn.execute(stmt.order_by(_R.res_pk).limit(batch))]
            if not rows:
                return
            yield from rows
            last = rows[-1].res_pk or 0

    # -- writes ------------------------------------------------------------------------
    @contextmanager
    def unit_of_work(self) -> Iterator[SqlUnitOfWork]:
        try:
            with self.engine.connect().execution_options(fhir_write=True) as conn, conn.begin():
                yield SqlUnitOfWork(conn, self.index, self.postgres)
        except DBAPIError as exc:
            # PostgreSQL broke a lock cycle between concurrent writes (or a serialization failure):
            # nothing was written; the client may retry.
            if getattr(exc.orig, "sqlstate", None) in TRANSIENT_SQLSTATES:
                raise Conflict("Concurrent writes conflicted; nothing was written, retry the request",
                               "Các lệnh ghi đồng thời xung đột; chưa ghi gì, hãy gửi lại yêu cầu") from exc
            raise

    # -- shared server state -------------------------------------------------------------
    def shared_secret(self, name: str) -> str:
        """A random secret created once and shared by every process using this database."""
        with self.engine.connect() as conn:
            value = conn.execute(select(server_state.c.value).where(server_state.c.name == name)).scalar()
        if value:
            return str(value)
        candidate = secrets.token_urlsafe(48)
        try:
            with self.unit_of_work() as uow:
                uow.conn.execute(insert(server_state).values(name=name, value=candidate))
        except IntegrityError:
            pass  # another worker won the race; use its value
        with self.engine.connect() as conn:
            return str(conn.execute(select(server_state.c.value).where(server_state.c.name == name)).scalar_one())
