"""AuditEvent's interactions, served from the audit trail: read, vread, search-type, create.

`install` registers them with the service (`FhirService.type_handlers`), so they run behind the
same choke point as every other interaction (`authorizer.authorize` first); the data boundary is
the policy's, applied to the trail's own columns (`boundary`).
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from typing import Any

import orjson
from sqlalchemy import and_, false, or_

from auth.audit_search import TrailQuery, TrailSearch
from auth.audit_trail import dbapi_cursor, insert_given, last_updated_text
from fhir_server.errors import BadRequest, NotFound
from fhir_server.interactions.common import body_resource, check_body_type, require_id, require_type, unit_of_work
from fhir_server.interactions.model import FhirRequest, FhirResponse
from fhir_server.interactions.read import not_found, not_modified
from fhir_server.interactions.search import searchset
from fhir_server.storage.repository import StoredResource

TYPE = "AuditEvent"


class TrailInteractions:
    def __init__(self, registry: Any, secret: str, deferred_keys: bool = False) -> None:
        self.registry = registry
        self.trail = TrailSearch(registry, secret, deferred_keys)

    def handlers(self) -> dict[str, Any]:
        return {"read": self.read, "vread": self.vread, "search-type": self.search, "create": self.create}

    # -- the data boundary ----------------------------------------------------------------
    def boundary(self, svc: Any, req: FhirRequest) -> Any:
        """The policy's boundary for AuditEvent as a predicate on the trail (None: no limit; False:
        nothing). Only direct links ([owner] AuditEvent = a reference parameter) can apply to the
        trail; the scope's v2 query restrictions (`system/AuditEvent.rs?outcome=8`) are ANDed."""
        access = getattr(svc.authorizer, "access", None)
        if access is None:
            return None  # authorization is off
        acc = access(req)
        if not (acc.can(TYPE, "r") or acc.can(TYPE, "s")):
            return False
        parts: list[Any] = []
        open_type = acc.profile is None or TYPE in acc.profile.open
        comp = acc.read_compiler
        if not open_type:
            if comp is None:
                if not acc.national:
                    return False
            else:
                conds = [self.trail.reference_in(link, comp.anchor.res_type, comp.anchor.ids)
                         for link in comp.links.get(TYPE, ()) if _direct(link)]
                parts.append(or_(*conds) if conds else false())
        queries = acc.grants.restrictions(TYPE, "s") or acc.grants.restrictions(TYPE, "r")
        if queries:
            alternatives = []
            for query in queries:
                try:
                    alternatives.append(and_(*[self.trail.clause(k, v, req.base_url) for k, v in query]))
                except Exception:  # a restriction the trail cannot evaluate grants nothing
                    alternatives.append(false())
            parts.append(or_(*alternatives))
        return and_(*parts) if parts else None

    def _conn(self, svc: Any, req: FhirRequest) -> Any:
        return nullcontext(req.uow.conn) if req.uow is not None else svc.repo.search_connection()

    # -- interactions ----------------------------------------------------------------------
    def _load(self, svc: Any, req: FhirRequest) -> StoredResource:
        res_id = require_id(req.res_id)
        with self._conn(svc, req) as conn:
            stored = self.trail.read(conn, res_id, self.boundary(svc, req))
        if stored is None:
            raise not_found(TYPE, res_id)
        return stored

    def read(self, svc: Any, req: FhirRequest) -> FhirResponse:
        require_type(req.res_type, "read")
        stored = self._load(svc, req)
        if not_modified(req, stored):
            return FhirResponse(status=304, stored=stored)
        return FhirResponse(status=200, content=stored.content, stored=stored)

    def vread(self, svc: Any, req: FhirRequest) -> FhirResponse:
        require_type(req.res_type, "vread")
        stored = self._load(svc, req)
        if req.version_id != "1":  # the trail is append-only: every event has one version
            raise NotFound(f"{TYPE}/{stored.res_id} has no version {req.version_id}",
                           f"{TYPE}/{stored.res_id} không có phiên bản {req.version_id}")
        return FhirResponse(status=200, content=stored.content, stored=stored)

    def search(self, svc: Any, req: FhirRequest) -> FhirResponse:
        require_type(req.res_type, "search-type")
        q = TrailQuery(params=list(req.params), base_url=req.base_url, strict=req.strict,
                       boundary=self.boundary(svc, req), default_count=svc.settings.default_count,
                       max_count=svc.settings.max_count)
        with self._conn(svc, req) as conn:
            result = self.trail.search(conn, q)
        return searchset(req, result)

    def create(self, svc: Any, req: FhirRequest, new_id: str | None = None) -> FhirResponse:
        require_type(req.res_type, "create")
        resource = body_resource(req)
        check_body_type(resource, TYPE)
        if req.header("if-none-exist"):
            raise BadRequest("Conditional create is not supported for AuditEvent",
                             "Không hỗ trợ tạo có điều kiện cho AuditEvent", expression="If-None-Exist")
        # R4 http.html: on create the server ignores any id in the body and assigns its own.
        resource = {k: v for k, v in resource.items() if k not in ("id", "meta")}
        svc.validate(resource, TYPE, req, mode="create")
        svc.authorize_write(req, resource)
        stored_us = time.time_ns() // 1000 // 1000 * 1000
        with unit_of_work(svc, req) as uow:
            cur, mark = dbapi_cursor(uow.conn)
            pk = insert_given(cur, mark, self.registry, resource, new_id, stored_us)
            cur.close()
            res_id = new_id or str(pk)
            full = {"resourceType": TYPE, "id": res_id,
                    "meta": {"versionId": "1", "lastUpdated": last_updated_text(stored_us)},
                    **{k: v for k, v in resource.items() if k != "resourceType"}}
            stored = StoredResource(TYPE, res_id, 1, full["meta"]["lastUpdated"], False,
                                    orjson.dumps(full).decode(), res_pk=pk)
            req.written = stored  # the record of this create names it
        return FhirResponse(status=201, resource=full, content=stored.content, stored=stored,
                            location=f"{TYPE}/{res_id}/_history/1", is_write=True)


def _direct(link: str) -> bool:
    """A link that is a reference parameter of AuditEvent itself (not through another resource)."""
    return not link.startswith(("_", "<")) and ">" not in link


def install(svc: Any, secret: str) -> TrailInteractions:
    from auth.audit_keys import deferred, drop_column_indexes

    drop_column_indexes(svc.repo)
    served = TrailInteractions(svc.search.registry, secret, deferred(svc.repo))
    svc.type_handlers[TYPE] = served.handlers()
    return served
