"""The audit trail's who/what search keys on SQLite, written behind the rows in sorted bulk.

Why: an index on a column of many distinct values (entity, user, organization, client) takes each new
row at a random place. On SQLite every commit then writes one 4 KB page per row or so to the WAL, and
the checkpoint copies it again: measured, about three quarters of an audit row's cost, growing with the
table (bench/README.md, "#5 sixth follow-up"). So on SQLite those columns have no index. Every few
seconds a chunk of new rows has its values written to `audit_index` (the same (param, system, value)
rows an event given whole has), sorted by key, so each index page is written once per chunk rather
than once per row. A search matches the rows up to the mark through `audit_index`, and the rows after
it (the last seconds of traffic) by their columns (`auth/audit_search.py`).

Sound on SQLite only: row numbers are handed out inside the one writer's transaction, so once the
indexer holds the write lock and sees row N, every row before N is committed. PostgreSQL hands them
out from a sequence, in no commit order; it keeps the B-tree indexes on the columns (maintained in its
own processes) and no mark.
"""

from __future__ import annotations

from typing import Any

from auth.audit_search import COLUMNS
from auth.audit_trail import KEYED_COLUMNS, KEYS_MARK, POSTGRESQL_ONLY_INDEXES, dbapi_cursor

CHUNK = 50_000  # rows per indexing transaction (a backlog after an upgrade goes in several)


def _key_select(column: str, code: str, kind: str, only_type: str | None) -> str:
    """The `audit_index` rows (pk, param, system, value) one keyed column makes for parameter `code`:
    a token as (code, NULL, value), a reference "Type/id" as (code, Type, id)."""
    rows = "FROM audit_trail WHERE pk > :done AND pk <= :top AND content IS NULL"
    if kind == "token":
        return f"SELECT pk, '{code}', NULL, {column} {rows} AND {column} <> ''"
    slash = f"instr({column}, '/')"
    ref_type = f"substr({column}, 1, {slash} - 1)"
    only = f" AND {ref_type} = '{only_type}'" if only_type else ""
    return (f"SELECT pk, '{code}', {ref_type}, substr({column}, {slash} + 1) {rows} "
            f"AND {slash} > 1 AND length({column}) > {slash}{only}")


# Every keyed column of COLUMNS (the one table of which parameter reads which column), for each
# parameter that reads it; UNION drops a row's duplicates (a patient reading its own record) and
# sorts the keys, so the index (param, value, pk) is written in its own order.
_INSERT = ("INSERT INTO audit_index (pk, param, system, value) SELECT * FROM ("
           + " UNION ".join(_key_select(c.name, code, c.kind, c.only_type)
                            for code, cols in COLUMNS.items() for c in cols if c.name in KEYED_COLUMNS)
           + ") ORDER BY 2, 4, 1")


def deferred(repo: Any) -> bool:
    """Whether this store keeps the keys behind the rows (SQLite) or indexes the columns (PostgreSQL)."""
    return not repo.postgres


def index_keys(repo: Any, limit: int = CHUNK) -> int:
    """Write the keys of up to `limit` rows after the mark and move the mark; returns the rows keyed."""
    if not deferred(repo):
        return 0
    with repo.engine.connect() as conn:  # nothing new: no write transaction (an idle server writes nothing)
        last, done = conn.exec_driver_sql(
            "SELECT (SELECT max(pk) FROM audit_trail), (SELECT value FROM server_state WHERE name = ?)",
            (KEYS_MARK,)).one()
    if last is None or (done is not None and int(done) >= last):
        return 0
    with repo.unit_of_work() as uow:
        cur, _ = dbapi_cursor(uow.conn)
        # A write first: the write lock is held before the mark is read, so no other indexer (another
        # worker) runs between the read and the move, and no row before the last one seen can appear.
        cur.execute("INSERT INTO server_state (name, value) VALUES (?, '0') "
                    "ON CONFLICT (name) DO UPDATE SET value = value", (KEYS_MARK,))
        done = int(cur.execute("SELECT value FROM server_state WHERE name = ?", (KEYS_MARK,)).fetchone()[0])
        top, count = cur.execute("SELECT max(pk), count(*) FROM (SELECT pk FROM audit_trail WHERE pk > ? "
                                 "ORDER BY pk LIMIT ?)", (done, limit)).fetchone()
        if count:
            cur.execute(_INSERT, {"done": done, "top": top})
            cur.execute("UPDATE server_state SET value = ? WHERE name = ?", (str(top), KEYS_MARK))
        cur.close()
    return int(count)


def drop_column_indexes(repo: Any) -> None:
    """A SQLite database made before the keys moved to `audit_index` still has the column indexes, and
    an index of `audit_index` by row number that no query reads: drop them (the trail's rows are keyed
    from the mark on, which starts at 0)."""
    if not deferred(repo):
        return
    names = [*POSTGRESQL_ONLY_INDEXES, "ix_audit_index_pk"]
    with repo.engine.connect() as conn:
        present = [r[0] for r in conn.exec_driver_sql(
            f"SELECT name FROM sqlite_master WHERE type = 'index' AND name IN ({', '.join('?' * len(names))})",
            tuple(names))]
    if present:
        with repo.unit_of_work() as uow:
            for name in present:
                uow.conn.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")
