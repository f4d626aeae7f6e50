"""The read boundary walked in Python (auth.boundary.RowChecker) decides exactly as the SQL statement.

Reads of single resources check the boundary with a few indexed lookups instead of one correlated
statement; for every principal and every stored resource of a bounded type, both give the same answer
(200 inside, 404 outside), on both backends.
"""

from __future__ import annotations

from typing import Any

from authkit import FACILITIES, PROFILES, World, world_id
from test_auth_matrix import world  # noqa: F401  (the module-scoped world of the matrix test)

from auth.authorizer import Access

BOUNDED = ["Patient", "Appointment", "Encounter", "Condition", "MedicationRequest", "DocumentReference",
           "Composition", "Provenance", "PractitionerRole"]


def statuses(w: World) -> dict[tuple[str, str], int]:
    out = {}
    for who in PROFILES:
        for res_type in BOUNDED:
            for k in FACILITIES:
                out[(who, f"{res_type}/{world_id(res_type, k)}")] = w.get(
                    f"/fhir/{res_type}/{world_id(res_type, k)}", who).status_code
    return out


def test_row_walk_matches_sql_statement(world: World, monkeypatch: Any) -> None:  # noqa: F811
    walked = statuses(world)
    assert 200 in walked.values() and 404 in walked.values()
    monkeypatch.setattr(Access, "row_checker", lambda self, t: None)  # force the correlated SQL statement
    assert statuses(world) == walked


def test_row_walk_is_used_for_facility_reads(world: World) -> None:  # noqa: F811
    world.get("/fhir/Appointment/appt-central", "central")
    authz = world.svc.authorizer
    accesses = [a for a in authz._access_cache.values()
                if a.principal is not None and a.principal.organization == "Organization/org-c"]
    assert accesses and any(a.row_checker("Appointment") is not None for a in accesses)


def test_consulted_patient_becomes_readable_on_both_paths(world: World, monkeypatch: Any) -> None:  # noqa: F811
    path = f"/fhir/Patient/{world_id('Patient', 'commune')}"
    assert world.get(path, "central").status_code == 404
    appt = {"resourceType": "Appointment", "status": "booked", "participant": [
        {"actor": {"reference": "PractitionerRole/role-central"}, "status": "accepted"},
        {"actor": {"reference": f"Patient/{world_id('Patient', 'commune')}"}, "status": "accepted"}]}
    created = world.send("POST", "/fhir/Appointment", "central", appt)
    assert created.status_code == 201, created.get_data(as_text=True)[:300]
    assert world.get(path, "central").status_code == 200  # consulted on: the case's patient
    assert world.get(path, "provincial").status_code == 404  # not consulted
    monkeypatch.setattr(Access, "row_checker", lambda self, t: None)
    assert world.get(path, "central").status_code == 200
    assert world.get(path, "provincial").status_code == 404
