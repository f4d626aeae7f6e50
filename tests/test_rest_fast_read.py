"""The read-by-id fast path (fhir_server/api/fast_read.py) answers exactly as the Flask route does."""

from __future__ import annotations

from typing import Any

from tests.fhir_helpers import created_appointment

HEADERS = ("ETag", "Last-Modified", "Content-Type")



def test_fast_read_matches_the_flask_route(client: Any) -> None:
    rid = created_appointment(client)
    fast = client.get(f"/fhir/Appointment/{rid}")
    routed = client.get(f"/fhir/Appointment/{rid}?_format=json")  # a query string takes the Flask route
    assert fast.status_code == routed.status_code == 200
    assert fast.data == routed.data
    assert {h: fast.headers[h] for h in HEADERS} == {h: routed.headers[h] for h in HEADERS}


def test_fast_read_errors_are_operation_outcomes_in_the_users_language(client: Any) -> None:
    resp = client.get("/fhir/Appointment/missing", headers={"Accept-Language": "en"})
    assert resp.status_code == 404
    body = resp.get_json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["details"]["text"] == "Appointment/missing not found"


def test_fast_read_of_a_deleted_resource_is_gone_with_etag(client: Any) -> None:
    rid = created_appointment(client)
    assert client.delete(f"/fhir/Appointment/{rid}").status_code in (200, 204)
    resp = client.get(f"/fhir/Appointment/{rid}")
    assert resp.status_code == 410
    assert resp.headers["ETag"] == 'W/"2"'


def test_fast_read_honours_if_none_match(client: Any) -> None:
    rid = created_appointment(client)
    resp = client.get(f"/fhir/Appointment/{rid}", headers={"If-None-Match": 'W/"1"'})
    assert resp.status_code == 304
    assert resp.data == b""


def test_fast_read_passes_through_the_authorizer(app: Any, client: Any) -> None:
    from fhir_server.errors import Forbidden

    rid = created_appointment(client)
    svc = app.extensions["fhir_service"]

    class DenyReads:
        def __getattr__(self, name: str) -> Any:
            return getattr(original, name)

        def authorize(self, req: Any, interaction: str, operation: Any = None) -> None:
            if interaction == "read":
                raise Forbidden("no reads", "không được đọc")

    original = svc.authorizer
    svc.authorizer = DenyReads()
    try:
        assert client.get(f"/fhir/Appointment/{rid}").status_code == 403
    finally:
        svc.authorizer = original


def test_a_flask_request_hook_disables_the_fast_path(app: Any, client: Any) -> None:
    rid = created_appointment(client)
    seen: list[str] = []
    app.before_request_funcs.setdefault(None, []).append(lambda: seen.append("hook") and None)
    assert client.get(f"/fhir/Appointment/{rid}").status_code == 200
    assert seen == ["hook"]
