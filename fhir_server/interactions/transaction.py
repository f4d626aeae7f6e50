"""batch and transaction Bundles posted to the base URL (R4 http.html#transaction).

Transaction: one database transaction; entries processed DELETE → POST → PUT/PATCH →
GET/HEAD; `urn:uuid:` full URLs and conditional references resolved before any write, and
a `urn:uuid:`/`urn:oid:` reference that names no entry refused (400) rather than stored
pointing nowhere; any failure rolls everything back. Batch: each entry on its own, failures
reported per entry; entries of a batch may not refer to each other (R4: "no interdependencies"),
so an entry with such a reference fails alone. Every entry goes through the same dispatcher (and
so the same authorization) as a plain request.
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import orjson

from fhir_server.errors import BadRequest, FhirError, PreconditionFailed, operation_outcome
from fhir_server.interactions.common import prefix_issues
from fhir_server.interactions.create import criteria_from_header
from fhir_server.interactions.model import FhirRequest, FhirResponse
from fhir_server.registry import served

if TYPE_CHECKING:
    from fhir_server.service import FhirService

_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
_REASONS = {200: "OK", 201: "Created", 204: "No Content", 304: "Not Modified"}


def _entry_error(i: int, en: str, vi: str, expr: str = "") -> BadRequest:
    return BadRequest(en, vi, expression=f"Bundle.entry[{i}]{expr}")


def _parse_url(url: str, base_url: str) -> tuple[str | None, str | None, str | None, bool, list[tuple[str, str]]]:
    """entry.request.url → (type, id, version, history, params); absolute URLs on this server are accepted."""
    if url.startswith(base_url + "/"):
        url = url[len(base_url) + 1:]
    parts = urlsplit(url)
    segments = [s for s in parts.path.strip("/").split("/") if s]
    params = parse_qsl(parts.query, keep_blank_values=True)
    res_type = segments[0] if segments else None
    res_id = segments[1] if len(segments) > 1 and not segments[1].startswith("_") else None
    history = "_history" in segments
    version = segments[3] if len(segments) > 3 and segments[2] == "_history" else None
    return res_type, res_id, version, history, params


class _Plan:
    def __init__(self, index: int, entry: dict[str, Any], base_url: str) -> None:
        request = entry.get("request")
        if not isinstance(request, dict) or not request.get("method") or not request.get("url"):
            raise _entry_error(index, "Each entry needs request.method and request.url",
                               "Mỗi mục cần request.method và request.url", ".request")
        self.index = index
        self.entry = entry
        self.method = str(request["method"]).upper()
        if self.method not in _ORDER:
            raise _entry_error(index, f"Unsupported method {self.method}", f"Phương thức không hỗ trợ {self.method}",
                               ".request.method")
        self.request = request
        self.full_url: str | None = entry.get("fullUrl")
        self.resource: Any = entry.get("resource")
        (self.res_type, self.res_id, self.version, self.history,
         self.params) = _parse_url(str(request["url"]), base_url)
        self.assigned_id: str | None = None
        self.existing: FhirResponse | None = None


_LOCAL = ("urn:uuid:", "urn:oid:")


def _rewrite_references(node: Any, mapping: dict[str, str]) -> Any:
    """Replace the links to the Bundle's entries with the resources' new addresses. R4 (transaction
    processing rules): "Servers SHALL replace all matching links in the bundle, whether they are found
    in the resource ids, resource references, elements of type uri, url, oid, uuid, and <a href="" &
    <img src="" in the narrative". A `urn:uuid:`/`urn:oid:` fullUrl can only be such a link wherever it
    stands, so it is replaced in any element and in the narrative's href/src; other keys (absolute
    fullUrls, conditional references) only in `reference`. A Bundle inside is left as it is, as
    `_local_references` leaves it."""
    local = {k: v for k, v in mapping.items() if k.startswith(_LOCAL)}
    return _rewrite(node, mapping, local)


def _own_links(node: dict[str, Any]) -> bool:
    """A Bundle inside a resource (a document stored whole): its `urn:` links name its own entries, so
    neither the dangling check nor the rewrite looks into it."""
    return node.get("resourceType") == "Bundle"


def _rewrite(node: Any, mapping: dict[str, str], local: dict[str, str]) -> Any:
    if isinstance(node, dict):
        if _own_links(node):
            return node
        out = {}
        for k, v in node.items():
            if isinstance(v, str):
                if k == "reference" and v in mapping:
                    v = mapping[v]
                elif v in local:
                    v = local[v]
                elif k == "div" and local and "urn:" in v:
                    v = _NARRATIVE_LINK.sub(lambda m: m[1] + local.get(m[2], m[2]) + m[3], v)
                out[k] = v
            else:
                out[k] = _rewrite(v, mapping, local)
        return out
    if isinstance(node, list):
        return [_rewrite(v, mapping, local) for v in node]
    return node


# href="urn:uuid:…" / src='urn:oid:…' in XHTML narrative
_NARRATIVE_LINK = re.compile(r"""((?:href|src)\s*=\s*["'])(urn:(?:uuid|oid):[^"']+)(["'])""")


def _local_references(node: Any, path: str, found: list[tuple[str, str]]) -> None:
    """(FHIRPath, value) of every `urn:uuid:`/`urn:oid:` reference in a resource — these can only name
    entries of the Bundle. A Bundle inside (a document stored whole) is skipped: its own references
    name its own entries."""
    if isinstance(node, dict):
        if _own_links(node):
            return
        for k, v in node.items():
            if k == "reference" and isinstance(v, str) and v.startswith(_LOCAL):
                found.append((f"{path}.reference", v))
            elif isinstance(v, dict | list):
                _local_references(v, f"{path}.{k}", found)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _local_references(v, f"{path}[{i}]", found)


def _refuse_dangling(plans: list[_Plan], mapping: dict[str, str]) -> None:
    """A transaction's `urn:` reference to no entry of the Bundle would be stored pointing nowhere."""
    for plan in plans:
        found: list[tuple[str, str]] = []
        if isinstance(plan.resource, dict):
            _local_references(plan.resource, f"Bundle.entry[{plan.index}].resource", found)
        for path, value in found:
            if value not in mapping:
                raise BadRequest(f"Entry {plan.index}: the reference '{value}' names no entry of this transaction "
                                 "that creates or updates a resource",
                                 f"Mục {plan.index}: tham chiếu '{value}' không trỏ tới mục nào của giao dịch này "
                                 "tạo hoặc cập nhật tài nguyên", expression=path)


def _conditional_references(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "reference" and isinstance(v, str) and "?" in v and not v.startswith(("urn:", "http")):
                found.add(v)
            else:
                _conditional_references(v, found)
    elif isinstance(node, list):
        for v in node:
            _conditional_references(v, found)


def _response_entry(resp: FhirResponse, prefer_minimal: bool, base_url: str) -> dict[str, Any]:
    status = f"{resp.status} {_REASONS.get(resp.status, '')}".strip()
    response: dict[str, Any] = {"status": status}
    entry: dict[str, Any] = {}
    if resp.stored is not None:
        response["etag"] = resp.stored.etag
        response["lastModified"] = resp.stored.last_updated
        if resp.location or resp.is_write:
            response["location"] = resp.location or (
                f"{resp.stored.res_type}/{resp.stored.res_id}/_history/{resp.stored.version_id}")
    body: Any = resp.resource
    if body is None and resp.content is not None:
        body = orjson.Fragment(resp.content)
    if body is not None and not (prefer_minimal and resp.is_write):
        entry["resource"] = body
    entry["response"] = response
    if resp.stored is not None:
        entry = {"fullUrl": f"{base_url}/{resp.stored.res_type}/{resp.stored.res_id}", **entry}
    return entry


def _error_entry(exc: FhirError, index: int, lang: str) -> dict[str, Any]:
    """A batch entry's failure. Its expressions already start at the Bundle (the dispatcher relocates an
    entry's errors; the Bundle's own checks name `Bundle.entry[i]`); any other error gets the entry."""
    located = getattr(exc, "_located", False) or all(
        issue.expression and all(e.startswith(f"Bundle.entry[{index}]") for e in issue.expression)
        for issue in exc.issues)
    issues = exc.issues if located else prefix_issues(exc.issues, index)
    return {"response": {"status": f"{exc.status}", "outcome": operation_outcome(issues, lang)}}


def _entry_request(svc: FhirService, req: FhirRequest, plan: _Plan, uow: Any) -> FhirRequest:
    headers = {k: v for k, v in req.headers.items() if k in ("prefer", "authorization", "accept-language")}
    for field, header in (("ifMatch", "if-match"), ("ifNoneExist", "if-none-exist"),
                          ("ifNoneMatch", "if-none-match"), ("ifModifiedSince", "if-modified-since")):
        if plan.request.get(field):
            headers[header] = str(plan.request[field])
    return FhirRequest(
        method=plan.method, res_type=plan.res_type, res_id=plan.res_id, version_id=plan.version,
        history=plan.history, params=plan.params, headers=headers, body=plan.resource,
        content_type=None, base_url=req.base_url, lang=req.lang, principal=req.principal, uow=uow,
        entry_index=plan.index, source_address=req.source_address,
        operation=next((s for s in (plan.res_type, plan.res_id) if s and s.startswith("$")), None),
    )


def batch_or_transaction(svc: FhirService, req: FhirRequest) -> FhirResponse:
    bundle = req.body
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise BadRequest("POST to the base URL takes a batch or transaction Bundle",
                         "POST tới URL gốc cần một Bundle batch hoặc transaction", expression="Bundle")
    kind = bundle.get("type")
    if kind not in ("batch", "transaction"):
        raise BadRequest(f"Bundle.type must be batch or transaction, not '{kind}'",
                         f"Bundle.type phải là batch hoặc transaction, không phải '{kind}'", expression="Bundle.type")
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise BadRequest("Bundle.entry must be an array", "Bundle.entry phải là một mảng", expression="Bundle.entry")
    if kind == "transaction":
        return _transaction(svc, req, entries)
    return _batch(svc, req, entries)


def _batch(svc: FhirService, req: FhirRequest, entries: list[Any]) -> FhirResponse:
    out: list[dict[str, Any]] = []
    minimal = req.prefer.get("return") == "minimal"
    for i, entry in enumerate(entries):
        try:
            if not isinstance(entry, dict):
                raise _entry_error(i, "Entry must be an object", "Mục phải là một đối tượng")
            plan = _Plan(i, entry, req.base_url)
            if plan.resource is not None and plan.method in ("POST", "PUT"):
                svc.validate_entry_type(plan.resource, plan.res_type, i)
            _refuse_dangling([plan], {})  # a batch entry cannot name another entry
            out.append(_response_entry(svc.dispatch(_entry_request(svc, req, plan, None)), minimal, req.base_url))
        except FhirError as exc:
            out.append(_error_entry(exc, i, req.lang))
    return FhirResponse(status=200, resource={"resourceType": "Bundle", "type": "batch-response", "entry": out})


def _transaction(svc: FhirService, req: FhirRequest, entries: list[Any]) -> FhirResponse:
    plans: list[_Plan] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise _entry_error(i, "Entry must be an object", "Mục phải là một đối tượng")
        plan = _Plan(i, entry, req.base_url)
        if plan.method in ("POST", "PUT") and plan.resource is not None:
            svc.validate_entry_type(plan.resource, plan.res_type, i)
        plans.append(plan)
    full_urls = [p.full_url for p in plans if p.full_url]
    if len(full_urls) != len(set(full_urls)):
        raise BadRequest("Two entries share one fullUrl", "Hai mục có cùng fullUrl", expression="Bundle.entry.fullUrl")
    minimal = req.prefer.get("return") == "minimal"
    results: dict[int, FhirResponse] = {}
    with svc.repo.unit_of_work() as uow:
        mapping = _assign_identities(svc, req, uow, plans)
        _refuse_dangling(plans, mapping)
        for plan in sorted(plans, key=lambda p: (_ORDER[p.method], p.index)):
            if plan.existing is not None:
                results[plan.index] = plan.existing
                continue
            if plan.resource is not None:
                plan.resource = _rewrite_references(plan.resource, mapping)
            sub = _entry_request(svc, req, plan, uow)
            if plan.method == "POST" and plan.assigned_id is not None:
                sub.headers.pop("if-none-exist", None)
                results[plan.index] = svc.dispatch(sub, new_id=plan.assigned_id)
            else:
                results[plan.index] = svc.dispatch(sub)
        svc.before_commit(req, uow)
    out = [_response_entry(results[p.index], minimal, req.base_url) for p in plans]
    return FhirResponse(status=200, resource={"resourceType": "Bundle", "type": "transaction-response", "entry": out})


def _assign_identities(svc: FhirService, req: FhirRequest, uow: Any, plans: list[_Plan]) -> dict[str, str]:
    """Give every created resource its id up front and map fullUrls and conditional references."""
    mapping: dict[str, str] = {}
    boundary = svc.boundary(req)  # resources outside the requester's boundary never match
    for plan in plans:
        if plan.method == "POST" and plan.res_type and plan.res_id is None and not (plan.res_type or "").startswith(
                "$"):
            if served(plan.res_type) is None:
                continue  # the dispatcher reports it
            criteria = plan.request.get("ifNoneExist")
            matches = svc.search.match(uow.conn, plan.res_type, criteria_from_header(str(criteria), plan.res_type),
                                       limit=2, boundary=boundary) if criteria else []
            if len(matches) > 1:
                raise PreconditionFailed(
                    f"Entry {plan.index}: ifNoneExist matches more than one {plan.res_type}",
                    f"Mục {plan.index}: ifNoneExist khớp nhiều hơn một {plan.res_type}",
                    expression=f"Bundle.entry[{plan.index}].request.ifNoneExist")
            if matches:
                found = matches[0]
                plan.existing = FhirResponse(status=200, content=found.content, stored=found, is_write=True)
                target = f"{found.res_type}/{found.res_id}"
            else:
                plan.assigned_id = str(uuid.uuid4())
                target = f"{plan.res_type}/{plan.assigned_id}"
            if plan.full_url:
                mapping[plan.full_url] = target
        elif plan.method == "PUT" and plan.res_type and plan.res_id is None and plan.params:
            matches = svc.search.match(uow.conn, plan.res_type, urlencode(plan.params), limit=2, boundary=boundary)
            if len(matches) > 1:
                raise PreconditionFailed(
                    f"Entry {plan.index}: conditional update criteria match more than one {plan.res_type}",
                    f"Mục {plan.index}: tiêu chí cập nhật có điều kiện khớp nhiều hơn một {plan.res_type}",
                    expression=f"Bundle.entry[{plan.index}].request.url")
            if matches:
                plan.res_id, plan.params = matches[0].res_id, []
            else:
                body_id = plan.resource.get("id") if isinstance(plan.resource, dict) else None
                plan.res_id, plan.params = body_id or str(uuid.uuid4()), []
            if isinstance(plan.resource, dict):
                plan.resource = {**plan.resource, "id": plan.res_id}
            if plan.full_url:
                mapping[plan.full_url] = f"{plan.res_type}/{plan.res_id}"
        elif plan.method == "PUT" and plan.res_type and plan.res_id and plan.full_url:
            mapping[plan.full_url] = f"{plan.res_type}/{plan.res_id}"
    conditional: set[str] = set()
    for plan in plans:
        if plan.resource is not None:
            _conditional_references(plan.resource, conditional)
    for ref in conditional:
        res_type, _, criteria = ref.partition("?")
        if served(res_type) is None:
            raise BadRequest(f"Conditional reference to unknown type: {ref}",
                             f"Tham chiếu có điều kiện tới loại không rõ: {ref}")
        matches = svc.search.match(uow.conn, res_type, criteria, limit=2, boundary=boundary)
        if len(matches) != 1:
            raise PreconditionFailed(
                f"Conditional reference '{ref}' matched {len(matches) if len(matches) < 2 else 'several'} resources; "
                "it must match exactly one",
                f"Tham chiếu có điều kiện '{ref}' phải khớp đúng một tài nguyên", expression="Bundle.entry")
        mapping[ref] = f"{res_type}/{matches[0].res_id}"
    return mapping


