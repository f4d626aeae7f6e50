"""Index writer: extracts every parameter's values and writes its rows in the write transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from sqlalchemy import delete

from fhir_server.search import composite, date, quantity, reference, string, token, uri
from fhir_server.search.registry import SearchParam, SearchRegistry
from fhir_server.search.tables import ALL_INDEX_TABLES, INDEX_TABLES

# Served from the resources table itself, not from index rows.
DIRECT_PARAMS = {"_id", "_lastUpdated"}


def rows_for_param(param: SearchParam, resource: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    try:
        values = param.values(resource)
    except Exception:
        return rows
    for value, target in values:
        if param.type == "token":
            rows += token.index_rows(param, value)
        elif param.type == "string":
            rows += string.index_rows(value)
        elif param.type == "date":
            rows += date.index_rows(value)
        elif param.type in ("number", "quantity"):
            rows += quantity.index_rows(value)
        elif param.type == "reference":
            rows += reference.index_rows(param, value, target)
        elif param.type == "uri":
            rows += uri.index_rows(value)
        elif param.type == "composite":
            rows += composite.index_rows(param, value)
    return rows


class IndexWriter:
    def __init__(self, registry: SearchRegistry) -> None:
        self.registry = registry
        # Called with the write connection first (the engine reloads changed SearchParameters).
        self.before_write: Callable[[Any], None] | None = None

    def rows(self, res_type: str, resource: dict[str, Any]) -> dict[Any, list[dict[str, Any]]]:
        by_table: dict[Any, list[dict[str, Any]]] = {}
        for param in self.registry.for_type(res_type):
            if param.code in DIRECT_PARAMS:
                continue
            table = INDEX_TABLES["token" if param.type == "composite" else param.type]
            for row in rows_for_param(param, resource):
                row["param"] = param.key
                by_table.setdefault(table, []).append(row)
        return by_table

    def unique_rows(self, res_pk: int, res_type: str, resource: dict[str, Any]) -> dict[Any, list[dict[str, Any]]]:
        """The rows `write` inserts, per table (also used by bulk loaders, so both write the same)."""
        out: dict[Any, list[dict[str, Any]]] = {}
        for table, rows in self.rows(res_type, resource).items():
            # Dedupe identical rows (e.g. the same code in two codings).
            unique = {tuple(sorted(r.items())): r for r in rows}
            out[table] = [{**r, "res_pk": res_pk} for r in unique.values()]
        return out

    def write(self, conn: Any, res_pk: int, res_type: str, resource: dict[str, Any]) -> dict[Any, list[Any]]:
        """Inserts the index rows; returns them per table (a wrapper may need them: auth/owner_facts.py)."""
        if self.before_write is not None:
            self.before_write(conn)
        by_table = self.unique_rows(res_pk, res_type, resource)
        for table, rows in by_table.items():
            sql = self._insert_sql(conn, table)
            columns = [c.name for c in table.columns]
            conn.exec_driver_sql(sql, [tuple(r.get(c) for c in columns) for r in rows])
        return by_table

    _sql_cache: ClassVar[dict[tuple[str, str], str]] = {}

    @classmethod
    def _insert_sql(cls, conn: Any, table: Any) -> str:
        """A plain executemany INSERT (driver SQL: no per-call statement compilation)."""
        style = conn.dialect.paramstyle
        key = (table.name, style)
        sql = cls._sql_cache.get(key)
        if sql is None:
            mark = "%s" if style in ("format", "pyformat") else "?"
            names = [c.name for c in table.columns]
            sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join(mark for _ in names)})"
            cls._sql_cache[key] = sql
        return sql

    def remove(self, conn: Any, res_pk: int) -> None:
        for table in ALL_INDEX_TABLES:
            conn.execute(delete(table).where(table.c.res_pk == res_pk))
