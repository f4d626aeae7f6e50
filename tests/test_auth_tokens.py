"""Bad access tokens are refused with 401, WWW-Authenticate error="invalid_token" and an OperationOutcome.

Each forged token is made at test time with real keys: the server's own signing key (read from
its key table, as an attacker who stole nothing would not have it: this proves the claim checks,
not the signature), a key the server does not know, and the public key misused as an HMAC secret.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from authkit import BASE, World, bearer, close_app, database, make_world_app
from conftest import BACKENDS
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey


@pytest.fixture(scope="module", params=BACKENDS)
def world(request: Any, tmp_path_factory: Any) -> Iterator[World]:
    url, schema = database(request.param, tmp_path_factory.mktemp("tokens"))
    app = make_world_app(url)
    yield World(app)
    close_app(app, schema)


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def good_claims(world: World, **over: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": "http://localhost/auth", "aud": BASE, "sub": "x", "client_id": world.secrets["central"][0],
            "iat": now, "nbf": now, "exp": now + 300, "jti": f"j-{time.time_ns()}", "scope": "system/*.rs",
            "role": "facility", "organization": "Organization/org-c", "tier": "central", **over}


def signed(world: World, claims: dict[str, Any]) -> str:
    key = world.svc.auth.keys.signing_key()
    return jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": key.kid}, claims, key)


def forge(world: World, case: str) -> str:
    now = int(time.time())
    if case == "expired":
        return signed(world, good_claims(world, iat=now - 3600, nbf=now - 3600, exp=now - 600))
    if case == "not-yet-valid":
        return signed(world, good_claims(world, nbf=now + 600, exp=now + 900))
    if case == "wrong-audience":
        return signed(world, good_claims(world, aud="https://other-server.example/fhir"))
    if case == "wrong-issuer":
        return signed(world, good_claims(world, iss="https://evil.example/auth"))
    if case == "alg-none":
        return f"{b64({'alg': 'none', 'typ': 'at+jwt'})}.{b64(good_claims(world))}."
    if case == "unknown-key":
        key = ECKey.generate_key("P-256", parameters={"kid": "not-ours"}, private=True)
        return jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": "not-ours"}, good_claims(world), key)
    if case == "our-kid-other-key":
        kid = world.svc.auth.keys.signing_key().kid
        key = ECKey.generate_key("P-256", parameters={"kid": kid}, private=True)
        return jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": kid}, good_claims(world), key)
    if case == "hs256-with-public-key":
        public = world.svc.auth.keys.signing_key()
        secret = OctKey.import_key(json.dumps(public.as_dict(private=False)).encode())
        return jwt.encode({"alg": "HS256", "typ": "at+jwt", "kid": public.kid}, good_claims(world), secret,
                          algorithms=["HS256"])
    if case == "tampered-payload":
        head, _payload, sig = signed(world, good_claims(world)).split(".")
        return f"{head}.{b64(good_claims(world, role='admin', organization=None))}.{sig}"
    if case == "revoked":
        token = world.token("central", "system/Patient.rs")
        cid, secret = world.secrets["central"]
        from authkit import basic

        assert world.client.post("/auth/revoke", data={"token": token}, headers=basic(cid, secret)).status_code == 200
        return token
    if case == "garbage":
        return "not.a.jwt"
    raise AssertionError(case)


CASES = ["expired", "not-yet-valid", "wrong-audience", "wrong-issuer", "alg-none", "unknown-key",
         "our-kid-other-key", "hs256-with-public-key", "tampered-payload", "revoked", "garbage"]


def test_a_well_formed_token_is_accepted(world: World) -> None:
    assert world.client.get("/fhir/Patient/pat-central", headers=bearer(signed(world, good_claims(world)))
                            ).status_code == 200


@pytest.mark.parametrize("case", CASES)
def test_a_bad_token_is_refused(world: World, case: str) -> None:
    resp = world.client.get("/fhir/Patient/pat-central", headers=bearer(forge(world, case)))
    assert resp.status_code == 401, resp.get_data(as_text=True)
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]
    body = resp.get_json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["code"] == "login"
    assert "pat-central" not in resp.get_data(as_text=True)
