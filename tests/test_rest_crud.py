"""CRUD, versioning and conditional headers over HTTP (R4 http.html)."""

from __future__ import annotations

from typing import Any

from tests.fhir_helpers import FHIR_JSON, appointment, outcome_expressions, post, put


def create_appointment(client: Any, **extra: Any) -> dict[str, Any]:
    resp = post(client, "Appointment", appointment(**extra))
    assert resp.status_code == 201, resp.get_json()
    return dict(resp.get_json())


def test_create_assigns_id_version_and_headers(client: Any) -> None:
    resp = post(client, "Appointment", appointment())
    body = resp.get_json()
    assert resp.status_code == 201
    assert body["id"] and body["meta"]["versionId"] == "1" and body["meta"]["lastUpdated"]
    assert resp.headers["ETag"] == 'W/"1"'
    assert resp.headers["Location"] == f"http://localhost/fhir/Appointment/{body['id']}/_history/1"
    assert resp.headers["Last-Modified"].endswith("GMT")


def test_create_ignores_client_id_in_body(client: Any) -> None:
    resp = post(client, "Appointment", appointment(id="chosen-by-client"))
    assert resp.status_code == 201
    assert resp.get_json()["id"] != "chosen-by-client"


def test_read_returns_stored_resource(client: Any) -> None:
    created = create_appointment(client)
    resp = client.get(f"/fhir/Appointment/{created['id']}")
    assert resp.status_code == 200
    assert resp.get_json() == created
    assert resp.headers["Content-Type"].startswith(FHIR_JSON)
    assert resp.headers["ETag"] == 'W/"1"'


def test_read_unknown_is_404_outcome(client: Any) -> None:
    resp = client.get("/fhir/Appointment/nope")
    assert resp.status_code == 404
    assert resp.get_json()["issue"][0]["code"] == "not-found"


def test_read_unserved_type_is_404(client: Any) -> None:
    assert client.get("/fhir/Observation/1").status_code == 404


def test_read_invalid_id_is_400(client: Any) -> None:
    resp = client.get("/fhir/Appointment/" + "x" * 65)
    assert resp.status_code == 400


def test_update_increments_version(client: Any) -> None:
    created = create_appointment(client)
    changed = {**created, "status": "fulfilled"}
    resp = put(client, f"Appointment/{created['id']}", changed, **{"If-Match": 'W/"1"'})
    assert resp.status_code == 200
    assert resp.get_json()["meta"]["versionId"] == "2"
    assert resp.headers["ETag"] == 'W/"2"'


def test_update_with_stale_if_match_is_412_and_changes_nothing(client: Any) -> None:
    created = create_appointment(client)
    put(client, f"Appointment/{created['id']}", {**created, "status": "arrived"})
    resp = put(client, f"Appointment/{created['id']}", {**created, "status": "cancelled"}, **{"If-Match": 'W/"1"'})
    assert resp.status_code == 412
    assert resp.get_json()["resourceType"] == "OperationOutcome"
    assert client.get(f"/fhir/Appointment/{created['id']}").get_json()["status"] == "arrived"


def test_update_as_create_with_client_id(client: Any) -> None:
    resp = put(client, "Appointment/client-chosen-1", appointment(id="client-chosen-1"))
    assert resp.status_code == 201
    assert resp.get_json()["meta"]["versionId"] == "1"


def test_update_body_id_must_match_url(client: Any) -> None:
    resp = put(client, "Appointment/a1", appointment(id="a2"))
    assert resp.status_code == 400
    assert outcome_expressions(resp) == ["Appointment.id"]


def test_update_without_body_id_is_400(client: Any) -> None:
    assert put(client, "Appointment/a1", appointment()).status_code == 400


def test_vread_returns_each_version(client: Any) -> None:
    created = create_appointment(client)
    put(client, f"Appointment/{created['id']}", {**created, "status": "arrived"})
    v1 = client.get(f"/fhir/Appointment/{created['id']}/_history/1")
    v2 = client.get(f"/fhir/Appointment/{created['id']}/_history/2")
    assert v1.get_json()["status"] == "booked" and v2.get_json()["status"] == "arrived"
    assert client.get(f"/fhir/Appointment/{created['id']}/_history/9").status_code == 404


def test_delete_then_read_is_gone_and_history_keeps_it(client: Any) -> None:
    created = create_appointment(client)
    resp = client.delete(f"/fhir/Appointment/{created['id']}")
    assert resp.status_code == 204
    assert client.get(f"/fhir/Appointment/{created['id']}").status_code == 410
    history = client.get(f"/fhir/Appointment/{created['id']}/_history").get_json()
    assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "POST"]
    assert client.get(f"/fhir/Appointment/{created['id']}/_history/1").status_code == 200


def test_delete_with_stale_if_match_is_412(client: Any) -> None:
    created = create_appointment(client)
    put(client, f"Appointment/{created['id']}", {**created, "status": "arrived"})
    resp = client.delete(f"/fhir/Appointment/{created['id']}", headers={"If-Match": 'W/"1"'})
    assert resp.status_code == 412
    assert client.get(f"/fhir/Appointment/{created['id']}").status_code == 200


def test_update_after_delete_recreates(client: Any) -> None:
    created = create_appointment(client)
    client.delete(f"/fhir/Appointment/{created['id']}")
    resp = put(client, f"Appointment/{created['id']}", {**created})
    assert resp.status_code == 201
    assert resp.get_json()["meta"]["versionId"] == "3"


def test_if_none_match_gives_304(client: Any) -> None:
    created = create_appointment(client)
    resp = client.get(f"/fhir/Appointment/{created['id']}", headers={"If-None-Match": 'W/"1"'})
    assert resp.status_code == 304 and resp.data == b""
    assert client.get(f"/fhir/Appointment/{created['id']}", headers={"If-None-Match": 'W/"0"'}).status_code == 200


def test_if_modified_since_gives_304(client: Any) -> None:
    created = create_appointment(client)
    first = client.get(f"/fhir/Appointment/{created['id']}")
    resp = client.get(f"/fhir/Appointment/{created['id']}",
                      headers={"If-Modified-Since": first.headers["Last-Modified"]})
    assert resp.status_code == 304
    old = client.get(f"/fhir/Appointment/{created['id']}",
                     headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})
    assert old.status_code == 200


def test_patch_with_json_patch(client: Any) -> None:
    created = create_appointment(client)
    resp = client.patch(f"/fhir/Appointment/{created['id']}", json=[
        {"op": "replace", "path": "/status", "value": "arrived"},
        {"op": "add", "path": "/comment", "value": "Bệnh nhân đã vào phòng"},
    ], headers={"Content-Type": "application/json-patch+json", "If-Match": 'W/"1"'})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["status"] == "arrived" and body["comment"] == "Bệnh nhân đã vào phòng"
    assert body["meta"]["versionId"] == "2"


def test_patch_with_stale_if_match_is_412(client: Any) -> None:
    created = create_appointment(client)
    put(client, f"Appointment/{created['id']}", {**created, "status": "arrived"})
    resp = client.patch(f"/fhir/Appointment/{created['id']}", json=[{"op": "replace", "path": "/status",
                                                                       "value": "noshow"}],
                        headers={"Content-Type": "application/json-patch+json", "If-Match": 'W/"1"'})
    assert resp.status_code == 412


def test_patch_producing_invalid_resource_is_rejected(client: Any) -> None:
    created = create_appointment(client)
    resp = client.patch(f"/fhir/Appointment/{created['id']}", json=[{"op": "replace", "path": "/status",
                                                                       "value": "not-a-status"}],
                        headers={"Content-Type": "application/json-patch+json"})
    assert resp.status_code in (400, 422)
    assert client.get(f"/fhir/Appointment/{created['id']}").get_json()["status"] == "booked"


def test_patch_failed_test_op_is_422(client: Any) -> None:
    created = create_appointment(client)
    resp = client.patch(f"/fhir/Appointment/{created['id']}", json=[{"op": "test", "path": "/status",
                                                                       "value": "cancelled"}],
                        headers={"Content-Type": "application/json-patch+json"})
    assert resp.status_code == 422


def test_patch_needs_json_patch_media_type(client: Any) -> None:
    created = create_appointment(client)
    resp = client.patch(f"/fhir/Appointment/{created['id']}", json=[{"op": "remove", "path": "/comment"}],
                        headers={"Content-Type": "text/plain"})
    assert resp.status_code == 415


def test_prefer_return_minimal(client: Any) -> None:
    resp = post(client, "Appointment", appointment(), Prefer="return=minimal")
    assert resp.status_code == 201 and resp.data == b"" and resp.headers["Location"]


def test_prefer_return_operation_outcome(client: Any) -> None:
    resp = post(client, "Appointment", appointment(), Prefer="return=OperationOutcome")
    assert resp.status_code == 201
    assert resp.get_json()["resourceType"] == "OperationOutcome"


def test_pretty_output_is_indented(client: Any) -> None:
    created = create_appointment(client)
    resp = client.get(f"/fhir/Appointment/{created['id']}?_pretty=true")
    assert b"\n  " in resp.data and resp.get_json() == created


def test_forwarded_headers_shape_absolute_urls(client: Any) -> None:
    resp = post(client, "Appointment", appointment(), **{"X-Forwarded-Proto": "https",
                                                          "X-Forwarded-Host": "fhir.example.vn"})
    assert resp.headers["Location"].startswith("https://fhir.example.vn/fhir/Appointment/")


def test_audit_event_cannot_be_updated(client: Any) -> None:
    resp = put(client, "AuditEvent/a1", {"resourceType": "AuditEvent", "id": "a1"})
    assert resp.status_code == 405
    assert resp.get_json()["resourceType"] == "OperationOutcome"
