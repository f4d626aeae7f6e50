"""Ownership facts (auth/owner_facts.py) kept at write time say exactly what the boundary's SQL rule says.

For every facility Organization and every live resource of a type with links, the stored fact
"belongs to Organization X" holds exactly when the correlated SQL statement of the organization
boundary (LinkCompiler.inside_row, read links) finds the resource inside — after moves of a
PractitionerRole, new and deleted roles (a Practitioner belongs through the roles that point at it),
deleted and re-created resources, dangling references that come to resolve, and concurrent writes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from authkit import FACILITIES, World, close_app, database, make_world_app, owned, ref, world_id
from conftest import BACKENDS
from sqlalchemy import select

from auth.authorizer import Access
from auth.boundary import Anchor, LinkCompiler
from auth.owner_facts import owner_facts
from auth.policy import load_policy
from fhir_server.errors import Conflict
from fhir_server.registry import RESOURCE_TYPES
from fhir_server.storage.tables import resources

ORGS = sorted(org for org, _tier, _province in FACILITIES.values())


@pytest.fixture(scope="module", params=BACKENDS)
def world(request: Any, tmp_path_factory: Any) -> Iterator[World]:
    url, schema = database(request.param, tmp_path_factory.mktemp("facts"))
    app = make_world_app(url)
    yield World(app)
    close_app(app, schema)


def expected(w: World) -> set[tuple[int, str]]:
    """(res_pk, Organization) for every live resource the SQL rule puts inside that Organization."""
    policy = load_policy()
    read_links = {t: policy.read_links(t) for t in RESOURCE_TYPES}
    out: set[tuple[int, str]] = set()
    engine = w.svc.repo.engine
    with engine.connect() as conn:
        for org in ORGS:
            comp = LinkCompiler(read_links, policy.owner, Anchor("Organization", [org]), None)
            for t in w.svc.owner_facts.graph.top:
                stmt = select(resources.c.res_pk).where(resources.c.res_type == t, resources.c.deleted.is_(False),
                                                        comp.inside_row(resources, t))
                out.update((pk, org) for (pk,) in conn.execute(stmt))
    return out


def stored(w: World) -> set[tuple[int, str]]:
    with w.svc.repo.engine.connect() as conn:
        rows = conn.execute(select(owner_facts.c.res_pk, owner_facts.c.org_id)
                            .where(owner_facts.c.org_id.in_(ORGS))).all()
    return {(pk, org) for pk, org in rows}


def put(w: World, res_type: str, res_id: str, body: dict[str, Any]) -> None:
    resp = w.send("PUT", f"/fhir/{res_type}/{res_id}", "admin", {**body, "id": res_id})
    assert resp.status_code in (200, 201), resp.get_data(as_text=True)[:500]


def delete(w: World, path: str) -> None:
    resp = w.send("DELETE", f"/fhir/{path}", "admin")
    assert resp.status_code in (200, 204), resp.get_data(as_text=True)[:500]


def role(org: str, practitioner: str) -> dict[str, Any]:
    return {"resourceType": "PractitionerRole", "organization": ref(f"Organization/{org}"),
            "practitioner": ref(f"Practitioner/{practitioner}")}


def appointment_with(*actors: str) -> dict[str, Any]:
    return {"resourceType": "Appointment", "status": "booked",
            "participant": [{"actor": ref(a), "status": "accepted"} for a in actors]}


def test_facts_of_the_demo_world_are_the_sql_rule(world: World) -> None:
    facts = stored(world)
    assert facts, "the world has resources that belong to facilities"
    assert facts == expected(world)


def test_a_moved_practitioner_role_moves_what_it_reaches(world: World) -> None:
    path = "/fhir/Appointment/appt-central"
    assert world.get(path, "central").status_code == 200
    put(world, "PractitionerRole", "role-central", role("org-p", "prac-central"))
    try:
        assert world.get(path, "central").status_code == 404
        assert world.get(path, "provincial").status_code == 200
        assert world.get("/fhir/Slot/slot-central", "provincial").status_code == 200  # directory: open anyway
        assert stored(world) == expected(world)
    finally:
        put(world, "PractitionerRole", "role-central", role("org-c", "prac-central"))
    assert world.get(path, "central").status_code == 200
    assert stored(world) == expected(world)


def test_a_new_role_makes_a_practitioner_and_its_appointments_belong(world: World) -> None:
    put(world, "Appointment", "appt-prac-only", appointment_with("Practitioner/prac-commune",
                                                                 f"Patient/{world_id('Patient', 'commune')}"))
    assert world.get("/fhir/Appointment/appt-prac-only", "central").status_code == 404
    put(world, "PractitionerRole", "role-commune-at-central", role("org-c", "prac-commune"))
    assert world.get("/fhir/Appointment/appt-prac-only", "central").status_code == 200
    assert stored(world) == expected(world)
    delete(world, "PractitionerRole/role-commune-at-central")
    assert world.get("/fhir/Appointment/appt-prac-only", "central").status_code == 404
    assert stored(world) == expected(world)


def test_a_deleted_then_recreated_target_is_followed_again(world: World) -> None:
    put(world, "PractitionerRole", "role-temp", role("org-d", "prac-district"))
    put(world, "Appointment", "appt-temp", appointment_with("PractitionerRole/role-temp"))
    assert world.get("/fhir/Appointment/appt-temp", "district").status_code == 200
    delete(world, "PractitionerRole/role-temp")
    assert world.get("/fhir/Appointment/appt-temp", "district").status_code == 404
    assert stored(world) == expected(world)
    put(world, "PractitionerRole", "role-temp", role("org-d", "prac-district"))
    assert world.get("/fhir/Appointment/appt-temp", "district").status_code == 200
    assert stored(world) == expected(world)


def test_a_dangling_reference_that_comes_to_resolve_is_followed(world: World) -> None:
    put(world, "Slot", "slot-early", {**owned("Slot", "district"), "schedule": ref("Schedule/sch-later")})
    put(world, "Schedule", "sch-later", {"resourceType": "Schedule", "actor": [ref("PractitionerRole/role-district")]})
    facts = stored(world)
    assert facts == expected(world)
    with world.svc.repo.engine.connect() as conn:
        pk = conn.execute(select(resources.c.res_pk).where(resources.c.res_type == "Slot",
                                                           resources.c.res_id == "slot-early")).scalar_one()
    assert (pk, "org-d") in facts


def test_a_consulted_patient_stops_belonging_when_the_appointment_goes(world: World) -> None:
    patient = world_id("Patient", "commune")
    put(world, "Appointment", "appt-consult",
        appointment_with("PractitionerRole/role-provincial", f"Patient/{patient}"))
    assert world.get(f"/fhir/Patient/{patient}", "provincial").status_code == 200
    delete(world, "Appointment/appt-consult")
    assert world.get(f"/fhir/Patient/{patient}", "provincial").status_code == 404
    assert stored(world) == expected(world)


def test_an_update_that_changes_no_followed_reference_keeps_the_facts(world: World) -> None:
    before = stored(world)
    body = {**owned("Appointment", "central"), "status": "fulfilled"}
    put(world, "Appointment", "appt-central", body)
    assert stored(world) == before == expected(world)


def test_a_rebuild_gives_the_facts_the_writes_kept(world: World) -> None:
    kept = stored(world)
    with world.svc.repo.unit_of_work() as uow:
        world.svc.owner_facts.rebuild(uow.conn)
    assert stored(world) == kept == expected(world)


def test_reads_decide_the_same_by_facts_by_walk_and_by_statement(world: World, monkeypatch: Any) -> None:
    paths = [f"/fhir/{t}/{world_id(t, k)}" for t in ("Patient", "Appointment", "Encounter", "Condition",
                                                      "MedicationRequest", "DocumentReference", "Composition",
                                                      "Provenance", "PractitionerRole")
             for k in FACILITIES]

    def statuses() -> dict[tuple[str, str], int]:
        return {(who, p): world.get(p, who).status_code for who in FACILITIES for p in paths}

    by_facts = statuses()
    assert 200 in by_facts.values() and 404 in by_facts.values()
    monkeypatch.setattr(Access, "facts_org", lambda self, t: None)  # the walk (RowChecker)
    assert statuses() == by_facts
    monkeypatch.setattr(Access, "row_checker", lambda self, t: None)  # the correlated statement
    assert statuses() == by_facts


def test_a_write_that_waits_for_a_concurrent_move_sees_the_moved_role(world: World) -> None:
    """An Appointment created while another transaction moves its PractitionerRole (not yet committed)
    must end up owned by the role's new Organization: its walk waits for the move to commit."""
    put(world, "PractitionerRole", "role-moving", role("org-c", "prac-central"))
    result: dict[str, Any] = {}

    def create() -> None:
        client = world.app.test_client()
        result["resp"] = client.put("/fhir/Appointment/appt-during-move",
                                    json={**appointment_with("PractitionerRole/role-moving"), "id": "appt-during-move"},
                                    headers={"Authorization": f"Bearer {world.token('admin')}",
                                             "Content-Type": "application/fhir+json"})

    with world.svc.repo.unit_of_work() as uow:
        uow.upsert("PractitionerRole", "role-moving", {**role("org-p", "prac-central"), "id": "role-moving"})
        thread = threading.Thread(target=create)
        thread.start()
        thread.join(0.5)  # the create now waits for this transaction (its lock, or SQLite's write lock)
    thread.join(30)
    assert result["resp"].status_code == 201, result["resp"].get_data(as_text=True)[:500]
    assert world.get("/fhir/Appointment/appt-during-move", "provincial").status_code == 200
    assert world.get("/fhir/Appointment/appt-during-move", "central").status_code == 404
    assert stored(world) == expected(world)


@pytest.mark.skipif("postgresql" not in BACKENDS, reason="needs PostgreSQL (SQLite serialises writers)")
def test_crossed_concurrent_writes_end_in_one_conflict_and_consistent_facts(world: World) -> None:
    """Two transactions that each move a role and then link the other's role wait for each other;
    PostgreSQL breaks the cycle, and the one it aborts leaves as 409 with nothing written."""
    if world.svc.repo.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    put(world, "PractitionerRole", "role-x1", role("org-c", "prac-central"))
    put(world, "PractitionerRole", "role-x2", role("org-p", "prac-provincial"))
    barrier = threading.Barrier(2, timeout=30)
    outcomes: dict[str, str] = {}

    def cross(mine: str, other: str, org: str, practitioner: str) -> None:
        try:
            with world.svc.repo.unit_of_work() as uow:
                uow.upsert("PractitionerRole", mine, {**role(org, practitioner), "id": mine})
                barrier.wait()
                uow.upsert("Appointment", f"appt-{mine}", {**appointment_with(f"PractitionerRole/{other}"),
                                                           "id": f"appt-{mine}"})
            outcomes[mine] = "committed"
        except Conflict:
            outcomes[mine] = "conflict"

    threads = [threading.Thread(target=cross, args=("role-x1", "role-x2", "org-d", "prac-district")),
               threading.Thread(target=cross, args=("role-x2", "role-x1", "org-m", "prac-commune"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes.values()) == ["committed", "conflict"]
    assert stored(world) == expected(world)


def test_searches_find_the_same_by_facts_and_by_links(world: World, monkeypatch: Any) -> None:
    queries = [f"/fhir/{t}?_count=500&_total=accurate" for t in ("Patient", "Appointment", "Encounter", "Condition",
                                                                   "MedicationRequest", "DocumentReference",
                                                                   "Composition", "Provenance")]
    queries += ["/fhir/Appointment?_include=Appointment:patient&_count=500",
                "/fhir/Patient?_revinclude=Encounter:subject&_count=500",
                "/fhir/Condition?encounter.service-provider=Organization/org-c&_count=500",
                "/fhir/Patient?_has:Appointment:patient:status=booked&_count=500"]

    def found() -> dict[tuple[str, str], tuple[Any, list[str]]]:
        out = {}
        for who in FACILITIES:
            for q in queries:
                body = world.get(q, who).get_json()
                out[(who, q)] = (body.get("total"), sorted(f"{e['resource']['resourceType']}/{e['resource']['id']}"
                                                            for e in body.get("entry", [])))
        return out

    authz = world.svc.authorizer
    by_facts = found()
    assert any(ids for _total, ids in by_facts.values())
    assert by_facts[("central", queries[1])][1] != by_facts[("provincial", queries[1])][1]
    monkeypatch.setattr(authz, "facts", None)
    authz._access_cache.clear()
    try:
        assert found() == by_facts
    finally:
        authz._access_cache.clear()


def random_write(rnd: Any, w: World, n: int) -> None:
    """One write of a small random graph: roles, practitioners, patients, appointments, encounters,
    schedules, slots and conditions pointing at each other (ids from small pools, so references
    dangle, resolve, move and vanish)."""
    orgs = ORGS
    pick = rnd.choice

    def r(t: str, k: int = 3) -> dict[str, str]:
        return ref(f"{t}/rnd-{t.lower()}-{rnd.randrange(k)}")

    res_type = pick(["PractitionerRole", "PractitionerRole", "Practitioner", "Patient", "Appointment",
                     "Appointment", "Encounter", "Encounter", "Schedule", "Slot", "Condition"])
    res_id = f"rnd-{res_type.lower()}-{rnd.randrange(3)}"
    if rnd.random() < 0.2:
        w.send("DELETE", f"/fhir/{res_type}/{res_id}", "admin")
        return
    bodies: dict[str, dict[str, Any]] = {
        "PractitionerRole": {"organization": ref(f"Organization/{pick(orgs)}"), "practitioner": r("Practitioner")},
        "Practitioner": {"name": [{"family": f"N{n}"}]},
        "Patient": ({"managingOrganization": ref(f"Organization/{pick(orgs)}")} if rnd.random() < 0.3 else {}),
        "Appointment": {"status": "booked", "participant": [
            {"actor": r(pick(["PractitionerRole", "Practitioner", "Patient"])), "status": "accepted"}
            for _ in range(rnd.randrange(1, 3))]},
        "Encounter": {"status": "finished", "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                                      "code": "VR"},
                      "subject": r("Patient"), "appointment": [r("Appointment")],
                      "participant": [{"individual": r(pick(["PractitionerRole", "Practitioner"]))}]},
        "Schedule": {"actor": [r(pick(["PractitionerRole", "Practitioner"]))]},
        "Slot": {"schedule": r("Schedule"), "status": "free", "start": "2026-12-01T08:00:00+07:00",
                 "end": "2026-12-01T08:30:00+07:00"},
        "Condition": {"subject": r("Patient"), "encounter": r("Encounter"), "code": {"text": "x"},
                      "asserter": r("PractitionerRole")},
    }
    put(w, res_type, res_id, {"resourceType": res_type, **bodies[res_type]})


def test_facts_stay_the_sql_rule_through_a_random_series_of_writes(world: World) -> None:
    import random

    rnd = random.Random(20261204)
    for n in range(120):
        random_write(rnd, world, n)
        if n % 20 == 19:
            assert stored(world) == expected(world), f"after write {n}"
