"""Conditional create, update and delete by search criteria (R4 http.html#ccreate etc.)."""

from __future__ import annotations

from typing import Any

from tests.fhir_helpers import FHIR_JSON, patient, post

CCCD = "http://fhir.ehealth.gov.vn/core/sid/national_id"


def test_conditional_create_returns_existing_match(client: Any) -> None:
    first = post(client, "Patient", patient("001090000001"))
    again = post(client, "Patient", patient("001090000001"), **{"If-None-Exist": f"identifier={CCCD}|001090000001"})
    assert first.status_code == 201 and again.status_code == 200
    assert again.get_json()["id"] == first.get_json()["id"]


def test_conditional_create_creates_when_no_match(client: Any) -> None:
    resp = post(client, "Patient", patient("001090000002"), **{"If-None-Exist": f"identifier={CCCD}|001090000002"})
    assert resp.status_code == 201


def test_conditional_create_with_many_matches_is_412(client: Any) -> None:
    post(client, "Patient", patient("001090000003"))
    post(client, "Patient", patient("001090000003"))
    resp = post(client, "Patient", patient("001090000003"), **{"If-None-Exist": f"identifier={CCCD}|001090000003"})
    assert resp.status_code == 412


def test_conditional_update_updates_the_single_match(client: Any) -> None:
    created = post(client, "Patient", patient("001090000004")).get_json()
    changed = patient("001090000004", given="Văn Bình")
    resp = client.put(f"/fhir/Patient?identifier={CCCD}|001090000004", json=changed, content_type=FHIR_JSON)
    assert resp.status_code == 200
    assert resp.get_json()["id"] == created["id"] and resp.get_json()["meta"]["versionId"] == "2"


def test_conditional_update_creates_when_no_match(client: Any) -> None:
    resp = client.put(f"/fhir/Patient?identifier={CCCD}|001090000005", json=patient("001090000005"),
                      content_type=FHIR_JSON)
    assert resp.status_code == 201


def test_conditional_update_with_many_matches_is_412(client: Any) -> None:
    post(client, "Patient", patient("001090000006"))
    post(client, "Patient", patient("001090000006"))
    resp = client.put(f"/fhir/Patient?identifier={CCCD}|001090000006", json=patient("001090000006"),
                      content_type=FHIR_JSON)
    assert resp.status_code == 412


def test_conditional_update_by_id(client: Any) -> None:
    created = post(client, "Patient", patient("001090000007")).get_json()
    resp = client.put(f"/fhir/Patient?_id={created['id']}", json=patient("001090000007", given="Thị Cúc"),
                      content_type=FHIR_JSON)
    assert resp.status_code == 200 and resp.get_json()["id"] == created["id"]


def test_conditional_delete_removes_the_match(client: Any) -> None:
    created = post(client, "Patient", patient("001090000008")).get_json()
    resp = client.delete(f"/fhir/Patient?identifier={CCCD}|001090000008")
    assert resp.status_code == 204
    assert client.get(f"/fhir/Patient/{created['id']}").status_code == 410


def test_conditional_delete_with_many_matches_is_412(client: Any) -> None:
    post(client, "Patient", patient("001090000009"))
    post(client, "Patient", patient("001090000009"))
    assert client.delete(f"/fhir/Patient?identifier={CCCD}|001090000009").status_code == 412


def test_conditional_delete_without_criteria_is_400(client: Any) -> None:
    assert client.delete("/fhir/Patient").status_code == 400
