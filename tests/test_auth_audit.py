"""An AuditEvent for every request, allowed or denied; append-only; readable by auditors and
regulators (within their jurisdiction) with search on date, agent, entity and outcome."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from authkit import World, bearer, close_app, database, make_world_app
from conftest import BACKENDS


@pytest.fixture(scope="module", params=BACKENDS)
def world(request: Any, tmp_path_factory: Any) -> Iterator[World]:
    url, schema = database(request.param, tmp_path_factory.mktemp("audit"))
    app = make_world_app(url)
    w = World(app)
    # the requests the tests look for
    assert w.get("/fhir/Patient/pat-provincial", "provincial").status_code == 200
    assert w.get("/fhir/Patient/pat-commune", "provincial").status_code == 404
    assert w.send("POST", "/fhir/MedicationRequest", "commune", {"resourceType": "MedicationRequest"}
                  ).status_code == 403
    assert w.client.get("/fhir/Patient/pat-central").status_code == 401
    assert w.get("/fhir/Encounter?subject=Patient/pat-district", "district").status_code == 200
    from authkit import basic

    w.audit_client = w.secrets["commune"][0]  # type: ignore[attr-defined]
    assert w.client.post("/auth/token", data={"grant_type": "client_credentials", "scope": "system/*.rs"},
                         headers=basic(w.secrets["commune"][0], "wrong-secret")).status_code == 401
    # requests refused at the HTTP edge, before the dispatcher: a body that is not FHIR, an unknown path
    assert w.client.post("/fhir/Patient", data="x", headers={**bearer(w.token("provincial")),
                                                             "Content-Type": "text/plain"}).status_code == 415
    assert w.get("/fhir/Patient/pat-provincial/_history/1/extra", "provincial").status_code == 404
    assert w.client.get("/fhir/metadata").status_code == 200
    yield w
    close_app(app, schema)


def events(world: World, who: str, query: str) -> list[dict[str, Any]]:
    resp = world.get(f"/fhir/AuditEvent?{query}&_count=500", who)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return [e["resource"] for e in resp.get_json().get("entry", [])]


def test_an_allowed_read_is_recorded_with_who_what_outcome_when_where(world: World) -> None:
    found = events(world, "admin", "entity=Patient/pat-provincial&agent=Organization/org-p&outcome=0")
    assert found
    event = found[0]
    assert event["subtype"][0]["code"] == "read" and event["action"] == "R" and event["outcome"] == "0"
    agent = event["agent"][0]
    assert agent["altId"] == world.secrets["provincial"][0] and agent["requestor"] is True
    assert agent["network"]["address"] == "127.0.0.1"
    assert event["recorded"].startswith("20")


def test_denied_requests_are_recorded_too(world: World) -> None:
    not_found = events(world, "admin", "entity=Patient/pat-commune&agent=Organization/org-p")
    assert not_found and not_found[0]["outcome"] == "4" and "404" in not_found[0]["outcomeDesc"]
    forbidden = events(world, "admin", "agent=Organization/org-m&outcome=4&subtype=create")
    assert forbidden and "403" in forbidden[0]["outcomeDesc"]
    anonymous = events(world, "admin", "entity=Patient/pat-central&outcome=4")
    assert any("401" in e["outcomeDesc"] and "anonymous" in e["agent"][0]["who"]["display"] for e in anonymous)


def test_requests_refused_at_the_http_edge_are_recorded_with_their_client(world: World) -> None:
    unsupported_media = events(world, "admin", "agent=Organization/org-p&subtype=create&outcome=4")
    assert any("415" in e["outcomeDesc"] and e["agent"][0]["altId"] == world.secrets["provincial"][0]
               for e in unsupported_media)
    unknown_path = events(world, "admin", "agent=Organization/org-p&subtype=unsupported")
    assert unknown_path and unknown_path[0]["outcome"] == "4" and "404" in unknown_path[0]["outcomeDesc"]


def test_the_capability_statement_request_is_recorded(world: World) -> None:
    found = events(world, "admin", "subtype=capabilities&outcome=0")
    assert found and "anonymous" in found[0]["agent"][0]["who"]["display"]


def test_searches_record_their_query(world: World) -> None:
    found = events(world, "admin", "agent=Organization/org-d&subtype=search-type")
    assert any("subject=Patient" in (x.get("description") or "") for e in found for x in e.get("entity", []))


def test_auditors_and_regulators_search_within_their_jurisdiction(world: World) -> None:
    for who in ("auditor", "regulator"):
        mine = events(world, who, "date=ge2020-01-01&outcome=0")
        agents = {e["agent"][0]["who"].get("reference") for e in mine}
        assert "Organization/org-p" in agents  # province 75
        assert "Organization/org-m" not in agents and "Organization/org-c" not in agents  # 51, 79


def test_facilities_cannot_read_the_audit_trail(world: World) -> None:
    resp = world.get("/fhir/AuditEvent", "central")
    assert resp.status_code == 403 and resp.get_json()["issue"][0]["code"] == "forbidden"


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_the_trail_is_append_only_even_for_the_admin(world: World, method: str) -> None:
    event = events(world, "admin", "outcome=0")[0]
    resp = world.send(method, f"/fhir/AuditEvent/{event['id']}", "admin", event if method == "PUT" else
                      ([] if method == "PATCH" else None))
    assert resp.status_code == 405


def test_no_one_but_the_admin_creates_audit_events(world: World) -> None:
    body = {"resourceType": "AuditEvent", "type": {"code": "rest"}, "recorded": "2026-12-01T00:00:00Z",
            "agent": [{"who": {"reference": "Organization/org-p"}, "requestor": True}],
            "source": {"observer": {"display": "x"}}}
    for who in ("auditor", "regulator", "provincial"):
        assert world.send("POST", "/fhir/AuditEvent", who, body).status_code == 403


def test_oauth_endpoint_requests_are_recorded_without_secrets(world: World) -> None:
    client_id = world.audit_client  # type: ignore[attr-defined]
    found = events(world, "admin", f"altid={client_id}&type=http://dicom.nema.org/resources/ontology/DCM|110114")
    assert any(e["outcome"] == "4" and e["subtype"][0]["code"] == "token" for e in found)
    assert any(e["outcome"] == "0" for e in found)  # the World's own successful token request
    text = str(found)
    assert "wrong-secret" not in text and world.secrets["commune"][1] not in text


def test_an_audit_event_in_a_transaction_does_not_flush_the_queue_under_the_transactions_lock(
        world: World, monkeypatch: Any) -> None:
    calls: list[str] = []
    authz = world.svc.authorizer
    flush = authz.flush_audit
    monkeypatch.setattr(authz, "flush_audit", lambda: (calls.append("flush"), flush()))
    event = {"resourceType": "AuditEvent", "type": {"code": "rest"}, "recorded": "2026-12-01T00:00:00Z",
             "agent": [{"who": {"reference": "Organization/org-p"}, "requestor": True}],
             "source": {"observer": {"display": "migration"}}}
    bundle = {"resourceType": "Bundle", "type": "transaction",
              "entry": [{"resource": event, "request": {"method": "POST", "url": "AuditEvent"}}]}
    resp = world.send("POST", "/fhir", "admin", bundle)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    assert calls == []  # the flush would wait for the transaction's own write lock (SQLite)
    assert events(world, "admin", "source=x&outcome=0") is not None
    assert calls == ["flush"]  # a read of the trail still sees this process's queued events first
