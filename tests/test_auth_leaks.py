"""Nothing outside the boundary leaks: not through _include, _revinclude, chains, _has, _total,
history, vread, system search, conditional interactions, or batch/transaction entries.

The commune station (Organization/org-m) holds resources that point at the central hospital's
patient and appointment; the central hospital (Organization/org-c) must not see them, and the
admin (no boundary) sees them all, which proves each query would have found them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from authkit import FHIR, World, close_app, database, make_world_app
from conftest import BACKENDS

SECRET_ID = {"system": "http://example.org/cccd", "value": "079099000111"}


@pytest.fixture(scope="module", params=BACKENDS)
def world(request: Any, tmp_path_factory: Any) -> Iterator[World]:
    url, schema = database(request.param, tmp_path_factory.mktemp("leaks"))
    app = make_world_app(url)
    w = World(app)
    commune = {"reference": "PractitionerRole/role-commune"}
    extra = [
        # the commune's Condition about the central hospital's patient, with a telling code
        {"resourceType": "Condition", "id": "leak-cond", "subject": {"reference": "Patient/pat-central"},
         "asserter": commune, "code": {"text": "HIV"}},
        # the commune's Provenance about the central hospital's appointment
        {"resourceType": "Provenance", "id": "leak-prov", "target": [{"reference": "Appointment/appt-central"}],
         "recorded": "2026-12-01T08:00:00+07:00", "agent": [{"who": commune}]},
        # the commune's patient with an identifier someone might probe for
        {"resourceType": "Patient", "id": "leak-pat", "identifier": [SECRET_ID], "name": [{"family": "Bí Mật"}],
         "managingOrganization": {"reference": "Organization/org-m"}},
        # the central hospital's Condition that points at the commune's patient (not a consultation)
        {"resourceType": "Condition", "id": "own-cond", "subject": {"reference": "Patient/leak-pat"},
         "asserter": {"reference": "PractitionerRole/role-central"}, "code": {"text": "Ho"}},
    ]
    for res in extra:
        resp = w.send("PUT", f"/fhir/{res['resourceType']}/{res['id']}", "admin", res)
        assert resp.status_code in (200, 201), resp.get_data(as_text=True)
    yield w
    close_app(app, schema)


def ids(bundle: dict[str, Any]) -> set[str]:
    return {e["resource"]["id"] for e in bundle.get("entry", []) if e.get("resource", {}).get("id")}


def both(world: World, path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(what the central hospital sees, what the admin sees)."""
    mine, everything = world.get(path, "central"), world.get(path, "admin")
    assert mine.status_code == 200 and everything.status_code == 200, mine.get_data(as_text=True)
    return mine.get_json(), everything.get_json()


def test_include_does_not_pull_in_a_resource_outside(world: World) -> None:
    mine, everything = both(world, "/fhir/Condition?_id=own-cond&_include=Condition:subject")
    assert "leak-pat" in ids(everything)
    assert ids(mine) == {"own-cond"}


def test_revinclude_does_not_pull_in_a_resource_outside(world: World) -> None:
    mine, everything = both(world, "/fhir/Appointment?_id=appt-central&_revinclude=Provenance:target"
                                   "&_revinclude=Condition:subject:iterate")
    assert "leak-prov" in ids(everything)
    assert ids(mine) == {"appt-central"}


def test_patient_everything_like_revinclude_hides_other_facilities_records(world: World) -> None:
    mine, everything = both(world, "/fhir/Patient?_id=pat-central&_revinclude=Condition:subject")
    assert "leak-cond" in ids(everything)
    assert "leak-cond" not in ids(mine) and "cond-central" in ids(mine)


def test_a_chain_cannot_probe_a_resource_outside(world: World) -> None:
    mine, everything = both(world, "/fhir/Condition?subject:Patient.identifier=079099000111&_total=accurate")
    assert everything["total"] == 1
    assert mine["total"] == 0 and "entry" not in mine


def test_has_cannot_probe_a_resource_outside(world: World) -> None:
    mine, everything = both(world, "/fhir/Patient?_has:Condition:subject:code:text=HIV&_total=accurate")
    assert ids(everything) == {"pat-central"}
    assert mine["total"] == 0


@pytest.mark.parametrize("query", ["/fhir/Condition?code:text=HIV&_total=accurate",
                                   "/fhir/Condition?code:text=HIV&_summary=count",
                                   "/fhir/Patient?identifier=079099000111&_total=accurate"])
def test_total_does_not_count_resources_outside(world: World, query: str) -> None:
    mine, everything = both(world, query)
    assert everything["total"] == 1 and mine["total"] == 0


def test_system_search_sees_only_the_boundary(world: World) -> None:
    mine, everything = both(world, "/fhir?_type=Patient,Condition&_count=200")
    assert {"leak-pat", "leak-cond"} <= ids(everything)
    assert not ({"leak-pat", "leak-cond", "pat-commune", "cond-commune"} & ids(mine))
    assert {"pat-central", "cond-central", "own-cond"} <= ids(mine)


def test_history_hides_resources_outside(world: World) -> None:
    mine, everything = both(world, "/fhir/Condition/_history?_count=500")
    assert "leak-cond" in ids(everything) and "leak-cond" not in ids(mine)
    instance, _ = both(world, "/fhir/Condition/leak-cond/_history")
    assert instance["total"] == 0 and not instance.get("entry")
    system, _ = both(world, "/fhir/_history?_count=500")
    assert not ({"leak-cond", "leak-pat", "pat-commune"} & ids(system))
    assert world.get("/fhir/Condition/leak-cond/_history/1", "central").status_code == 404


def test_transaction_entries_cannot_read_or_write_outside(world: World) -> None:
    read = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Patient/leak-pat"}},
        {"request": {"method": "GET", "url": "Patient?identifier=079099000111"}},
        {"request": {"method": "GET", "url": "Patient/pat-central"}},
        {"request": {"method": "PUT", "url": "Patient/leak-pat"},
         "resource": {"resourceType": "Patient", "id": "leak-pat",
                      "managingOrganization": {"reference": "Organization/org-c"}}},
    ]}
    out = world.send("POST", "/fhir", "central", read).get_json()["entry"]
    assert out[0]["response"]["status"].startswith("404")
    assert out[1]["resource"].get("total", 0) == 0 and "entry" not in out[1]["resource"]
    assert out[2]["response"]["status"].startswith("200")
    assert out[3]["response"]["status"].startswith("403")
    assert "Bí Mật" not in str(out) and "079099000111" not in str(out[0])
    # a transaction that touches anything outside fails as a whole, and writes nothing
    txn = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:4b1a1c3e-0000-4000-8000-000000000001",
         "resource": {"resourceType": "Patient", "managingOrganization": {"reference": "Organization/org-c"}},
         "request": {"method": "POST", "url": "Patient"}},
        {"request": {"method": "DELETE", "url": "Condition/leak-cond"}},
    ]}
    failed = world.send("POST", "/fhir", "central", txn)
    assert failed.status_code == 404, failed.get_data(as_text=True)
    assert world.get("/fhir/Condition/leak-cond", "admin").status_code == 200


def test_conditional_interactions_do_not_match_resources_outside(world: World) -> None:
    # conditional references do not resolve to a resource outside (and so reveal no id)
    txn = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Condition", "subject": {"reference": "Patient?identifier=079099000111"},
                      "asserter": {"reference": "PractitionerRole/role-central"}, "code": {"text": "x"}},
         "request": {"method": "POST", "url": "Condition"}}]}
    resp = world.send("POST", "/fhir", "central", txn)
    assert resp.status_code == 412 and "leak-pat" not in resp.get_data(as_text=True)
    # If-None-Exist matching only an outside resource creates our own instead of returning theirs
    mine = {"resourceType": "Patient", "identifier": [SECRET_ID],
            "managingOrganization": {"reference": "Organization/org-c"}}
    created = world.send("POST", "/fhir/Patient", "central", mine, **{"If-None-Exist": "identifier=079099000111"})
    assert created.status_code == 201 and created.get_json()["id"] != "leak-pat"
    assert "Bí Mật" not in created.get_data(as_text=True)
    # a conditional delete does not reach it either
    gone = world.send("DELETE", "/fhir/Condition?code:text=HIV", "central")
    assert gone.status_code == 204
    assert world.get("/fhir/Condition/leak-cond", "admin").status_code == 200


def test_writes_cannot_move_a_resource_out_of_or_into_another_boundary(world: World) -> None:
    moved = {"resourceType": "Patient", "id": "pat-central",
             "managingOrganization": {"reference": "Organization/org-m"}}
    resp = world.send("PUT", "/fhir/Patient/pat-central", "central", moved)
    assert resp.status_code == 403 and resp.get_json()["issue"][0]["code"] == "forbidden"
    patch = [{"op": "replace", "path": "/managingOrganization/reference", "value": "Organization/org-m"}]
    resp = world.client.patch("/fhir/Patient/pat-central", json=patch, headers={
        "Authorization": f"Bearer {world.token('central')}", "Content-Type": "application/json-patch+json"})
    assert resp.status_code == 403
    assert world.get("/fhir/Patient/pat-central", "central").get_json()["managingOrganization"]["reference"] == \
        "Organization/org-c"
    assert FHIR


def test_include_needs_a_scope_on_the_included_type_too(world: World) -> None:
    narrow = world.get("/fhir/Appointment?_id=appt-central&_include=Appointment:patient&_include=Appointment:actor",
                       "central", "system/Appointment.rs").get_json()
    assert ids(narrow) == {"appt-central"}
    admin = world.get("/fhir/Appointment?_id=appt-central&_include=Appointment:patient", "admin",
                      "system/Appointment.rs").get_json()
    assert ids(admin) == {"appt-central"}


def test_a_deleted_resource_stays_gone_for_its_owner_and_unknown_to_others(world: World) -> None:
    doc = {"resourceType": "DocumentReference", "id": "gone-doc", "status": "current",
           "custodian": {"reference": "Organization/org-c"},
           "content": [{"attachment": {"contentType": "text/plain", "data": "eA=="}}]}
    assert world.send("PUT", "/fhir/DocumentReference/gone-doc", "central", doc).status_code == 201
    assert world.send("DELETE", "/fhir/DocumentReference/gone-doc", "central").status_code == 204
    # the owner: 410 Gone, and the instance history keeps both versions
    assert world.get("/fhir/DocumentReference/gone-doc", "central").status_code == 410
    history = world.get("/fhir/DocumentReference/gone-doc/_history", "central").get_json()
    assert history["total"] == 2 and [e["request"]["method"] for e in history["entry"]] == ["DELETE", "PUT"]
    # another facility learns nothing, not even that it existed
    assert world.get("/fhir/DocumentReference/gone-doc", "commune").status_code == 404
    other = world.get("/fhir/DocumentReference/gone-doc/_history", "commune").get_json()
    assert other["total"] == 0 and not other.get("entry")


def test_token_reads_take_the_fast_path_and_answer_as_the_flask_route(world: World) -> None:
    assert not world.app.wsgi_app._hooks_registered()  # the OAuth blueprint's hooks do not stop it
    for path, status in (("/fhir/Patient/pat-central", 200), ("/fhir/Appointment/appt-central", 200),
                         ("/fhir/Patient/leak-pat", 404), ("/fhir/Condition/leak-cond", 404)):
        fast, routed = world.get(path, "central"), world.get(f"{path}?_format=json", "central")
        assert fast.status_code == routed.status_code == status, (path, fast.get_data(as_text=True)[:200])
        if status == 200:
            assert fast.get_json() == routed.get_json() and fast.headers["ETag"] == routed.headers["ETag"]
        else:  # outside the boundary: the same 404 as an id that does not exist
            assert fast.get_json()["issue"][0]["code"] == "not-found"


def test_the_read_fast_path_refuses_a_missing_or_bad_token_with_www_authenticate(world: World) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        resp = world.client.get("/fhir/Patient/pat-central", headers=headers)
        assert resp.status_code == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert resp.get_json()["resourceType"] == "OperationOutcome"
