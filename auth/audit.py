"""AuditEvent for every request, allowed or denied (who, what, outcome, when, from where).

Events are built in the request thread and written in batches by one background thread
per process (one transaction per batch), so auditing costs the request little. The
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
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from fhir_server.errors import FhirError
from fhir_server.interactions.model import FhirRequest, FhirResponse
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


def build_event(req: FhirRequest, interaction: str, resp: FhirResponse | None, error: FhirError | None
                ) -> dict[str, Any]:
    status = resp.status if resp is not None else (error.status if error is not None else 500)
    if interaction == "transaction" and isinstance(req.body, dict) and req.body.get("type") == "batch":
        interaction = "batch"
    p = req.principal
    agents: list[dict[str, Any]] = []
    network = {"address": req.source_address, "type": "2"} if req.source_address else None
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
    entity: list[dict[str, Any]] = []
    if req.res_type and req.res_id:
        entity.append({"what": {"reference": f"{req.res_type}/{req.res_id}"}})
    elif resp is not None and resp.stored is not None and interaction == "create":
        entity.append({"what": {"reference": f"{resp.stored.res_type}/{resp.stored.res_id}"}})
    if req.params:
        from urllib.parse import urlencode

        q = f"{req.res_type or ''}?{urlencode(req.params)}"
        entity.append({"query": base64.b64encode(q.encode()).decode(), "description": q[:1000]})
    if req.operation:
        entity.append({"name": req.operation})
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest",
                 "display": "RESTful Operation"},
        "subtype": [{"system": SUBTYPE_SYSTEM, "code": interaction}],
        "action": _ACTION.get(interaction, "E"),
        "recorded": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "outcome": _outcome(status),
        "agent": agents,
        "source": {"observer": {"display": "vn-telehealth-fhir"},
                   "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "3",
                             "display": "Web Server"}]},
    }
    if error is not None:
        event["outcomeDesc"] = f"{status} {error.issues[0].en if error.issues else ''}"[:500]
    if entity:
        event["entity"] = entity
    return event


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
    "patient": lambda e: _refs([a.get("who") for a in e["agent"]] + [x.get("what") for x in e.get("entity", [])]),
    "source": lambda e: _refs([e["source"].get("observer")]),
    "site": lambda e: [e["source"]["site"]] if e["source"].get("site") else [],
}


_ROW_CACHE: dict[tuple[int, str], list[dict[str, Any]]] = {}
_PARAMS: dict[int, list[tuple[Any, int, Any]]] = {}


def _value_rows(param: Any, key: int, value: Any) -> list[dict[str, Any]]:
    if param.type == "date":
        return [{**r, "param": key} for r in date.index_rows(value)]  # differs for every event
    cache_key = (key, orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode())
    hit = _ROW_CACHE.get(cache_key)  # codes, clients and organizations repeat: hash them once
    if hit is None:
        if param.type == "token":
            rows = token.index_rows(param, value)
        elif param.type == "reference":
            rows = reference.index_rows(param, value, "Patient" if param.code == "patient" else None)
        elif param.type == "string":
            rows = string.index_rows(value)
        else:
            rows = []
        hit = [{**r, "param": key} for r in rows]
        if len(_ROW_CACHE) > 50_000:
            _ROW_CACHE.clear()
        _ROW_CACHE[cache_key] = hit
    return hit


def index_rows(registry: Any, event: dict[str, Any]) -> dict[Any, list[dict[str, Any]]]:
    """The search-index rows of one event, without FHIRPath (the audit write is on every request)."""
    params = _PARAMS.get(id(registry))
    if params is None:
        params = _PARAMS[id(registry)] = [(p, p.key, INDEX_TABLES[p.type]) for p in registry.for_type("AuditEvent")
                                          if p.code in _EXTRACT]
    out: dict[Any, list[dict[str, Any]]] = {}
    for param, key, table in params:
        seen: set[tuple[Any, ...]] = set()
        for value in _EXTRACT[param.code](event):
            for row in _value_rows(param, key, value):
                ident = tuple(row.values())
                if ident not in seen:  # identical rows once, as the generic index writer does
                    seen.add(ident)
                    out.setdefault(table, []).append(row)
    return out


def covered_params() -> set[str]:
    return set(_EXTRACT)


class AuditSink:
    def __init__(self, repo: Any, registry: Any = None, batch: int = 500, interval: float = 0.5) -> None:
        self.repo = repo
        self.registry = registry
        self.batch = batch
        self.interval = interval
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._closed = False
        self._wake = threading.Event()  # never set: the writer wakes every `interval`
        atexit.register(self.flush)

    def __call__(self, req: FhirRequest, interaction: str, resp: FhirResponse | None,
                 error: FhirError | None) -> None:
        try:
            self._queue.put(build_event(req, interaction, resp, error))
        except Exception:  # auditing must never break a request; it is logged instead
            log.exception("could not build an AuditEvent")
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

    def _write(self, events: list[dict[str, Any]]) -> None:
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

    def _insert(self, chunk: list[dict[str, Any]]) -> None:
        """One transaction, a few multi-row INSERTs: resources, history, index rows."""
        from sqlalchemy import insert

        from fhir_server.storage.sql import now_instant
        from fhir_server.storage.tables import resources

        last_updated, updated_us = now_instant()
        rows = []
        bodies: dict[str, dict[str, Any]] = {}
        for event in chunk:
            res_id = str(uuid.uuid4())
            body = {"resourceType": "AuditEvent", "id": res_id,
                    "meta": {"versionId": "1", "lastUpdated": last_updated},
                    **{k: v for k, v in event.items() if k != "resourceType"}}
            bodies[res_id] = body
            rows.append({"res_type": "AuditEvent", "res_id": res_id, "version_id": 1, "last_updated": last_updated,
                         "updated_us": updated_us, "deleted": False, "content": orjson.dumps(body).decode()})
        index = {res_id: index_rows(self.registry, body) for res_id, body in bodies.items()} if self.registry else {}
        with self.repo.unit_of_work() as uow:
            conn = uow.conn
            result = conn.execute(insert(resources).returning(resources.c.res_pk, resources.c.res_id,
                                                              sort_by_parameter_order=True), rows)
            pks = {r.res_id: r.res_pk for r in result}
            cur = conn.connection.driver_connection.cursor()  # bulk rows: DB-API executemany, no per-row Core work
            mark = "%s" if conn.dialect.paramstyle in ("format", "pyformat") else "?"
            cols = ("res_type", "res_id", "version_id", "last_updated", "updated_us", "deleted", "content")
            cur.executemany(f"INSERT INTO resource_history ({', '.join(cols)}, method) VALUES "
                            f"({', '.join([mark] * (len(cols) + 1))})",
                            [(*tuple(r[c] for c in cols), "POST") for r in rows])
            names_of: dict[Any, list[str]] = {}
            values_of: dict[Any, list[tuple[Any, ...]]] = {}
            for res_id, tables in index.items():
                pk = pks[res_id]
                for table, rows_of in tables.items():
                    names = names_of.setdefault(table, sorted(rows_of[0]))
                    values_of.setdefault(table, []).extend((*[r.get(n) for n in names], pk) for r in rows_of)
            for table, values in values_of.items():
                names = names_of[table]
                cur.executemany(f"INSERT INTO {table.name} ({', '.join(names)}, res_pk) VALUES "
                                f"({', '.join([mark] * (len(names) + 1))})", values)
            cur.close()

    def flush(self) -> None:
        self._write([])
