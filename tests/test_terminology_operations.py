"""ValueSet/$expand, ValueSet/$validate-code, CodeSystem/$lookup (R4) and the :in / :not-in search modifiers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from fhir_server.settings import Settings
from tests.conftest import BACKENDS, database_url, reset_postgres
from tests.fhir_helpers import FHIR_JSON

BASE = "http://fhir.vntelehealth.org/r4"
VS = f"{BASE}/ValueSet/"
CS = f"{BASE}/CodeSystem/"


@pytest.fixture(scope="module", params=BACKENDS)
def client(request: Any, tmp_path_factory: Any, pg_schema: str | None) -> Iterator[Any]:
    from fhir_server.app import create_app

    url = database_url(request.param, tmp_path_factory.mktemp("terminology"), pg_schema)
    if request.param == "postgresql":
        reset_postgres(url)
    app = create_app(Settings(database_url=url, secret_key="t", auth_enabled=False, audit_enabled=False))
    yield app.test_client()
    app.extensions["fhir_service"].repo.engine.dispose()


def params(body: dict[str, Any]) -> dict[str, Any]:
    assert body["resourceType"] == "Parameters", body
    return {p["name"]: next((v for k, v in p.items() if k.startswith("value")), p.get("part"))
            for p in body["parameter"]}


def codes(vs: dict[str, Any]) -> list[str]:
    return [c["code"] for c in vs["expansion"].get("contains", [])]


# -- $expand -----------------------------------------------------------------------------------------
def test_expand_by_url_returns_the_whole_value_set(client: Any) -> None:
    vs = client.get(f"/fhir/ValueSet/$expand?url={VS}ethnicity").get_json()
    assert vs["resourceType"] == "ValueSet" and vs["url"] == f"{VS}ethnicity"
    assert vs["expansion"]["total"] == 56 and len(codes(vs)) == 56
    assert vs["expansion"]["timestamp"] and vs["expansion"]["identifier"].startswith("urn:uuid:")
    assert {"system": f"{CS}ethnicity", "code": "01", "display": "Kinh", "version": "0.1.0"} in \
        vs["expansion"]["contains"]


def test_expand_filter_ignores_vietnamese_diacritics(client: Any) -> None:
    province = client.get(f"/fhir/ValueSet/$expand?url={VS}province&filter=dong nai").get_json()
    assert codes(province) == ["75"]  # Tỉnh Đồng Nai
    tay = client.get(f"/fhir/ValueSet/$expand?url={VS}ethnicity&filter=tay").get_json()
    assert "02" in codes(tay)  # Tày
    ede = client.get(f"/fhir/ValueSet/$expand?url={VS}ethnicity&filter=ede").get_json()
    assert codes(ede) == ["12"]  # Ê-đê
    hoi_chan = client.get(f"/fhir/ValueSet/$expand?url={VS}telehealth-service&filter=hoi chan tu xa").get_json()
    assert set(codes(hoi_chan)) >= {"consultation", "consultation-imaging"}
    exact = client.get(f"/fhir/ValueSet/$expand?url={VS}telehealth-service&filter=Hội chẩn").get_json()
    assert codes(exact) == codes(hoi_chan) or set(codes(exact)) >= set(codes(hoi_chan))


def test_expand_filter_matches_names_with_nguyen(client: Any) -> None:
    """`nguyen` finds `Nguyễn` (display of a ValueSet posted in the request)."""
    vs = {"resourceType": "ValueSet", "url": f"{VS}ethnicity"}
    body = {"resourceType": "Parameters", "parameter": [{"name": "valueSet", "resource": vs},
                                                        {"name": "filter", "valueString": "Kinh"}]}
    assert codes(client.post("/fhir/ValueSet/$expand", json=body, headers={"Content-Type": FHIR_JSON})
                 .get_json()) == ["01"]
    names = {"resourceType": "ValueSet", "status": "active", "compose": {"include": [{"system": "urn:test:names",
             "concept": [{"code": "a", "display": "Nguyễn Thị Ánh"}, {"code": "b", "display": "Trần Văn Đức"}]}]}}
    body = {"resourceType": "Parameters", "parameter": [{"name": "valueSet", "resource": names},
                                                        {"name": "filter", "valueString": "nguyen"}]}
    found = client.post("/fhir/ValueSet/$expand", json=body, headers={"Content-Type": FHIR_JSON}).get_json()
    assert found["expansion"]["contains"] == [{"system": "urn:test:names", "code": "a", "display": "Nguyễn Thị Ánh"}]
    from fhir_server.profiles.terminology import Terminology

    term = Terminology([
        {"resourceType": "CodeSystem", "url": "urn:test:names", "content": "complete",
         "concept": [{"code": "a", "display": "Nguyễn Thị Ánh"}, {"code": "b", "display": "Trần Văn Đức"}]},
        {"resourceType": "ValueSet", "url": "urn:test:vs", "compose": {"include": [{"system": "urn:test:names"}]}}])
    assert [c.code for c in term.expand("urn:test:vs", "nguyen")] == ["a"]
    assert [c.code for c in term.expand("urn:test:vs", "duc")] == ["b"]
    assert [c.code for c in term.expand("urn:test:vs", "NGUYEN anh")] == ["a"]


def test_expand_pages_with_count_and_offset(client: Any) -> None:
    first = client.get(f"/fhir/ValueSet/$expand?url={VS}ethnicity&count=10&offset=0").get_json()
    second = client.get(f"/fhir/ValueSet/$expand?url={VS}ethnicity&count=10&offset=10").get_json()
    assert codes(first) == [f"{i:02d}" for i in range(1, 11)]
    assert codes(second) == [f"{i:02d}" for i in range(11, 21)]
    assert second["expansion"]["offset"] == 10 and second["expansion"]["total"] == 56
    assert {"name": "count", "valueInteger": 10} in second["expansion"]["parameter"]


def test_expand_instance_level_and_english_display(client: Any) -> None:
    vs = client.get("/fhir/ValueSet/specialty/$expand?filter=neuro&displayLanguage=en").get_json()
    assert vs["expansion"]["contains"][0]["display"] == "Neurology"


def test_expand_hierarchy_filter_and_errors(client: Any) -> None:
    unknown = client.get(f"/fhir/ValueSet/$expand?url={VS}nope")
    assert unknown.status_code == 404 and unknown.get_json()["resourceType"] == "OperationOutcome"
    assert client.get("/fhir/ValueSet/$expand").status_code == 400
    assert client.get(f"/fhir/ValueSet/$expand?url={VS}ethnicity&count=x").status_code == 400


def test_expand_circular30_marks_nothing_inactive(client: Any) -> None:
    vs = client.get(f"/fhir/ValueSet/$expand?url={VS}circular30-remote-treatment&filter=I10").get_json()
    assert codes(vs) == ["I10"]


# -- $validate-code ------------------------------------------------------------------------------------
def test_validate_code_true_false_and_display(client: Any) -> None:
    ok = params(client.get(f"/fhir/ValueSet/$validate-code?url={VS}ethnicity&system={CS}ethnicity&code=13").get_json())
    assert ok["result"] is True and ok["display"] == "Ba na"
    no = params(client.get(f"/fhir/ValueSet/$validate-code?url={VS}ethnicity&system={CS}ethnicity&code=77").get_json())
    assert no["result"] is False and "77" in no["message"]
    wrong = params(client.get(f"/fhir/ValueSet/$validate-code?url={VS}ethnicity&system={CS}ethnicity&code=13"
                              "&display=Kinh").get_json())
    assert wrong["result"] is False and "Ba na" in wrong["message"]


def test_validate_code_with_coding_and_codeable_concept(client: Any) -> None:
    icd = "http://hl7.org/fhir/sid/icd-10"
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "url", "valueUri": f"{VS}circular30-remote-treatment"},
        {"name": "codeableConcept", "valueCodeableConcept": {"coding": [{"system": icd, "code": "C34.9"},
                                                                        {"system": icd, "code": "I10"}]}}]}
    out = params(client.post("/fhir/ValueSet/$validate-code", json=body, headers={"Content-Type": FHIR_JSON})
                 .get_json())
    assert out["result"] is True
    coding = {"resourceType": "Parameters", "parameter": [
        {"name": "coding", "valueCoding": {"system": icd, "code": "C34.9"}}]}
    out = params(client.post("/fhir/ValueSet/circular30-remote-treatment/$validate-code", json=coding,
                             headers={"Content-Type": FHIR_JSON}).get_json())
    assert out["result"] is False


# -- $lookup ---------------------------------------------------------------------------------------------
def test_lookup_returns_name_display_designation_and_properties(client: Any) -> None:
    out = client.get(f"/fhir/CodeSystem/$lookup?system={CS}specialty&code=neurology").get_json()
    got = params(out)
    assert got["name"] == "Specialty" and got["display"] == "Nội thần kinh" and got["version"] == "0.1.0"
    designation = next(p for p in out["parameter"] if p["name"] == "designation")
    assert {"name": "value", "valueString": "Neurology"} in designation["part"]
    props = [p["part"] for p in out["parameter"] if p["name"] == "property"]
    assert [{"name": "code", "valueCode": "parent"}, {"name": "value", "valueCode": "internal-medicine"}] in props
    only = client.get(f"/fhir/CodeSystem/$lookup?system={CS}specialty&code=neurology&property=confidence").get_json()
    assert [p["part"][0]["valueCode"] for p in only["parameter"] if p["name"] == "property"] == ["confidence"]


def test_lookup_unknown_code_or_system(client: Any) -> None:
    assert client.get(f"/fhir/CodeSystem/$lookup?system={CS}specialty&code=nope").status_code == 404
    assert client.get("/fhir/CodeSystem/$lookup?system=urn:nope&code=x").status_code == 404
    assert client.get("/fhir/CodeSystem/$lookup?code=x").status_code == 400


# -- :in / :not-in --------------------------------------------------------------------------------------
def test_search_in_and_not_in_a_value_set(client: Any) -> None:
    icd = "http://hl7.org/fhir/sid/icd-10"
    for rid, code in (("in30", "I10"), ("out30", "C34.9")):
        body = {"resourceType": "Condition", "id": rid, "subject": {"reference": "Patient/x"},
                "code": {"coding": [{"system": icd, "code": code}]}}
        assert client.put(f"/fhir/Condition/{rid}", json=body, headers={"Content-Type": FHIR_JSON}).status_code == 201
    inside = client.get(f"/fhir/Condition?code:in={VS}circular30-remote-treatment").get_json()
    assert [e["resource"]["id"] for e in inside.get("entry", [])] == ["in30"]
    outside = client.get(f"/fhir/Condition?code:not-in={VS}circular30-remote-treatment").get_json()
    assert [e["resource"]["id"] for e in outside.get("entry", [])] == ["out30"]
    assert client.get(f"/fhir/Condition?code:in={VS}nope").status_code == 400
