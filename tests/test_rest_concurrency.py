"""Two writers with the same If-Match: exactly one wins, the other gets 412; nothing is lost."""

from __future__ import annotations

import threading
from typing import Any

from tests.fhir_helpers import FHIR_JSON, appointment, post


def test_concurrent_if_match_updates_one_wins(app: Any) -> None:
    client = app.test_client()
    created = post(client, "Appointment", appointment()).get_json()
    barrier = threading.Barrier(2)
    results: dict[str, int] = {}

    def writer(comment: str) -> None:
        local = app.test_client()
        barrier.wait()
        resp = local.put(f"/fhir/Appointment/{created['id']}", json={**created, "comment": comment},
                         content_type=FHIR_JSON, headers={"If-Match": 'W/"1"'})
        results[comment] = resp.status_code

    threads = [threading.Thread(target=writer, args=(c,)) for c in ("first", "second")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results.values()) == [200, 412]
    winner = next(c for c, s in results.items() if s == 200)
    current = client.get(f"/fhir/Appointment/{created['id']}").get_json()
    assert current["comment"] == winner and current["meta"]["versionId"] == "2"
    history = client.get(f"/fhir/Appointment/{created['id']}/_history").get_json()
    assert history["total"] == 2


def test_concurrent_updates_without_if_match_keep_every_version(app: Any) -> None:
    client = app.test_client()
    created = post(client, "Appointment", appointment()).get_json()
    barrier = threading.Barrier(4)
    codes: list[int] = []

    def writer(n: int) -> None:
        local = app.test_client()
        barrier.wait()
        resp = local.put(f"/fhir/Appointment/{created['id']}", json={**created, "comment": f"w{n}"},
                         content_type=FHIR_JSON)
        codes.append(resp.status_code)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [200] * 4
    history = client.get(f"/fhir/Appointment/{created['id']}/_history").get_json()
    assert history["total"] == 5
