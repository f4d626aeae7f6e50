"""A WSGI fast path for the hottest interaction: `GET [base]/[type]/[id]` (read by id).

A plain read needs none of Flask's machinery (URL map, request/app contexts, Response
objects): this middleware recognises the path with string operations, builds the same
framework-free `FhirRequest` the blueprint builds and sends it through `FhirService.dispatch`
(so `authorizer.authorize` still runs first), then writes the stored JSON bytes with
hand-built headers. Everything else — and every read while an application-wide or FHIR-blueprint
request hook is registered, or with a query string, or an Accept header that is not plain JSON — goes
to the Flask application unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from fhir_server.api.fhir_blueprint import _headers, _http_date, _language, environ_base_url
from fhir_server.api.negotiation import response_type
from fhir_server.errors import FhirError, InternalError
from fhir_server.interactions.model import FhirRequest
from fhir_server.registry import RESOURCE_TYPES
from fhir_server.service import FhirService

log = logging.getLogger("fhir_server.api")
StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
_FHIR_JSON = "application/fhir+json; charset=utf-8"
_STATUS = {200: "200 OK", 304: "304 Not Modified", 400: "400 Bad Request", 401: "401 Unauthorized",
           403: "403 Forbidden", 404: "404 Not Found", 405: "405 Method Not Allowed", 410: "410 Gone",
           500: "500 Internal Server Error"}


class FastRead:
    def __init__(self, flask_app: Any, inner: WsgiApp, svc: FhirService) -> None:
        self.flask_app = flask_app
        self.inner = inner
        self.svc = svc
        self.prefix = svc.settings.base_path.rstrip("/") + "/"

    def _hooks_registered(self) -> bool:
        """Hooks that would run for a FHIR read: the application's own and the FHIR blueprint's (a hook
        of another blueprint, e.g. the OAuth pages', does not run for FHIR routes)."""
        app = self.flask_app
        return any(funcs.get(scope) for funcs in (app.before_request_funcs, app.after_request_funcs,
                                                  app.teardown_request_funcs, app.url_value_preprocessors)
                   for scope in (None, "fhir"))

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if (environ.get("REQUEST_METHOD") != "GET" or environ.get("QUERY_STRING")
                or environ.get("CONTENT_TYPE") or environ.get("HTTP_TRANSFER_ENCODING")):
            return self.inner(environ, start_response)
        path: str = environ.get("PATH_INFO", "")
        if not path.startswith(self.prefix):
            return self.inner(environ, start_response)
        parts = path[len(self.prefix):].split("/")
        if (len(parts) != 2 or parts[0] not in RESOURCE_TYPES or not parts[1] or parts[1][0] in "$_"
                or self._hooks_registered()):
            return self.inner(environ, start_response)
        try:
            media = response_type(None, environ.get("HTTP_ACCEPT"))
        except FhirError:
            return self.inner(environ, start_response)  # let the blueprint answer the negotiation error
        try:
            # PATH_INFO is latin-1 decoded by the WSGI server; a non-ASCII id is invalid anyway,
            # but give it the same bytes the blueprint would see.
            res_id = parts[1].encode("latin-1").decode("utf-8", "replace")
        except UnicodeEncodeError:
            return self.inner(environ, start_response)
        return self._read(environ, start_response, parts[0], res_id, media)

    def _read(self, environ: dict[str, Any], start_response: StartResponse, res_type: str, res_id: str,
              media: str) -> Iterable[bytes]:
        svc = self.svc
        lang = _language(environ.get("HTTP_ACCEPT_LANGUAGE", ""), svc.settings.default_language)
        req = FhirRequest(method="GET", res_type=res_type, res_id=res_id, headers=_headers(environ),
                          base_url=environ_base_url(environ, svc.settings.base_path), lang=lang,
                          source_address=environ.get("REMOTE_ADDR"))
        try:
            resp = svc.dispatch(req)
        except FhirError as exc:
            return _error(start_response, exc, lang)
        except Exception:
            log.exception("unhandled error on GET %s", environ.get("PATH_INFO"))
            return _error(start_response, InternalError("Internal server error", "Lỗi máy chủ nội bộ"), lang)
        headers = list(resp.headers.items())
        if resp.stored is not None:
            headers.append(("ETag", resp.stored.etag))
            headers.append(("Last-Modified", _http_date(resp.stored.last_updated)))
        if resp.status == 304:
            start_response(_STATUS[304], headers)
            return []
        if resp.content is not None:
            body = resp.content.encode()
        elif resp.resource is not None:
            body = orjson.dumps(resp.resource)
        else:
            body = b""
        headers.append(("Content-Type", f"{media}; charset=utf-8"))
        headers.append(("Content-Length", str(len(body))))
        start_response(_STATUS.get(resp.status) or f"{resp.status} OK", headers)
        return [body]


def _error(start_response: StartResponse, exc: FhirError, lang: str) -> Iterable[bytes]:
    body = orjson.dumps(exc.outcome(lang))
    headers = [*exc.headers.items(), ("Content-Type", _FHIR_JSON), ("Content-Length", str(len(body)))]
    start_response(_STATUS.get(exc.status) or f"{exc.status} Error", headers)
    return [body]
