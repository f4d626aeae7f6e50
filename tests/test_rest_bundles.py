"""batch and transaction Bundles (R4 http.html#transaction)."""

from __future__ import annotations

import uuid
from typing import Any

from tests.fhir_helpers import appointment, patient, post

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
