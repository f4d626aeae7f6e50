"""The terminology data files: valid R4B resources, one canonical base, consistent references, known counts."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import pytest

from terminology import loader
from terminology.loader import CANONICAL_BASE, codes, iter_concepts

FILES = loader.list_files()
RESOURCES = {p.name: loader.load_file(p) for p in FILES}
BY_URL = {r["url"]: r for r in RESOURCES.values()}
EXTERNAL_SYSTEMS = {"http://hl7.org/fhir/sid/icd-10", "http://hl7.org/fhir/administrative-gender"}
EXTERNAL_VALUESETS = {"http://hl7.org/fhir/ValueSet/administrative-gender"}
VERIFICATION = f"{CANONICAL_BASE}/StructureDefinition/verification-status"
ROW = f"{CANONICAL_BASE}/StructureDefinition/circular30-row"


def cs(id_: str) -> dict[str, Any]:
    return BY_URL[f"{CANONICAL_BASE}/CodeSystem/{id_}"]


def test_there_are_files() -> None:
    kinds = {r["resourceType"] for r in RESOURCES.values()}
    assert kinds == {"CodeSystem", "ValueSet", "ConceptMap"}
    assert len(FILES) >= 25


@pytest.mark.parametrize("name", sorted(RESOURCES))
def test_parses_as_r4b_model(name: str) -> None:
    loader.validate(RESOURCES[name])


@pytest.mark.parametrize("name", sorted(RESOURCES))
def test_ids_and_urls_follow_the_canonical_base(name: str) -> None:
    r = RESOURCES[name]
    rt = r["resourceType"]
    assert name == f"{rt}-{r['id']}.json"
    assert r["url"] == f"{CANONICAL_BASE}/{rt}/{r['id']}"
    assert re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", r["id"])
    assert r["version"] and r["name"] and r["title"] and r["status"] and r["publisher"]
    assert "**VI:**" in r["description"] and "**EN:**" in r["description"]
    assert "Source" in r["description"], "every list records its source"


def test_every_codesystem_has_its_valueset_and_valid_concepts() -> None:
    for r in RESOURCES.values():
        if r["resourceType"] != "CodeSystem":
            continue
        assert r["valueSet"] in BY_URL, r["id"]
        assert r["content"] in ("complete", "fragment")
        concepts = list(iter_concepts(r["concept"]))
        assert r["count"] == len(concepts)
        assert len({c["code"] for c in concepts}) == len(concepts), f"duplicate codes in {r['id']}"
        declared = {p["code"] for p in r.get("property", [])}
        for c in concepts:
            assert c["display"]
            for p in c.get("property", []):
                assert p["code"] in declared, (r["id"], c["code"], p["code"])
                if p["code"] == "status":
                    assert p["valueCode"] in ("verified", "unverified")
                if p["code"] == "confidence":
                    assert p["valueCode"] in ("H", "M", "L")
            for d in c.get("designation", []):
                assert d["language"] == "en"


def test_every_valueset_includes_a_known_system() -> None:
    for r in RESOURCES.values():
        if r["resourceType"] != "ValueSet":
            continue
        for inc in r["compose"]["include"]:
            assert inc["system"] in BY_URL or inc["system"] in EXTERNAL_SYSTEMS, (r["id"], inc["system"])
            if inc["system"] in BY_URL:
                known = codes(BY_URL[inc["system"]])
                assert all(c["code"] in known for c in inc.get("concept", []))


def test_conceptmap_sex_mapping() -> None:
    cm = RESOURCES["ConceptMap-claim-sex-to-administrative-gender.json"]
    assert cm["sourceCanonical"] in BY_URL and cm["targetCanonical"] in EXTERNAL_VALUESETS
    forward = cm["group"][0]
    assert forward["source"] == f"{CANONICAL_BASE}/CodeSystem/claim-sex"
    assert {e["code"]: e["target"][0]["code"] for e in forward["element"]} == {
        "1": "male", "2": "female", "3": "unknown"}
    assert set(codes(cs("claim-sex"))) == {"1", "2", "3"}


def test_ethnicity_has_56_codes() -> None:
    eth = codes(cs("ethnicity"))
    assert len(eth) == 56
    assert set(eth) == {f"{i:02d}" for i in range(1, 56)} | {"99"}
    assert eth["01"] == "Kinh" and eth["55"] == "Người nước ngoài"
    assert cs("ethnicity")["content"] == "complete"


def test_circular30_rows_21_to_50_are_flagged_unverified() -> None:
    vs = RESOURCES["ValueSet-circular30-remote-treatment.json"]
    (inc,) = vs["compose"]["include"]
    assert inc["system"] == "http://hl7.org/fhir/sid/icd-10"
    verified_rows, verified, unverified = set(), set(), set()
    for c in inc["concept"]:
        ext = {e["url"]: e for e in c["extension"]}
        status = ext[VERIFICATION]["valueCode"]
        if status == "verified":
            verified.add(c["code"])
            verified_rows.add(ext[ROW]["valueInteger"])
        else:
            assert status == "unverified"
            assert ROW not in ext, "rows 21-50 have no known row number"
            unverified.add(c["code"])
    assert verified_rows == set(range(1, 21))
    assert {"E66", "I10", "E11.9", "M54.5", "Z09"} <= verified
    assert {"E78", "J45", "J44", "U07.1", "Z50.1", "A15", "A19", "E00", "E07"} <= unverified
    assert not verified & unverified


def test_provinces_fragment_marks_the_unconfirmed_codes() -> None:
    prov = cs("province")
    assert prov["content"] == "fragment"
    concepts = list(iter_concepts(prov["concept"]))
    assert all(re.fullmatch(r"\d{2}", c["code"]) for c in concepts)
    flagged = {c["code"] for c in concepts
               if {"code": "status", "valueCode": "unverified"} in c.get("property", [])}
    assert flagged == {"51", "52", "75"}
    assert {"01", "79", "48"} <= {c["code"] for c in concepts}


def test_telehealth_service_hierarchy() -> None:
    svc = cs("telehealth-service")
    top = {c["code"]: c for c in svc["concept"]}
    assert set(top) == {"advice", "examination", "consultation"}
    assert {c["code"] for c in top["consultation"]["concept"]} == {
        "consultation-general", "consultation-imaging", "consultation-laboratory", "consultation-surgery"}
    assert set(codes(cs("telehealth-urgency"))) == {"scheduled", "urgent"}
    assert set(codes(cs("prescription-kind"))) == {"c", "n", "h", "y"}
    assert set(codes(cs("consultation-participant-role"))) == {"chair", "secretary", "member"}


def test_commune_csv_loader(tmp_path: Path) -> None:
    sample = loader.communes_from_csv(loader.SAMPLE_COMMUNES_CSV, sample=True)
    loader.validate(sample)
    assert sample["content"] == "fragment" and sample["experimental"] is True
    assert sample["url"] == f"{CANONICAL_BASE}/CodeSystem/commune"
    with loader.SAMPLE_COMMUNES_CSV.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert sample["count"] == len(rows) and all("SAMPLE" in r["name"] for r in rows)
    province_codes = set(codes(cs("province")))
    for c in sample["concept"]:
        assert c["property"][0]["valueCode"] in province_codes

    bad = tmp_path / "bad.csv"
    bad.write_text("code,name,province_code\n1234,Xã Sai,01\n", encoding="utf-8")
    with pytest.raises(ValueError, match="5 digits"):
        loader.communes_from_csv(bad)
    dup = tmp_path / "dup.csv"
    dup.write_text("code,name,province_code\n99991,A,01\n99991,B,01\n", encoding="utf-8")
    with pytest.raises(ValueError, match="duplicate"):
        loader.communes_from_csv(dup)
