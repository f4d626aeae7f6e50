"""The Vietnamese profiles: every valid example is accepted, every invalid one rejected on create, on update
and by $validate, naming the element (FHIRPath) with a Vietnamese message."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fhir_server.settings import Settings
from tests.conftest import BACKENDS, database_url, reset_postgres
from tests.fhir_helpers import FHIR_JSON

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "profiles"
DEMO = Path(__file__).resolve().parent.parent / "fhir_server" / "demo_data"
MANIFEST = json.loads((FIXTURES / "cases.json").read_text(encoding="utf-8"))
CASES = MANIFEST["cases"]
VALID = [c["file"] for c in CASES if c["valid"]]
INVALID = [c for c in CASES if not c["valid"]]
SD = "http://fhir.vntelehealth.org/r4/StructureDefinition/"
PROFILED_TYPES = {"Organization", "OrganizationAffiliation", "Practitioner", "PractitionerRole", "Patient", "Schedule",
                  "Slot", "Appointment", "Encounter", "MedicationRequest", "Composition"}


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def demo_resources() -> dict[str, dict[str, Any]]:
    out = {}
    for f in sorted(DEMO.glob("*.json")):
        for e in json.loads(f.read_text(encoding="utf-8"))["entry"]:
            out[f"{e['resource']['resourceType']}/{e['resource']['id']}"] = e["resource"]
    return out


def make_app(tmp_path: Path, backend: str, pg_schema: str | None, **extra: Any) -> Any:
    from fhir_server.app import create_app

    url = database_url(backend, tmp_path, pg_schema)
    if backend == "postgresql":
        reset_postgres(url)
    settings = Settings(database_url=url, secret_key="test-secret", auth_enabled=False, audit_enabled=False,
                        extra={"profiles": extra} if extra else {})
    app = create_app(settings)
    client = app.test_client()
    demo = demo_resources()
    for key in MANIFEST["prerequisites"]:
        resp = client.put(f"/fhir/{key}", json=demo[key], headers={"Content-Type": FHIR_JSON})
        assert resp.status_code in (200, 201), resp.get_json()
    return app


@pytest.fixture(scope="module", params=BACKENDS)
def client(request: Any, tmp_path_factory: Any, pg_schema: str | None) -> Iterator[Any]:
    app = make_app(tmp_path_factory.mktemp("profiles"), request.param, pg_schema)
    yield app.test_client()
    app.extensions["fhir_service"].repo.engine.dispose()


def issues_at(outcome: dict[str, Any], expression: str, severity: str = "error") -> list[dict[str, Any]]:
    return [i for i in outcome["issue"] if expression in i.get("expression", []) and i["severity"] == severity]


def assert_names(outcome: dict[str, Any], case: dict[str, Any]) -> None:
    """The expected element is named, with the Vietnamese message first (Accept-Language: vi)."""
    assert outcome["resourceType"] == "OperationOutcome"
    found = issues_at(outcome, case["expression"])
    assert found, (case["file"], outcome["issue"])
    assert any(case["vi"] in i["details"]["text"] for i in found), (case["file"], found)


def test_every_profile_has_valid_and_invalid_examples() -> None:
    from fhir_server.profiles.validator import compiled_profiles

    profiles = {p.res_type for p in compiled_profiles().values()}
    assert profiles == PROFILED_TYPES
    for rt in profiles:
        assert any(f.startswith(f"{rt}-valid") for f in VALID), rt
        assert any(c["file"].startswith(f"{rt}-invalid") for c in INVALID), rt


@pytest.mark.parametrize("name", VALID)
def test_valid_example_is_accepted(client: Any, name: str) -> None:
    body = fixture(name)
    rt = body["resourceType"]
    created = client.post(f"/fhir/{rt}", json=body, headers={"Content-Type": FHIR_JSON})
    assert created.status_code == 201, created.get_json()
    outcome = client.post(f"/fhir/{rt}/$validate", json=body, headers={"Content-Type": FHIR_JSON}).get_json()
    assert [i for i in outcome["issue"] if i["severity"] == "error"] == []


@pytest.mark.parametrize("case", INVALID, ids=[c["file"] for c in INVALID])
def test_invalid_example_is_rejected_on_create(client: Any, case: dict[str, Any]) -> None:
    body = fixture(case["file"])
    resp = client.post(f"/fhir/{body['resourceType']}", json=body,
                       headers={"Content-Type": FHIR_JSON, "Accept-Language": "vi"})
    assert resp.status_code == 422, resp.get_json()
    assert_names(resp.get_json(), case)


@pytest.mark.parametrize("case", INVALID, ids=[c["file"] for c in INVALID])
def test_invalid_example_is_rejected_on_update(client: Any, case: dict[str, Any]) -> None:
    body = {**fixture(case["file"]), "id": "fixture-" + case["file"].split("-", 1)[1][:40].replace(".json", "")}
    resp = client.put(f"/fhir/{body['resourceType']}/{body['id']}", json=body,
                      headers={"Content-Type": FHIR_JSON, "Accept-Language": "vi"})
    assert resp.status_code == 422, resp.get_json()
    assert_names(resp.get_json(), case)
    assert client.get(f"/fhir/{body['resourceType']}/{body['id']}").status_code == 404  # nothing written


@pytest.mark.parametrize("case", INVALID, ids=[c["file"] for c in INVALID])
def test_invalid_example_is_reported_by_validate(client: Any, case: dict[str, Any]) -> None:
    body = fixture(case["file"])
    params = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": body},
                                                          {"name": "mode", "valueCode": "create"}]}
    resp = client.post(f"/fhir/{body['resourceType']}/$validate", json=params,
                       headers={"Content-Type": FHIR_JSON, "Accept-Language": "vi"})
    assert resp.status_code == 200  # the operation succeeded; the outcome carries the errors
    assert_names(resp.get_json(), case)


def test_messages_follow_accept_language(client: Any) -> None:
    body = fixture("Patient-invalid-bhyt.json")
    en = client.post("/fhir/Patient", json=body, headers={"Content-Type": FHIR_JSON, "Accept-Language": "en"})
    issue = issues_at(en.get_json(), "Patient.identifier[1].value")[0]
    assert issue["details"]["text"].startswith("vn-bhyt-1: BHYT card number")
    assert "Mã thẻ BHYT" in issue["diagnostics"]


def test_validate_against_a_nominated_profile(client: Any) -> None:
    body = fixture("Patient-valid.json")
    del body["meta"]
    body["name"][0].pop("text")
    plain = client.post("/fhir/Patient/$validate", json=body, headers={"Content-Type": FHIR_JSON}).get_json()
    assert not [i for i in plain["issue"] if i["severity"] == "error"]
    params = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": body},
                                                          {"name": "profile", "valueUri": SD + "vn-patient"}]}
    nominated = client.post("/fhir/Patient/$validate", json=params, headers={"Content-Type": FHIR_JSON}).get_json()
    assert issues_at(nominated, "Patient.name[0].text")
    unknown = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": body},
                                                           {"name": "profile", "valueUri": SD + "nope"}]}
    out = client.post("/fhir/Patient/$validate", json=unknown, headers={"Content-Type": FHIR_JSON}).get_json()
    assert out["issue"][0]["severity"] == "error" and out["issue"][0]["code"] == "not-supported"


def test_validate_instance_and_update_mode(client: Any) -> None:
    created = client.post("/fhir/Patient", json=fixture("Patient-valid.json"), headers={"Content-Type": FHIR_JSON})
    pid = created.get_json()["id"]
    stored = client.get(f"/fhir/Patient/{pid}/$validate").get_json()
    assert stored["issue"][0]["severity"] == "information"
    no_id = fixture("Patient-valid.json")
    out = client.post(f"/fhir/Patient/{pid}/$validate?mode=update", json=no_id,
                      headers={"Content-Type": FHIR_JSON}).get_json()
    assert issues_at(out, "Patient.id")
    same = client.post(f"/fhir/Patient/{pid}/$validate?mode=update", json={**no_id, "id": pid},
                       headers={"Content-Type": FHIR_JSON}).get_json()
    assert same["issue"][0]["severity"] == "information"
    for mode in ("update", "delete", "bogus"):  # update and delete are instance-level only (R4)
        bad = client.post(f"/fhir/Patient/$validate?mode={mode}", json=no_id, headers={"Content-Type": FHIR_JSON})
        assert bad.status_code == 400


def test_issued_prescription_is_not_modified_in_place(client: Any) -> None:
    body = {**fixture("MedicationRequest-valid.json"), "status": "active"}
    created = client.post("/fhir/MedicationRequest", json=body, headers={"Content-Type": FHIR_JSON}).get_json()
    rid = created["id"]
    changed = copy.deepcopy(created)
    changed["dispenseRequest"]["quantity"]["value"] = 60
    resp = client.put(f"/fhir/MedicationRequest/{rid}", json=changed,
                      headers={"Content-Type": FHIR_JSON, "Accept-Language": "vi"})
    assert resp.status_code == 422
    assert any("Không sửa đơn thuốc đã phát hành" in i["details"]["text"]
               for i in issues_at(resp.get_json(), "MedicationRequest.dispenseRequest"))
    # A status change (cancel) is allowed; deleting an issued one is reported by $validate mode=delete.
    delete_check = client.get(f"/fhir/MedicationRequest/{rid}/$validate?mode=delete").get_json()
    assert delete_check["issue"][0]["severity"] == "error"
    refused = client.delete(f"/fhir/MedicationRequest/{rid}", headers={"Accept-Language": "vi"})
    assert refused.status_code == 422
    assert "không được xóa đơn thuốc" in refused.get_json()["issue"][0]["details"]["text"]
    cancelled = {**created, "status": "cancelled"}
    assert client.put(f"/fhir/MedicationRequest/{rid}", json=cancelled,
                      headers={"Content-Type": FHIR_JSON}).status_code == 200


def test_transaction_rules_see_resources_written_earlier_in_it(client: Any) -> None:
    """The prescriber's facility is looked up inside the transaction that creates it."""
    org = {"resourceType": "Organization", "meta": {"profile": [SD + "vn-organization"]}, "name": "Phòng khám giả lập",
           "identifier": [{"system": "http://fhir.vntelehealth.org/r4/sid/facility-code", "value": "79999"}],
           "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type",
                                 "code": "prov"}]}]}
    role = {"resourceType": "PractitionerRole", "meta": {"profile": [SD + "vn-practitioner-role"]},
            "practitioner": {"reference": "Practitioner/prac-bm-tran-minh-khoa"},
            "organization": {"reference": "urn:uuid:0b7a6f0e-0000-4000-8000-000000000001"}}
    rx = fixture("MedicationRequest-valid.json")
    rx["identifier"][0]["value"] = "79999" + rx["identifier"][0]["value"][5:]
    rx["requester"] = {"reference": "urn:uuid:0b7a6f0e-0000-4000-8000-000000000002"}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:0b7a6f0e-0000-4000-8000-000000000001", "resource": org,
         "request": {"method": "POST", "url": "Organization"}},
        {"fullUrl": "urn:uuid:0b7a6f0e-0000-4000-8000-000000000002", "resource": role,
         "request": {"method": "POST", "url": "PractitionerRole"}},
        {"resource": rx, "request": {"method": "POST", "url": "MedicationRequest"}}]}
    resp = client.post("/fhir", json=bundle, headers={"Content-Type": FHIR_JSON})
    assert resp.status_code == 200, resp.get_json()
    rx["identifier"][0]["value"] = "01001" + rx["identifier"][0]["value"][5:]
    wrong = client.post("/fhir", json=bundle, headers={"Content-Type": FHIR_JSON, "Accept-Language": "vi"})
    assert wrong.status_code == 422
    assert any("Bundle.entry[2].resource.identifier[0].value" in i.get("expression", [])
               for i in wrong.get_json()["issue"])


def test_draft_prescription_may_be_edited(client: Any) -> None:
    created = client.post("/fhir/MedicationRequest", json=fixture("MedicationRequest-valid.json"),
                          headers={"Content-Type": FHIR_JSON}).get_json()
    created["dispenseRequest"]["quantity"]["value"] = 20
    assert client.put(f"/fhir/MedicationRequest/{created['id']}", json=created,
                      headers={"Content-Type": FHIR_JSON}).status_code == 200


def test_extended_supply_flag_allows_more_than_30_days(client: Any) -> None:
    body = fixture("MedicationRequest-invalid-60-days.json")
    body["extension"] = [{"url": SD + "extended-supply", "valueBoolean": True}]
    assert client.post("/fhir/MedicationRequest", json=body, headers={"Content-Type": FHIR_JSON}).status_code == 201


def test_vietnamese_identifier_rules_apply_without_a_profile(client: Any) -> None:
    body = fixture("Patient-invalid-cccd-sex-mismatch.json")
    del body["meta"]
    resp = client.post("/fhir/Patient", json=body, headers={"Content-Type": FHIR_JSON})
    assert resp.status_code == 422
    assert issues_at(resp.get_json(), "Patient.identifier[0].value")
    minimal = {"resourceType": "Patient", "name": [{"family": "Nguyễn"}]}
    assert client.post("/fhir/Patient", json=minimal, headers={"Content-Type": FHIR_JSON}).status_code == 201


def test_a_profile_for_another_type_is_refused(client: Any) -> None:
    body = fixture("Slot-valid.json")
    body["meta"]["profile"] = [SD + "vn-patient"]
    resp = client.post("/fhir/Slot", json=body, headers={"Content-Type": FHIR_JSON})
    assert resp.status_code == 422


def test_enforced_profiles_and_circular30_severity_are_configurable(tmp_path: Path, pg_schema: str | None) -> None:
    app = make_app(tmp_path, "sqlite", None, enforce="Patient", circular30="warning")
    client = app.test_client()
    unclaimed = fixture("Patient-invalid-no-name-text.json")
    del unclaimed["meta"]
    resp = client.post("/fhir/Patient", json=unclaimed, headers={"Content-Type": FHIR_JSON})
    assert resp.status_code == 422 and issues_at(resp.get_json(), "Patient.name[0].text")
    outside = fixture("Encounter-invalid-reason-outside-circular30.json")
    assert client.post("/fhir/Encounter", json=outside, headers={"Content-Type": FHIR_JSON}).status_code == 201
    out = client.post("/fhir/Encounter/$validate", json=outside, headers={"Content-Type": FHIR_JSON}).get_json()
    assert issues_at(out, "Encounter.reasonCode[0]", severity="warning")
    caps = client.get("/fhir/metadata").get_json()
    patient = next(r for r in caps["rest"][0]["resource"] if r["type"] == "Patient")
    assert patient["supportedProfile"] == [SD + "vn-patient"]
    app.extensions["fhir_service"].repo.engine.dispose()
