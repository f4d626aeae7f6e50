"""batch and transaction Bundles (R4 http.html#transaction)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.fhir_helpers import appointment, outcome_expressions, patient, post

CCCD = "http://fhir.ehealth.gov.vn/core/sid/national_id"


def tx(entries: list[dict[str, Any]], kind: str = "transaction") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


def create_entry(resource: dict[str, Any], full_url: str | None = None, **request: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"resource": resource,
                             "request": {"method": "POST", "url": resource["resourceType"], **request}}
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def count(client: Any, res_type: str) -> int:
    return len(client.get(f"/fhir/{res_type}/_history?_count=1000").get_json().get("entry", []))


def test_transaction_of_100_entries_resolves_urn_uuid_references(client: Any) -> None:
    entries = []
    for i in range(50):
        pid = f"urn:uuid:{uuid.uuid4()}"
        entries.append(create_entry(patient(f"0010900{i:05d}"), pid))
        appt = appointment(practitioner=pid)
        entries.append(create_entry(appt))
    resp = post(client, "", tx(entries))
    assert resp.status_code == 200, resp.get_json()
    bundle = resp.get_json()
    assert bundle["type"] == "transaction-response" and len(bundle["entry"]) == 100
    assert all(e["response"]["status"].startswith("201") for e in bundle["entry"])
    patient_ids = {e["response"]["location"].split("/")[1] for e in bundle["entry"][0::2]}
    for e in bundle["entry"][1::2]:
        ref = e["resource"]["participant"][0]["actor"]["reference"]
        assert ref.startswith("Patient/") and ref.split("/")[1] in patient_ids
        assert client.get(f"/fhir/{ref}").status_code == 200
        assert e["response"]["etag"] == 'W/"1"' and e["response"]["lastModified"]


def test_transaction_rolls_back_entirely_on_one_bad_entry(client: Any) -> None:
    entries = [create_entry(patient("001090100001")), create_entry(appointment()),
               create_entry(appointment(status="not-a-status"))]
    resp = post(client, "", tx(entries))
    assert resp.status_code == 400
    body = resp.get_json()
    assert body["resourceType"] == "OperationOutcome"
    assert any(e.startswith("Bundle.entry[2]") for i in body["issue"] for e in i.get("expression", []))
    assert count(client, "Patient") == 0 and count(client, "Appointment") == 0


def test_transaction_rolls_back_on_failed_precondition(client: Any) -> None:
    existing = post(client, "Patient", patient("001090100002")).get_json()
    entries = [create_entry(appointment()),
               {"resource": {**existing, "gender": "male"},
                "request": {"method": "PUT", "url": f"Patient/{existing['id']}", "ifMatch": 'W/"7"'}}]
    resp = post(client, "", tx(entries))
    assert resp.status_code == 412
    assert count(client, "Appointment") == 0


def test_transaction_processes_deletes_before_creates_and_reads_last(client: Any) -> None:
    old = post(client, "Patient", patient("001090100003")).get_json()
    entries = [
        {"request": {"method": "GET", "url": f"Patient/{old['id']}/_history"}},
        create_entry(patient("001090100004"), f"urn:uuid:{uuid.uuid4()}"),
        {"request": {"method": "DELETE", "url": f"Patient/{old['id']}"}},
    ]
    bundle = post(client, "", tx(entries)).get_json()
    statuses = [e["response"]["status"] for e in bundle["entry"]]
    assert statuses[1].startswith("201") and statuses[2].startswith("204")
    # The read ran last: it already sees the deletion made earlier in the same transaction.
    seen = bundle["entry"][0]["resource"]["entry"]
    assert [e["request"]["method"] for e in seen] == ["DELETE", "POST"]


def test_transaction_failing_read_fails_the_whole_transaction(client: Any) -> None:
    entries = [create_entry(patient("001090100008")), {"request": {"method": "GET", "url": "Patient/missing"}}]
    assert post(client, "", tx(entries)).status_code == 404
    assert count(client, "Patient") == 0


def test_transaction_conditional_create_reuses_existing(client: Any) -> None:
    existing = post(client, "Patient", patient("001090100005")).get_json()
    pid = f"urn:uuid:{uuid.uuid4()}"
    entries = [create_entry(patient("001090100005"), pid, ifNoneExist=f"identifier={CCCD}|001090100005"),
               create_entry(appointment(practitioner=pid))]
    bundle = post(client, "", tx(entries)).get_json()
    assert bundle["entry"][0]["response"]["status"].startswith("200")
    assert bundle["entry"][1]["resource"]["participant"][0]["actor"]["reference"] == f"Patient/{existing['id']}"


def test_transaction_resolves_conditional_references(client: Any) -> None:
    existing = post(client, "Patient", patient("001090100006")).get_json()
    entries = [create_entry(appointment(practitioner=f"Patient?identifier={CCCD}|001090100006"))]
    bundle = post(client, "", tx(entries)).get_json()
    assert bundle["entry"][0]["resource"]["participant"][0]["actor"]["reference"] == f"Patient/{existing['id']}"


def test_transaction_unresolvable_conditional_reference_fails(client: Any) -> None:
    entries = [create_entry(appointment(practitioner=f"Patient?identifier={CCCD}|999"))]
    assert post(client, "", tx(entries)).status_code == 412
    assert count(client, "Appointment") == 0


def test_transaction_conditional_update_entry(client: Any) -> None:
    existing = post(client, "Patient", patient("001090100007")).get_json()
    entries = [{"resource": patient("001090100007", given="Hữu Phước"),
                "request": {"method": "PUT", "url": f"Patient?identifier={CCCD}|001090100007"}}]
    bundle = post(client, "", tx(entries)).get_json()
    assert bundle["entry"][0]["response"]["location"].startswith(f"Patient/{existing['id']}/_history/2")


def test_transaction_patch_entry_with_binary(client: Any) -> None:
    import base64
    import json

    existing = post(client, "Appointment", appointment()).get_json()
    ops = base64.b64encode(json.dumps([{"op": "replace", "path": "/status", "value": "arrived"}]).encode()).decode()
    entries = [{"resource": {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": ops},
                "request": {"method": "PATCH", "url": f"Appointment/{existing['id']}"}}]
    bundle = post(client, "", tx(entries)).get_json()
    assert bundle["entry"][0]["resource"]["status"] == "arrived"


def test_transaction_prefer_minimal_omits_resources(client: Any) -> None:
    bundle = post(client, "", tx([create_entry(patient())]), Prefer="return=minimal").get_json()
    assert "resource" not in bundle["entry"][0] and bundle["entry"][0]["response"]["location"]


def test_transaction_duplicate_full_urls_rejected(client: Any) -> None:
    url = f"urn:uuid:{uuid.uuid4()}"
    resp = post(client, "", tx([create_entry(patient(), url), create_entry(patient(), url)]))
    assert resp.status_code == 400


def test_transaction_entry_type_mismatch_rejected(client: Any) -> None:
    entries = [{"resource": patient(), "request": {"method": "POST", "url": "Appointment"}}]
    resp = post(client, "", tx(entries))
    assert resp.status_code == 400


def test_batch_reports_each_entry_and_keeps_good_ones(client: Any) -> None:
    entries = [create_entry(patient()), create_entry(appointment(status="bogus")),
               {"request": {"method": "GET", "url": "Patient/does-not-exist"}}]
    resp = post(client, "", tx(entries, "batch"))
    assert resp.status_code == 200
    bundle = resp.get_json()
    assert bundle["type"] == "batch-response"
    statuses = [e["response"]["status"] for e in bundle["entry"]]
    assert statuses[0].startswith("201") and statuses[1].startswith("400") and statuses[2].startswith("404")
    assert bundle["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert count(client, "Patient") == 1


def test_bundle_of_wrong_type_rejected(client: Any) -> None:
    resp = post(client, "", {"resourceType": "Bundle", "type": "collection"})
    assert resp.status_code == 400


def test_entry_without_request_rejected(client: Any) -> None:
    resp = post(client, "", tx([{"resource": patient()}]))
    assert resp.status_code == 400


@pytest.mark.parametrize("dangling", [f"urn:uuid:{uuid.UUID(int=7)}", "urn:oid:1.2.840.10008.999"])
def test_transaction_refuses_a_urn_reference_that_names_no_entry(client: Any, dangling: str) -> None:
    entries = [create_entry(patient(), f"urn:uuid:{uuid.uuid4()}"), create_entry(appointment(practitioner=dangling))]
    before = count(client, "Patient")
    resp = post(client, "", tx(entries))
    assert resp.status_code == 400
    assert outcome_expressions(resp) == ["Bundle.entry[1].resource.participant[0].actor.reference"]
    issue = resp.get_json()["issue"][0]
    assert dangling in issue["diagnostics"] and issue["details"]["text"]  # English and Vietnamese
    assert count(client, "Patient") == before  # nothing of the transaction was written


def test_a_bundle_stored_by_a_transaction_keeps_the_urn_references_between_its_own_entries(client: Any) -> None:
    inner_url = f"urn:uuid:{uuid.uuid4()}"
    collection = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": inner_url, "resource": patient()},
        {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": appointment(practitioner=inner_url)}]}
    resp = post(client, "", tx([create_entry(collection)]))
    assert resp.status_code == 200, resp.get_json()
    location = resp.get_json()["entry"][0]["response"]["location"]
    stored = client.get("/fhir/" + location.split("/_history")[0]).get_json()
    assert stored["entry"][1]["resource"]["participant"][0]["actor"]["reference"] == inner_url


def test_a_bundle_stored_by_a_transaction_is_not_rewritten_even_where_its_links_equal_an_outer_fullurl(
        client: Any) -> None:
    shared = f"urn:uuid:{uuid.uuid4()}"  # names an entry of the transaction and one of the stored Bundle
    collection = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": shared, "resource": patient()},
        {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": appointment(practitioner=shared)}]}
    resp = post(client, "", tx([create_entry(patient(), shared), create_entry(collection)]))
    assert resp.status_code == 200, resp.get_json()
    location = resp.get_json()["entry"][1]["response"]["location"]
    stored = client.get("/fhir/" + location.split("/_history")[0]).get_json()
    assert stored["entry"][1]["resource"]["participant"][0]["actor"]["reference"] == shared
    assert stored["entry"][0]["fullUrl"] == shared


def test_transaction_replaces_entry_links_in_uri_elements_and_the_narrative_too(client: Any) -> None:
    org_url = f"urn:uuid:{uuid.uuid4()}"
    unrelated = f"urn:uuid:{uuid.uuid4()}"  # names no entry: a plain value, kept as written
    person = patient()
    person["identifier"] = [{"system": "urn:ietf:rfc:3986", "value": unrelated}]
    person["photo"] = [{"contentType": "image/png", "url": org_url}]
    person["text"] = {"status": "generated",
                      "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><a href="{org_url}">Cơ sở</a></div>'}
    person["managingOrganization"] = {"reference": org_url}
    entries = [create_entry({"resourceType": "Organization", "name": "Trạm Y tế xã"}, org_url), create_entry(person)]
    resp = post(client, "", tx(entries))
    assert resp.status_code == 200, resp.get_json()
    org_ref = resp.get_json()["entry"][0]["response"]["location"].split("/_history")[0]
    stored = client.get("/fhir/" + resp.get_json()["entry"][1]["response"]["location"].split("/_history")[0])
    body = stored.get_json()
    assert body["managingOrganization"]["reference"] == org_ref
    assert body["photo"][0]["url"] == org_ref
    assert f'href="{org_ref}"' in body["text"]["div"] and org_url not in body["text"]["div"]
    assert body["identifier"][0]["value"] == unrelated


def test_a_batch_entry_naming_another_entry_fails_alone(client: Any) -> None:
    org_url = f"urn:uuid:{uuid.uuid4()}"
    person = patient()
    person["managingOrganization"] = {"reference": org_url}
    entries = [create_entry({"resourceType": "Organization", "name": "Trạm Y tế xã"}, org_url), create_entry(person)]
    resp = post(client, "", tx(entries, "batch"))
    assert resp.status_code == 200
    first, second = resp.get_json()["entry"]
    assert first["response"]["status"].startswith("201") and second["response"]["status"].startswith("400")
    expressions = [e for i in second["response"]["outcome"]["issue"] for e in i.get("expression", [])]
    assert expressions == ["Bundle.entry[1].resource.managingOrganization.reference"]


@pytest.mark.parametrize(("entry", "expression"), [
    ({"resource": {"resourceType": "Patient"}}, "Bundle.entry[0].request"),
    ({"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Appointment"}},
     "Bundle.entry[0].resource.resourceType"),
    (create_entry(appointment(status="bogus")), "Bundle.entry[0].resource.status"),
])
def test_a_batch_entry_error_names_the_element_once_from_the_bundle(client: Any, entry: dict[str, Any],
                                                                     expression: str) -> None:
    resp = post(client, "", tx([entry], "batch"))
    assert resp.status_code == 200
    outcome = resp.get_json()["entry"][0]["response"]["outcome"]
    assert expression in [e for i in outcome["issue"] for e in i.get("expression", [])]
    assert not any(".resource.entry[" in e for i in outcome["issue"] for e in i.get("expression", []))
