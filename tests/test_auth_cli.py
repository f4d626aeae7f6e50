"""`python -m auth` acts on the store FHIR_DATABASE_URL selects and prints one JSON object."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from joserfc.jwk import ECKey

ROOT = Path(__file__).resolve().parent.parent


def run(db: str, *args: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-m", "auth", *args], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "FHIR_DATABASE_URL": db}, timeout=120, check=True)
    data: dict[str, object] = json.loads(out.stdout)  # exactly one JSON object
    if args[0] != "demo-clients":
        assert len(out.stdout.strip().splitlines()) == 1
    return data


def test_create_client_user_and_demo_clients(tmp_path: Path) -> None:
    from fhir_server.app import create_app
    from fhir_server.settings import Settings

    db = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    secret_client = run(db, "create-client", "--name", "HIS", "--organization", "Organization/org-c",
                        "--scope", "system/*.rs")
    assert str(secret_client["client_id"]).startswith("c-") and secret_client["client_secret"]
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [ECKey.generate_key("P-256", private=False).as_dict()]}))
    key_client = run(db, "create-client", "--name", "HIS keys", "--organization", "Organization/org-c",
                     "--scope", "system/*.rs", "--jwks-file", str(jwks))
    assert "client_secret" not in key_client and key_client["token_endpoint_auth_method"] == "private_key_jwt"
    regulator = run(db, "create-client", "--name", "SYT", "--role", "regulator", "--jurisdiction", "75",
                    "--scope", "system/*.rs")
    assert regulator["role"] == "regulator"
    user = run(db, "create-user", "--username", "bs", "--password", "pw", "--organization", "Organization/org-c",
               "--fhir-user", "Practitioner/p", "--scope", "user/*.rs")
    assert user == {"username": "bs", "role": "facility", "organization": "Organization/org-c",
                    "fhirUser": "Practitioner/p", "scope": "user/*.rs"}
    demo = run(db, "demo-clients")
    clients = demo["clients"]
    assert isinstance(clients, list) and {c.get("tier") for c in clients} >= {"central", "provincial", "district",
                                                                                "commune"}
    assert all("curl" in c and "/auth/token" in c["curl"] for c in clients)
    assert run(db, "demo-clients")["clients"]  # idempotent: registers the same ids again
    # the secret printed by the CLI works against a server on the same database
    app = create_app(Settings(database_url=db, secret_key="s"))
    import base64

    basic = base64.b64encode(f"{secret_client['client_id']}:{secret_client['client_secret']}".encode()).decode()
    resp = app.test_client().post("/auth/token", data={"grant_type": "client_credentials", "scope": "system/*.rs"},
                                  headers={"Authorization": f"Basic {basic}"})
    assert resp.status_code == 200 and resp.get_json()["access_token"]
    from authkit import close_app

    close_app(app)


def test_rebuild_owner_facts_restores_facts_lost_to_a_load_around_the_write_path(tmp_path: Path) -> None:
    from sqlalchemy import delete, func, select

    from auth.owner_facts import owner_facts
    from fhir_server.app import build_service
    from fhir_server.interactions.model import FhirRequest
    from fhir_server.settings import Settings

    db = f"sqlite:///{tmp_path / 'facts.sqlite3'}"
    svc = build_service(Settings(database_url=db, secret_key="s", auth_enabled=False, audit_enabled=False))
    entries = [{"resource": {"resourceType": "PractitionerRole", "id": "r1",
                             "organization": {"reference": "Organization/org-c"}},
                "request": {"method": "PUT", "url": "PractitionerRole/r1"}},
               {"resource": {"resourceType": "Appointment", "id": "a1", "status": "booked",
                             "participant": [{"actor": {"reference": "PractitionerRole/r1"}, "status": "accepted"}]},
                "request": {"method": "PUT", "url": "Appointment/a1"}}]
    resp = svc.dispatch(FhirRequest(method="POST", body={"resourceType": "Bundle", "type": "transaction",
                                                         "entry": entries}, base_url="http://x/fhir"))
    assert resp.status == 200
    with svc.repo.engine.connect() as conn:
        kept = set(conn.execute(select(owner_facts)).all())
    assert len(kept) == 2  # the role and the appointment belong to org-c
    with svc.repo.engine.begin() as conn:
        conn.execute(delete(owner_facts))
    svc.repo.engine.dispose()
    assert run(db, "rebuild-owner-facts") == {"resources": 2, "facts": 2}
    with svc.repo.engine.connect() as conn:
        assert set(conn.execute(select(owner_facts)).all()) == kept
        assert conn.execute(select(func.count()).select_from(owner_facts)).scalar_one() == 2
    svc.repo.engine.dispose()
