"""Flask edge of the auth component: OAuth endpoints, discovery documents, login and consent pages.

Pages: `/auth/authorize` (login, then consent; Vietnamese or English) and `/auth/login?next=`
(sets the `fhir_access_token` cookie for the browser pages of other components, CONTRACTS.md B).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import time
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, jsonify, redirect, request

from auth.server import AuthService, Context
from auth.store import Client, LoginLocked, User
from fhir_server.errors import BadRequest
from fhir_server.paging import TokenSigner

SESSION_COOKIE = "fhir_auth_session"
ACCESS_COOKIE = "fhir_access_token"
SESSION_LIFETIME = 600

TEXT = {
    "vi": {"login": "Đăng nhập", "username": "Tên đăng nhập", "password": "Mật khẩu", "submit": "Đăng nhập",
           "bad_login": "Tên đăng nhập hoặc mật khẩu không đúng.", "consent": "Cấp quyền truy cập",
           "locked": "Đăng nhập sai quá nhiều lần: hãy thử lại sau {minutes} phút.",
           "app_asks": "Ứng dụng <b>{app}</b> yêu cầu các quyền sau trên dữ liệu của bạn:", "allow": "Đồng ý",
           "deny": "Từ chối", "signed_in": "Đã đăng nhập: {user}", "error": "Lỗi", "other": "English",
           "no_scope": "(không có quyền nào được cấp)", "title": "Máy chủ FHIR khám, chữa bệnh từ xa"},
    "en": {"login": "Sign in", "username": "Username", "password": "Password", "submit": "Sign in",
           "bad_login": "Wrong username or password.", "consent": "Grant access",
           "locked": "Too many failed sign-ins: try again in {minutes} minutes.",
           "app_asks": "The application <b>{app}</b> asks for these permissions on your data:", "allow": "Allow",
           "deny": "Deny", "signed_in": "Signed in as {user}", "error": "Error", "other": "Tiếng Việt",
           "no_scope": "(no permission would be granted)", "title": "Telehealth FHIR server"},
}


def _lang() -> str:
    chosen = request.values.get("lang")
    if chosen in TEXT:
        return chosen
    for part in request.headers.get("Accept-Language", "").lower().split(","):
        tag = part.split(";")[0].strip()
        if tag.startswith("en"):
            return "en"
        if tag.startswith("vi"):
            return "vi"
    return "vi"


def _page(lang: str, title: str, body: str, status: int = 200) -> Response:
    other = "en" if lang == "vi" else "vi"
    args = {k: v for k, v in request.args.items() if k != "lang"}
    switch = f"{request.path}?{urlencode({**args, 'lang': other})}"
    doc = f"""<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}}
label{{display:block;margin:.8rem 0}}input{{width:100%;padding:.4rem}}
button{{padding:.5rem 1.2rem;margin-right:.5rem}}.err{{color:#a00}}</style></head>
<body><p><a href="{html.escape(switch)}">{TEXT[lang]['other']}</a></p><h1>{html.escape(title)}</h1>
{body}</body></html>"""
    return Response(doc, status=status, content_type="text/html; charset=utf-8",
                    headers={"X-Frame-Options": "DENY", "Cache-Control": "no-store",
                             "Content-Security-Policy": "default-src 'self'; style-src 'unsafe-inline'"})


def _login_form(lang: str, action: str, hidden: dict[str, str], error: str | None = None,
                locked: LoginLocked | None = None) -> Response:
    t = TEXT[lang]
    fields = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                     for k, v in hidden.items())
    if locked is not None:
        msg = t["locked"].format(minutes=max(1, -(-locked.seconds // 60)))
        page = _page(lang, t["login"], f'<p class="err" role="alert">{msg}</p>', 429)
        page.headers["Retry-After"] = str(locked.seconds)
        return page
    err = f'<p class="err" role="alert">{t["bad_login"]}</p>' if error else ""
    body = f"""{err}<form method="post" action="{html.escape(action)}">{fields}
<label>{t['username']}<input name="username" autocomplete="username" required></label>
<label>{t['password']}<input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit" name="action" value="login">{t['submit']}</button></form>"""
    return _page(lang, t["login"], body, 401 if error else 200)


def _safe_next(target: str | None) -> str:
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


AUDITED = {"auth.token": "token", "auth.introspect": "introspect", "auth.revoke": "revoke",
           "auth.authorize": "authorize", "auth.login": "login"}


def _client_of_request() -> str | None:
    """The client a request names (not verified: for the audit trail only; never a secret)."""
    if request.authorization and request.authorization.username:
        return str(request.authorization.username)
    if request.form.get("client_id") or request.args.get("client_id"):
        return request.form.get("client_id") or request.args.get("client_id")
    assertion = request.form.get("client_assertion")
    if assertion and assertion.count(".") == 2:
        import base64
        import json

        try:
            body = assertion.split(".")[1]
            sub = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))).get("sub")
            return str(sub)[:64] if sub else None
        except ValueError:
            return None
    return None


def make_blueprint(auth: AuthService, secret: str, base_path: str, audit: Any = None) -> Blueprint:
    bp = Blueprint("auth", __name__)

    @bp.after_request
    def audit_auth_request(resp: Response) -> Response:
        endpoint = AUDITED.get(request.endpoint or "")
        if audit is not None and endpoint and (request.method == "POST" or endpoint == "authorize"):
            from auth.audit import auth_event

            user = request.form.get("username") if request.method == "POST" else None
            audit.record(auth_event(endpoint, resp.status_code, _client_of_request(),
                                    str(user)[:128] if user else None, request.remote_addr))
        return resp
    sessions = TokenSigner(secret, "auth-session", max_age_seconds=SESSION_LIFETIME)

    def fhir_base() -> str:
        from fhir_server.api.fhir_blueprint import base_url

        return base_url()

    def issuer() -> str:
        if auth.config.issuer:
            return auth.config.issuer
        base = fhir_base()
        origin = base[: -len(base_path)] if base_path and base.endswith(base_path) else base
        return f"{origin}/auth"

    @bp.before_request
    def set_context() -> None:
        auth.context = Context(issuer=issuer(), audience=auth.config.audience or fhir_base())

    def csrf(session: str) -> str:
        return hmac.new(secret.encode(), f"csrf:{session}".encode(), hashlib.sha256).hexdigest()[:32]

    def session_user() -> tuple[User | None, str]:
        raw = request.cookies.get(SESSION_COOKIE, "")
        if not raw:
            return None, ""
        try:
            data = sessions.loads(raw)
        except BadRequest:
            return None, ""
        user = auth.store.get_user(str(data.get("u")))
        return user, raw

    def start_session(resp: Response, user: User) -> str:
        raw = sessions.dumps({"u": user.username, "n": int(time.time())})
        resp.set_cookie(SESSION_COOKIE, raw, max_age=SESSION_LIFETIME, httponly=True, samesite="Lax",
                        path="/auth", secure=request.is_secure)
        return raw

    # -- discovery ---------------------------------------------------------------------------
    def metadata() -> dict[str, Any]:
        iss = issuer()
        return {
            "issuer": iss, "jwks_uri": f"{iss}/jwks", "authorization_endpoint": f"{iss}/authorize",
            "token_endpoint": f"{iss}/token", "introspection_endpoint": f"{iss}/introspect",
            "revocation_endpoint": f"{iss}/revoke",
            "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
            "response_types_supported": ["code"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic", "none"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384", "RS256", "ES256"],
            "introspection_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic"],
            "revocation_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic", "none"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "fhirUser", "launch/patient", "offline_access", "online_access",
                                 "system/*.rs", "system/*.cruds", "user/*.rs", "user/*.cruds", "patient/*.rs"],
            "ui_locales_supported": ["vi", "en"],
        }

    @bp.route("/.well-known/oauth-authorization-server")
    def oauth_metadata() -> Response:
        return jsonify(metadata())

    @bp.route("/.well-known/smart-configuration")
    @bp.route(f"{base_path}/.well-known/smart-configuration")
    def smart_configuration() -> Response:
        doc = metadata()
        doc["capabilities"] = [
            "launch-standalone", "client-public", "client-confidential-symmetric", "client-confidential-asymmetric",
            "context-standalone-patient", "permission-offline", "permission-patient", "permission-user",
            "permission-v1", "permission-v2", "sso-openid-connect",
        ]
        return jsonify(doc)

    @bp.route("/auth/jwks")
    def jwks() -> Response:
        resp = jsonify(auth.keys.jwks())
        resp.headers["Cache-Control"] = "public, max-age=300"
        return resp

    # -- token, introspection, revocation ---------------------------------------------------------
    @bp.route("/auth/token", methods=["POST"])
    def token() -> Response:
        resp: Response = auth.server.create_token_response()
        resp.headers["Cache-Control"] = "no-store"
        resp.headers["Pragma"] = "no-cache"
        return resp

    @bp.route("/auth/introspect", methods=["POST"])
    def introspect() -> Response:
        resp: Response = auth.server.create_endpoint_response("introspection")
        return resp

    @bp.route("/auth/revoke", methods=["POST"])
    def revoke() -> Response:
        resp: Response = auth.server.create_endpoint_response("revocation")
        return resp

    # -- authorization: login, then consent ---------------------------------------------------------
    @bp.route("/auth/authorize", methods=["GET", "POST"])
    def authorize() -> Any:
        lang = _lang()
        t = TEXT[lang]
        aud = request.values.get("aud")
        if aud and aud.rstrip("/") != (auth.config.audience or fhir_base()).rstrip("/"):
            return _page(lang, t["error"], "<p>aud does not name this FHIR server / aud không phải máy chủ này</p>",
                         400)
        user, session = session_user()
        action = request.form.get("action") if request.method == "POST" else None
        oauth_args = {k: v for k, v in request.args.items()}
        new_session: str | None = None
        if action == "login":
            try:
                user = auth.store.authenticate_user(request.form.get("username", ""),
                                                    request.form.get("password", ""))
            except LoginLocked as locked:
                return _login_form(lang, request.full_path, {}, locked=locked)
            if user is None:
                return _login_form(lang, request.full_path, {}, error="bad")
        try:
            grant = auth.server.get_consent_grant(end_user=user)
        except Exception as exc:  # authlib OAuth2Error: bad client, redirect_uri, PKCE...
            desc = getattr(exc, "description", None) or getattr(exc, "error", None) or "invalid request"
            return _page(lang, t["error"], f"<p>{html.escape(str(desc))}</p>", 400)
        if user is None:
            return _login_form(lang, request.full_path, {})
        if action in ("allow", "deny"):
            if not hmac.compare_digest(request.form.get("csrf", ""), csrf(session)):
                return _page(lang, t["error"], "<p>CSRF</p>", 400)
            resp: Response = auth.server.create_authorization_response(
                grant_user=user if action == "allow" else None, grant=grant)
            return resp
        client: Client = grant.client
        granted = auth.grant_scope(grant.request.payload.scope, client, user)
        resp = Response()
        if action == "login":
            new_session = start_session(resp, user)
        session = new_session or session
        items = "".join(f"<li><code>{html.escape(s)}</code></li>" for s in granted.split()) or \
            f"<li>{t['no_scope']}</li>"
        body = f"""<p>{t['signed_in'].format(user=html.escape(user.display_name or user.username))}</p>
<p>{t['app_asks'].format(app=html.escape(client.name))}</p><ul>{items}</ul>
<form method="post" action="{html.escape(request.full_path)}">
<input type="hidden" name="csrf" value="{csrf(session)}">
<button type="submit" name="action" value="allow">{t['allow']}</button>
<button type="submit" name="action" value="deny">{t['deny']}</button></form>"""
        page = _page(lang, t["consent"], body)
        for header, value in resp.headers.items():
            if header.lower() == "set-cookie":
                page.headers.add("Set-Cookie", value)
        del oauth_args
        return page

    # -- cookie login for the browser pages (CONTRACTS.md B) ----------------------------------------
    @bp.route("/auth/login", methods=["GET", "POST"])
    def login() -> Any:
        lang = _lang()
        target = _safe_next(request.values.get("next"))
        if request.method == "GET":
            return _login_form(lang, f"/auth/login?{urlencode({'next': target, 'lang': lang})}", {})
        action = f"/auth/login?{urlencode({'next': target, 'lang': lang})}"
        try:
            user = auth.store.authenticate_user(request.form.get("username", ""), request.form.get("password", ""))
        except LoginLocked as locked:
            return _login_form(lang, action, {}, locked=locked)
        if user is None:
            return _login_form(lang, action, {}, error="bad")
        pages = Client(client_id="fhir-web-pages", name="Browser pages", secret_hash=None, jwks=None,
                       jwks_uri=None, auth_method="none", grant_types=[], redirect_uris=[], scope=user.scope,
                       role=user.role, organization=user.organization, jurisdiction=user.jurisdiction)
        scope = auth.grant_scope(user.scope, pages, user)
        access, _claims = auth.issue(pages, user, scope, lifetime=auth.config.cookie_token_lifetime)
        resp = redirect(target, code=303)
        resp.set_cookie(ACCESS_COOKIE, access, max_age=auth.config.cookie_token_lifetime, httponly=True,
                        samesite="Strict", path="/", secure=request.is_secure)
        return resp

    @bp.route("/auth/logout", methods=["POST"])
    def logout() -> Any:
        resp = redirect(_safe_next(request.values.get("next")), code=303)
        resp.delete_cookie(ACCESS_COOKIE, path="/")
        resp.delete_cookie(SESSION_COOKIE, path="/auth")
        return resp

    return bp
