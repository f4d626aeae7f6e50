"""FHIR REST routes under the base path; every route funnels into FhirService.dispatch."""

from __future__ import annotations

import logging
from email.utils import format_datetime
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

import orjson
from flask import Blueprint, Response, current_app, g, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from fhir_server.api.negotiation import FORM, check_request_type, response_type
from fhir_server.errors import (
    BadRequest,
    FhirError,
    InternalError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    information_outcome,
)
from fhir_server.interactions.model import FhirRequest, FhirResponse
from fhir_server.registry import RESOURCE_TYPES
from fhir_server.service import FhirService, route
from fhir_server.timeutil import instant_to_datetime

log = logging.getLogger("fhir_server.api")
_NON_SEARCH_PARAMS = {"_format", "_pretty"}
_NO_BODY_STATUSES = {204, 304}


def service() -> FhirService:
    svc: FhirService = current_app.extensions["fhir_service"]
    return svc


def base_url() -> str:
    """Absolute base URL, honouring X-Forwarded-Proto/Host/Prefix from a reverse proxy."""
    return environ_base_url(request.environ, service().settings.base_path)


def environ_base_url(env: dict[str, Any], base_path: str) -> str:
    """`base_url` from a WSGI environ (the read fast path has no Flask request)."""
    proto = (env.get("HTTP_X_FORWARDED_PROTO") or env.get("wsgi.url_scheme", "http")).split(",")[0].strip()
    host = env.get("HTTP_X_FORWARDED_HOST") or env.get("HTTP_HOST") or (
        f"{env.get('SERVER_NAME', 'localhost')}:{env.get('SERVER_PORT', '80')}")
    host = host.split(",")[0].strip()
    prefix = (env.get("HTTP_X_FORWARDED_PREFIX") or "").rstrip("/")
    return f"{proto}://{host}{prefix}{env.get('SCRIPT_NAME', '')}{base_path}"


def _headers(env: dict[str, Any]) -> dict[str, str]:
    """Lower-case request headers straight from the WSGI environ (cheaper than Headers)."""
    out = {k[5:].lower().replace("_", "-"): v for k, v in env.items() if k.startswith("HTTP_")}
    if env.get("CONTENT_TYPE"):
        out["content-type"] = env["CONTENT_TYPE"]
    return out


def language() -> str:
    return _language(request.environ.get("HTTP_ACCEPT_LANGUAGE", ""), service().settings.default_language)


@lru_cache(maxsize=256)
def _language(accept: str, default: str) -> str:
    for part in accept.lower().split(","):
        tag = part.split(";")[0].strip()
        if tag.startswith("vi"):
            return "vi"
        if tag.startswith("en"):
            return "en"
    return default


def _parse_body(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}", f"Nội dung không phải JSON hợp lệ: {exc}") from exc


def build_request(res_type: str | None = None, res_id: str | None = None, version_id: str | None = None,
                  history: bool = False, operation: str | None = None, search_post: bool = False) -> FhirRequest:
    g.fhir_lang = language()
    env = request.environ
    method = env["REQUEST_METHOD"]
    media = check_request_type(env.get("CONTENT_TYPE"), method, search_post or bool(operation))
    # Operations see _format (e.g. $telehealth-report answers csv/xlsx); searches do not.
    params = ([(k, v) for k, v in request.args.items(multi=True) if k not in _NON_SEARCH_PARAMS
               or (operation and k == "_format")]
              if env.get("QUERY_STRING") else [])
    body: Any = None
    try:
        raw = request.get_data(cache=False) if method in ("POST", "PUT", "PATCH") else b""
    except RequestEntityTooLarge as exc:
        raise _too_large() from exc
    if raw:
        if media == FORM:
            params += [(k, v) for k, v in parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
                       if k not in _NON_SEARCH_PARAMS]
        else:
            body = _parse_body(raw)
    elif method in ("POST", "PUT", "PATCH") and not search_post and not operation and media != FORM:
        raise BadRequest("The request has no body", "Yêu cầu không có nội dung")
    return FhirRequest(
        method=method, res_type=res_type, res_id=res_id, version_id=version_id, history=history,
        operation=operation, params=params, headers=_headers(env),
        body=body, content_type=media, base_url=base_url(), lang=g.fhir_lang,
        principal=getattr(g, "principal", None), source_address=request.remote_addr,
    )


def _too_large() -> PayloadTooLarge:
    limit = service().settings.max_body_bytes
    return PayloadTooLarge(f"The body exceeds the limit of {limit} bytes",
                           f"Nội dung vượt quá giới hạn {limit} byte")


@lru_cache(maxsize=4096)
def _http_date(instant: str) -> str:
    return format_datetime(instant_to_datetime(instant).replace(microsecond=0), usegmt=True)


def _dumps(obj: Any, pretty: bool) -> bytes:
    if pretty:
        # Fragments (stored JSON) are re-parsed so the whole document is indented.
        return orjson.dumps(orjson.loads(orjson.dumps(obj)), option=orjson.OPT_INDENT_2)
    return orjson.dumps(obj)


def to_http(resp: FhirResponse, req: FhirRequest | None = None) -> Response:
    args = request.args if request.environ.get("QUERY_STRING") else {}
    pretty = args.get("_pretty", "").lower() == "true"
    headers: dict[str, str] = dict(resp.headers)
    if resp.raw is not None:  # non-FHIR payloads (csv, xlsx) chosen by the operation itself
        return Response(resp.raw, status=resp.status, headers=headers, mimetype=resp.media_type)
    media = response_type(args.get("_format"), request.environ.get("HTTP_ACCEPT"))
    if resp.stored is not None:
        headers["ETag"] = resp.stored.etag
        headers["Last-Modified"] = _http_date(resp.stored.last_updated)
    if resp.location:
        headers["Location" if resp.status == 201 else "Content-Location"] = f"{base_url()}/{resp.location}"
    prefer = req.prefer.get("return") if req is not None else None
    body: bytes | None
    if resp.status in _NO_BODY_STATUSES or (resp.is_write and prefer == "minimal"):
        body = None
    elif resp.is_write and prefer == "OperationOutcome":
        body = _dumps(information_outcome(f"{request.method} succeeded", f"{request.method} thành công", g.fhir_lang),
                      pretty)
    elif resp.resource is not None:
        body = _dumps(resp.resource, pretty)
    elif resp.content is not None:
        body = resp.content.encode() if not pretty else _dumps(orjson.Fragment(resp.content), pretty)
    else:
        body = None
    if body is None:
        return Response(status=resp.status, headers=headers)
    return Response(body, status=resp.status, headers=headers, content_type=f"{media}; charset=utf-8")


def error_response(exc: FhirError) -> Response:
    lang = getattr(g, "fhir_lang", None) or "vi"
    headers = dict(exc.headers)
    return Response(orjson.dumps(exc.outcome(lang)), status=exc.status, headers=headers,
                    content_type="application/fhir+json; charset=utf-8")


def dispatched(req: FhirRequest) -> Response:
    """Dispatch (which records the request in the audit trail, answered or refused) and render."""
    g.fhir_audited = True
    try:
        return to_http(service().dispatch(req), req)
    except FhirError:
        raise
    except Exception:
        g.fhir_audited = False  # an unexpected error: the edge records it (500)
        raise


def audit_edge(error: FhirError | None, resp: FhirResponse | None = None, interaction: str | None = None) -> None:
    """Record a request that never reached the dispatcher (refused at the HTTP edge: unknown route,
    415, 413, a body that is not JSON; an unexpected error; /metadata), so every request has its event."""
    svc = service()
    if svc.audit is None or g.get("fhir_audited") or request.blueprint == "auth":  # OAuth: its own events
        return
    g.fhir_audited = True
    try:
        _audit_edge(svc, error, resp, interaction)
    except Exception:  # auditing never turns an answer into another error; it is logged instead
        log.exception("could not record the request at the edge")


def _audit_edge(svc: FhirService, error: FhirError | None, resp: FhirResponse | None, interaction: str | None
                ) -> None:
    args = request.view_args or {}
    rtype, rid, op = args.get("rtype"), args.get("rid"), args.get("op")
    req = FhirRequest(method=request.method, headers=_headers(request.environ), base_url=base_url(),
                      source_address=request.remote_addr,
                      params=[(k, v) for k, v in request.args.items(multi=True)][:50])
    if rtype in RESOURCE_TYPES:
        req.res_type = rtype
        if rid and not rid.startswith("$"):
            req.res_id = rid
    req.operation = next((x for x in (rtype, rid, op) if isinstance(x, str) and x.startswith("$")), None)
    authenticate = getattr(svc.authorizer, "authenticate", None)
    if authenticate is not None:
        try:  # who sent it, when the token is good (the request was refused for another reason)
            req.principal = authenticate(req)
        except FhirError:
            req.principal = None
    if interaction is None:
        interaction = route(req) if request.url_rule is not None else "unsupported"
    assert svc.audit is not None
    svc.audit(req, interaction, resp, error)


def make_blueprint() -> Blueprint:
    bp = Blueprint("fhir", __name__)

    def run(**kwargs: Any) -> Response:
        return dispatched(build_request(**kwargs))

    @bp.route("/metadata", methods=["GET"])
    def metadata() -> Response:
        req = build_request()
        resp = service().capabilities(req)
        audit_edge(None, resp, "capabilities")
        return to_http(resp, req)

    @bp.route("/", methods=["GET", "POST"], strict_slashes=False)
    def system() -> Response:
        return run()

    @bp.route("/_history", methods=["GET"])
    def system_history() -> Response:
        return run(history=True)

    @bp.route("/<rtype>", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    def type_level(rtype: str) -> Response:
        if rtype.startswith("$"):
            return run(operation=rtype)
        return run(res_type=rtype)

    @bp.route("/<rtype>/_search", methods=["GET", "POST"])
    def type_search(rtype: str) -> Response:
        req = build_request(res_type=rtype, search_post=True)
        req.method = "GET"
        return dispatched(req)

    @bp.route("/_search", methods=["POST"])
    def system_search() -> Response:
        req = build_request(search_post=True)
        req.method = "GET"
        return dispatched(req)

    @bp.route("/<rtype>/_history", methods=["GET"])
    def type_history(rtype: str) -> Response:
        return run(res_type=rtype, history=True)

    @bp.route("/<rtype>/<rid>", methods=["GET", "PUT", "PATCH", "DELETE", "POST"])
    def instance(rtype: str, rid: str) -> Response:
        if rid.startswith("$"):
            return run(res_type=rtype, operation=rid)
        if request.method == "POST":
            raise MethodNotAllowed("POST is not allowed on a resource instance",
                                   "Không cho phép POST trên một tài nguyên cụ thể")
        return run(res_type=rtype, res_id=rid)

    @bp.route("/<rtype>/<rid>/<op>", methods=["GET", "POST"])
    def instance_operation(rtype: str, rid: str, op: str) -> Response:
        if op == "_history" and request.method == "GET":
            return run(res_type=rtype, res_id=rid, history=True)
        if not op.startswith("$"):
            raise NotFound(f"Unknown path segment '{op}'", f"Đoạn đường dẫn không rõ '{op}'")
        return run(res_type=rtype, res_id=rid, operation=op)

    @bp.route("/<rtype>/<rid>/_history/<vid>", methods=["GET"])
    def version(rtype: str, rid: str, vid: str) -> Response:
        return run(res_type=rtype, res_id=rid, version_id=vid)

    @bp.errorhandler(FhirError)
    def on_fhir_error(exc: FhirError) -> Response:
        audit_edge(exc)
        return error_response(exc)

    return bp


def register_error_handlers(app: Any) -> None:
    """Every error, including routing and framework errors, leaves as an OperationOutcome."""

    @app.errorhandler(FhirError)
    def on_fhir_error(exc: FhirError) -> Response:
        audit_edge(exc)
        return error_response(exc)

    @app.errorhandler(RequestEntityTooLarge)
    def on_too_large(_exc: RequestEntityTooLarge) -> Response:
        err = _too_large()
        audit_edge(err)
        return error_response(err)

    @app.errorhandler(HTTPException)
    def on_http(exc: HTTPException) -> Response:
        status = exc.code or 500
        cls = {404: NotFound, 405: MethodNotAllowed}.get(status, BadRequest)
        err = cls(f"{exc.name}: {exc.description}", f"Lỗi HTTP {status}: {exc.name}")
        audit_edge(err)
        resp = error_response(err)
        resp.status_code = status
        return resp

    @app.errorhandler(Exception)
    def on_unexpected(exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        err = InternalError("Internal server error", "Lỗi máy chủ nội bộ")
        audit_edge(err)
        return error_response(err)
