"""The server's own conformance resources: served read-only, listed in the CapabilityStatement, packaged."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fhir_server.settings import Settings
from tests.conftest import BACKENDS, database_url, reset_postgres
from tests.fhir_helpers import FHIR_JSON

BASE = "http://fhir.vntelehealth.org/r4"
SD = f"{BASE}/StructureDefinition/"
PROFILES = Path(__file__).resolve().parent.parent / "profiles"


@pytest.fixture(scope="module", params=BACKENDS)
def client(request: Any, tmp_path_factory: Any, pg_schema: str | None) -> Iterator[Any]:
    from fhir_server.app import create_app

    url = database_url(request.param, tmp_path_factory.mktemp("conformance"), pg_schema)
    if request.param == "postgresql":
        reset_postgres(url)
    app = create_app(Settings(database_url=url, secret_key="t", auth_enabled=False, audit_enabled=False))
    yield app.test_client()
    app.extensions["fhir_service"].repo.engine.dispose()


def ids(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


def test_profiles_are_served_with_differential_and_snapshot(client: Any) -> None:
    sd = client.get("/fhir/StructureDefinition/vn-patient").get_json()
    assert sd["url"] == SD + "vn-patient" and sd["baseDefinition"].endswith("/Patient")
    snapshot = {e["id"]: e for e in sd["snapshot"]["element"]}
    assert snapshot["Patient.identifier:cccd.system"]["fixedUri"] == "http://fhir.ehealth.gov.vn/core/sid/national_id"
    assert snapshot["Patient.name.text"]["min"] == 1
    assert snapshot["Patient.communication.language"]["min"] == 1  # inherited from the base R4 definition
    assert any(e["id"] == "Patient.identifier:cccd" for e in sd["differential"]["element"])
    assert client.get("/fhir/StructureDefinition/vn-patient/_history/1").status_code == 200
    assert client.get("/fhir/StructureDefinition/vn-patient/_history/2").status_code == 404


def test_every_differential_element_is_in_the_snapshot() -> None:
    for path in PROFILES.glob("StructureDefinition-*.json"):
        sd = json.loads(path.read_text(encoding="utf-8"))
        snapshot = {e["id"]: e for e in sd["snapshot"]["element"]}
        for e in sd["differential"]["element"]:
            assert e["id"] in snapshot, (path.name, e["id"])
            for key, value in e.items():
                if key.startswith(("min", "max", "fixed", "pattern")):
                    assert snapshot[e["id"]][key] == value, (path.name, e["id"], key)


def test_search_conformance_resources(client: Any) -> None:
    profiles = client.get("/fhir/StructureDefinition?type=MedicationRequest").get_json()
    assert ids(profiles) == ["vn-medication-request"]
    by_url = client.get(f"/fhir/StructureDefinition?url={SD}vn-consultation-minutes").get_json()
    assert ids(by_url) == ["vn-consultation-minutes"]
    params = client.get("/fhir/SearchParameter?base=Patient").get_json()
    assert set(ids(params)) == {"vn-province", "vn-cccd", "vn-bhyt", "vn-ethnicity"}
    assert len(ids(client.get("/fhir/SearchParameter").get_json())) == 8
    valuesets = client.get(f"/fhir/ValueSet?url:below={BASE}/ValueSet/circular").get_json()
    assert ids(valuesets) == ["circular30-remote-treatment"]
    ops = client.get("/fhir/OperationDefinition?code=expand").get_json()
    assert ids(ops) == ["ValueSet-expand"]


def test_own_definitions_are_read_only(client: Any) -> None:
    sd = client.get("/fhir/StructureDefinition/vn-patient").get_json()
    resp = client.put("/fhir/StructureDefinition/vn-patient", json=sd, headers={"Content-Type": FHIR_JSON})
    assert resp.status_code == 405
    assert client.delete("/fhir/StructureDefinition/vn-patient").status_code == 405
    assert client.get("/fhir/StructureDefinition/vn-patient").status_code == 200
    vs = {"resourceType": "ValueSet", "status": "active", "url": f"{BASE}/ValueSet/ethnicity"}
    assert client.post("/fhir/ValueSet", json=vs, headers={"Content-Type": FHIR_JSON}).status_code == 405
    other = {"resourceType": "ValueSet", "status": "active", "url": "http://example.org/fhir/ValueSet/mine"}
    assert client.post("/fhir/ValueSet", json=other, headers={"Content-Type": FHIR_JSON}).status_code == 201
    assert len(ids(client.get("/fhir/ValueSet?url=http://example.org/fhir/ValueSet/mine").get_json())) == 1


def test_capability_statement_lists_profiles_search_parameters_and_operations(client: Any) -> None:
    caps = client.get("/fhir/metadata").get_json()
    by_type = {r["type"]: r for r in caps["rest"][0]["resource"]}
    assert by_type["Composition"]["supportedProfile"] == [SD + "vn-consultation-minutes"]
    patient = {p["name"]: p for p in by_type["Patient"]["searchParam"]}
    assert patient["ethnicity"]["definition"] == f"{BASE}/SearchParameter/vn-ethnicity"
    assert {"cccd", "bhyt", "province"} <= set(patient)
    assert "facility-code" in {p["name"] for p in by_type["Organization"]["searchParam"]}
    assert "prescription-code" in {p["name"] for p in by_type["MedicationRequest"]["searchParam"]}
    assert {"expand", "validate-code", "validate"} <= {o["name"] for o in by_type["ValueSet"]["operation"]}
    assert "lookup" in {o["name"] for o in by_type["CodeSystem"]["operation"]}


def test_vietnamese_search_parameters_find_resources(client: Any) -> None:
    org = {"resourceType": "Organization", "id": "o-bm", "name": "Bệnh viện Bạch Mai",
           "identifier": [{"system": f"{BASE}/sid/facility-code", "value": "01001"}],
           "type": [{"coding": [{"system": f"{BASE}/CodeSystem/facility-tier", "code": "central"}]}],
           "address": [{"extension": [{"url": SD + "address-province", "valueCoding": {
               "system": f"{BASE}/CodeSystem/province", "code": "01"}}], "state": "Thành phố Hà Nội"}]}
    assert client.put("/fhir/Organization/o-bm", json=org, headers={"Content-Type": FHIR_JSON}).status_code == 201
    for query in ("facility-code=01001", "tier=central", "province=01",
                  f"tier={BASE}/CodeSystem/facility-tier|central"):
        assert ids(client.get(f"/fhir/Organization?{query}").get_json()) == ["o-bm"], query
    assert ids(client.get("/fhir/Organization?tier=commune").get_json()) == []


def test_npm_package_builds_with_one_command(tmp_path: Path) -> None:
    from profiles.package import build

    target = build(tmp_path)
    with tarfile.open(target) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile("package/package.json").read())  # type: ignore[union-attr]
        index = json.loads(tar.extractfile("package/.index.json").read())  # type: ignore[union-attr]
    assert manifest["canonical"] == BASE and manifest["fhirVersions"] == ["4.0.1"]
    assert manifest["dependencies"] == {"hl7.fhir.r4.core": "4.0.1"}
    assert "package/StructureDefinition-vn-patient.json" in names
    assert "package/ValueSet-ethnicity.json" in names
    assert {f["filename"] for f in index["files"]} == {n.removeprefix("package/") for n in names} - {
        "package.json", ".index.json"}
    assert build(tmp_path).read_bytes() == target.read_bytes()  # deterministic


def test_committed_definitions_match_the_authoring_script() -> None:
    """profiles/*.json are generated by `python -m profiles.build`: the differentials must not drift."""
    from profiles.build import (
        OPERATION_DEFINITIONS,
        SEARCH_PARAMETERS,
        all_definitions,
        operation_definition,
        search_parameter,
    )

    for sd in all_definitions():
        committed = json.loads((PROFILES / f"StructureDefinition-{sd['id']}.json").read_text(encoding="utf-8"))
        assert committed["differential"] == sd["differential"], sd["id"]
    for sp in SEARCH_PARAMETERS:
        res = search_parameter(*sp)
        assert json.loads((PROFILES / f"SearchParameter-{res['id']}.json").read_text(encoding="utf-8")) == res
    for od in OPERATION_DEFINITIONS:
        res = operation_definition(od)
        assert json.loads((PROFILES / f"OperationDefinition-{res['id']}.json").read_text(encoding="utf-8")) == res


@pytest.mark.parametrize("name", sorted(p.name for p in PROFILES.glob("*-*.json")))
def test_conformance_resources_are_valid_r4(name: str) -> None:
    from fhir_server.validation.structure import structure_issues

    resource = json.loads((PROFILES / name).read_text(encoding="utf-8"))
    assert structure_issues(resource, resource["resourceType"]) == []
