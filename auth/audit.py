"""AuditEvent for every request, allowed or denied (who, what, outcome, when, from where).

Rows go to the audit trail's own narrow table (`auth/audit_trail.py`: one row and five index
entries per event; the AuditEvent JSON is built from the row when it is read). A successful
write's record is inserted in the write's own transaction (`AuditSink.in_transaction`, a commit
hook). Everything else is captured in the request thread (`Pending`, ~10 fields) and written by
one background thread per process in batches (one transaction per batch: COPY on PostgreSQL); a
process flushes that queue before it answers a read or search of AuditEvent, and at exit. The
trail is append-only (create, read, vread and search only: fhir_server/registry.py), and only the
admin role may create an AuditEvent over the API.
"""
from __future__ import annotations

import atexit
import base64
import logging
import os
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache, partial
from typing import Any
from urllib.parse import urlencode

from auth.audit_trail import CAPTURED_COLUMNS, clip, dbapi_cursor, insert_captured, insert_given
from fhir_server.errors import FhirError
from fhir_server.interactions.model import FhirRequest, FhirResponse
from fhir_server.principal import Principal

log = logging.getLogger("auth.audit")

_ACTION = {"create": "C", "read": "R", "vread": "R", "update": "U", "patch": "U", "delete": "D",
           "history-instance": "R", "history-type": "R", "history-system": "R", "search-type": "E",
           "search-system": "E", "transaction": "E", "batch": "E", "operation": "E", "capabilities": "R"}
SUBTYPE_SYSTEM = "http://hl7.org/fhir/restful-interaction"
TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/audit-event-type"
DCM = "http://dicom.nema.org/resources/ontology/DCM"


def action_of(interaction: str) -> str:
    return _ACTION.get(interaction, "E")


def outcome_of(status: int) -> str:
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
    created: str | None  # "Type/id" a write without an id in its URL produced
    params: tuple[tuple[str, str], ...]
    operation: str | None
    error_en: str | None


def capture(req: FhirRequest, interaction: str, resp: FhirResponse | None, error: FhirError | None) -> Pending:
    status = resp.status if resp is not None else (error.status if error is not None else 500)
    if interaction == "transaction" and isinstance(req.body, dict) and req.body.get("type") == "batch":
        interaction = "batch"
    created = None
    if (resp is not None and resp.stored is not None and req.res_id is None
            and interaction in ("create", "update", "patch")):  # the id the server (or the criteria) chose
        created = f"{resp.stored.res_type}/{resp.stored.res_id}"
    error_en = (error.issues[0].en if error.issues else "") if error is not None else None
    return Pending(time.time_ns() // 1000, interaction, status, req.principal, req.source_address, req.res_type,
                   req.res_id, created, tuple(req.params), req.operation, error_en)


def columns_of(p: Pending, stored_us: int) -> tuple[Any, ...]:
    """The `audit_trail` row (CAPTURED_COLUMNS order) of one captured request."""
    pr = p.principal
    entity = f"{p.res_type}/{p.res_id}" if p.res_type and p.res_id else p.created
    query = f"{p.res_type or ''}?{urlencode(p.params)}" if p.params else None
    error = f"{p.status} {p.error_en}"[:500] if p.error_en is not None else None
    ms = p.recorded_us // 1000 * 1000
    return (ms, ms + 999, stored_us, action_of(p.interaction), outcome_of(p.status), p.interaction, p.status,
            clip(pr.client_id, 128) if pr else None, clip(pr.role, 16) if pr else None,
            clip(pr.user, 160) if pr else None, clip(pr.organization, 160) if pr else None,
            clip(p.address, 64), clip(entity, 160), query, clip(p.operation, 64), error)


_SOURCE = {"observer": {"display": "vn-telehealth-fhir"},
           "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "3",
                     "display": "Web Server"}]}
_TYPE = {"system": TYPE_SYSTEM, "code": "rest", "display": "RESTful Operation"}


@lru_cache(maxsize=4096)
def _agents(client_id: str | None, role: str | None, user: str | None, org: str | None,
            address: str | None) -> list[dict[str, Any]]:
    """The agent list of a principal at an address (the same for all its requests: built once).
    Shared between events, so never modified."""
    agents: list[dict[str, Any]] = []
    network = {"address": address, "type": "2"} if address else None
    if client_id is None:
        agent: dict[str, Any] = {"who": {"display": "anonymous / chưa xác thực"}, "requestor": True}
        if network:
            agent["network"] = network
        agents.append(agent)
    else:
        who = user or org
        agent = {"type": {"coding": [{"system": DCM, "code": "110153", "display": "Source Role ID"}],
                          "text": role},
                 "who": {"reference": who} if who else {"display": client_id}, "altId": client_id,
                 "requestor": True}
        if network:
            agent["network"] = network
        agents.append(agent)
        if user and org:
            agents.append({"who": {"reference": org}, "requestor": False})
    return agents


@lru_cache(maxsize=256)
def _subtype(interaction: str) -> list[dict[str, Any]]:
    return [{"system": SUBTYPE_SYSTEM, "code": interaction}]


def _instant(us: int) -> str:
    """FHIR instant, millisecond precision, UTC."""
    return datetime.fromtimestamp(us // 1_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{us // 1000 % 1000:03d}Z"


def event_from_columns(m: Any) -> dict[str, Any]:
    """The AuditEvent (without id and meta) of a captured request's row: the one place its shape is
    written (auth/audit_search.py matches searches against the same columns)."""
    entity: list[dict[str, Any]] = []
    if m["entity"]:
        entity.append({"what": {"reference": m["entity"]}})
    if m["query"]:
        q = m["query"]
        entity.append({"query": base64.b64encode(q.encode()).decode(), "description": q[:1000]})
    if m["operation"]:
        entity.append({"name": m["operation"]})
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "type": _TYPE,
        "subtype": _subtype(m["interaction"]),
        "action": m["action"],
        "recorded": _instant(m["recorded_us"]),
        "outcome": m["outcome"],
        "agent": _agents(m["client_id"], m["role"], m["user_ref"], m["org_ref"], m["address"]),
        "source": _SOURCE,
    }
    if m["error"] is not None:
        event["outcomeDesc"] = m["error"]
    if entity:
        event["entity"] = entity
    return event


def build_event(req: FhirRequest, interaction: str, resp: FhirResponse | None, error: FhirError | None
                ) -> dict[str, Any]:
    """The AuditEvent a request is recorded as (what a read of its row returns, without id and meta)."""
    return event_from_columns(dict(zip(CAPTURED_COLUMNS, columns_of(capture(req, interaction, resp, error), 0),
                                       strict=True)))


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
        "outcome": outcome_of(status),
        "agent": [agent],
        "source": {"observer": {"display": "vn-telehealth-fhir"}},
    }
    if status >= 400:
        event["outcomeDesc"] = str(status)
    return event


def _forget_thread_of(ref: weakref.ref[AuditSink]) -> None:
    sink = ref()
    if sink is not None:
        sink._forget_thread()


class AuditSink:
    def __init__(self, repo: Any, registry: Any = None, batch: int = 500, interval: float = 0.5,
                 keys_interval: float = 5.0) -> None:
        self.repo = repo
        self.registry = registry
        self.batch = batch
        self.interval = interval
        from auth.audit_keys import deferred  # (it reads auth.audit_search, which reads this module)

        # SQLite: how often the rows written since are keyed in bulk (auth/audit_keys.py)
        self.keys_interval = keys_interval if deferred(repo) else None
        self._keyed_at = time.monotonic()
        # A deque: appends are atomic under the GIL, so the request thread takes no lock.
        self._queue: deque[Pending | dict[str, Any]] = deque()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._wake = threading.Event()  # never set: the writer wakes every `interval`
        atexit.register(self.flush)
        os.register_at_fork(after_in_child=partial(_forget_thread_of, weakref.ref(self)))

    def _forget_thread(self) -> None:
        """In a forked child (a gunicorn worker): the parent's writer thread does not exist here."""
        self._thread = None
        self._lock = threading.Lock()

    def __call__(self, req: FhirRequest, interaction: str, resp: FhirResponse | None,
                 error: FhirError | None) -> None:
        if req.audited and error is None:
            return  # written with the request's own writes (`in_transaction`)
        try:
            self._queue.append(capture(req, interaction, resp, error))
        except Exception:  # auditing must never break a request; it is logged instead
            log.exception("could not capture an AuditEvent")
            return
        self._ensure_thread()

    def in_transaction(self, req: FhirRequest, uow: Any) -> None:
        """A write's AuditEvent, inserted in the write's own transaction (a commit hook): a committed
        write always has its record, even if the worker is killed a moment later. Should the commit
        fail, the record goes with it and the failure is recorded through the queue instead."""
        from fhir_server.service import route

        stored = req.written
        status = 201 if stored is not None and stored.version_id == 1 and req.method in ("POST", "PUT") else 200
        pending = capture(req, route(req), FhirResponse(status=status, stored=stored), None)
        cur, mark = dbapi_cursor(uow.conn)
        insert_captured(cur, mark, [columns_of(pending, time.time_ns() // 1000 // 1000 * 1000)])
        cur.close()
        req.audited = True

    def record(self, event: dict[str, Any]) -> None:
        """Queue an event built elsewhere (the OAuth endpoints)."""
        self._queue.append(event)
        self._ensure_thread()

    def _ensure_thread(self) -> None:
        if self._thread is not None:  # the writer never ends before `close` (it logs what fails)
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        # Events stay in the queue until written, so a flush (under the same lock) sees all of them.
        while not self._closed:
            self._wake.wait(self.interval)
            if self._queue:
                self._write([])
            if self.keys_interval is not None and time.monotonic() - self._keyed_at >= self.keys_interval:
                self.index_keys()

    def index_keys(self) -> None:
        """Key the rows written since the last time (a backlog a chunk per turn)."""
        from auth.audit_keys import index_keys

        self._keyed_at = time.monotonic()
        try:
            index_keys(self.repo)
        except Exception:  # the rows stay searchable by their columns; the next turn tries again
            log.exception("could not index the audit trail's keys")

    def close(self) -> None:
        """Write what is queued and stop the writer thread (tests, before their database goes away)."""
        self._closed = True
        self.flush()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()

    def _write(self, events: list[Pending | dict[str, Any]]) -> None:
        with self._lock:
            self._drain(events)

    def _drain(self, events: list[Pending | dict[str, Any]]) -> None:
        """Write what is queued, in batches (the caller holds the lock)."""
        while len(events) < 10_000:
            try:
                events.append(self._queue.popleft())
            except IndexError:
                break
        for start in range(0, len(events), self.batch):
            chunk = events[start:start + self.batch]
            try:
                self._insert(chunk)
            except Exception:
                log.exception("could not write %d AuditEvents", len(chunk))

    def _insert(self, chunk: list[Pending | dict[str, Any]]) -> None:
        """One transaction: the captured requests in one bulk insert into the trail, events given
        whole (the OAuth endpoints') one by one with their index rows."""
        stored_us = time.time_ns() // 1000 // 1000 * 1000
        captured = [columns_of(item, stored_us) for item in chunk if isinstance(item, Pending)]
        with self.repo.unit_of_work() as uow:
            cur, mark = dbapi_cursor(uow.conn)
            insert_captured(cur, mark, captured)
            for item in chunk:
                if isinstance(item, dict):
                    insert_given(cur, mark, self.registry, item, None, stored_us)
            cur.close()

    def flush(self) -> None:
        self._write([])
