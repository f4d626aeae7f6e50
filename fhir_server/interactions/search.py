"""search: GET/POST [type]?…, [type]/_search and system level with _type."""

from __future__ import annotations

from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import orjson

from fhir_server.errors import operation_outcome
from fhir_server.interactions.common import require_type
from fhir_server.interactions.model import FhirRequest, FhirResponse
from fhir_server.search.api import SearchRequest, SearchResult
from fhir_server.storage.repository import StoredResource

if TYPE_CHECKING:
    from fhir_server.service import FhirService


def run_search(svc: FhirService, req: FhirRequest) -> SearchResult:
    request = SearchRequest(res_type=req.res_type, params=req.params, strict=req.strict,
                            boundary=svc.boundary(req), base_url=req.base_url)
    ctx = nullcontext(req.uow.conn) if req.uow is not None else svc.repo.search_connection()
    with ctx as conn:
        return svc.search.search(conn, request)


def _resource(stored: StoredResource, shape: Any) -> Any:
    if stored.content is None:
        return None
    if shape is None:
        return orjson.Fragment(stored.content)
    return shape(orjson.loads(stored.content))


def search(svc: FhirService, req: FhirRequest) -> FhirResponse:
    if req.res_type is not None:
        require_type(req.res_type, "search-type")
    return searchset(req, run_search(svc, req))


def searchset(req: FhirRequest, result: SearchResult) -> FhirResponse:
    """The searchset Bundle of a search result (also for types served from a store of their own)."""
    base = req.base_url
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if result.total is not None:
        bundle["total"] = result.total
    links = [{"relation": "self", "url": f"{base}/{result.self_link}"}]
    for relation, link in (("first", result.first_link), ("previous", result.previous_link),
                           ("next", result.next_link)):
        if link:
            links.append({"relation": relation, "url": f"{base}/{link}"})
    bundle["link"] = links
    entries: list[dict[str, Any]] = []
    if not result.summary_count_only:
        for mode, group in (("match", result.matches), ("include", result.includes)):
            for stored in group:
                entries.append({
                    "fullUrl": f"{base}/{stored.res_type}/{stored.res_id}",
                    "resource": _resource(stored, result.shape),
                    "search": {"mode": mode},
                })
    if result.issues:
        entries.append({"resource": operation_outcome(result.issues, req.lang), "search": {"mode": "outcome"}})
    if entries:
        bundle["entry"] = entries
    return FhirResponse(status=200, resource=bundle)
