"""The demo data set: valid R4B resources, follows the seeds, every reference resolves, codes exist."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from fhir_server.loader import load_paths
from terminology.loader import CANONICAL_BASE, codes, load_all

DEMO = Path(__file__).resolve().parent.parent / "fhir_server" / "demo_data"
FILES = sorted(DEMO.glob("*.json"))
DATA_ORIGIN = f"{CANONICAL_BASE}/CodeSystem/data-origin"
SEED_001 = "seed:001_4baef2f7a8d05b1a"
SEED_003 = "seed:003_2ffd77feb72a25a3"
FACILITY_CODE = f"{CANONICAL_BASE}/sid/facility-code"
MOH = "http://fhir.ehealth.gov.vn/core"

# The registration table of seed 001, row → (lower-tier facility, upper-tier hospitals). Rows 4 and 5 of
# the seed both read "Trung tâm Y tế huyện Cẩm Mỹ" with the same hospitals: 14 rows, 13 facilities.
SEED_001_TABLE = {
    1: ("bvdk-thong-nhat-dong-nai", {"cho-ray", "benh-nhiet-doi-tphcm", "rhm-tu-tphcm", "dh-y-duoc-tphcm",
                                     "ung-buou-tphcm", "tu-du"}),
    2: ("bv-nhi-dong-dong-nai", {"nhi-dong-1"}),
    3: ("bvdkkv-long-khanh", {"cho-ray", "tu-du", "nhi-dong-1", "benh-nhiet-doi-tphcm"}),
    4: ("ttyt-cam-my", {"bach-mai", "noi-tiet-tu", "benh-nhiet-doi-tu"}),
    5: ("ttyt-cam-my", {"bach-mai", "noi-tiet-tu", "benh-nhiet-doi-tu"}),
    6: ("bv-rhm-viet-anh-duc", {"rhm-tu-tphcm"}),
    7: ("bv-au-co", {"tu-du", "nhi-dong-1"}),
    8: ("bvdk-dong-nai", {"cho-ray", "tmh-tu", "rhm-tu-tphcm", "dh-y-duoc-tphcm", "ung-buou-tphcm", "tu-du",
                          "nhi-dong-1", "benh-nhiet-doi-tphcm"}),
    9: ("bvdkkv-long-thanh", {"cho-ray", "tu-du", "benh-nhiet-doi-tphcm"}),
    10: ("bvdkkv-dinh-quan", {"tu-du", "nhi-dong-1"}),
    11: ("ttyt-tan-phu", {"cho-ray", "dh-y-duoc-tphcm", "ung-buou-tphcm", "tu-du", "nhi-dong-1",
                          "benh-nhiet-doi-tphcm"}),
    12: ("ttyt-vinh-cuu", {"cho-ray", "tu-du", "nhi-dong-1", "benh-nhiet-doi-tphcm"}),
    13: ("bv-quoc-te-dong-nai", {"tu-du"}),
    14: ("ttyt-trang-bom", {"cho-ray", "tu-du"}),
}


def load_bundles() -> list[dict[str, Any]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in FILES]


def demo_resources() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for bundle in load_bundles():
        for entry in bundle["entry"]:
            r = entry["resource"]
            key = f"{r['resourceType']}/{r['id']}"
            assert key not in out, f"{key} defined twice"
            out[key] = r
    return out


RESOURCES = demo_resources()


def of_type(rt: str) -> list[dict[str, Any]]:
    return [r for r in RESOURCES.values() if r["resourceType"] == rt]


def walk(node: Any, key: str) -> list[Any]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == key] + [x for v in node.values() for x in walk(v, key)]
    if isinstance(node, list):
        return [x for v in node for x in walk(v, key)]
    return []


def test_bundles_are_idempotent_transactions() -> None:
    assert FILES
    for bundle in load_bundles():
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "transaction"
        for e in bundle["entry"]:
            r = e["resource"]
            assert e["request"] == {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}
            assert re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", r["id"])


@pytest.mark.parametrize("key", sorted(RESOURCES))
def test_every_resource_parses_as_r4b(key: str) -> None:
    r = RESOURCES[key]
    get_fhir_model_class(r["resourceType"]).model_validate(r)


def test_every_reference_resolves_inside_the_demo_data() -> None:
    dangling = {ref for r in RESOURCES.values() for ref in walk(r, "reference") if ref not in RESOURCES}
    assert dangling == set()


def test_every_resource_says_where_it_comes_from() -> None:
    for key, r in RESOURCES.items():
        tags = [t["code"] for t in r["meta"]["tag"] if t["system"] == DATA_ORIGIN]
        assert tags in (["seed"], ["synthetic"]), key
        if tags == ["seed"]:
            assert r["meta"]["source"] in (SEED_001, SEED_003), key
        else:
            assert "source" not in r["meta"], key
    for rt in ("Patient", "Appointment", "Slot", "Schedule"):
        assert all(r["meta"]["tag"][0]["code"] == "synthetic" for r in of_type(rt))


def test_our_codings_exist_in_the_terminology() -> None:
    terminology = load_all()
    for key, r in RESOURCES.items():
        for coding in walk(r, "coding"):
            for c in coding:
                if c["system"].startswith(CANONICAL_BASE + "/CodeSystem/"):
                    assert c["system"] in terminology, (key, c["system"])
                    known = codes(terminology[c["system"]])
                    assert c["code"] in known, (key, c["system"], c["code"])
                    assert c.get("display", known[c["code"]]) == known[c["code"]], (key, c["code"])
        for ext in walk(r, "extension"):
            for e in ext:
                c = e.get("valueCoding")
                if c and c["system"].startswith(CANONICAL_BASE):
                    assert c["code"] in codes(terminology[c["system"]]), (key, c)


def test_dong_nai_registrations_follow_the_seed() -> None:
    affiliations = [a for a in of_type("OrganizationAffiliation") if a["meta"]["source"] == SEED_001]
    found: dict[str, set[str]] = {}
    for a in affiliations:
        lower = a["participatingOrganization"]["reference"].removeprefix("Organization/org-")
        upper = a["organization"]["reference"].removeprefix("Organization/org-")
        found.setdefault(lower, set()).add(upper)
    assert len(SEED_001_TABLE) == 14
    expected: dict[str, set[str]] = {}
    for lower, uppers in SEED_001_TABLE.values():
        expected.setdefault(lower, set()).update(uppers)
    assert found == expected
    assert len(found) == 13  # 14 rows in the seed, one facility listed twice
    assert len(affiliations) == sum(len(u) for u in expected.values()) == 43
    cho_ray = [a for a in affiliations if a["organization"]["reference"] == "Organization/org-cho-ray"]
    assert len(cho_ray) == 7


def test_facility_codes_only_where_known() -> None:
    coded = {o["id"]: i["value"] for o in of_type("Organization") for i in o.get("identifier", [])
             if i["system"] == FACILITY_CODE}
    assert coded == {"org-bach-mai": "01001"}


def test_the_eleven_specialists() -> None:
    practitioners = [p for p in of_type("Practitioner") if p["meta"]["tag"][0]["code"] == "seed"]
    assert len(practitioners) == 11
    assert all(p["meta"]["source"] == SEED_001 for p in practitioners)
    for p in practitioners:
        name = p["name"][0]
        assert name["text"] == " ".join([name["family"], *name["given"]])
        assert p["qualification"][0]["code"]["coding"][0]["code"] in ("BSCK2", "THS-BS")
    roles = [r for r in of_type("PractitionerRole") if r["meta"]["tag"][0]["code"] == "seed"]
    synthetic = [p for p in of_type("Practitioner") if p["meta"]["tag"][0]["code"] == "synthetic"]
    assert all(p["id"].startswith(("prac-bm-", "prac-kt-")) for p in synthetic)
    assert {r["practitioner"]["reference"] for r in roles} == {f"Practitioner/{p['id']}" for p in practitioners}
    assert all(r["specialty"] for r in roles)


def test_kon_tum_pilot_communes() -> None:
    stations = [o for o in of_type("Organization") if o["name"].startswith("Trạm Y tế")]
    assert len(stations) == 15  # seed 003, section 2.3 a)
    for s in stations:
        assert s["meta"]["source"] == SEED_003
        ups = [a for a in of_type("OrganizationAffiliation")
               if a["participatingOrganization"]["reference"] == f"Organization/{s['id']}"]
        covered = {c["coding"][0]["code"] for a in ups for c in a["code"]}
        assert covered == {"advice", "examination", "consultation"}, s["id"]


def cccd_ok(cccd: str, birth: str, gender: str) -> bool:
    year = date.fromisoformat(birth).year
    century = (year // 100) - 19
    digit = 2 * century + (1 if gender == "female" else 0)
    return bool(re.fullmatch(r"\d{12}", cccd)) and int(cccd[3]) == digit and cccd[4:6] == f"{year % 100:02d}"


def test_synthetic_patients_have_consistent_identifiers() -> None:
    patients = of_type("Patient")
    assert len(patients) == 22
    for p in patients:
        ids = {i["system"]: i["value"] for i in p["identifier"]}
        assert cccd_ok(ids[f"{MOH}/sid/national_id"], p["birthDate"], p["gender"])
        assert re.fullmatch(r"[A-Z]{2}[1-5]\d{2}\d{10}", ids[f"{MOH}/sid/insurance_number"])
        assert p["name"][0]["text"]
    assert len(of_type("Appointment")) == 8
    for a in of_type("Appointment"):
        for s in a["slot"]:
            assert RESOURCES[s["reference"]]["status"] == "busy"
            assert RESOURCES[s["reference"]]["start"] == a["start"]


PROFILED = {"Organization", "OrganizationAffiliation", "Practitioner", "PractitionerRole", "Patient", "Schedule",
            "Slot",
            "Appointment", "Encounter", "MedicationRequest", "Composition"}


def test_every_profiled_resource_claims_its_profile() -> None:
    for key, r in RESOURCES.items():
        if r["resourceType"] in PROFILED:
            assert len(r["meta"]["profile"]) == 1 and r["meta"]["profile"][0].startswith(
                f"{CANONICAL_BASE}/StructureDefinition/vn-"), key


def test_synthetic_visits_follow_the_telehealth_rules() -> None:
    from fhir_server.profiles.terminology import default_terminology

    term = default_terminology()
    circular30 = f"{CANONICAL_BASE}/ValueSet/circular30-remote-treatment"
    encounters = of_type("Encounter")
    assert len(encounters) == 9 and all(e["class"]["code"] == "VR" for e in encounters)
    for e in encounters:
        if e["type"][0]["coding"][0]["code"] == "examination":
            assert all(term.contains(circular30, c["system"], c["code"]) for r in e["reasonCode"] for c in r["coding"])
    prescriptions = of_type("MedicationRequest")
    assert len(prescriptions) == 5
    for rx in prescriptions:
        code = rx["identifier"][0]["value"]
        assert re.fullmatch(r"01001[0-9a-z]{7}-c", code)  # Bạch Mai's facility code (requester's facility)
        assert RESOURCES[rx["requester"]["reference"]]["organization"]["reference"] == "Organization/org-bach-mai"
    children = [rx for rx in prescriptions if rx.get("extension")]
    assert len(children) == 1 and RESOURCES[children[0]["subject"]["reference"]]["birthDate"] >= "2020-12-07"
    assert len(of_type("Composition")) == 1


def test_demo_loads_through_the_server(app: Any) -> None:
    svc = app.extensions["fhir_service"]
    report = load_paths(svc, [DEMO], log=lambda _msg: None)
    assert report.errors == 0 and report.resources == len(RESOURCES)
    client = app.test_client()
    bundle = client.get("/fhir/Organization?name=tram y te&_count=100").get_json()
    assert bundle["total"] == 15  # the pilot communes of seed 003, section 2.3
    assert client.get("/fhir/Organization?tier=commune&_summary=count").get_json()["total"] == 15
    assert client.get("/fhir/Patient?province=51&_summary=count").get_json()["total"] == 10


def test_demo_follows_every_profile_when_all_are_enforced(tmp_path: Any) -> None:
    """Every demo resource passes its profile: validate each against it (no database needed)."""
    from fhir_server.profiles.terminology import default_terminology
    from fhir_server.profiles.validator import ProfileValidator, compiled_profiles

    class Store:
        def read(self, res_type: str, res_id: str) -> Any:
            import orjson

            from fhir_server.storage.repository import StoredResource

            r = RESOURCES.get(f"{res_type}/{res_id}")
            return None if r is None else StoredResource(res_type, res_id, 1, "", False, orjson.dumps(r).decode())

    validator = ProfileValidator(compiled_profiles(), default_terminology(), repo=Store())
    for key, r in RESOURCES.items():
        errors = [i for i in validator.issues(r, r["resourceType"]) if i.severity == "error"]
        assert errors == [], (key, errors)
