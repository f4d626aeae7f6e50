"""The policy matrix, generated from auth/policy.toml: every profile × resource type × interaction.

For each cell the policy table implies one allowed and one denied request (or only the denied
one where the table grants nothing), each checked for status and body against the live app.
Denials: outside the data boundary → 404 on read, no match on search, 403 on write; outside
the granted scopes or the profile's ceiling → 403.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from authkit import (
    FACILITIES,
    PROFILES,
    World,
    close_app,
    database,
    make_world_app,
    organization,
    owned,
    world_id,
)
from conftest import BACKENDS

from auth.policy import load_policy
from fhir_server.registry import RESOURCE_TYPES

POLICY = load_policy()
TYPES = [t for t in RESOURCE_TYPES if t != "CapabilityStatement"]  # generated, never stored
PROFILE_OF = {
    **{k: (("facility", FACILITIES[k][1] or "*")) for k in FACILITIES},
    "patient": ("patient", "*"), "auditor": ("auditor", "*"), "regulator": ("regulator", "*"),
    "admin": ("admin", "*"),
}
# Whose data lies inside each principal's boundary, and whose outside.
OWN = {**{k: k for k in FACILITIES}, "patient": "central", "auditor": "provincial", "regulator": "provincial",
       "admin": "central"}
OTHER = {**{k: "commune" for k in FACILITIES}, "commune": "central", "patient": "commune", "auditor": "commune",
         "regulator": "commune", "admin": None}


@pytest.fixture(scope="module", params=BACKENDS)
def world(request: Any, tmp_path_factory: Any) -> Iterator[World]:
    url, schema = database(request.param, tmp_path_factory.mktemp("matrix"))
    app = make_world_app(url)
    yield World(app)
    close_app(app, schema)


def narrow(who: str, res_type: str) -> str:
    """A scope that grants something, but nothing on res_type."""
    other = "Medication" if res_type != "Medication" else "Location"
    return f"{'patient' if who == 'patient' else 'system'}/{other}.rs"


def rid(world: World, res_type: str, k: str) -> str:
    return world.audit_ids[k] if res_type == "AuditEvent" else world_id(res_type, k)


def outcome(resp: Any, status: int, code: str) -> None:
    assert resp.status_code == status, resp.get_data(as_text=True)[:500]
    body = resp.get_json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == code


def body_for(res_type: str, k: str) -> dict[str, Any]:
    if res_type == "Organization":
        org_id, tier, province = FACILITIES[k]
        return organization(org_id, tier, province)
    return owned(res_type, k)


@pytest.mark.parametrize("res_type", TYPES)
@pytest.mark.parametrize("who", PROFILES)
def test_policy_cell(world: World, who: str, res_type: str) -> None:
    profile = POLICY.profile(*PROFILE_OF[who])
    assert profile is not None
    cfg = RESOURCE_TYPES[res_type]
    readable = res_type in profile.readable
    open_read = res_type in profile.open or profile.boundary == "none"
    writable = res_type in profile.write
    own, other = OWN[who], OTHER[who]
    own_id = rid(world, res_type, own)

    # read
    if readable:
        resp = world.get(f"/fhir/{res_type}/{own_id}", who)
        assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
        assert resp.get_json()["id"] == own_id
        if open_read or other is None:
            outcome(world.get(f"/fhir/{res_type}/{own_id}", who, narrow(who, res_type)), 403, "forbidden")
        else:
            outcome(world.get(f"/fhir/{res_type}/{rid(world, res_type, other)}", who), 404, "not-found")
    else:
        outcome(world.get(f"/fhir/{res_type}/{own_id}", who), 403, "forbidden")

    # search (with an accurate total: the boundary is inside the count as well)
    if readable:
        found = world.get(f"/fhir/{res_type}?_id={own_id}&_total=accurate", who).get_json()
        assert found["total"] == 1 and found["entry"][0]["resource"]["id"] == own_id
        if open_read or other is None:
            outcome(world.get(f"/fhir/{res_type}?_id={own_id}", who, narrow(who, res_type)), 403, "forbidden")
        else:
            hidden = world.get(f"/fhir/{res_type}?_id={rid(world, res_type, other)}&_total=accurate", who)
            assert hidden.status_code == 200
            assert hidden.get_json()["total"] == 0 and "entry" not in hidden.get_json()
    else:
        outcome(world.get(f"/fhir/{res_type}?_id={own_id}", who), 403, "forbidden")

    # create
    if cfg.supports("create"):
        if writable:
            created = world.send("POST", f"/fhir/{res_type}", who, owned(res_type, own))
            assert created.status_code == 201, created.get_data(as_text=True)[:500]
            assert created.get_json()["resourceType"] == res_type
            free = "_create" in POLICY.owner.get(res_type, ())
            if other is None or free:
                outcome(world.send("POST", f"/fhir/{res_type}", who, owned(res_type, own),
                                   scope=narrow(who, res_type)), 403, "forbidden")
            else:
                outcome(world.send("POST", f"/fhir/{res_type}", who, owned(res_type, other)), 403, "forbidden")
        else:
            outcome(world.send("POST", f"/fhir/{res_type}", who, owned(res_type, own)), 403, "forbidden")

    # update
    if cfg.supports("update"):
        mine = {**body_for(res_type, own), "id": own_id}
        if writable:
            updated = world.send("PUT", f"/fhir/{res_type}/{own_id}", who, mine)
            assert updated.status_code == 200, updated.get_data(as_text=True)[:500]
            assert updated.get_json()["id"] == own_id
            if other is None:
                outcome(world.send("PUT", f"/fhir/{res_type}/{own_id}", who, mine, scope=narrow(who, res_type)),
                        403, "forbidden")
            else:
                theirs_id = rid(world, res_type, other)
                theirs = {**body_for(res_type, other), "id": theirs_id}
                outcome(world.send("PUT", f"/fhir/{res_type}/{theirs_id}", who, theirs), 403, "forbidden")
        else:
            outcome(world.send("PUT", f"/fhir/{res_type}/{own_id}", who, mine), 403, "forbidden")

    # delete (a fresh resource of our own, made by the admin)
    if cfg.supports("delete"):
        fresh = world.send("POST", f"/fhir/{res_type}", "admin", owned(res_type, own)).get_json()["id"]
        if res_type == "Practitioner":  # a practitioner belongs through a PractitionerRole ("<PractitionerRole...")
            role = {**owned("PractitionerRole", own), "practitioner": {"reference": f"Practitioner/{fresh}"}}
            assert world.send("POST", "/fhir/PractitionerRole", "admin", role).status_code == 201
        if writable:
            gone = world.send("DELETE", f"/fhir/{res_type}/{fresh}", who)
            assert gone.status_code == 204, gone.get_data(as_text=True)[:500]
            assert world.get(f"/fhir/{res_type}/{fresh}", "admin").status_code == 410
            if other is None:
                outcome(world.send("DELETE", f"/fhir/{res_type}/{own_id}", who, scope=narrow(who, res_type)),
                        403, "forbidden")
            else:
                theirs_id = rid(world, res_type, other)
                resp = world.send("DELETE", f"/fhir/{res_type}/{theirs_id}", who)
                if open_read:
                    outcome(resp, 403, "forbidden")  # visible (open directory) but not ours
                else:
                    outcome(resp, 404, "not-found")  # not even visible
        else:
            outcome(world.send("DELETE", f"/fhir/{res_type}/{fresh}", who), 403, "forbidden")
