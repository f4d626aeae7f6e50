"""AuditEvent for every request, allowed or denied (who, what, outcome, when, from where).

The request thread only captures what the event needs (`Pending`); one background thread per
process builds the events and their search-index rows (from cached parts: a principal's agents,
an interaction's codes) and writes them in batches (one transaction per batch: COPY on PostgreSQL),
so auditing costs the request little. The
trail is append-only: AuditEvent accepts only create and read (fhir_server/registry.py),
and only the admin role may create one over the API. A process flushes its queue before
it answers a read or search of AuditEvent, and at exit.
"""

from __future__ import annotations

import atexit
import base64
import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

import orjson

from fhir_server.errors import FhirError
from fhir_server.interactions.model import FhirRequest, FhirResponse
from fhir_server.principal import Principal
from fhir_server.search import date, reference, string, token
from fhir_server.search.tables import INDEX_TABLES

log = logging.getLogger("auth.audit")

_ACTION = {"create": "C", "read": "R", "vread": "R", "update": "U", "patch": "U", "delete": "D",
           "history-instance": "R", "history-type": "R", "history-system": "R", "search-type": "E",
           "search-system": "E", "transaction": "E", "batch": "E", "operation": "E", "capabilities": "R"}
SUBTYPE_SYSTEM = "http://hl7.org/fhir/restful-interaction"
DCM = "http://dicom.nema.org/resources/ontology/DCM"


def _outcome(status: int) -> str:
    if status < 400:
        return "0"
    return "4" if status < 500 else "8"


@dataclass(frozen=True, slots=True)
class Pending:
    """What an AuditEvent needs from one request, captured in the request thread (cheap); the
    event itself is built by the writer thread."""

    recorded_us: int
    interaction: str
    status: int
    principal: Principal | None
    address: str | None
    res_type: str | None
    res_id: str | None
    created: str | None  # "Type/id" a create produced
    params: tuple[tuple[str, str], ...]
    operation: str | None
    error_en: str | None


def capture(req: FhirRequest, interaction: str, resp: FhirResponse | None, error: FhirError | None) -> Pending:
    status = resp.status if resp is not None else (error.status if error is not None else 500)
    if interaction == "transaction" and isinstance(req.body, dict) and req.body.get("type") == "batch":
        interaction = "batch"
    created = None
    if resp is not None and resp.stored is not None and interaction == "create":
        created = f"{resp.stored.res_type}/{resp.stored.res_id}"
    error_en = (error.issues[0].en if error.issues else "") if error is not None else None
    return Pending(time.time_ns() // 1000, interaction, status, req.principal, req.source_address, req.res_type,
                   req.res_id, created, tuple(req.params), req.operation, error_en)


_SOURCE = {"observer": {"display": "vn-telehealth-fhir"},
           "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "3",
                     "display": "Web Server"}]}
_TYPE = {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest",
         "display": "RESTful Operation"}


@lru_cache(maxsize=4096)
def _agents(p: Principal | None, address: str | None) -> list[dict[str, Any]]:
    """The agent list of a principal at an address (the same for all its requests: built once).
    Shared between events, so never modified."""
    agents: list[dict[str, Any]] = []
    network = {"address": address, "type": "2"} if address else None
    if p is None:
        agent: dict[str, Any] = {"who": {"display": "anonymous / chưa xác thực"}, "requestor": True}
        if network:
            agent["network"] = network
        agents.append(agent)
    else:
        who = p.user or p.organization
        agent = {"type": {"coding": [{"system": DCM, "code": "110153", "display": "Source Role ID"}],
                          "text": p.role},
                 "who": {"reference": who} if who else {"display": p.client_id}, "altId": p.client_id,
                 "requestor": True}
        if network:
            agent["network"] = network
        agents.append(agent)
        if p.user and p.organization:
            agents.append({"who": {"reference": p.organization}, "requestor": False})
    return agents


@lru_cache(maxsize=256)
def _subtype(interaction: str) -> list[dict[str, Any]]:
    return [{"system": SUBTYPE_SYSTEM, "code": interaction}]


def _instant(us: int) -> str:
    """FHIR instant, millisecond precision, UTC."""
    return datetime.fromtimestamp(us // 1_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{us // 1000 % 1000:03d}Z"


def event_of(p: Pending) -> dict[str, Any]:
    entity: list[dict[str, Any]] = []
    if p.res_type and p.res_id:
        entity.append({"what": {"reference": f"{p.res_type}/{p.res_id}"}})
    elif p.created:
        entity.append({"what": {"reference": p.created}})
    if p.params:
        q = f"{p.res_type or ''}?{urlencode(p.params)}"
        entity.append({"query": base64.b64encode(q.encode()).decode(), "description": q[:1000]})
    if p.operation:
        entity.append({"name": p.operation})
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "type": _TYPE,
        "subtype": _subtype(p.interaction),
        "action": _ACTION.get(p.interaction, "E"),
        "recorded": _instant(p.recorded_us),
        "outcome": _outcome(p.status),
        "agent": _agents(p.principal, p.address),
        "source": _SOURCE,
    }
    if p.error_en is not None:
        event["outcomeDesc"] = f"{p.status} {p.error_en}"[:500]
    if entity:
        event["entity"] = entity
    return event


def build_event(req: FhirRequest, interaction: str, resp: FhirResponse | None, error: FhirError | None
                ) -> dict[str, Any]:
    return event_of(capture(req, interaction, resp, error))


def auth_event(endpoint: str, status: int, client_id: str | None, user: str | None,
               address: str | None) -> dict[str, Any]:
    """An AuditEvent for a request to the OAuth endpoints or the login pages (no secrets in it)."""
    agent: dict[str, Any] = {"who": {"display": user or client_id or "anonymous / chưa xác thực"},
                             "requestor": True}
    if client_id:
        agent["altId"] = client_id
    if address:
        agent["network"] = {"address": address, "type": "2"}
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "type": {"system": DCM, "code": "110114", "display": "User Authentication"},
        "subtype": [{"system": "http://fhir.vntelehealth.org/r4/CodeSystem/auth-endpoint", "code": endpoint}],
        "action": "E",
        "recorded": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "outcome": _outcome(status),
        "agent": [agent],
        "source": {"observer": {"display": "vn-telehealth-fhir"}},
    }
    if status >= 400:
        event["outcomeDesc"] = str(status)
    return event


def _refs(values: list[Any]) -> list[Any]:
    return [v for v in values if isinstance(v, dict) and v.get("reference")]


# AuditEvent search parameters → their values in the events built above (the FHIRPath of the R4
# definitions, evaluated by hand for this fixed shape; tests/test_auth_audit.py checks that the rows
# equal what the generic index writer extracts).
_EXTRACT: dict[str, Any] = {
    "date": lambda e: [e["recorded"]],
    "type": lambda e: [e["type"]],
    "subtype": lambda e: list(e.get("subtype", [])),
    "action": lambda e: [e["action"]] if e.get("action") else [],
    "outcome": lambda e: [e["outcome"]] if e.get("outcome") else [],
    "agent": lambda e: _refs([a.get("who") for a in e["agent"]]),
    "altid": lambda e: [a["altId"] for a in e["agent"] if a.get("altId")],
    "address": lambda e: [a["network"]["address"] for a in e["agent"] if a.get("network", {}).get("address")],
    "agent-role": lambda e: [r for a in e["agent"] for r in a.get("role", [])],
    "agent-name": lambda e: [a["name"] for a in e["agent"] if a.get("name")],
    "entity": lambda e: _refs([x.get("what") for x in e.get("entity", [])]),
    "entity-type": lambda e: [x["type"] for x in e.get("entity", []) if x.get("type")],
    "entity-name": lambda e: [x["name"] for x in e.get("entity", []) if x.get("name")],
    # (only references that can name a Patient: the rest would be parsed to be dropped)
    "patient": lambda e: [v for v in _refs([a.get("who") for a in e["agent"]] +
                                           [x.get("what") for x in e.get("entity", [])])
                          if "Patient" in v["reference"]],
    "source": lambda e: _refs([e["source"].get("observer")]),
    "site": lambda e: [e["source"]["site"]] if e["source"].get("site") else [],
}


# The parts of an event the parameters read: rows are computed once per distinct part (a principal's
# agents, an interaction's codes and outcome, an entity) and reused; only the date is new every time.
_PART: dict[str, str] = {
    "agent": "agent", "altid": "agent", "address": "agent", "agent-role": "agent", "agent-name": "agent",
    "type": "codes", "subtype": "codes", "action": "codes", "outcome": "codes", "source": "codes", "site": "codes",
    "entity": "entity", "entity-type": "entity", "entity-name": "entity",
}
_PART_OF_EVENT: dict[str, Any] = {
    "agent": lambda e: {"agent": e["agent"]},
    "codes": lambda e: {"type": e["type"], "subtype": e.get("subtype", []), "action": e.get("action"),
                        "outcome": e.get("outcome"), "source": e["source"]},
    "entity": lambda e: {"agent": [], "entity": e.get("entity", [])},
}
_PART_CACHE: dict[tuple[int, str, bytes], list[tuple[Any, tuple[Any, ...]]]] = {}
_PARAMS: dict[int, dict[str, list[tuple[Any, int, Any]]]] = {}


def _value_rows(param: Any, key: int, value: Any) -> list[dict[str, Any]]:
    if param.type == "token":
        rows = token.index_rows(param, value)
    elif param.type == "reference":
        rows = reference.index_rows(param, value, "Patient" if param.code == "patient" else None)
    elif param.type == "string":
        rows = string.index_rows(value)
    elif param.type == "date":
        rows = date.index_rows(value)
    else:
        rows = []
    return [{**r, "param": key} for r in rows]


def _param_rows(params: list[tuple[Any, int, Any]], event: dict[str, Any]) -> list[tuple[Any, dict[str, Any]]]:
    """(table, row) of the given parameters, identical rows of one parameter once (as the generic writer)."""
    out: list[tuple[Any, dict[str, Any]]] = []
    for param, key, table in params:
        seen: set[tuple[Any, ...]] = set()
        for value in _EXTRACT[param.code](event):
            for row in _value_rows(param, key, value):
                ident = tuple(row.values())
                if ident not in seen:
                    seen.add(ident)
                    out.append((table, row))
    return out


def _params(registry: Any) -> dict[str, list[tuple[Any, int, Any]]]:
    groups = _PARAMS.get(id(registry))
    if groups is None:
        groups = {}
        for p in registry.for_type("AuditEvent"):
            if p.code in _EXTRACT:
                part = "patient" if p.code == "patient" else ("date" if p.code == "date" else _PART[p.code])
                groups.setdefault(part, []).append((p, p.key, INDEX_TABLES[p.type]))
        _PARAMS[id(registry)] = groups
    return groups


def columns_of(table: Any) -> tuple[str, ...]:
    """The index table's value columns, in the order the rows are kept (res_pk is added at insert)."""
    cols = _COLUMNS.get(table.name)
    if cols is None:
        cols = _COLUMNS[table.name] = tuple(c.name for c in table.columns if c.name != "res_pk")
    return cols


_COLUMNS: dict[str, tuple[str, ...]] = {}


def _as_tuples(pairs: list[tuple[Any, dict[str, Any]]]) -> list[tuple[Any, tuple[Any, ...]]]:
    return [(table, tuple(row.get(c) for c in columns_of(table))) for table, row in pairs]


def _date_rows(params: list[tuple[Any, int, Any]], recorded: str) -> list[tuple[Any, tuple[Any, ...]]]:
    if len(recorded) == 24 and recorded.endswith("Z") and recorded[19] == ".":  # the form _instant writes
        low = int(datetime.fromisoformat(recorded).timestamp()) * 1_000_000 + int(recorded[20:23]) * 1000
        return _as_tuples([(table, {"low": low, "high": low + 999, "param": key}) for _p, key, table in params])
    return _as_tuples([(table, row) for param, key, table in params for row in _value_rows(param, key, recorded)])


def index_tuples(registry: Any, event: dict[str, Any]) -> dict[Any, list[tuple[Any, ...]]]:
    """The search-index rows of one event as value tuples (`columns_of` order), without FHIRPath:
    the audit write is on every request, so the rows of an event's repeating parts are cached."""
    groups = _params(registry)
    pairs: list[tuple[Any, tuple[Any, ...]]] = []
    for part in ("agent", "codes", "entity"):
        params = groups.get(part)
        if not params:
            continue
        sub = _PART_OF_EVENT[part](event)
        cache_key = (id(registry), part, orjson.dumps(sub))
        hit = _PART_CACHE.get(cache_key)
        if hit is None:
            hit = _as_tuples(_param_rows(params, {**event, **sub}))
            if len(_PART_CACHE) > 20_000:
                _PART_CACHE.clear()
            _PART_CACHE[cache_key] = hit
        pairs.extend(hit)
    if groups.get("date"):
        pairs.extend(_date_rows(groups["date"], event["recorded"]))
    if groups.get("patient"):
        pairs.extend(_as_tuples(_param_rows(groups["patient"], event)))
    out: dict[Any, list[tuple[Any, ...]]] = {}
    for table, row in pairs:
        out.setdefault(table, []).append(row)
    return out


def index_rows(registry: Any, event: dict[str, Any]) -> dict[Any, list[dict[str, Any]]]:
    """`index_tuples` as column → value rows (what the generic index writer produces)."""
    return {table: [dict(zip(columns_of(table), row, strict=True)) for row in rows]
            for table, rows in index_tuples(registry, event).items()}


def _insert_rows(cur: Any, mark: str, table: Any, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """Bulk INSERT through the DB-API: SQLite runs one prepared one-row statement per row (executemany
    is cheap there); PostgreSQL gets COPY (rows formatted in C by psycopg, no per-row executions)."""
    if not rows:
        return
    cols = ", ".join(columns)
    if mark == "%s":
        with cur.copy(f"COPY {table.name} ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    cur.executemany(f"INSERT INTO {table.name} ({cols}) VALUES ({', '.join([mark] * len(columns))})", rows)


def _new_pks(cur: Any, mark: str, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """`rows` of resources with their res_pk first: taken from the key's sequence on PostgreSQL (so the
    rows can be COPYed), given by the insert itself on SQLite (one multi-row INSERT … RETURNING)."""
    if mark == "%s":
        cur.execute("SELECT nextval(pg_get_serial_sequence('resources', 'res_pk')) FROM generate_series(1, %s)",
                    (len(rows),))
        return [(pk, *row) for (pk,), row in zip(cur.fetchall(), rows, strict=True)]
    one = f"({', '.join([mark] * len(_RESOURCE_COLUMNS))})"
    cur.execute(f"INSERT INTO resources ({', '.join(_RESOURCE_COLUMNS)}) VALUES {', '.join([one] * len(rows))} "
                "RETURNING res_pk, res_id", [v for r in rows for v in r])
    pk_of = dict((res_id, pk) for pk, res_id in cur.fetchall())
    return [(pk_of[row[1]], *row) for row in rows]


_RESOURCE_COLUMNS = ("res_type", "res_id", "version_id", "last_updated", "updated_us", "deleted", "content")


class AuditSink:
    def __init__(self, repo: Any, registry: Any = None, batch: int = 500, interval: float = 0.5) -> None:
        self.repo = repo
        self.registry = registry
        self.batch = batch
        self.interval = interval
        self._queue: queue.Queue[Pending | dict[str, Any]] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._closed = False
        self._wake = threading.Event()  # never set: the writer wakes every `interval`
        atexit.register(self.flush)

    def __call__(self, req: FhirRequest, interaction: str, resp: FhirResponse | None,
                 error: FhirError | None) -> None:
        try:
            self._queue.put(capture(req, interaction, resp, error))
        except Exception:  # auditing must never break a request; it is logged instead
            log.exception("could not capture an AuditEvent")
            return
        self._ensure_thread()

    def record(self, event: dict[str, Any]) -> None:
        """Queue an event built elsewhere (the OAuth endpoints)."""
        self._queue.put(event)
        self._ensure_thread()

    def _ensure_thread(self) -> None:
        import os

        if self._thread is not None and self._thread.is_alive() and self._pid == os.getpid():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        # Events stay in the queue until written, so a flush (under the same lock) sees all of them.
        while not self._closed:
            self._wake.wait(self.interval)
            if not self._queue.empty():
                self._write([])

    def close(self) -> None:
        """Write what is queued and stop the writer thread (tests, before their database goes away)."""
        self._closed = True
        self.flush()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()

    def _write(self, events: list[Pending | dict[str, Any]]) -> None:
        with self._lock:
            while len(events) < 10_000:
                try:
                    events.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if not events:
                return
            for start in range(0, len(events), self.batch):
                chunk = events[start:start + self.batch]
                try:
                    self._insert(chunk)
                except Exception:
                    log.exception("could not write %d AuditEvents", len(chunk))

    def _insert(self, chunk: list[Pending | dict[str, Any]]) -> None:
        """One transaction, a few multi-row INSERTs (DB-API, no per-row SQLAlchemy work): resources,
        history, index rows."""
        from fhir_server.storage.sql import now_instant

        last_updated, updated_us = now_instant()
        rows: list[tuple[Any, ...]] = []
        index: dict[str, dict[Any, list[tuple[Any, ...]]]] = {}
        for item in chunk:
            event = event_of(item) if isinstance(item, Pending) else item
            res_id = str(uuid.uuid4())
            body = {"resourceType": "AuditEvent", "id": res_id,
                    "meta": {"versionId": "1", "lastUpdated": last_updated},
                    **{k: v for k, v in event.items() if k != "resourceType"}}
            rows.append(("AuditEvent", res_id, 1, last_updated, updated_us, False, orjson.dumps(body).decode()))
            if self.registry is not None:
                index[res_id] = index_tuples(self.registry, body)
        from fhir_server.storage.tables import resource_history, resources

        with self.repo.unit_of_work() as uow:
            conn = uow.conn
            mark = "%s" if conn.dialect.paramstyle in ("format", "pyformat") else "?"
            cur = conn.connection.driver_connection.cursor()
            keyed = _new_pks(cur, mark, rows)
            if mark == "%s":
                _insert_rows(cur, mark, resources, ("res_pk", *_RESOURCE_COLUMNS), keyed)
            pks = {row[2]: row[0] for row in keyed}
            _insert_rows(cur, mark, resource_history, (*_RESOURCE_COLUMNS, "method"), [(*r, "POST") for r in rows])
            values_of: dict[Any, list[tuple[Any, ...]]] = {}
            for res_id, tables in index.items():
                pk = pks[res_id]
                for table, tuples in tables.items():
                    values_of.setdefault(table, []).extend((*t, pk) for t in tuples)
            for table, values in values_of.items():
                _insert_rows(cur, mark, table, (*columns_of(table), "res_pk"), values)
            cur.close()

    def flush(self) -> None:
        self._write([])
