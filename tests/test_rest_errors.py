"""Every error path answers an OperationOutcome with the right status (R4 http.html)."""

from __future__ import annotations

from typing import Any

from tests.fhir_helpers import FHIR_JSON, appointment, outcome_expressions, post


def assert_outcome(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, (resp.status_code, resp.data[:300])
    body = resp.get_json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["details"]["text"] and body["issue"][0]["diagnostics"]
    return dict(body)


def test_malformed_json_is_400(client: Any) -> None:
    resp = client.post("/fhir/Appointment", data=b'{"resourceType": "Appointment",', content_type=FHIR_JSON)
    assert_outcome(resp, 400)


def test_xml_body_is_415(client: Any) -> None:
    resp = client.post("/fhir/Appointment", data=b"<Appointment/>", content_type="application/fhir+xml")
    assert_outcome(resp, 415)


def test_unknown_content_type_is_415(client: Any) -> None:
    resp = client.post("/fhir/Appointment", data=b"{}", content_type="text/csv")
    assert_outcome(resp, 415)


def test_xml_format_is_406(client: Any) -> None:
    assert_outcome(client.get("/fhir/metadata?_format=xml"), 406)


def test_xml_only_accept_is_406(client: Any) -> None:
    assert_outcome(client.get("/fhir/metadata", headers={"Accept": "application/fhir+xml"}), 406)


def test_oversized_body_is_413(client: Any) -> None:
    big = appointment(comment="x" * (300 * 1024))
    assert_outcome(post(client, "Appointment", big), 413)


def test_resource_type_mismatch_is_400(client: Any) -> None:
    resp = post(client, "Appointment", {"resourceType": "Patient"})
    body = assert_outcome(resp, 400)
    assert body["issue"][0]["expression"] == ["Patient.resourceType"]


def test_unknown_element_names_its_path(client: Any) -> None:
    bad = appointment()
    bad["participant"][0]["actor"]["colour"] = "blue"
    resp = post(client, "Appointment", bad)
    assert_outcome(resp, 400)
    assert any(e.startswith("Appointment.participant[0].actor") for e in outcome_expressions(resp))


def test_wrong_primitive_type_names_its_path(client: Any) -> None:
    resp = post(client, "Appointment", appointment(minutesDuration="thirty"))
    assert_outcome(resp, 400)
    assert "Appointment.minutesDuration" in outcome_expressions(resp)


def test_invalid_code_is_rejected(client: Any) -> None:
    resp = post(client, "Appointment", appointment(status="maybe"))
    assert_outcome(resp, 400)
    assert "Appointment.status" in outcome_expressions(resp)


def test_bad_id_in_put_is_400(client: Any) -> None:
    resp = client.put("/fhir/Appointment/bad$id", json=appointment(id="bad$id"), content_type=FHIR_JSON)
    assert_outcome(resp, 400)


def test_body_not_an_object_is_400(client: Any) -> None:
    assert_outcome(client.post("/fhir/Appointment", data=b"[1,2]", content_type=FHIR_JSON), 400)


def test_empty_body_is_400(client: Any) -> None:
    assert_outcome(client.post("/fhir/Appointment", data=b"", content_type=FHIR_JSON), 400)


def test_unknown_route_is_404_outcome(client: Any) -> None:
    assert_outcome(client.get("/fhir/Appointment/x/y/z/w"), 404)


def test_post_on_instance_is_405(client: Any) -> None:
    assert_outcome(client.post("/fhir/Appointment/a1", json=appointment(), content_type=FHIR_JSON), 405)


def test_malformed_if_match_is_400(client: Any) -> None:
    resp = client.put("/fhir/Appointment/a1", json=appointment(id="a1"), content_type=FHIR_JSON,
                      headers={"If-Match": "banana"})
    assert_outcome(resp, 400)


def test_unknown_operation_is_404(client: Any) -> None:
    assert_outcome(client.get("/fhir/Appointment/$does-not-exist"), 404)


def test_messages_follow_accept_language(client: Any) -> None:
    vi = client.get("/fhir/Appointment/nope", headers={"Accept-Language": "vi"}).get_json()
    en = client.get("/fhir/Appointment/nope", headers={"Accept-Language": "en-GB"}).get_json()
    assert vi["issue"][0]["details"]["text"].startswith("Không tìm thấy")
    assert en["issue"][0]["details"]["text"].endswith("not found")


def test_nothing_is_written_when_validation_fails(client: Any) -> None:
    post(client, "Appointment", appointment(status="maybe"))
    history = client.get("/fhir/Appointment/_history").get_json()
    assert history.get("entry", []) == []


def test_a_nul_character_in_a_search_parameter_is_400_on_every_backend(client: Any) -> None:
    for query in ("Patient?name=%00", "Appointment?patient=Patient/%00", "Patient?_id=a%00", "Patient?%00=1"):
        body = assert_outcome(client.get(f"/fhir/{query}"), 400)
        assert "NUL" in body["issue"][0]["diagnostics"]


def test_a_nul_character_in_conditional_criteria_is_400(client: Any) -> None:
    resp = client.post("/fhir/Appointment", json=appointment(), content_type=FHIR_JSON,
                       headers={"If-None-Exist": "identifier=%00"})
    assert_outcome(resp, 400)
