"""history at instance, type and system level with _since, _at, _count and paging (R4 http.html#history)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from tests.fhir_helpers import appointment, patient, post, put


def test_instance_history_lists_versions_newest_first(client: Any) -> None:
    created = post(client, "Appointment", appointment()).get_json()
    put(client, f"Appointment/{created['id']}", {**created, "status": "arrived"})
    bundle = client.get(f"/fhir/Appointment/{created['id']}/_history").get_json()
    assert bundle["type"] == "history" and bundle["total"] == 2
    assert [e["resource"]["meta"]["versionId"] for e in bundle["entry"]] == ["2", "1"]
    assert bundle["entry"][0]["response"]["etag"] == 'W/"2"'


def test_type_history_only_has_that_type(client: Any) -> None:
    post(client, "Appointment", appointment())
    post(client, "Patient", patient())
    bundle = client.get("/fhir/Appointment/_history").get_json()
    assert {e["resource"]["resourceType"] for e in bundle["entry"]} == {"Appointment"}


def test_system_history_has_every_type(client: Any) -> None:
    post(client, "Appointment", appointment())
    post(client, "Patient", patient())
    bundle = client.get("/fhir/_history").get_json()
    assert {e["resource"]["resourceType"] for e in bundle["entry"]} == {"Appointment", "Patient"}


def test_history_since_excludes_older_versions(client: Any) -> None:
    post(client, "Appointment", appointment())
    time.sleep(0.01)
    marker = datetime.now(UTC).isoformat()
    time.sleep(0.01)
    newer = post(client, "Appointment", appointment()).get_json()
    bundle = client.get("/fhir/Appointment/_history", query_string={"_since": marker}).get_json()
    assert [e["resource"]["id"] for e in bundle["entry"]] == [newer["id"]]


def test_history_at_gives_versions_current_then(client: Any) -> None:
    created = post(client, "Appointment", appointment()).get_json()
    time.sleep(0.01)
    marker = datetime.now(UTC).isoformat()
    time.sleep(0.01)
    put(client, f"Appointment/{created['id']}", {**created, "status": "arrived"})
    bundle = client.get(f"/fhir/Appointment/{created['id']}/_history", query_string={"_at": marker}).get_json()
    assert [e["resource"]["meta"]["versionId"] for e in bundle["entry"]] == ["1"]


def test_history_paging_follows_next_links_without_gaps(client: Any) -> None:
    ids = {post(client, "Appointment", appointment()).get_json()["id"] for _ in range(7)}
    seen: list[str] = []
    url: str | None = "/fhir/Appointment/_history?_count=3"
    pages = 0
    while url:
        bundle = client.get(url).get_json()
        seen += [e["resource"]["id"] for e in bundle.get("entry", [])]
        nxt = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        url = nxt[0].replace("http://localhost", "") if nxt else None
        pages += 1
    assert sorted(seen) == sorted(ids) and pages == 3


def test_tampered_history_page_link_is_400(client: Any) -> None:
    resp = client.get("/fhir/_history?_page=AAAAbogus")
    assert resp.status_code == 400
    assert resp.get_json()["issue"][0]["expression"] == ["_page"]


def test_history_bad_since_is_400(client: Any) -> None:
    assert client.get("/fhir/_history?_since=yesterday").status_code == 400


def test_history_count_must_be_integer(client: Any) -> None:
    assert client.get("/fhir/_history?_count=lots").status_code == 400


def test_deleted_version_appears_in_history_without_resource(client: Any) -> None:
    created = post(client, "Appointment", appointment()).get_json()
    client.delete(f"/fhir/Appointment/{created['id']}")
    entry = client.get(f"/fhir/Appointment/{created['id']}/_history").get_json()["entry"][0]
    assert "resource" not in entry and entry["request"]["method"] == "DELETE"
