"""The OAuth 2.0 authorization server, assembled from authlib's grants and endpoints.

client_credentials (SMART Backend Services: private_key_jwt per RFC 7523, or
client_secret_basic), authorization_code with PKCE S256 (required) and refresh tokens
(rotated), RFC 7662 introspection, RFC 7009 revocation. Access tokens are RFC 9068 JWTs
signed with the server key (auth/tokens.py); their scope is requested ∩ the client's
registration ∩ the principal's policy ceiling.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import InvalidClientError, InvalidRequestError, grants
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from auth.config import AuthConfig
from auth.keys import KeyStore
from auth.policy import Policy
from auth.scopes import intersect
from auth.store import AuthStore, Client, RefreshToken, User, sha256
from auth.tokens import InvalidToken, TokenVerifier, issue_access_token

ASSERTION_ALGS = ["RS384", "ES384", "RS256", "ES256", "PS384"]
ENDPOINT_AUTH = ("client_secret_basic", "private_key_jwt", "none")


@dataclass
class Context:
    """Per-request facts the Flask edge supplies: issuer and audience seen by the client."""

    issuer: str
    audience: str


class AuthService:
    """Everything the OAuth endpoints and the pages need, framework-free except authlib's Flask glue."""

    def __init__(self, store: AuthStore, keys: KeyStore, policy: Policy, config: AuthConfig,
                 verifier: TokenVerifier, org_facts: Any) -> None:
        self.store, self.keys, self.policy, self.config = store, keys, policy, config
        self.verifier = verifier
        self.org_facts = org_facts
        self.on_revoke: Any = None  # told of each revoked access token (the authorizer's local cache)
        self._local = threading.local()  # the edge sets `context` for each OAuth request
        self.server = self._build_server()

    @property
    def context(self) -> Context:
        ctx: Context | None = getattr(self._local, "context", None)
        if ctx is None:
            raise RuntimeError("no OAuth request context")
        return ctx

    @context.setter
    def context(self, value: Context) -> None:
        self._local.context = value

    # -- who a token speaks for ---------------------------------------------------------------
    def principal_claims(self, client: Client, user: User | None) -> dict[str, Any]:
        role = user.role if user else client.role
        org = user.organization if user else client.organization
        registered = user.jurisdiction if user else client.jurisdiction
        tier, province = self.org_facts(org)
        # Auditors and regulators: the registered province, none = national (Bộ Y tế). Facilities: their
        # Organization's province (informational; their boundary is the Organization itself).
        jurisdiction = registered if role in ("regulator", "auditor") else (registered or province)
        claims: dict[str, Any] = {"role": role, "organization": org, "tier": tier, "jurisdiction": jurisdiction}
        if user is not None:
            claims["fhirUser"] = user.fhir_user
            claims["patient"] = user.patient
        return claims

    def grant_scope(self, requested: str | None, client: Client, user: User | None) -> str:
        claims = self.principal_claims(client, user)
        profile = self.policy.profile(claims["role"], claims["tier"])
        if profile is None:
            return ""
        allowed = client.get_allowed_scope(requested)
        if user is not None:
            allowed = " ".join(s for s in allowed.split() if s in user.scope.split() or _covers(user.scope, s))
        granted = intersect(allowed, profile.ceiling(), profile.contexts)
        if user is None or user.patient is None:
            granted = " ".join(s for s in granted.split() if s != "launch/patient")
        return granted

    def issue(self, client: Client, user: User | None, scope: str, lifetime: int | None = None
              ) -> tuple[str, dict[str, Any]]:
        claims = self.principal_claims(client, user)
        if claims.get("patient") and "launch/patient" not in scope.split() and user and user.role != "patient":
            claims["patient"] = None
        return issue_access_token(self.keys, issuer=self.context.issuer, audience=self.context.audience,
                                  client_id=client.client_id, subject=user.username if user else client.client_id,
                                  scope=scope, lifetime=lifetime or self.config.access_token_lifetime,
                                  claims=claims)

    def id_token(self, client: Client, user: User, nonce: str | None) -> str:
        key = self.keys.signing_key()
        now = int(time.time())
        claims = {"iss": self.context.issuer, "aud": client.client_id, "sub": user.username, "iat": now,
                  "exp": now + self.config.access_token_lifetime, "fhirUser": user.fhir_user,
                  "name": user.display_name}
        if nonce:
            claims["nonce"] = nonce
        return jwt.encode({"alg": "ES256", "kid": key.kid}, {k: v for k, v in claims.items() if v}, key)

    # -- authlib wiring --------------------------------------------------------------------------
    def _build_server(self) -> AuthorizationServer:
        svc = self
        server = AuthorizationServer(query_client=self.store.get_client, save_token=self._save_token)
        server.register_token_generator("default", _Generator(self))
        server.register_client_auth_method("private_key_jwt", _ClientAssertion(self))

        class ClientCredentials(grants.ClientCredentialsGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ("client_secret_basic", "private_key_jwt")

        class AuthorizationCode(grants.AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ENDPOINT_AUTH

            def save_authorization_code(self, code: str, request: Any) -> None:
                data = request.payload.data
                svc.store.save_code(
                    code, client_id=request.client.client_id, username=request.user.username,
                    redirect_uri=request.payload.redirect_uri or "",
                    scope=svc.grant_scope(request.payload.scope, request.client, request.user),
                    code_challenge=data.get("code_challenge"), code_challenge_method=data.get("code_challenge_method"),
                    nonce=data.get("nonce"), expires_at=int(time.time()) + 300)

            def query_authorization_code(self, code: str, client: Client) -> Any:
                return svc.store.get_code(code, client.client_id)

            def delete_authorization_code(self, authorization_code: Any) -> None:
                svc.store.delete_code(authorization_code.code_hash)

            def authenticate_user(self, authorization_code: Any) -> User | None:
                return svc.store.get_user(authorization_code.username)

        class RefreshGrant(grants.RefreshTokenGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ENDPOINT_AUTH
            INCLUDE_NEW_REFRESH_TOKEN = True  # rotation: the old one is revoked below

            def authenticate_refresh_token(self, refresh_token: str) -> RefreshToken | None:
                token = svc.store.get_refresh_token(refresh_token)
                if token is None or token.is_revoked() or token.is_expired():
                    return None
                return token

            def authenticate_user(self, refresh_token: RefreshToken) -> User | None:
                return svc.store.get_user(refresh_token.username) if refresh_token.username else None

            def revoke_old_credential(self, refresh_token: RefreshToken) -> None:
                svc.store.revoke_refresh_token(refresh_token.token_hash)

        server.register_grant(ClientCredentials)
        server.register_grant(AuthorizationCode, [_S256Only(required=True)])
        server.register_grant(RefreshGrant)
        server.register_endpoint(_Introspection(server, self))
        server.register_endpoint(_Revocation(server, self))
        return server

    def _save_token(self, token: dict[str, Any], request: Any) -> None:
        refresh = token.get("refresh_token")
        if refresh:
            user = getattr(request, "user", None)
            self.store.save_refresh_token(refresh, request.client.client_id, user.username if user else None,
                                          token.get("scope", ""), self.config.refresh_token_lifetime)


def _covers(registered: str, scope: str) -> bool:
    from auth.store import _covered

    return _covered(scope, set(registered.split()))


class _Generator(BearerTokenGenerator):
    def __init__(self, svc: AuthService) -> None:
        super().__init__(self._access, self._refresh, self._expires)
        self.svc = svc
        self._local = threading.local()

    def _access(self, client: Client, grant_type: str, user: User | None, scope: str) -> str:
        token, self._local.payload = self.svc.issue(client, user, scope)
        return token

    @staticmethod
    def _refresh(client: Client, grant_type: str, user: User | None, scope: str) -> str:
        return secrets.token_urlsafe(48)

    def _expires(self, client: Client, grant_type: str) -> int:
        return self.svc.config.access_token_lifetime

    def generate(self, grant_type: str, client: Client, user: User | None = None, scope: str | None = None,
                 expires_in: int | None = None, include_refresh_token: bool = True) -> dict[str, Any]:
        if grant_type == "refresh_token" or grant_type == "authorization_code":
            granted = self.svc.grant_scope(scope, client, user)  # already intersected: idempotent
        else:
            granted = self.svc.grant_scope(scope, client, None)
        wants_refresh = bool({"offline_access", "online_access"} & set(granted.split()))
        token: dict[str, Any] = super().generate(grant_type, client, user=user, scope=granted,
                                                 expires_in=expires_in,
                                                 include_refresh_token=include_refresh_token and wants_refresh)
        payload = getattr(self._local, "payload", {})
        if payload.get("patient"):
            token["patient"] = str(payload["patient"]).removeprefix("Patient/")
        if user is not None and {"openid", "fhirUser"} <= set(granted.split()):
            token["id_token"] = self.svc.id_token(client, user, None)
        return token


class _S256Only(CodeChallenge):
    """PKCE is required for every client, and only with S256."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ("S256",)

    def validate_code_challenge(self, grant: Any, redirect_uri: Any) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge with code_challenge_method=S256")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'")
        super().validate_code_verifier(grant, result)


class _ClientAssertion(JWTBearerClientAssertion):
    """private_key_jwt (RFC 7523 §2.2, SMART Backend Services): a client-signed JWT, used once."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, svc: AuthService) -> None:
        super().__init__(validate_jti=True, leeway=30)
        self.svc = svc

    def get_audiences(self) -> list[str]:
        issuer = self.svc.context.issuer
        return [f"{issuer}/token", issuer]

    def validate_jti(self, claims: Any, jti: str) -> bool:
        return self.svc.store.use_assertion(f"{claims['sub']}:{jti}", int(claims.get("exp", 0)))

    def resolve_client_public_key(self, client: Client) -> KeySet:
        if client.jwks:
            return KeySet.import_key_set(client.jwks)  # type: ignore[arg-type]
        if client.jwks_uri:
            import requests

            resp = requests.get(client.jwks_uri, timeout=5)
            resp.raise_for_status()
            return KeySet.import_key_set(resp.json())
        raise InvalidClientError(description="The client has no registered keys")

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> Any:
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=ASSERTION_ALGS)
        except JoseError as exc:
            raise InvalidClientError(description="The client assertion signature is invalid") from exc
        claims = token.claims
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or exp > time.time() + 300 + 30:
            raise InvalidClientError(description="The client assertion must expire within 5 minutes")
        self.verify_claims(claims)
        return claims


@dataclass
class _AccessToken:
    """A JWT access token as the introspection/revocation endpoints see it."""

    claims: dict[str, Any]
    revoked: bool

    def check_client(self, client: Client) -> bool:
        return bool(client.client_id == self.claims.get("client_id"))

    def is_expired(self) -> bool:
        return bool(self.claims.get("exp", 0) < time.time())

    def is_revoked(self) -> bool:
        return self.revoked

    def get_scope(self) -> str:
        return str(self.claims.get("scope", ""))


def _query(svc: AuthService, token: str, hint: str | None) -> Any:
    if hint != "refresh_token" and token.count(".") == 2:
        try:
            principal = svc.verifier.verify(token, svc.context.issuer, svc.context.audience, check_revoked=False)
        except InvalidToken:
            return None
        from joserfc import jws

        claims = json.loads(jws.extract_compact(token.encode()).payload)
        return _AccessToken(claims, svc.store.is_revoked(principal.token_id or ""))
    return svc.store.get_refresh_token(token)


class _TokenLookup:
    """What introspection (RFC 7662) and revocation (RFC 7009) share: client auth and token lookup."""

    CLIENT_AUTH_METHODS = ENDPOINT_AUTH

    def __init__(self, server: Any, svc: AuthService) -> None:
        super().__init__(server)  # type: ignore[call-arg]
        self.svc = svc

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        return _query(self.svc, token_string, token_type_hint)


class _Introspection(_TokenLookup, IntrospectionEndpoint):
    def check_permission(self, token: Any, client: Client, request: Any) -> bool:
        return bool(token.check_client(client) or client.role == "admin")

    def introspect_token(self, token: Any) -> dict[str, Any]:
        if isinstance(token, _AccessToken):
            c = token.claims
            names = ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "nbf", "jti", "role", "organization",
                     "tier", "jurisdiction", "fhirUser", "patient")
            out: dict[str, Any] = {k: c[k] for k in names if k in c}
            out["token_type"] = "Bearer"
            return out
        return {"active": True, "scope": token.scope, "client_id": token.client_id, "username": token.username,
                "exp": token.expires_at, "iat": token.issued_at, "token_type": "refresh_token"}


class _Revocation(_TokenLookup, RevocationEndpoint):
    def revoke_token(self, token: Any, request: Any) -> None:
        if isinstance(token, _AccessToken):
            jti = str(token.claims.get("jti"))
            self.svc.store.revoke_jti(jti, int(token.claims.get("exp", 0)))
            if self.svc.on_revoke is not None:
                self.svc.on_revoke(jti)
        else:
            self.svc.store.revoke_refresh_token(sha256_of(token))


def sha256_of(token: RefreshToken) -> str:
    return token.token_hash


__all__ = ["AuthService", "sha256"]
