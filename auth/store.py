"""Clients, users, authorization codes, refresh tokens and revocations (SQL, shared by all workers)."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from auth.db import write_conn
from auth.tables import (
    auth_assertions,
    auth_clients,
    auth_codes,
    auth_login_failures,
    auth_refresh_tokens,
    auth_revoked,
    auth_users,
)

PBKDF2_ITERATIONS = 120_000
# Login throttling (OWASP authentication cheat sheet: limit failed attempts per account).
MAX_LOGIN_FAILURES = 5
LOGIN_WINDOW = 900
LOGIN_LOCKOUT = 900


class LoginLocked(Exception):
    """Too many failed sign-ins for this username: refused, even with the right password, for a while."""

    def __init__(self, seconds: int) -> None:
        super().__init__(f"locked for {seconds} s")
        self.seconds = seconds


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def hash_password(password: str, iterations: int = PBKDF2_ITERATIONS) -> str:
    salt = secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), iterations).hex()
    return f"pbkdf2_sha256${iterations}${salt}${digest}"


def check_password(password: str, stored: str) -> bool:
    try:
        _, iterations, salt, digest = stored.split("$")
        got = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), int(iterations)).hex()
    except ValueError:
        return False
    return hmac.compare_digest(got, digest)


@dataclass
class Client:
    """An OAuth client (authlib ClientMixin)."""

    client_id: str
    name: str
    secret_hash: str | None
    jwks: dict[str, Any] | None
    jwks_uri: str | None
    auth_method: str
    grant_types: list[str]
    redirect_uris: list[str]
    scope: str
    role: str
    organization: str | None
    jurisdiction: str | None
    disabled: bool = False

    # authlib ClientMixin
    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if self.redirect_uris else None

    def get_allowed_scope(self, scope: str | None) -> str:
        # The principal's ceiling is applied by the token generator (auth/server.py).
        allowed = set(self.scope.split())
        return " ".join(s for s in (scope or "").split() if s in allowed or _covered(s, allowed))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return self.secret_hash is not None and hmac.compare_digest(sha256(client_secret), self.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if method == "client_assertion_jwt":
            method = "private_key_jwt"
        return method == self.auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


def _covered(scope: str, allowed: set[str]) -> bool:
    """A requested resource scope is asked-for-able when a registered scope covers it."""
    from auth.scopes import parse_scope

    want = parse_scope(scope)
    if want is None:
        return False
    for text in allowed:
        have = parse_scope(text)
        if (have and have.context == want.context and have.res_type in ("*", want.res_type)
                and want.actions <= have.actions and (not have.query or have.query == want.query)):
            return True
    return False


@dataclass
class User:
    username: str
    display_name: str | None
    role: str
    organization: str | None
    jurisdiction: str | None
    fhir_user: str | None
    scope: str

    def get_user_id(self) -> str:
        return self.username

    @property
    def patient(self) -> str | None:
        return self.fhir_user if self.fhir_user and self.fhir_user.startswith("Patient/") else None


@dataclass
class AuthorizationCode:
    code_hash: str
    client_id: str
    username: str
    redirect_uri: str
    scope: str
    code_challenge: str
    code_challenge_method: str
    nonce: str | None
    expires_at: int

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int | None:
        return None

    def get_code_challenge(self) -> str:
        return self.code_challenge

    def get_code_challenge_method(self) -> str:
        return self.code_challenge_method

    def is_expired(self) -> bool:
        return self.expires_at < time.time()


@dataclass
class RefreshToken:
    token_hash: str
    client_id: str
    username: str | None
    scope: str
    issued_at: int
    expires_at: int
    revoked: bool

    # authlib TokenMixin
    def check_client(self, client: Client) -> bool:
        return client.client_id == self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return max(0, self.expires_at - int(time.time()))

    def is_expired(self) -> bool:
        return self.expires_at < time.time()

    def is_revoked(self) -> bool:
        return self.revoked


class AuthStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        mark = "%s" if engine.dialect.paramstyle in ("format", "pyformat") else "?"
        self._revoked_sql = f"SELECT 1 FROM auth_revoked WHERE jti = {mark}"

    # -- clients -----------------------------------------------------------------------
    def create_client(self, *, name: str, scope: str, role: str, organization: str | None,
                      jurisdiction: str | None = None, jwks: dict[str, Any] | None = None,
                      jwks_uri: str | None = None, grant_types: list[str] | None = None,
                      redirect_uris: list[str] | None = None, public: bool = False,
                      client_id: str | None = None, replace: bool = False) -> tuple[Client, str | None]:
        """Register a client; returns it and the one-time plain secret (None for key or public clients)."""
        client_id = client_id or f"c-{secrets.token_urlsafe(12)}"
        secret: str | None = None
        if jwks or jwks_uri:
            method = "private_key_jwt"
        elif public:
            method = "none"
        else:
            secret = secrets.token_urlsafe(32)
            method = "client_secret_basic"
        grants = grant_types or (["authorization_code", "refresh_token"] if redirect_uris else ["client_credentials"])
        with write_conn(self.engine) as conn:
            if replace:
                conn.execute(delete(auth_clients).where(auth_clients.c.client_id == client_id))
            conn.execute(insert(auth_clients).values(
                client_id=client_id, name=name, secret_hash=sha256(secret) if secret else None,
                jwks=json.dumps(jwks) if jwks else None, jwks_uri=jwks_uri, auth_method=method,
                grant_types=" ".join(grants), redirect_uris=" ".join(redirect_uris or []), scope=scope, role=role,
                organization=organization, jurisdiction=jurisdiction, created_at=int(time.time()), disabled=False))
        client = self.get_client(client_id)
        assert client is not None
        return client, secret

    def get_client(self, client_id: str) -> Client | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(auth_clients).where(auth_clients.c.client_id == client_id)).first()
        if r is None or r.disabled:
            return None
        return Client(client_id=r.client_id, name=r.name, secret_hash=r.secret_hash,
                      jwks=json.loads(r.jwks) if r.jwks else None, jwks_uri=r.jwks_uri, auth_method=r.auth_method,
                      grant_types=r.grant_types.split(), redirect_uris=(r.redirect_uris or "").split(),
                      scope=r.scope, role=r.role, organization=r.organization, jurisdiction=r.jurisdiction)

    # -- users -------------------------------------------------------------------------
    def create_user(self, *, username: str, password: str, role: str, organization: str | None,
                    fhir_user: str | None, scope: str, jurisdiction: str | None = None,
                    display_name: str | None = None) -> User:
        with write_conn(self.engine) as conn:
            conn.execute(insert(auth_users).values(
                username=username, password_hash=hash_password(password), display_name=display_name, role=role,
                organization=organization, jurisdiction=jurisdiction, fhir_user=fhir_user, scope=scope,
                created_at=int(time.time()), disabled=False))
        user = self.get_user(username)
        assert user is not None
        return user

    def get_user(self, username: str) -> User | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(auth_users).where(auth_users.c.username == username)).first()
        if r is None or r.disabled:
            return None
        return User(username=r.username, display_name=r.display_name, role=r.role, organization=r.organization,
                    jurisdiction=r.jurisdiction, fhir_user=r.fhir_user, scope=r.scope)

    def authenticate_user(self, username: str, password: str) -> User | None:
        """The user, or None for a wrong username/password; LoginLocked after too many failures
        (counted for unknown usernames too, so the answers do not tell which exist)."""
        key = username[:128]
        now = int(time.time())
        with self.engine.connect() as conn:
            r = conn.execute(select(auth_users.c.password_hash, auth_users.c.disabled)
                             .where(auth_users.c.username == key)).first()
            locked_until = conn.execute(select(auth_login_failures.c.locked_until)
                                        .where(auth_login_failures.c.username == key)).scalar()
        if locked_until and locked_until > now:
            raise LoginLocked(int(locked_until - now))
        if r is None:
            check_password(password, hash_password("x", 1000))  # same work for unknown users
            self._login_failed(key, now)
            return None
        if r.disabled or not check_password(password, r.password_hash):
            self._login_failed(key, now)
            return None
        with write_conn(self.engine) as conn:
            conn.execute(delete(auth_login_failures).where(auth_login_failures.c.username == key))
        return self.get_user(key)

    def _login_failed(self, username: str, now: int) -> None:
        t = auth_login_failures
        try:
            with write_conn(self.engine) as conn:
                row = conn.execute(select(t.c.failures, t.c.first_at).where(t.c.username == username)).first()
                if row is None:
                    conn.execute(insert(t).values(username=username, failures=1, first_at=now, locked_until=0))
                    return
                failures = row.failures + 1 if now - row.first_at < LOGIN_WINDOW else 1
                first_at = row.first_at if failures > 1 else now
                values: dict[str, Any] = {"failures": failures, "first_at": first_at}
                if failures >= MAX_LOGIN_FAILURES:
                    values = {"failures": 0, "first_at": now, "locked_until": now + LOGIN_LOCKOUT}
                conn.execute(update(t).where(t.c.username == username).values(**values))
        except IntegrityError:
            pass  # another worker recorded a failure for this username at the same moment

    # -- authorization codes (single use) ------------------------------------------------
    def save_code(self, code: str, **values: Any) -> None:
        with write_conn(self.engine) as conn:
            conn.execute(insert(auth_codes).values(code_hash=sha256(code), **values))

    def get_code(self, code: str, client_id: str) -> AuthorizationCode | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(auth_codes).where(auth_codes.c.code_hash == sha256(code),
                                                      auth_codes.c.client_id == client_id)).first()
        if r is None:
            return None
        code_obj = AuthorizationCode(**dict(r._mapping))
        return None if code_obj.is_expired() else code_obj

    def delete_code(self, code_hash: str) -> None:
        with write_conn(self.engine) as conn:
            conn.execute(delete(auth_codes).where(auth_codes.c.code_hash == code_hash))

    # -- refresh tokens ----------------------------------------------------------------------
    def save_refresh_token(self, token: str, client_id: str, username: str | None, scope: str,
                           lifetime: int) -> None:
        now = int(time.time())
        with write_conn(self.engine) as conn:
            conn.execute(insert(auth_refresh_tokens).values(
                token_hash=sha256(token), client_id=client_id, username=username, scope=scope, issued_at=now,
                expires_at=now + lifetime, revoked=False))

    def get_refresh_token(self, token: str) -> RefreshToken | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(auth_refresh_tokens)
                             .where(auth_refresh_tokens.c.token_hash == sha256(token))).first()
        return RefreshToken(**dict(r._mapping)) if r is not None else None

    def revoke_refresh_token(self, token_hash: str) -> None:
        with write_conn(self.engine) as conn:
            conn.execute(update(auth_refresh_tokens).where(auth_refresh_tokens.c.token_hash == token_hash)
                         .values(revoked=True))

    # -- access-token revocation and assertion replay --------------------------------------
    def revoke_jti(self, jti: str, expires_at: int) -> None:
        try:
            with write_conn(self.engine) as conn:
                conn.execute(insert(auth_revoked).values(jti=jti, expires_at=expires_at))
        except IntegrityError:
            pass

    def is_revoked(self, jti: str) -> bool:
        conn = self.engine.raw_connection()
        try:
            cur = conn.cursor()
            cur.execute(self._revoked_sql, (jti,))
            row = cur.fetchone()
            cur.close()
        finally:
            conn.close()
        return row is not None

    def use_assertion(self, key: str, expires_at: int) -> bool:
        """Record a client-assertion jti; False when it was seen before (a replay)."""
        now = int(time.time())
        try:
            with write_conn(self.engine) as conn:
                conn.execute(delete(auth_assertions).where(auth_assertions.c.expires_at < now - 3600))
                conn.execute(insert(auth_assertions).values(key=key[:200], expires_at=expires_at))
        except IntegrityError:
            return False
        return True
