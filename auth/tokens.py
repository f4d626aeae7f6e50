"""JWT access tokens (RFC 9068): issue with the server key, verify ours and an external IdP's.

Verification accepts only asymmetric algorithms (ES256 ours; RS256/ES256 external), so
`alg: none` and HS256-with-the-public-key are refused before any key is used.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.util import to_bytes

from auth.config import AuthConfig
from auth.keys import ALG, KeyStore
from fhir_server.principal import Principal

EXTERNAL_ALGS = ["RS256", "ES256"]
EXTERNAL_ROLES = ("facility", "patient", "auditor", "regulator")


class InvalidToken(Exception):
    def __init__(self, en: str, vi: str) -> None:
        super().__init__(en)
        self.en, self.vi = en, vi


def issue_access_token(keys: KeyStore, *, issuer: str, audience: str, client_id: str, subject: str, scope: str,
                       lifetime: int, claims: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    key = keys.signing_key()
    now = int(time.time())
    payload = {"iss": issuer, "aud": audience, "sub": subject, "client_id": client_id, "iat": now, "nbf": now,
               "exp": now + lifetime, "jti": secrets.token_urlsafe(16), "scope": scope,
               **{k: v for k, v in claims.items() if v is not None}}
    header = {"alg": ALG, "typ": "at+jwt", "kid": key.kid}
    return jwt.encode(header, payload, key), payload


def principal_from_claims(claims: dict[str, Any], scopes: str | None = None) -> Principal:
    return Principal(
        client_id=str(claims.get("client_id") or claims.get("azp") or claims.get("sub") or ""),
        role=str(claims.get("role") or "facility"), organization=claims.get("organization"),
        tier=claims.get("tier"), jurisdiction=claims.get("jurisdiction"), user=claims.get("fhirUser"),
        patient=claims.get("patient"),
        scopes=frozenset((scopes if scopes is not None else str(claims.get("scope") or "")).split()),
        token_id=claims.get("jti"))


class ExternalKeys:
    """The external IdP's JWKS, from a file or a URL (cached; refetched for an unknown kid)."""

    def __init__(self, url: str | None, file: str | None, ttl: float = 300.0) -> None:
        self.url, self.file, self.ttl = url, file, ttl
        self._keys: KeySet | None = None
        self._at = 0.0
        self._lock = threading.Lock()

    def _fetch(self) -> KeySet:
        if self.file:
            data = json.loads(Path(self.file).read_text())
        else:
            import requests

            assert self.url
            resp = requests.get(self.url, timeout=5)
            resp.raise_for_status()
            data = resp.json()
        return KeySet.import_key_set(data)

    def get(self, kid: str | None) -> Any:
        with self._lock:
            stale = self._keys is None or time.monotonic() - self._at > self.ttl
            if stale or (kid and not any(k.kid == kid for k in self._keys.keys)  # type: ignore[union-attr]
                         and time.monotonic() - self._at > 10):
                self._keys = self._fetch()
                self._at = time.monotonic()
            assert self._keys is not None
            if kid is None:
                return self._keys
            for k in self._keys.keys:
                if k.kid == kid:
                    return k
            return None


class TokenVerifier:
    def __init__(self, keys: KeyStore, config: AuthConfig, is_revoked: Callable[[str], bool],
                 org_facts: Callable[[str | None], tuple[str | None, str | None]]) -> None:
        self.keys = keys
        self.config = config
        self.is_revoked = is_revoked
        self.org_facts = org_facts
        self.external = (ExternalKeys(config.external_jwks_url, config.external_jwks_file)
                         if config.external_issuer and (config.external_jwks_url or config.external_jwks_file)
                         else None)

    def verify(self, token: str, issuer: str, audience: str, check_revoked: bool = True) -> Principal:
        try:
            compact = jws.extract_compact(to_bytes(token))
            header = compact.headers()
            unverified = json.loads(compact.payload)
        except (JoseError, ValueError, UnicodeDecodeError) as exc:
            raise InvalidToken("The access token is malformed", "Mã truy cập không đúng định dạng") from exc
        if not isinstance(unverified, dict):
            raise InvalidToken("The access token is malformed", "Mã truy cập không đúng định dạng")
        alg = header.get("alg")
        if self.external is not None and unverified.get("iss") == self.config.external_issuer:
            return self._verify_external(token, header, check_revoked)
        if alg != ALG:
            raise InvalidToken(f"Signature algorithm '{alg}' is not accepted",
                               f"Không chấp nhận thuật toán chữ ký '{alg}'")
        if header.get("typ") not in ("at+jwt", "application/at+jwt"):
            raise InvalidToken("Not an access token (typ must be at+jwt)",
                               "Không phải mã truy cập (typ phải là at+jwt)")
        key = self.keys.verification_key(header.get("kid"))
        if key is None:
            raise InvalidToken("The token is signed by an unknown key", "Mã được ký bằng khóa không rõ")
        claims = self._decode(token, key, [ALG], issuer, self.config.audience or audience)
        jti = claims.get("jti")
        if not jti:
            raise InvalidToken("The token has no jti", "Mã không có jti")
        if check_revoked and self.is_revoked(str(jti)):
            raise InvalidToken("The token has been revoked", "Mã đã bị thu hồi")
        return principal_from_claims(claims)

    def _decode(self, token: str, key: Any, algs: list[str], issuer: str, audience: str) -> dict[str, Any]:
        try:
            claims = jwt.decode(token, key, algorithms=algs).claims
        except JoseError as exc:
            raise InvalidToken("The token signature is invalid", "Chữ ký của mã không hợp lệ") from exc
        registry = jwt.JWTClaimsRegistry(
            leeway=self.config.leeway, iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": audience}, exp={"essential": True})
        try:
            registry.validate(claims)
        except JoseError as exc:
            name = getattr(exc, "claim", None) or getattr(exc, "error", "claims")
            raise InvalidToken(f"The token is not valid here ({name}: {exc.description})",
                               f"Mã không hợp lệ tại máy chủ này ({name})") from exc
        now = time.time()
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and nbf > now + self.config.leeway:
            raise InvalidToken("The token is not valid yet", "Mã chưa có hiệu lực")
        iat = claims.get("iat")
        if isinstance(iat, int | float) and iat > now + self.config.leeway:
            raise InvalidToken("The token was issued in the future", "Mã được phát hành ở tương lai")
        return dict(claims)

    def _verify_external(self, token: str, header: dict[str, Any], check_revoked: bool) -> Principal:
        assert self.external is not None and self.config.external_issuer
        if header.get("alg") not in EXTERNAL_ALGS:
            raise InvalidToken(f"Signature algorithm '{header.get('alg')}' is not accepted",
                               f"Không chấp nhận thuật toán chữ ký '{header.get('alg')}'")
        try:
            key = self.external.get(header.get("kid"))
        except Exception as exc:  # the IdP's JWKS is unreachable
            raise InvalidToken("The identity provider's keys are unavailable",
                               "Không lấy được khóa của nhà cung cấp định danh") from exc
        if key is None:
            raise InvalidToken("The token is signed by an unknown key", "Mã được ký bằng khóa không rõ")
        claims = self._decode(token, key, EXTERNAL_ALGS, self.config.external_issuer,
                              self.config.external_audience or "")
        jti = claims.get("jti")
        if check_revoked and jti and self.is_revoked(str(jti)):
            raise InvalidToken("The token has been revoked", "Mã đã bị thu hồi")
        org = claims.get(self.config.external_org_claim)
        tier, province = self.org_facts(org)
        scope = claims.get("scope")
        if scope is None and isinstance(claims.get("scp"), list):
            scope = " ".join(claims["scp"])
        role = str(claims.get(self.config.external_role_claim) or "facility")
        if role not in EXTERNAL_ROLES:  # admin is only ever registered here, never asserted by another IdP
            raise InvalidToken(f"Role '{role}' is not accepted from an external identity provider",
                               f"Không chấp nhận vai trò '{role}' từ nhà cung cấp định danh bên ngoài")
        jurisdiction = claims.get("jurisdiction")
        if role not in ("regulator", "auditor"):
            jurisdiction = jurisdiction or province
        return Principal(
            client_id=str(claims.get("client_id") or claims.get("azp") or claims.get("sub") or ""),
            role=role, organization=org, tier=tier, jurisdiction=jurisdiction, user=claims.get("fhirUser"),
            patient=claims.get("patient"), scopes=frozenset(str(scope or "").split()), token_id=jti)
