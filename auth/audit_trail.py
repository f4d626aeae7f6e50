"""The audit trail's own append-only table: narrow enough to write one row on every request.

Why not the `resources` table: an AuditEvent stored like any resource costs a resources row, a
history row and ~10 search-index rows (~45 B-tree inserts, ~250 µs of CPU): more than the read it
records. Here an event the server makes is one `audit_trail` row of the facts captured in the
request thread (who, what, outcome, when, from where); its AuditEvent JSON is built from them when
it is read (`resource_of`). The who and what columns are searchable through B-tree indexes on
PostgreSQL and through `audit_index` rows written behind them on SQLite (`auth/audit_keys.py`).

An event given whole — created over the API by the admin, made by the OAuth endpoints, moved from
the `resources` table of an older database — keeps its JSON in `content` and one `audit_index` row
per searchable value, extracted by the generic index writer (the R4 FHIRPath of every AuditEvent
search parameter). `auth/audit_search.py` searches both.

An event's id is its row number; events whose id was fixed before their row existed (a
transaction's POST entries, moved events) keep it in `given_id`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text, text

from fhir_server.storage.repository import StoredResource
from fhir_server.storage.tables import SurrogateKey, metadata

log = logging.getLogger("auth.audit")

audit_trail = Table(
    "audit_trail", metadata,
    Column("pk", SurrogateKey, primary_key=True, autoincrement=True),
    Column("given_id", String(64), nullable=True),
    Column("recorded_us", BigInteger, nullable=False),  # AuditEvent.recorded: [recorded_us, recorded_high_us]
    Column("recorded_high_us", BigInteger, nullable=False),
    Column("stored_us", BigInteger, nullable=False),  # meta.lastUpdated
    Column("action", String(1), nullable=True),
    Column("outcome", String(2), nullable=True),
    # The captured request (NULL for an event given whole):
    Column("interaction", String(32), nullable=True),  # subtype (restful-interaction code)
    Column("status", Integer, nullable=True),
    Column("client_id", String(128), nullable=True),  # agent.altId
    Column("role", String(16), nullable=True),
    Column("user_ref", String(160), nullable=True),  # agent.who: fhirUser ("Practitioner/x")
    Column("org_ref", String(160), nullable=True),  # agent.who: the principal's Organization
    Column("address", String(64), nullable=True),  # agent.network.address
    Column("entity", String(160), nullable=True),  # entity.what ("Type/id")
    Column("query", Text, nullable=True),  # entity.query ("Type?a=b")
    Column("operation", String(64), nullable=True),  # entity.name
    Column("error", Text, nullable=True),  # outcomeDesc
    Column("content", Text, nullable=True),  # an event given whole: its JSON (without id and meta)
    Index("ix_trail_recorded", "recorded_us"),
    # Columns of many distinct values: B-tree indexes on PostgreSQL only. On SQLite their values reach
    # `audit_index` behind the rows, in sorted bulk (auth/audit_keys.py).
    *(Index(name, column).ddl_if(dialect="postgresql") for name, column in (
        ("ix_trail_org", "org_ref"), ("ix_trail_user", "user_ref"), ("ix_trail_entity", "entity"),
        ("ix_trail_client", "client_id"))),
    Index("ix_trail_given", "given_id", sqlite_where=text("given_id IS NOT NULL"),
          postgresql_where=text("given_id IS NOT NULL")),
)

# Searchable values of events given whole: references as (param, target type, id) — or (param, NULL,
# url) —, tokens as (param, system, code), strings as (param, NULL, folded text).
audit_index = Table(
    "audit_index", metadata,
    Column("pk", BigInteger, nullable=False),
    Column("param", String(32), nullable=False),
    Column("system", Text, nullable=True),
    Column("value", String(255), nullable=False),
    Index("ix_audit_index_value", "param", "value", "pk"),  # (no index on pk alone: no query reads by it)
)

# The captured columns searched through `audit_index` on SQLite (their indexes above are PostgreSQL's).
KEYED_COLUMNS = ("client_id", "user_ref", "org_ref", "entity")
POSTGRESQL_ONLY_INDEXES = tuple(ix.name for ix in audit_trail.indexes
                                if set(ix.columns.keys()) <= set(KEYED_COLUMNS) and ix.name)
# `server_state` row: every captured row numbered up to it has its keys in `audit_index` (SQLite).
KEYS_MARK = "audit-keys-mark"

CAPTURED_COLUMNS = ("recorded_us", "recorded_high_us", "stored_us", "action", "outcome", "interaction", "status",
                    "client_id", "role", "user_ref", "org_ref", "address", "entity", "query", "operation", "error")
GIVEN_COLUMNS = ("given_id", "recorded_us", "recorded_high_us", "stored_us", "action", "outcome", "content")
# The columns every read selects (the row → resource mapping below depends on this order).
ROW_COLUMNS = ("pk", "given_id", *CAPTURED_COLUMNS, "content")


def clip(value: str | None, width: int) -> str | None:
    return value[:width] if value is not None and len(value) > width else value


def instant_us(value: str) -> tuple[int, int] | None:
    """An instant's range in µs: [start, start + its precision) — `recorded` has seconds at least."""
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    low = int(dt.timestamp()) * 1_000_000 + dt.microsecond
    frac = value.partition(".")[2]
    digits = len(frac) - len(frac.lstrip("0123456789"))
    width = 10 ** max(6 - min(digits, 6), 0)
    return low, low + width - 1


def index_values(registry: Any, event: dict[str, Any]) -> list[tuple[str, str | None, str]]:
    """The `audit_index` rows (param, system, value) of an event given whole: what the generic index
    writer extracts with each AuditEvent search parameter's FHIRPath (date, action and outcome are
    columns of the event row)."""
    from fhir_server.search.index import rows_for_param

    out: list[tuple[str, str | None, str]] = []
    seen: set[tuple[str, str | None, str]] = set()
    for param in registry.for_type("AuditEvent"):
        if param.code in ("date", "action", "outcome") or param.type not in ("token", "reference", "string", "uri"):
            continue
        for row in rows_for_param(param, event):
            value: tuple[str, str | None, str] | None = None
            if param.type == "token" and row.get("code"):
                value = (param.code, row.get("system"), str(row["code"]))
            elif param.type == "reference":
                if row.get("target_id") and not row.get("url"):
                    value = (param.code, row.get("target_type"), str(row["target_id"]))
                elif row.get("url"):
                    value = (param.code, None, str(row["url"]))
            elif param.type == "string":
                value = (param.code, None, str(row["value"]))
            elif param.type == "uri":
                value = (param.code, None, str(row["uri"]))
            if value is not None and len(value[2]) <= 255 and value not in seen:
                seen.add(value)
                out.append(value)
    return out


def given_row(event: dict[str, Any], given_id: str | None, stored_us: int) -> tuple[Any, ...]:
    """`GIVEN_COLUMNS` values of an event given whole (its JSON without id and meta)."""
    body = {k: v for k, v in event.items() if k not in ("id", "meta")}
    rng = instant_us(str(event.get("recorded") or "")) or (stored_us, stored_us)
    action = event.get("action") if isinstance(event.get("action"), str) else None
    outcome = event.get("outcome") if isinstance(event.get("outcome"), str) else None
    return (given_id, rng[0], rng[1], stored_us, clip(action, 1), clip(outcome, 2), orjson.dumps(body).decode())


def _instant_text(us: int) -> str:
    return datetime.fromtimestamp(us // 1_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{us // 1000 % 1000:03d}Z"


def last_updated_text(us: int) -> str:
    """meta.lastUpdated in the form the resource store writes (ms, +00:00)."""
    return _instant_text(us)[:-1] + "+00:00"


def resource_of(row: Any) -> dict[str, Any]:
    """The AuditEvent of one `audit_trail` row (`ROW_COLUMNS` order, or a mapping with those keys)."""
    from auth.audit import event_from_columns

    m = row._mapping if hasattr(row, "_mapping") else row
    res_id = m["given_id"] or str(m["pk"])
    meta = {"versionId": "1", "lastUpdated": last_updated_text(m["stored_us"])}
    body = orjson.loads(m["content"]) if m["content"] is not None else event_from_columns(m)
    return {"resourceType": "AuditEvent", "id": res_id, "meta": meta,
            **{k: v for k, v in body.items() if k != "resourceType"}}


def stored_of(row: Any) -> StoredResource:
    m = row._mapping if hasattr(row, "_mapping") else row
    resource = resource_of(row)
    return StoredResource("AuditEvent", resource["id"], 1, resource["meta"]["lastUpdated"], False,
                          orjson.dumps(resource).decode(), res_pk=m["pk"])


_ROWS_PER_INSERT = 500  # 16 columns: 8,000 parameters, under SQLite's 32,766


def insert_captured(cur: Any, mark: str, rows: list[tuple[Any, ...]]) -> None:
    """Bulk insert of server-made events through the DB-API: COPY on PostgreSQL, executemany on SQLite."""
    if not rows:
        return
    cols = ", ".join(CAPTURED_COLUMNS)
    if mark == "%s":
        with cur.copy(f"COPY audit_trail ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    # SQLite: one multi-row INSERT per chunk, so the driver releases the GIL once per chunk rather than
    # once per row (each hand-over to a request thread and back costs two context switches).
    one = f"({', '.join([mark] * len(CAPTURED_COLUMNS))})"
    for start in range(0, len(rows), _ROWS_PER_INSERT):
        chunk = rows[start:start + _ROWS_PER_INSERT]
        cur.execute(f"INSERT INTO audit_trail ({cols}) VALUES {', '.join([one] * len(chunk))}",
                    [value for row in chunk for value in row])


def insert_given(cur: Any, mark: str, registry: Any, event: dict[str, Any], given_id: str | None,
                 stored_us: int) -> int:
    """Insert one event given whole and its index rows; returns its row number."""
    cols = ", ".join(GIVEN_COLUMNS)
    cur.execute(f"INSERT INTO audit_trail ({cols}) VALUES ({', '.join([mark] * len(GIVEN_COLUMNS))}) RETURNING pk",
                given_row(event, given_id, stored_us))
    pk = int(cur.fetchone()[0])
    values = index_values(registry, event) if registry is not None else []
    if values:
        cur.executemany(f"INSERT INTO audit_index (pk, param, system, value) VALUES ({mark}, {mark}, {mark}, {mark})",
                        [(pk, *v) for v in values])
    return pk


def dbapi_cursor(conn: Any) -> tuple[Any, str]:
    """The DB-API cursor under a SQLAlchemy connection and its parameter mark."""
    mark = "%s" if conn.dialect.paramstyle in ("format", "pyformat") else "?"
    return conn.connection.driver_connection.cursor(), mark


def move_from_resources(repo: Any, registry: Any) -> int:
    """Move AuditEvents an older version stored as ordinary resources into the trail (once; their ids
    are kept). Rows are locked first, so two workers starting together move each event once."""
    from sqlalchemy import delete, select

    from fhir_server.search.tables import ALL_INDEX_TABLES
    from fhir_server.storage.tables import resource_history, resources

    with repo.engine.connect() as conn:
        first = select(resources.c.res_pk).where(resources.c.res_type == "AuditEvent").limit(1)
        if conn.execute(first).first() is None:
            return 0
    with repo.unit_of_work() as uow:
        conn = uow.conn
        rows = list(conn.execute(select(resources.c.res_pk, resources.c.res_id, resources.c.updated_us,
                                        resources.c.deleted, resources.c.content)
                                 .where(resources.c.res_type == "AuditEvent").with_for_update()))
        if not rows:
            return 0
        cur, mark = dbapi_cursor(conn)
        for row in rows:
            if not row.deleted and row.content:
                insert_given(cur, mark, registry, orjson.loads(row.content), row.res_id, row.updated_us)
        cur.close()
        pks = [row.res_pk for row in rows]
        for start in range(0, len(pks), 500):
            chunk = pks[start:start + 500]
            for table in ALL_INDEX_TABLES:
                conn.execute(delete(table).where(table.c.res_pk.in_(chunk)))
            conn.execute(delete(resources).where(resources.c.res_pk.in_(chunk)))
        conn.execute(delete(resource_history).where(resource_history.c.res_type == "AuditEvent"))
    log.info("moved %d AuditEvents from the resources table into the audit trail", len(rows))
    return len(rows)
