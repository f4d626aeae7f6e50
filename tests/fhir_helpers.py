"""Small builders shared by the REST tests."""

from __future__ import annotations

from typing import Any

FHIR_JSON = "application/fhir+json"


def appointment(status: str = "booked", practitioner: str = "Practitioner/p1", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Appointment",
        "status": status,
        "start": "2026-12-01T08:00:00+07:00",
        "end": "2026-12-01T08:30:00+07:00",
        "participant": [{"actor": {"reference": practitioner}, "status": "accepted"}],
    }
    body.update(extra)
    return body


def patient(identifier: str | None = None, family: str = "Nguyễn", given: str = "Văn An") -> dict[str, Any]:
    body: dict[str, Any] = {"resourceType": "Patient", "name": [{"family": family, "given": [given],
                                                                  "text": f"{family} {given}"}]}
    if identifier:
        body["identifier"] = [{"system": "http://fhir.ehealth.gov.vn/core/sid/national_id", "value": identifier}]
    return body


def post(client: Any, path: str, body: Any, **headers: str) -> Any:
    return client.post(f"/fhir/{path}", json=body, headers={"Content-Type": FHIR_JSON, **headers})


def put(client: Any, path: str, body: Any, **headers: str) -> Any:
    return client.put(f"/fhir/{path}", json=body, headers={"Content-Type": FHIR_JSON, **headers})


def outcome_expressions(resp: Any) -> list[str]:
    body = resp.get_json()
    assert body["resourceType"] == "OperationOutcome", body
    return [e for issue in body["issue"] for e in issue.get("expression", [])]


def created_appointment(client: Any) -> str:
    """POST a valid Appointment (201 expected); its server-assigned id."""
    resp = post(client, "Appointment", appointment())
    assert resp.status_code == 201, resp.get_data(as_text=True)[:300]
    return str(resp.get_json()["id"])
