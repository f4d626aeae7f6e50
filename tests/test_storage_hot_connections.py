"""The read hot path keeps one connection per serving thread (fhir_server/storage/hot_connections.py):
it survives a dropped database connection and an engine disposal, and sees writes at once."""

from __future__ import annotations

from typing import Any

from tests.fhir_helpers import created_appointment


def _service(client: Any) -> Any:
    return client.application.extensions["fhir_service"]



def test_a_read_after_a_write_sees_the_new_version(client: Any) -> None:
    rid = created_appointment(client)
    assert client.get(f"/fhir/Appointment/{rid}").status_code == 200  # the thread's connection is open now
    body = client.get(f"/fhir/Appointment/{rid}").get_json()
    body["status"] = "cancelled"
    assert client.put(f"/fhir/Appointment/{rid}", json=body,
                      headers={"Content-Type": "application/fhir+json"}).status_code == 200
    again = client.get(f"/fhir/Appointment/{rid}")
    assert again.get_json()["status"] == "cancelled" and again.headers["ETag"] == 'W/"2"'


def test_reads_go_on_after_the_engine_is_disposed(client: Any) -> None:
    rid = created_appointment(client)
    assert client.get(f"/fhir/Appointment/{rid}").status_code == 200
    _service(client).repo.engine.dispose()  # closes every kept connection
    assert client.get(f"/fhir/Appointment/{rid}").status_code == 200


def test_a_killed_database_connection_is_replaced(client: Any) -> None:
    repo = _service(client).repo
    rid = created_appointment(client)
    assert client.get(f"/fhir/Appointment/{rid}").status_code == 200
    hot = repo._hot
    assert hot is not None
    conn = hot._local.conn
    if repo.postgres:  # the server ends the session, as a restart or a proxy timeout would
        pid = conn.info.backend_pid
        with repo.engine.connect() as admin:
            admin.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
    else:
        conn.close()  # SQLite: the nearest thing, a handle closed under the thread
    resp = client.get(f"/fhir/Appointment/{rid}")
    assert resp.status_code == 200 and resp.get_json()["id"] == rid
    assert hot._local.conn is not conn
