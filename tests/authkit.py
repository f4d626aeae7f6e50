"""Helpers for the authorization tests: a small world of facilities of every tier, clients, tokens.

Everything goes through HTTP (Flask test client) except registering clients and users, which
uses the same store the `python -m auth` commands use. Keys are generated at run time.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import ECKey

from fhir_server.settings import Settings

TIER = "http://fhir.vntelehealth.org/r4/CodeSystem/facility-tier"
PROVINCE = "http://fhir.vntelehealth.org/r4/StructureDefinition/address-province"
FHIR = "application/fhir+json"
BASE = "http://localhost/fhir"
TOKEN_URL = "http://localhost/auth/token"

# facility key → (Organization id, tier or None, province)
FACILITIES = {
    "central": ("org-c", "central", "79"),
    "provincial": ("org-p", "provincial", "75"),
    "district": ("org-d", "district", "75"),
    "commune": ("org-m", "commune", "51"),
    "untiered": ("org-u", None, "75"),
}


def auth_settings(url: str, **extra: Any) -> Settings:
    return Settings(database_url=url, secret_key="test-secret", auth_enabled=True, audit_enabled=True,
                    public_directory=True, **extra)


def organization(org_id: str, tier: str | None, province: str) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "Organization", "id": org_id, "name": f"Cơ sở {org_id}",
                           "address": [{"state": f"Tỉnh {province}", "extension": [
                               {"url": PROVINCE, "valueCoding": {
                                   "system": "http://fhir.vntelehealth.org/r4/CodeSystem/province",
                                   "code": province}}]}]}
    if tier:
        res["type"] = [{"coding": [{"system": TIER, "code": tier}]}]
    return res


def ref(target: str) -> dict[str, str]:
    return {"reference": target}


def owned(res_type: str, k: str) -> dict[str, Any]:
    """A valid resource of `res_type` that belongs to facility key `k` (its links reach Organization/org-k)."""
    org = f"Organization/{FACILITIES[k][0]}" if k in FACILITIES else "Organization/org-c"
    role, pat, enc = f"PractitionerRole/role-{k}", f"Patient/pat-{k}", f"Encounter/enc-{k}"
    when = "2026-12-01T08:00:00+07:00"
    bodies: dict[str, dict[str, Any]] = {
        "Organization": {"name": "Khoa mới", "partOf": ref(org)},
        "Practitioner": {"name": [{"family": "Nguyễn", "given": ["An"]}]},
        "PractitionerRole": {"organization": ref(org), "practitioner": ref(f"Practitioner/prac-{k}")},
        "Location": {"name": "Phòng khám từ xa", "managingOrganization": ref(org)},
        "HealthcareService": {"providedBy": ref(org), "name": "Hội chẩn từ xa"},
        "Schedule": {"actor": [ref(role)]},
        "Slot": {"schedule": ref(f"Schedule/sch-{k}"), "status": "free", "start": when,
                 "end": "2026-12-01T08:30:00+07:00"},
        "OrganizationAffiliation": {"organization": ref(org), "participatingOrganization": ref("Organization/org-x")},
        "Patient": {"managingOrganization": ref(org), "name": [{"family": "Lê", "given": ["Mẫu"]}]},
        "Appointment": {"status": "booked", "participant": [{"actor": ref(role), "status": "accepted"},
                                                            {"actor": ref(pat), "status": "accepted"}]},
        "Encounter": {"status": "finished", "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                                      "code": "VR"},
                      "subject": ref(pat), "serviceProvider": ref(org)},
        "Condition": {"subject": ref(pat), "asserter": ref(role), "encounter": ref(enc), "code": {"text": "Đau ngực"},
                      "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                                "code": "encounter-diagnosis"}]}]},
        "MedicationRequest": {"status": "active", "intent": "order", "medicationCodeableConcept": {"text": "Aspirin"},
                              "subject": ref(pat), "requester": ref(role), "encounter": ref(enc)},
        "DocumentReference": {"status": "current", "custodian": ref(org), "subject": ref(pat),
                              "content": [{"attachment": {"contentType": "text/plain", "data": "eA=="}}]},
        "Composition": {"status": "final", "type": {"text": "Consult note"}, "date": when, "title": "Biên bản",
                        "author": [ref(role)], "subject": ref(pat), "encounter": ref(enc)},
        "Provenance": {"target": [ref(f"Composition/comp-{k}")], "recorded": when, "agent": [{"who": ref(role)}]},
        "AuditEvent": {"type": {"code": "rest"}, "recorded": when, "agent": [{"who": ref(org), "requestor": True}],
                       "source": {"observer": {"display": "test"}}},
        "Bundle": {"type": "collection"},
        "Medication": {"code": {"text": "Paracetamol 500 mg"}},
        "StructureDefinition": {"url": f"http://example.org/sd/{k}", "name": "X", "status": "draft",
                                "kind": "resource", "abstract": False, "type": "Patient"},
        "SearchParameter": {"url": f"http://example.org/sp/{k}", "name": "x", "status": "draft",
                            "description": "x", "code": f"x{k}", "base": ["Patient"], "type": "token"},
        "CodeSystem": {"status": "draft", "content": "not-present"},
        "ValueSet": {"status": "draft"},
        "OperationDefinition": {"name": "x", "status": "draft", "kind": "operation", "code": "x", "system": False,
                                "type": False, "instance": False},
        "CapabilityStatement": {"status": "draft", "date": "2026-01-01", "kind": "instance", "fhirVersion": "4.0.1",
                                "format": ["json"]},
        "Measure": {"url": f"http://example.org/measure/{k}", "name": "X", "status": "draft"},
        "MeasureReport": {"status": "complete", "type": "summary", "measure": f"http://example.org/measure/{k}",
                          "period": {"start": "2026-11-01", "end": "2026-11-30"}},
    }
    return {"resourceType": res_type, **bodies[res_type]}


PER_FACILITY = ["Organization", "Practitioner", "PractitionerRole", "Location", "HealthcareService", "Schedule",
                "Slot", "OrganizationAffiliation", "Patient", "Appointment", "Encounter", "Condition",
                "MedicationRequest", "DocumentReference", "Composition", "Provenance", "AuditEvent", "Bundle",
                "Medication", "StructureDefinition", "SearchParameter", "CodeSystem", "ValueSet",
                "OperationDefinition", "CapabilityStatement", "Measure", "MeasureReport"]
ID_PREFIX = {"Organization": "org", "Practitioner": "prac", "PractitionerRole": "role", "Location": "loc",
             "HealthcareService": "hs", "Schedule": "sch", "Slot": "slot", "OrganizationAffiliation": "aff",
             "Patient": "pat", "Appointment": "appt", "Encounter": "enc", "Condition": "cond",
             "MedicationRequest": "mr", "DocumentReference": "doc", "Composition": "comp", "Provenance": "prov",
             "AuditEvent": "ae", "Bundle": "bun", "Medication": "med", "StructureDefinition": "sd",
             "SearchParameter": "sp", "CodeSystem": "cs", "ValueSet": "vs", "OperationDefinition": "od",
             "CapabilityStatement": "cap", "Measure": "measure", "MeasureReport": "mreport"}


def world_id(res_type: str, k: str) -> str:
    if res_type == "Organization":
        return FACILITIES[k][0]
    return f"{ID_PREFIX[res_type]}-{k}"


def world_bundle() -> dict[str, Any]:
    entries = []
    for k, (org_id, tier, province) in FACILITIES.items():
        for t in PER_FACILITY:
            if t == "CapabilityStatement":
                continue  # read-only type: nobody writes one
            res = organization(org_id, tier, province) if t == "Organization" else owned(t, k)
            rid = world_id(t, k)
            if t == "AuditEvent":  # append-only: created, never PUT
                entries.append({"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": res,
                                "request": {"method": "POST", "url": t}})
                continue
            entries.append({"resource": {**res, "id": rid}, "request": {"method": "PUT", "url": f"{t}/{rid}"}})
    entries.append({"resource": organization("org-x", None, "01"), "request": {"method": "PUT",
                                                                               "url": "Organization/org-x"}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


# -- tokens ------------------------------------------------------------------------------------
def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept": FHIR}


def client_credentials(client: Any, client_id: str, secret: str, scope: str) -> dict[str, Any]:
    resp = client.post("/auth/token", data={"grant_type": "client_credentials", "scope": scope},
                       headers=basic(client_id, secret))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    data: dict[str, Any] = resp.get_json()
    return data


def new_key() -> ECKey:
    return ECKey.generate_key("P-384", parameters={"kid": secrets.token_hex(4), "alg": "ES384", "use": "sig"},
                              private=True)


def client_assertion(key: ECKey, client_id: str, aud: str = TOKEN_URL, **over: Any) -> str:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": aud, "exp": now + 240, "jti": uuid.uuid4().hex, **over}
    return jwt.encode({"alg": "ES384", "kid": key.kid, "typ": "JWT"}, claims, key, algorithms=["ES384"])


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def authorize_url(client_id: str, redirect_uri: str, scope: str, challenge: str, state: str = "s1",
                  **extra: str) -> str:
    return "/auth/authorize?" + urlencode({"response_type": "code", "client_id": client_id,
                                           "redirect_uri": redirect_uri, "scope": scope, "state": state,
                                           "code_challenge": challenge, "code_challenge_method": "S256",
                                           "aud": BASE, **extra})


def code_flow(client: Any, client_id: str, redirect_uri: str, scope: str, username: str, password: str,
              secret: str | None = None) -> dict[str, Any]:
    """Authorization code + PKCE through the login and consent pages; returns the token response."""
    verifier, challenge = pkce()
    url = authorize_url(client_id, redirect_uri, scope, challenge)
    page = client.get(url)
    assert page.status_code == 200, page.get_data(as_text=True)
    consent = page
    if 'name="password"' in page.get_data(as_text=True):  # no sign-in session yet
        consent = client.post(url, data={"action": "login", "username": username, "password": password})
    html = consent.get_data(as_text=True)
    assert consent.status_code == 200, html
    csrf = re.search(r'name="csrf" value="([^"]+)"', html)
    assert csrf, html
    done = client.post(url, data={"action": "allow", "csrf": csrf.group(1)})
    assert done.status_code == 302, done.get_data(as_text=True)
    query = parse_qs(urlsplit(done.headers["Location"]).query)
    assert query["state"] == ["s1"]
    form = {"grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": redirect_uri,
            "code_verifier": verifier}
    headers = basic(client_id, secret) if secret else {}
    if not secret:
        form["client_id"] = client_id
    resp = client.post("/auth/token", data=form, headers=headers)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    data: dict[str, Any] = resp.get_json()
    return data


# -- a module-scoped world: app + data + one client per profile -----------------------------------
PROFILES = ["central", "provincial", "district", "commune", "untiered", "patient", "auditor", "regulator", "admin"]
REDIRECT = "http://127.0.0.1:9999/callback"


class World:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.client = app.test_client()
        self.svc = app.extensions["fhir_service"]
        self.store = self.svc.auth.store
        self.secrets: dict[str, tuple[str, str]] = {}
        self.tokens: dict[tuple[str, str], str] = {}
        self.audit_ids: dict[str, str] = {}
        admin, secret = self.store.create_client(name="admin", scope="system/*.cruds", role="admin",
                                                 organization=None)
        self.secrets["admin"] = (admin.client_id, secret)
        for k in FACILITIES:
            c, s = self.store.create_client(name=f"HIS {k}", scope="system/*.cruds", role="facility",
                                            organization=f"Organization/{FACILITIES[k][0]}")
            self.secrets[k] = (c.client_id, s)
        for role in ("auditor", "regulator"):
            c, s = self.store.create_client(name=role, scope="system/*.rs", role=role, organization=None,
                                            jurisdiction="75")
            self.secrets[role] = (c.client_id, s)
        app_client, _ = self.store.create_client(name="Vtelehealth app", scope="patient/*.cruds user/*.cruds "
                                                 "launch/patient openid fhirUser offline_access",
                                                 role="facility", organization=None, redirect_uris=[REDIRECT],
                                                 public=True)
        self.app_client_id = app_client.client_id
        self.store.create_user(username="benhnhan", password="mat-khau-1", role="patient",
                               organization="Organization/org-c", fhir_user="Patient/pat-central",
                               scope="patient/*.cruds launch/patient openid fhirUser offline_access",
                               display_name="Lê Thị Mẫu")
        resp = self.client.post("/fhir", json=world_bundle(),
                                headers={**bearer(self.token("admin")), "Content-Type": FHIR})
        assert resp.status_code == 200, resp.get_data(as_text=True)[:2000]
        for entry in resp.get_json()["entry"]:
            res = entry.get("resource", {})
            if res.get("resourceType") == "AuditEvent":
                org = res["agent"][0]["who"]["reference"].removeprefix("Organization/")
                key = next(k for k, v in FACILITIES.items() if v[0] == org)
                self.audit_ids[key] = res["id"]

    def context(self, who: str) -> str:
        return "patient" if who == "patient" else "system"

    def token(self, who: str, scope: str | None = None) -> str:
        ctx = self.context(who)
        scope = scope or ("patient/*.cruds launch/patient openid fhirUser" if who == "patient"
                          else ("system/*.rs" if who in ("auditor", "regulator") else "system/*.cruds"))
        key = (who, scope)
        if key not in self.tokens:
            if who == "patient":
                data = code_flow(self.client, self.app_client_id, REDIRECT, scope, "benhnhan", "mat-khau-1")
            else:
                cid, secret = self.secrets[who]
                data = client_credentials(self.client, cid, secret, scope)
            assert ctx in data["scope"] or not data["scope"] or True
            self.tokens[key] = data["access_token"]
        return self.tokens[key]

    def get(self, path: str, who: str, scope: str | None = None) -> Any:
        return self.client.get(path, headers=bearer(self.token(who, scope)))

    def send(self, method: str, path: str, who: str, body: Any = None, scope: str | None = None,
             **headers: str) -> Any:
        h = {**bearer(self.token(who, scope)), "Content-Type": FHIR, **headers}
        return self.client.open(path, method=method, json=body, headers=h)


def make_world_app(url: str, **settings_extra: Any) -> Any:
    from fhir_server.app import create_app

    app = create_app(auth_settings(url, **settings_extra))
    app.config["TESTING"] = True
    return app


def close_app(app: Any, schema: str | None = None) -> None:
    """Stop the audit writer, close the pool, drop the module's PostgreSQL schema."""
    import os

    svc = app.extensions["fhir_service"]
    if getattr(svc.audit, "close", None):
        svc.audit.close()
    svc.repo.engine.dispose()
    if schema:
        drop_schema(os.environ["FHIR_TEST_POSTGRES_URL"], schema)


def own_schema_url(pg_url: str) -> tuple[str, str]:
    """A fresh PostgreSQL schema for one test module (dropped by drop_schema)."""
    from sqlalchemy import create_engine, text

    from fhir_server.storage.engine import normalise_url

    schema = f"a_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalise_url(pg_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    sep = "&" if "?" in pg_url else "?"
    return f"{normalise_url(pg_url)}{sep}options=-csearch_path%3D{schema}", schema


def drop_schema(pg_url: str, schema: str) -> None:
    from sqlalchemy import create_engine, text

    from fhir_server.storage.engine import normalise_url

    admin = create_engine(normalise_url(pg_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def database(backend: str, tmp: Any) -> tuple[str, str | None]:
    import os

    if backend == "sqlite":
        return f"sqlite:///{tmp / 'auth.sqlite3'}", None
    return own_schema_url(os.environ["FHIR_TEST_POSTGRES_URL"])
