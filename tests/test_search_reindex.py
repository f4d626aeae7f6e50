"""Stored SearchParameter resources become searchable after `python -m fhir_server reindex` (no code change)."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.__main__ import main as cli
from tests.fhir_helpers import patient, post

RACE = "http://fhir.ehealth.gov.vn/core/StructureDefinition/extension-race"
ETHNICITY = "http://fhir.vntelehealth.org/r4/CodeSystem/ethnicity"
SEARCH_PARAMETER = {
    "resourceType": "SearchParameter",
    "url": "http://fhir.vntelehealth.org/r4/SearchParameter/test-patient-ethnicity",
    "name": "TestPatientEthnicity", "status": "active", "description": "Dân tộc của người bệnh (test)",
    "code": "test-ethnicity", "base": ["Patient"], "type": "token",
    "expression": f"Patient.extension.where(url='{RACE}').value",
}
STRICT = {"Prefer": "handling=strict"}


def _kinh_patient(client: Any) -> str:
    body = patient(identifier="079168000999")
    body["extension"] = [{"url": RACE, "valueCodeableConcept": {"coding": [{"system": ETHNICITY, "code": "01"}]}}]
    resp = post(client, "Patient", body)
    assert resp.status_code == 201
    return str(resp.get_json()["id"])


def _ids(resp: Any) -> list[str]:
    assert resp.status_code == 200, resp.get_json()
    return [e["resource"]["id"] for e in resp.get_json().get("entry", []) if e["search"]["mode"] == "match"]


@pytest.fixture
def reindex(settings: Any, monkeypatch: Any) -> Any:
    monkeypatch.setenv("FHIR_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("FHIR_AUTH_ENABLED", "false")
    monkeypatch.setenv("FHIR_AUDIT_ENABLED", "false")
    monkeypatch.setenv("FHIR_SECRET_KEY", "test-secret")
    return cli


def test_a_stored_search_parameter_is_searchable_after_reindex(app: Any, client: Any, reindex: Any,
                                                                capsys: Any) -> None:
    pid = _kinh_patient(client)
    assert client.get("/fhir/Patient?test-ethnicity=01", headers=STRICT).status_code == 400  # unknown yet
    assert post(client, "SearchParameter", SEARCH_PARAMETER).status_code == 201

    assert reindex(["reindex"]) == 0
    assert "reindexed" in capsys.readouterr().out
    app.extensions["fhir_service"].search.refresh_seconds = 0  # the running server notices at once

    assert _ids(client.get("/fhir/Patient?test-ethnicity=01", headers=STRICT)) == [pid]
    assert _ids(client.get(f"/fhir/Patient?test-ethnicity={ETHNICITY}|01")) == [pid]
    assert _ids(client.get("/fhir/Patient?test-ethnicity=02")) == []


def test_a_restarted_server_compiles_stored_search_parameters(settings: Any, client: Any, reindex: Any) -> None:
    from fhir_server.app import create_app

    pid = _kinh_patient(client)
    assert post(client, "SearchParameter", SEARCH_PARAMETER).status_code == 201
    assert reindex(["reindex", "--type", "Patient"]) == 0
    fresh = create_app(settings)
    try:
        assert _ids(fresh.test_client().get("/fhir/Patient?test-ethnicity=01", headers=STRICT)) == [pid]
        # Resources written after start-up are indexed for it without a reindex.
        other = _kinh_patient(fresh.test_client())
        assert sorted(_ids(fresh.test_client().get("/fhir/Patient?test-ethnicity=01"))) == sorted([pid, other])
    finally:
        fresh.extensions["fhir_service"].repo.engine.dispose()


def test_reindex_rejects_an_unknown_type(reindex: Any, capsys: Any) -> None:
    assert reindex(["reindex", "--type", "Nonsense"]) == 2
    assert "unknown resource type" in capsys.readouterr().err
