"""history: instance, type and system level, with _since, _at, _count and signed paging."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import orjson

from fhir_server.errors import BadRequest
from fhir_server.interactions.common import require_id, require_type
from fhir_server.interactions.model import FhirRequest, FhirResponse
from fhir_server.storage.repository import HistoryQuery, StoredResource
from fhir_server.timeutil import parse_datetime_range, to_us

if TYPE_CHECKING:
    from fhir_server.service import FhirService

_STATUS = {"POST": "201 Created", "PUT": "200 OK", "PATCH": "200 OK", "DELETE": "204 No Content"}


def _count(svc: FhirService, req: FhirRequest) -> int:
    raw = req.param("_count")
    if raw is None:
        return svc.settings.history_default_count
    if not raw.isdigit():
        raise BadRequest(f"_count must be a non-negative integer, not '{raw}'",
                         f"_count phải là số nguyên không âm, không phải '{raw}'", expression="_count")
    return min(int(raw), svc.settings.max_count)


def history(svc: FhirService, req: FhirRequest) -> FhirResponse:
    if req.res_type is not None:
        require_type(req.res_type, "history-instance" if req.res_id else "history-type")
    if req.res_id is not None:
        require_id(req.res_id)
    since = req.param("_since")
    at = req.param("_at")
    count = _count(svc, req)
    page = req.param("_page")
    conn = req.uow.conn if req.uow is not None else None
    boundary = svc.boundary(req)
    if boundary is not None and req.res_type is not None and req.res_id is not None:
        # A deleted resource has left the (index-based) boundary: authorization decides on the instance itself.
        current = svc.repo.read(req.res_type, req.res_id)
        if current is not None and current.deleted and svc.visible(req, current):
            boundary = None
    query = HistoryQuery(
        res_type=req.res_type,
        res_id=req.res_id,
        since_us=to_us(parse_datetime_range(since, "_since")[0]) if since else None,
        at_us=to_us(parse_datetime_range(at, "_at")[1]) - 1 if at else None,
        before_seq=int(svc.page_signer.loads(page)["before"]) if page else None,
        count=count,
        boundary=boundary,
    )
    # The boundary is inside the SQL (paging and totals stay correct).
    rows = svc.repo.history(query, conn) if count else []
    path = "/".join(p for p in (req.res_type, req.res_id, "_history") if p)
    kept = [(k, v) for k, v in req.params if k in ("_since", "_at", "_count")]
    query_string = f"?{urlencode(req.params)}" if req.params else ""
    links = [{"relation": "self", "url": f"{req.base_url}/{path}{query_string}"}]
    links.insert(0, {"relation": "first", "url": f"{req.base_url}/{path}" + (f"?{urlencode(kept)}" if kept else "")})
    if count and len(rows) == count and rows[-1].seq is not None:
        token = svc.page_signer.dumps({"before": rows[-1].seq})
        links.append({"relation": "next", "url": f"{req.base_url}/{path}?{urlencode([*kept, ('_page', token)])}"})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "history", "link": links,
                              "entry": [_entry(req.base_url, r) for r in rows]}
    if req.res_id is not None or count == 0:
        bundle["total"] = svc.repo.history_count(HistoryQuery(res_type=req.res_type, res_id=req.res_id,
                                                              since_us=query.since_us, at_us=query.at_us,
                                                              boundary=query.boundary), conn)
    return FhirResponse(status=200, resource=bundle)


def _entry(base_url: str, r: StoredResource) -> dict[str, Any]:
    method = r.method or "PUT"
    entry: dict[str, Any] = {"fullUrl": f"{base_url}/{r.res_type}/{r.res_id}"}
    if not r.deleted and r.content is not None:
        entry["resource"] = orjson.Fragment(r.content)
    entry["request"] = {"method": "POST" if method == "POST" else method,
                        "url": r.res_type if method == "POST" else f"{r.res_type}/{r.res_id}"}
    entry["response"] = {"status": _STATUS.get(method, "200 OK"), "etag": r.etag, "lastModified": r.last_updated}
    return entry
