"""The auditor page `/auditor/` (CONTRACTS.md B): pick a minutes document by search or upload
a JSON file, see it rendered in Vietnamese with every signature's verdict.

Flask only at this edge. The page never decides access itself: it turns the cookie
`fhir_access_token` into an `Authorization: Bearer` header on a FhirRequest and calls
`svc.dispatch` (a Bundle search, `Bundle/[id]/$verify-signature`, `POST /$verify-signature`).
401 → redirect to `/auth/login?next=…`; 403 → a vi/en page with status 403.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from flask import Blueprint, Response, current_app, redirect, request, send_from_directory

from fhir_server.errors import FhirError, Forbidden, NotAuthenticated
from fhir_server.interactions.model import FhirRequest, FhirResponse
from fhir_server.service import FhirService

STATIC = Path(__file__).parent / "static"
COOKIE = "fhir_access_token"
CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'"


def _svc() -> FhirService:
    svc: FhirService = current_app.extensions["fhir_service"]
    return svc


def _lang() -> str:
    accept = request.headers.get("Accept-Language", "").lower()
    return "en" if accept.startswith("en") else "vi"


def _fhir_request(method: str, **kwargs: Any) -> FhirRequest:
    headers = {"accept": "application/fhir+json"}
    token = request.cookies.get(COOKIE)
    if token:
        headers["authorization"] = f"Bearer {token}"
    base = request.host_url.rstrip("/") + _svc().settings.base_path
    return FhirRequest(method=method, headers=headers, base_url=base, lang=_lang(),
                       source_address=request.remote_addr, **kwargs)


def _plain(resp: FhirResponse) -> Any:
    if resp.resource is not None:
        return orjson.loads(orjson.dumps(resp.resource))
    return orjson.loads(resp.content) if resp.content else None


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, content_type="application/json; charset=utf-8",
                    headers={"Cache-Control": "no-store"})


def _login_url() -> str:
    return "/auth/login?next=" + quote("/auditor/", safe="")


def _forbidden_page(exc: FhirError) -> Response:
    text = html.escape(exc.issues[0].vi if exc.issues else "")
    body = (f'<!doctype html><html lang="vi"><meta charset="utf-8"><title>403</title>'
            f'<link rel="stylesheet" href="/auditor/auditor.css"><main><h1>Không có quyền truy cập</h1>'
            f'<p>Access denied: your account may not verify signed minutes.</p><p>{text}</p></main></html>')
    return Response(body, status=403, content_type="text/html; charset=utf-8", headers={"Content-Security-Policy": CSP})


def _api_error(exc: FhirError) -> Response:
    if isinstance(exc, NotAuthenticated):
        return _json({"login": _login_url()}, 401)
    return _json({"outcome": exc.outcome(_lang())}, exc.status)


def _summary(bundle: dict[str, Any]) -> dict[str, Any]:
    entries = bundle.get("entry") or []
    comp = entries[0].get("resource", {}) if entries else {}
    patient = ""
    subject = (comp.get("subject") or {}).get("reference", "")
    for e in entries:
        r = e.get("resource") or {}
        if f"{r.get('resourceType')}/{r.get('id')}" == subject:
            names = r.get("name") or [{}]
            patient = names[0].get("text") or " ".join([names[0].get("family", ""), *names[0].get("given", [])])
    return {"id": bundle.get("id"), "title": comp.get("title") or "(không tiêu đề)", "date": comp.get("date", ""),
            "patient": patient, "signed": "signature" in bundle, "status": comp.get("status", "")}


def _documents(query: str) -> list[dict[str, Any]]:
    req = _fhir_request("GET", res_type="Bundle",
                        params=[("type", "document"), ("_count", "100"), ("_sort", "-_lastUpdated")])
    found = _plain(_svc().dispatch(req)) or {}
    docs = [_summary(e["resource"]) for e in found.get("entry") or [] if isinstance(e.get("resource"), dict)]
    q = query.strip().lower()
    return [d for d in docs if not q or q in d["title"].lower() or q in d["patient"].lower() or q == d["id"]]


def _page(query: str, docs: list[dict[str, Any]]) -> str:
    rows = "".join(
        f'<li><button type="button" class="doc" data-id="{html.escape(d["id"] or "")}">'
        f'<b>{html.escape(d["title"])}</b> <span>{html.escape(d["patient"])}</span> '
        f'<time>{html.escape(d["date"])}</time> <em>{"đã ký" if d["signed"] else "chưa ký cuối"}</em></button></li>'
        for d in docs) or '<li class="empty">Không tìm thấy biên bản nào / no documents found</li>'
    return (STATIC / "auditor.html").read_text(encoding="utf-8").replace(
        "{{query}}", html.escape(query)).replace("{{documents}}", rows)


def make_blueprint() -> Blueprint:
    bp = Blueprint("auditor", __name__, url_prefix="/auditor")

    @bp.get("/")
    def index() -> Any:
        query = request.args.get("q", "")
        try:
            docs = _documents(query)
        except NotAuthenticated:
            return redirect(_login_url())
        except Forbidden as exc:
            return _forbidden_page(exc)
        return Response(_page(query, docs), content_type="text/html; charset=utf-8",
                        headers={"Content-Security-Policy": CSP, "Cache-Control": "no-store"})

    @bp.get("/<any('auditor.js', 'auditor.css'):name>")
    def static_file(name: str) -> Any:
        resp = send_from_directory(STATIC, name)
        resp.headers["Cache-Control"] = "no-cache"
        return resp

    @bp.get("/api/documents/<doc_id>")
    def stored(doc_id: str) -> Response:
        try:
            report = _plain(_svc().dispatch(_fhir_request("GET", res_type="Bundle", res_id=doc_id,
                                                          operation="$verify-signature")))
            bundle = _plain(_svc().dispatch(_fhir_request("GET", res_type="Bundle", res_id=doc_id)))
        except FhirError as exc:
            return _api_error(exc)
        return _json({"bundle": bundle, "report": report})

    @bp.post("/api/verify")
    def uploaded() -> Response:
        try:
            body = orjson.loads(request.get_data(cache=False) or b"null")
        except orjson.JSONDecodeError:
            return _json({"outcome": {"resourceType": "OperationOutcome", "issue": [{
                "severity": "error", "code": "invalid", "details": {"text": "Tệp không phải JSON hợp lệ"},
                "diagnostics": "The file is not valid JSON"}]}}, 400)
        try:
            report = _plain(_svc().dispatch(_fhir_request("POST", operation="$verify-signature", body=body,
                                                          content_type="application/fhir+json")))
        except FhirError as exc:
            return _api_error(exc)
        document = body
        if isinstance(body, dict) and body.get("type") in ("searchset", "collection"):
            document = next((e.get("resource") for e in body.get("entry") or []
                             if isinstance(e.get("resource"), dict) and e["resource"].get("type") == "document"), body)
        return _json({"bundle": document, "report": report})

    return bp
