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

from fhir_server.errors import FhirError
from fhir_server.interactions.model import FhirRequest, FhirResponse

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
        agent = {"type": {"coding": [{"system": DCM, "code": "110153", "display": "Source Role ID"}]},
                 "who": {"reference": who} if who else {"display": p.client_id}, "altId": p.client_id,
                 "requestor": True, "role": [{"text": p.role}]}
        if network:
            agent["network"] = network
        agents.append(agent)
        if p.user and p.organization:
            agents.append({"who": {"reference": p.organization}, "requestor": False})
    entity: list[dict[str, Any]] = []
    if req.res_type and req.res_id:
        entity.append({"what": {"reference": f"{req.res_type}/{req.res_id}"},
                       "type": {"system": "http://hl7.org/fhir/resource-types", "code": req.res_type}})
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
        "recorded": datetime.now(UTC).isoformat(timespec="milliseconds"),
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


class AuditSink:
    def __init__(self, repo: Any, batch: int = 200, interval: float = 0.5) -> None:
        self.repo = repo
        self.batch = batch
        self.interval = interval
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        atexit.register(self.flush)

    def __call__(self, req: FhirRequest, interaction: str, resp: FhirResponse | None,
                 error: FhirError | None) -> None:
        try:
            self._queue.put(build_event(req, interaction, resp, error))
        except Exception:  # auditing must never break a request; it is logged instead
            log.exception("could not build an AuditEvent")
            return
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
        while True:
            try:
                first = self._queue.get(timeout=30)
            except queue.Empty:
                continue
            threading.Event().wait(self.interval)
            self._write([first])

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
                    with self.repo.unit_of_work() as uow:
                        for event in chunk:
                            uow.upsert("AuditEvent", str(uuid.uuid4()), event, method="POST")
                except Exception:
                    log.exception("could not write %d AuditEvents", len(chunk))

    def flush(self) -> None:
        self._write([])
