"""OAuth flows over HTTP: client credentials (signed assertion / secret), authorization code + PKCE
through the login and consent pages, refresh, revocation, introspection, discovery, external IdP."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from authkit import (
    BASE,
    REDIRECT,
    World,
    authorize_url,
    basic,
    bearer,
    client_assertion,
    close_app,
    code_flow,
    database,
    make_world_app,
    new_key,
    pkce,
)
from conftest import BACKENDS
from joserfc import jwt
from joserfc.jwk import RSAKey

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture(scope="module", params=BACKENDS)
def world(request: Any, tmp_path_factory: Any) -> Iterator[World]:
    url, schema = database(request.param, tmp_path_factory.mktemp("flows"))
    app = make_world_app(url)
    w = World(app)
    w.url = url  # type: ignore[attr-defined]
    yield w
    close_app(app, schema)


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return data


def header_of(token: str) -> dict[str, Any]:
    head = token.split(".")[0]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    return data


def key_client(world: World, org: str = "Organization/org-p") -> tuple[str, Any]:
    key = new_key()
    client, secret = world.store.create_client(name="HIS with keys", scope="system/*.cruds", role="facility",
                                               organization=org, jwks={"keys": [key.as_dict(private=False)]})
    assert secret is None
    return client.client_id, key


def assertion_token(world: World, client_id: str, assertion: str, scope: str = "system/*.rs") -> Any:
    return world.client.post("/auth/token", data={"grant_type": "client_credentials", "scope": scope,
                                                  "client_assertion_type": ASSERTION_TYPE,
                                                  "client_assertion": assertion})


# -- discovery ------------------------------------------------------------------------------------
def test_smart_configuration_is_served_at_the_fhir_base_and_the_root(world: World) -> None:
    for path in ("/fhir/.well-known/smart-configuration", "/.well-known/smart-configuration"):
        doc = world.client.get(path).get_json()
        assert doc["token_endpoint"] == "http://localhost/auth/token"
        assert doc["code_challenge_methods_supported"] == ["S256"]
        assert "private_key_jwt" in doc["token_endpoint_auth_methods_supported"]
        assert "client-confidential-asymmetric" in doc["capabilities"]
        assert "permission-v2" in doc["capabilities"] and "permission-v1" in doc["capabilities"]


def test_oauth_metadata_and_jwks_publish_only_public_keys(world: World) -> None:
    meta = world.client.get("/.well-known/oauth-authorization-server").get_json()
    assert meta["issuer"] == "http://localhost/auth"
    assert meta["introspection_endpoint"].endswith("/auth/introspect")
    assert meta["revocation_endpoint"].endswith("/auth/revoke")
    keys = world.client.get("/auth/jwks").get_json()["keys"]
    assert keys and all("d" not in k and k["kty"] == "EC" and k["kid"] for k in keys)


def test_capability_statement_carries_the_smart_security_extension(world: World) -> None:
    cap = world.client.get("/fhir/metadata").get_json()
    security = cap["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    uris = {e["url"]: e["valueUri"] for e in security["extension"][0]["extension"]}
    assert uris["token"] == "http://localhost/auth/token" and uris["authorize"].endswith("/auth/authorize")


# -- default deny -----------------------------------------------------------------------------------
def test_a_request_without_a_token_gets_401_with_www_authenticate(world: World) -> None:
    resp = world.client.get("/fhir/Patient/pat-central")
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert resp.get_json()["issue"][0]["code"] == "login"
    assert world.client.get("/fhir/Appointment").status_code == 401
    assert world.client.post("/fhir", json={"resourceType": "Bundle", "type": "batch"}).status_code == 401


def test_only_the_public_directory_is_readable_without_a_token(world: World) -> None:
    assert world.client.get("/fhir/Organization/org-c").status_code == 200
    found = world.client.get("/fhir/PractitionerRole?_include=PractitionerRole:organization"
                             "&_revinclude=Appointment:actor").get_json()
    types = {e["resource"]["resourceType"] for e in found["entry"]}
    assert types <= {"PractitionerRole", "Organization"}  # no Appointment leaks through _revinclude
    assert world.client.get("/fhir/Medication").status_code == 401  # catalog: authenticated only


def test_a_basic_authorization_header_is_not_a_bearer_token(world: World) -> None:
    resp = world.client.get("/fhir/Patient", headers={"Authorization": "Basic eDp5"})
    assert resp.status_code == 401 and 'error="invalid_request"' in resp.headers["WWW-Authenticate"]


def test_the_fhir_api_ignores_the_browser_cookie(world: World) -> None:
    token = world.token("central")
    world.client.set_cookie("fhir_access_token", token, domain="localhost")
    try:
        assert world.client.get("/fhir/Patient/pat-central").status_code == 401
    finally:
        world.client.delete_cookie("fhir_access_token", domain="localhost")


# -- client credentials -----------------------------------------------------------------------------
def test_backend_services_client_credentials_with_a_signed_assertion(world: World) -> None:
    client_id, key = key_client(world)
    resp = assertion_token(world, client_id, client_assertion(key, client_id))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["token_type"] == "Bearer" and body["expires_in"] <= 900 and "refresh_token" not in body
    token = body["access_token"]
    assert header_of(token)["typ"] == "at+jwt" and header_of(token)["alg"] == "ES256"
    claims = claims_of(token)
    assert claims["aud"] == BASE and claims["iss"] == "http://localhost/auth" and claims["client_id"] == client_id
    assert claims["organization"] == "Organization/org-p" and claims["tier"] == "provincial"
    assert claims["jti"] and claims["exp"] - claims["iat"] <= 900
    assert world.client.get("/fhir/Patient/pat-provincial", headers=bearer(token)).status_code == 200


def test_a_replayed_client_assertion_is_refused(world: World) -> None:
    client_id, key = key_client(world)
    assertion = client_assertion(key, client_id)
    assert assertion_token(world, client_id, assertion).status_code == 200
    again = assertion_token(world, client_id, assertion)
    assert again.status_code in (400, 401) and again.get_json()["error"] == "invalid_client"


@pytest.mark.parametrize("case", ["wrong-audience", "foreign-key", "long-lived", "sub-differs"])
def test_bad_client_assertions_are_refused(world: World, case: str) -> None:
    client_id, key = key_client(world)
    if case == "wrong-audience":
        assertion = client_assertion(key, client_id, aud="http://elsewhere.example/token")
    elif case == "foreign-key":
        assertion = client_assertion(new_key(), client_id)
    elif case == "long-lived":
        assertion = client_assertion(key, client_id, exp=int(time.time()) + 3600)
    else:
        assertion = client_assertion(key, client_id, iss="someone-else")
    resp = assertion_token(world, client_id, assertion)
    assert resp.status_code in (400, 401) and resp.get_json()["error"] == "invalid_client"


def test_client_secret_basic(world: World) -> None:
    cid, secret = world.secrets["district"]
    ok = world.client.post("/auth/token", data={"grant_type": "client_credentials", "scope": "system/Patient.rs"},
                           headers=basic(cid, secret))
    assert ok.status_code == 200 and ok.get_json()["scope"] == "system/Patient.rs"
    bad = world.client.post("/auth/token", data={"grant_type": "client_credentials"}, headers=basic(cid, "wrong"))
    assert bad.status_code == 401 and bad.get_json()["error"] == "invalid_client"


def test_granted_scopes_are_requested_intersected_with_the_tier_ceiling(world: World) -> None:
    cid, secret = world.secrets["commune"]
    resp = world.client.post("/auth/token", headers=basic(cid, secret), data={
        "grant_type": "client_credentials", "scope": "system/MedicationRequest.cruds system/Appointment.write"})
    granted = resp.get_json()["scope"].split()
    # a commune station reads prescriptions but does not issue them (policy.toml); v1 .write → cud
    assert granted == ["system/Appointment.cud", "system/MedicationRequest.rs"]
    token = resp.get_json()["access_token"]
    mr = {"resourceType": "MedicationRequest", "status": "active", "intent": "order",
          "medicationCodeableConcept": {"text": "x"}, "subject": {"reference": "Patient/pat-commune"},
          "requester": {"reference": "PractitionerRole/role-commune"}}
    denied = world.client.post("/fhir/MedicationRequest", json=mr,
                               headers={**bearer(token), "Content-Type": "application/fhir+json"})
    assert denied.status_code == 403 and denied.get_json()["issue"][0]["code"] == "forbidden"


def test_v2_query_restricted_scopes_filter_search_and_read(world: World) -> None:
    cid, secret = world.secrets["central"]
    restricted = "system/Condition.rs?category=http://terminology.hl7.org/CodeSystem/condition-category|problem-list-item"
    token = world.client.post("/auth/token", headers=basic(cid, secret), data={
        "grant_type": "client_credentials", "scope": restricted}).get_json()["access_token"]
    # cond-central is an encounter-diagnosis: outside the restriction
    assert world.client.get("/fhir/Condition/cond-central", headers=bearer(token)).status_code == 404
    found = world.client.get("/fhir/Condition?_total=accurate", headers=bearer(token)).get_json()
    assert found["total"] == 0


# -- authorization code + PKCE, refresh, revocation, introspection --------------------------------------
def test_authorization_code_with_pkce_through_login_and_consent(world: World) -> None:
    fresh = world.app.test_client()
    data = code_flow(fresh, world.app_client_id, REDIRECT, "patient/*.rs launch/patient openid fhirUser "
                     "offline_access", "benhnhan", "mat-khau-1")
    assert data["patient"] == "pat-central"
    assert "refresh_token" in data and "id_token" in data
    assert claims_of(data["id_token"])["fhirUser"] == "Patient/pat-central"
    claims = claims_of(data["access_token"])
    assert claims["fhirUser"] == "Patient/pat-central" and claims["role"] == "patient"
    assert set(data["scope"].split()) >= {"launch/patient", "openid", "fhirUser", "offline_access"}
    token = data["access_token"]
    assert fresh.get("/fhir/Patient/pat-central", headers=bearer(token)).status_code == 200
    assert fresh.get("/fhir/Patient/pat-commune", headers=bearer(token)).status_code == 404
    assert fresh.get("/fhir/Appointment", headers=bearer(token)).get_json()["total"] == 1


def test_the_login_and_consent_pages_speak_vietnamese_and_english(world: World) -> None:
    fresh = world.app.test_client()
    _, challenge = pkce()
    url = authorize_url(world.app_client_id, REDIRECT, "patient/*.rs", challenge)
    vi = fresh.get(url).get_data(as_text=True)
    en = fresh.get(url, headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Mật khẩu" in vi and 'lang="vi"' in vi
    assert "Password" in en and 'lang="en"' in en
    wrong = fresh.post(url, data={"action": "login", "username": "benhnhan", "password": "sai"})
    assert wrong.status_code == 401 and "không đúng" in wrong.get_data(as_text=True)


@pytest.mark.parametrize("case", ["missing", "plain"])
def test_pkce_s256_is_required(world: World, case: str) -> None:
    fresh = world.app.test_client()
    url = authorize_url(world.app_client_id, REDIRECT, "patient/*.rs", "x" * 43)
    url = url.replace("&code_challenge=" + "x" * 43, "") if case == "missing" else url.replace("S256", "plain")
    resp = fresh.get(url)
    assert resp.status_code == 400 and "code_challenge" in resp.get_data(as_text=True)


def test_a_wrong_code_verifier_and_a_reused_code_are_refused(world: World) -> None:
    import re

    fresh = world.app.test_client()
    verifier, challenge = pkce()
    url = authorize_url(world.app_client_id, REDIRECT, "patient/*.rs", challenge)
    consent = fresh.post(url, data={"action": "login", "username": "benhnhan", "password": "mat-khau-1"})
    csrf = re.search(r'name="csrf" value="([^"]+)"', consent.get_data(as_text=True))
    assert csrf
    done = fresh.post(url, data={"action": "allow", "csrf": csrf.group(1)})
    code = parse_qs(urlsplit(done.headers["Location"]).query)["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "client_id": world.app_client_id}
    wrong = fresh.post("/auth/token", data={**form, "code_verifier": "y" * 50})
    assert wrong.status_code == 400 and wrong.get_json()["error"] == "invalid_grant"
    right = fresh.post("/auth/token", data={**form, "code_verifier": verifier})
    assert right.status_code == 200, right.get_data(as_text=True)
    again = fresh.post("/auth/token", data={**form, "code_verifier": verifier})
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"


def test_denying_consent_returns_access_denied(world: World) -> None:
    import re

    fresh = world.app.test_client()
    _, challenge = pkce()
    url = authorize_url(world.app_client_id, REDIRECT, "patient/*.rs", challenge)
    consent = fresh.post(url, data={"action": "login", "username": "benhnhan", "password": "mat-khau-1"})
    csrf = re.search(r'name="csrf" value="([^"]+)"', consent.get_data(as_text=True))
    assert csrf
    forged = fresh.post(url, data={"action": "allow", "csrf": "forged"})
    assert forged.status_code == 400
    done = fresh.post(url, data={"action": "deny", "csrf": csrf.group(1)})
    assert done.status_code == 302 and "error=access_denied" in done.headers["Location"]


def test_refresh_rotates_the_refresh_token(world: World) -> None:
    data = code_flow(world.app.test_client(), world.app_client_id, REDIRECT, "patient/*.rs offline_access",
                     "benhnhan", "mat-khau-1")
    form = {"grant_type": "refresh_token", "refresh_token": data["refresh_token"], "client_id": world.app_client_id}
    first = world.client.post("/auth/token", data=form)
    assert first.status_code == 200, first.get_data(as_text=True)
    renewed = first.get_json()
    assert renewed["access_token"] != data["access_token"] and renewed["refresh_token"] != data["refresh_token"]
    assert world.client.get("/fhir/Patient/pat-central", headers=bearer(renewed["access_token"])).status_code == 200
    replay = world.client.post("/auth/token", data=form)
    assert replay.status_code == 400 and replay.get_json()["error"] == "invalid_grant"


def test_revoking_an_access_token_and_a_refresh_token(world: World) -> None:
    data = code_flow(world.app.test_client(), world.app_client_id, REDIRECT, "patient/*.rs offline_access",
                     "benhnhan", "mat-khau-1")
    token = data["access_token"]
    assert world.client.get("/fhir/Patient/pat-central", headers=bearer(token)).status_code == 200
    for value in (token, data["refresh_token"]):
        resp = world.client.post("/auth/revoke", data={"token": value, "client_id": world.app_client_id})
        assert resp.status_code == 200
    denied = world.client.get("/fhir/Patient/pat-central", headers=bearer(token))
    assert denied.status_code == 401 and "revoked" in denied.get_json()["issue"][0]["diagnostics"]
    refresh = world.client.post("/auth/token", data={"grant_type": "refresh_token", "client_id": world.app_client_id,
                                                     "refresh_token": data["refresh_token"]})
    assert refresh.status_code == 400


def test_introspection(world: World) -> None:
    cid, secret = world.secrets["central"]
    token = world.client.post("/auth/token", headers=basic(cid, secret), data={
        "grant_type": "client_credentials", "scope": "system/Patient.rs"}).get_json()["access_token"]
    active = world.client.post("/auth/introspect", data={"token": token}, headers=basic(cid, secret)).get_json()
    assert active["active"] is True and active["scope"] == "system/Patient.rs" and active["client_id"] == cid
    assert active["organization"] == "Organization/org-c" and active["tier"] == "central"
    garbage = world.client.post("/auth/introspect", data={"token": "nope"}, headers=basic(cid, secret)).get_json()
    assert garbage == {"active": False}
    world.client.post("/auth/revoke", data={"token": token}, headers=basic(cid, secret))
    revoked = world.client.post("/auth/introspect", data={"token": token}, headers=basic(cid, secret)).get_json()
    assert revoked["active"] is False
    other_cid, other_secret = world.secrets["commune"]
    fresh = world.client.post("/auth/token", headers=basic(cid, secret), data={
        "grant_type": "client_credentials", "scope": "system/Patient.rs"}).get_json()["access_token"]
    assert world.client.post("/auth/introspect", data={"token": fresh},
                             headers=basic(other_cid, other_secret)).get_json()["active"] is False


def test_key_rotation_keeps_old_tokens_valid(world: World) -> None:
    old = world.token("central", "system/Patient.rs")
    kid = world.svc.auth.keys.rotate()
    new = world.client.post("/auth/token", headers=basic(*world.secrets["central"]), data={
        "grant_type": "client_credentials", "scope": "system/Patient.rs"}).get_json()["access_token"]
    assert header_of(new)["kid"] == kid != header_of(old)["kid"]
    kids = {k["kid"] for k in world.client.get("/auth/jwks").get_json()["keys"]}
    assert {kid, header_of(old)["kid"]} <= kids
    for token in (old, new):
        assert world.client.get("/fhir/Patient/pat-central", headers=bearer(token)).status_code == 200


# -- the cookie login for browser pages (CONTRACTS.md B) ----------------------------------------------------
def test_login_sets_a_strict_httponly_cookie_and_redirects_to_a_local_next(world: World) -> None:
    world.store.create_user(username="bs-an", password="pw-12345", role="facility",
                            organization="Organization/org-p", fhir_user="Practitioner/prac-provincial",
                            scope="user/*.cruds")
    fresh = world.app.test_client()
    form = fresh.get("/auth/login?next=/dashboard/")
    assert form.status_code == 200 and 'name="password"' in form.get_data(as_text=True)
    bad = fresh.post("/auth/login?next=/dashboard/", data={"username": "bs-an", "password": "x"})
    assert bad.status_code == 401
    ok = fresh.post("/auth/login?next=/dashboard/", data={"username": "bs-an", "password": "pw-12345"})
    assert ok.status_code == 303 and ok.headers["Location"].endswith("/dashboard/")
    cookie = ok.headers["Set-Cookie"]
    assert cookie.startswith("fhir_access_token=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    token = cookie.split(";")[0].split("=", 1)[1]
    claims = claims_of(token)
    assert claims["fhirUser"] == "Practitioner/prac-provincial" and claims["tier"] == "provincial"
    assert fresh.get("/fhir/Patient/pat-provincial", headers=bearer(token)).status_code == 200
    evil = fresh.post("/auth/login?next=//evil.example/", data={"username": "bs-an", "password": "pw-12345"})
    assert evil.headers["Location"] in ("/", "http://localhost/")


# -- resource-server mode: an external identity provider ------------------------------------------------------
def test_tokens_of_an_external_identity_provider(world: World, tmp_path: Path) -> None:
    idp_key = RSAKey.generate_key(2048, parameters={"kid": "idp-1", "alg": "RS256"}, private=True)
    jwks = tmp_path / "idp-jwks.json"
    jwks.write_text(json.dumps({"keys": [idp_key.as_dict(private=False)]}))
    issuer, audience = "https://idp.soyte.example/realms/dong-nai", "https://fhir.example/fhir"
    app = make_world_app(world.url, extra={"auth": {  # type: ignore[attr-defined]
        "external_issuer": issuer, "external_jwks_file": str(jwks), "external_audience": audience}})
    client = app.test_client()
    now = int(time.time())

    def token(**over: Any) -> str:
        claims = {"iss": issuer, "aud": audience, "sub": "u-1", "azp": "his-dong-nai", "iat": now, "exp": now + 300,
                  "jti": f"ext-{time.time_ns()}", "scope": "system/*.rs", "organization": "Organization/org-p",
                  **over}
        return jwt.encode({"alg": "RS256", "kid": "idp-1"}, claims, idp_key)

    good = token()
    assert client.get("/fhir/Patient/pat-provincial", headers=bearer(good)).status_code == 200
    assert client.get("/fhir/Patient/pat-commune", headers=bearer(good)).status_code == 404  # same boundary rules
    assert client.get("/fhir/Patient/pat-provincial", headers=bearer(token(aud="https://other/"))).status_code == 401
    admin = token(role="admin", organization=None)
    assert client.get("/fhir/Patient/pat-commune", headers=bearer(admin)).status_code == 401
    forged_key = RSAKey.generate_key(2048, parameters={"kid": "idp-1"}, private=True)
    forged = jwt.encode({"alg": "RS256", "kid": "idp-1"}, claims_of(good), forged_key)
    assert client.get("/fhir/Patient/pat-provincial", headers=bearer(forged)).status_code == 401
    close_app(app)


def test_repeated_failed_sign_ins_lock_the_username_for_a_while(world: World) -> None:
    from auth.store import MAX_LOGIN_FAILURES

    world.store.create_user(username="bs-khoa", password="pw-67890", role="facility",
                            organization="Organization/org-p", fhir_user="Practitioner/prac-provincial",
                            scope="user/*.cruds")
    fresh = world.app.test_client()
    for _ in range(MAX_LOGIN_FAILURES):
        assert fresh.post("/auth/login", data={"username": "bs-khoa", "password": "guess"}).status_code == 401
    locked = fresh.post("/auth/login?lang=en", data={"username": "bs-khoa", "password": "pw-67890"})
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0  # even the right password
    assert "Too many failed sign-ins" in locked.get_data(as_text=True)
    vi = fresh.post("/auth/login?lang=vi", data={"username": "bs-khoa", "password": "pw-67890"})
    assert vi.status_code == 429 and "Đăng nhập sai quá nhiều lần" in vi.get_data(as_text=True)
    # another username is not affected; a success clears the count of failures before it
    world.store.create_user(username="bs-lan", password="pw-24680", role="facility",
                            organization="Organization/org-p", fhir_user="Practitioner/prac-provincial",
                            scope="user/*.cruds")
    for _ in range(MAX_LOGIN_FAILURES - 1):
        assert fresh.post("/auth/login", data={"username": "bs-lan", "password": "guess"}).status_code == 401
    assert fresh.post("/auth/login", data={"username": "bs-lan", "password": "pw-24680"}).status_code == 303
    assert fresh.post("/auth/login", data={"username": "bs-lan", "password": "guess"}).status_code == 401
    assert fresh.post("/auth/login", data={"username": "bs-lan", "password": "pw-24680"}).status_code == 303


def test_unknown_usernames_are_throttled_like_known_ones(world: World) -> None:
    from auth.store import MAX_LOGIN_FAILURES

    fresh = world.app.test_client()
    for _ in range(MAX_LOGIN_FAILURES):
        assert fresh.post("/auth/login", data={"username": "no-such-user", "password": "x"}).status_code == 401
    assert fresh.post("/auth/login", data={"username": "no-such-user", "password": "x"}).status_code == 429
