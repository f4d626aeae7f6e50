"""Search features of issue #3 not covered in tests/test_search.py, on SQLite and PostgreSQL.

`:above`, the Resource-level `_tag`/`_profile`/`_security`/`_source`, `:missing` on every
parameter type, every quantity prefix, `_revinclude:iterate`, multi-level chains, and the
query shapes where a wide predicate is a correlated probe rather than the driving one.
(The served types define no plain `number` parameter; quantities share its table and code.)
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_search import ids, make

TAGS = "http://fhir.vntelehealth.org/r4/CodeSystem/data-origin"
PROFILE = "http://example.org/fhir/StructureDefinition/other-patient"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"


@pytest.fixture
def meta(client: Any) -> Any:
    make(client, {"resourceType": "Patient", "id": "tagged", "gender": "female", "meta": {
        "tag": [{"system": TAGS, "code": "synthetic"}], "profile": [PROFILE],
        "security": [{"system": CONFIDENTIALITY, "code": "R"}], "source": "seed:kon-tum"}})
    make(client, {"resourceType": "Patient", "id": "plain", "gender": "male", "birthDate": "1970"})
    return client


def test_resource_level_meta_parameters(meta: Any) -> None:
    assert ids(meta, f"Patient?_tag={TAGS}|synthetic") == ["tagged"]
    assert ids(meta, "Patient?_tag=seed") == []
    assert ids(meta, f"Patient?_profile={PROFILE}") == ["tagged"]
    assert ids(meta, "Patient?_security=R") == ["tagged"]
    assert ids(meta, "Patient?_source=seed:kon-tum") == ["tagged"]
    assert ids(meta, "Patient?_tag:not=synthetic") == ["plain"]


@pytest.mark.parametrize("query,expected", [
    ("_tag:missing=true", ["plain"]), ("_tag:missing=false", ["tagged"]),        # token
    ("birthdate:missing=true", ["tagged"]), ("birthdate:missing=false", ["plain"]),  # date
    ("_profile:missing=true", ["plain"]), ("_profile:missing=false", ["tagged"]),  # uri
    ("name:missing=true", ["plain", "tagged"]),                                   # string
])
def test_missing_on_every_type(meta: Any, query: str, expected: list[str]) -> None:
    assert sorted(ids(meta, f"Patient?{query}")) == expected


def test_missing_on_quantity(client: Any) -> None:
    make(client, {"resourceType": "ValueSet", "id": "with-age", "status": "active", "useContext": [{
        "code": {"system": "http://terminology.hl7.org/CodeSystem/usage-context-type", "code": "age"},
        "valueQuantity": {"value": 6, "system": "http://unitsofmeasure.org", "code": "a"}}]})
    make(client, {"resourceType": "ValueSet", "id": "no-age", "status": "active"})
    # `_id` keeps the server's own (read-only, always present) ValueSets out of the comparison.
    mine = "_id=with-age,no-age"
    assert ids(client, f"ValueSet?{mine}&context-quantity:missing=true") == ["no-age"]
    assert ids(client, f"ValueSet?{mine}&context-quantity:missing=false") == ["with-age"]


def test_uri_above(client: Any) -> None:
    make(client, {"resourceType": "ValueSet", "id": "vs", "status": "active",
                  "url": "http://example.org/fhir/r4/ValueSet/ethnicity"})
    assert ids(client, "ValueSet?url:above=http://example.org/fhir/r4/ValueSet/ethnicity/v2") == ["vs"]
    assert ids(client, "ValueSet?url:above=http://example.org/fhir/r4/ValueSet") == []


@pytest.fixture
def ages(client: Any) -> Any:
    for i, age in enumerate((6, 40, 65)):
        make(client, {"resourceType": "ValueSet", "id": f"age{i}", "status": "active", "useContext": [{
            "code": {"system": "http://terminology.hl7.org/CodeSystem/usage-context-type", "code": "age"},
            "valueQuantity": {"value": age, "system": "http://unitsofmeasure.org", "code": "a"}}]})
    return client


@pytest.mark.parametrize("value,expected", [
    ("40", ["age1"]), ("eq40", ["age1"]), ("ne40", ["age0", "age2"]), ("lt40", ["age0"]), ("le40", ["age0", "age1"]),
    ("gt40", ["age2"]), ("ge40", ["age1", "age2"]), ("sa40", ["age2"]), ("eb40", ["age0"]), ("ap60", ["age2"]),
    ("40.0", ["age1"]),
])
def test_quantity_prefixes(ages: Any, value: str, expected: list[str]) -> None:
    assert sorted(ids(ages, f"ValueSet?context-quantity={value}")) == expected


@pytest.fixture
def network(client: Any) -> Any:
    make(client, {"resourceType": "Organization", "id": "bv-dong-nai", "name": "Bệnh viện Đa khoa Đồng Nai",
                  "identifier": [{"system": "http://fhir.vntelehealth.org/r4/sid/facility-code", "value": "75001"}]})
    make(client, {"resourceType": "Practitioner", "id": "tuan", "name": [{"family": "Ngô", "given": ["Đức", "Tuấn"]}],
                  "identifier": [{"system": "urn:vn:cchn", "value": "0001"}]})
    make(client, {"resourceType": "PractitionerRole", "id": "role", "practitioner": {"reference": "Practitioner/tuan"},
                  "organization": {"reference": "Organization/bv-dong-nai"}})
    make(client, {"resourceType": "Schedule", "id": "sch", "actor": [{"reference": "PractitionerRole/role"}]})
    for i, status in enumerate(("free", "busy", "free")):
        make(client, {"resourceType": "Slot", "id": f"s{i}", "schedule": {"reference": "Schedule/sch"},
                      "status": status, "start": f"2026-12-0{i + 1}T08:00:00+07:00",
                      "end": f"2026-12-0{i + 1}T08:30:00+07:00"})
    return client


def test_chain_of_three_levels(network: Any) -> None:
    q = "Slot?schedule.actor:PractitionerRole.organization.identifier=75001&status=free"
    assert ids(network, q) == ["s0", "s2"]
    assert ids(network, "Slot?schedule.actor:PractitionerRole.practitioner.name=duc&_sort=-start") == ["s2", "s1", "s0"]
    assert ids(network, "Slot?schedule.actor:PractitionerRole.organization.identifier=99999") == []


def test_revinclude_iterate(network: Any) -> None:
    bundle = network.get("/fhir/Practitioner?_id=tuan&_revinclude=PractitionerRole:practitioner"
                         "&_revinclude:iterate=Schedule:actor").get_json()
    modes = {e["resource"]["id"]: e["search"]["mode"] for e in bundle["entry"]}
    assert modes == {"tuan": "match", "role": "include", "sch": "include"}


def test_wide_predicates_combined_with_a_selective_one(network: Any) -> None:
    # status (wide) and the dates are probes for the rows the reference drives; :not is a NOT EXISTS probe.
    assert ids(network, "Slot?status=free&schedule=Schedule/sch&start=ge2026-12-02") == ["s2"]
    assert ids(network, "Slot?status:not=busy&start=lt2026-12-03&schedule=sch") == ["s0"]
    assert ids(network, "Slot?schedule.actor:PractitionerRole.practitioner=tuan&status:not=free") == ["s1"]
    assert ids(network, "Slot?start=ge2026-12-01&start=lt2026-12-04&status=free,busy&_id=s1,s2") == ["s1", "s2"]


def test_accent_insensitive_in_a_chain_and_with_contains(network: Any) -> None:
    assert ids(network, "PractitionerRole?practitioner.name=NGO") == ["role"]
    assert ids(network, "Organization?name:contains=dong%20nai") == ["bv-dong-nai"]
    assert ids(network, "Organization?name:contains=Đồng") == ["bv-dong-nai"]
    assert ids(network, "Organization?name:exact=Bệnh viện Đa khoa Đồng Nai") == ["bv-dong-nai"]
    assert ids(network, "Organization?name:exact=benh vien da khoa dong nai") == []


def test_total_of_a_single_parameter_skips_deleted_and_updated_away(client: Any) -> None:
    for i in range(4):
        make(client, {"resourceType": "Patient", "id": f"phan{i}", "name": [{"family": "Phan", "given": ["Văn"]}]})
    assert client.delete("/fhir/Patient/phan0").status_code in (200, 204)
    make(client, {"resourceType": "Patient", "id": "phan1", "name": [{"family": "Lý"}]})  # no longer matches
    bundle = client.get("/fhir/Patient?family=phan&_count=1").get_json()
    assert bundle["total"] == 2
    assert client.get("/fhir/Patient?name=phan&_summary=count").get_json()["total"] == 2
    assert client.get("/fhir/Patient?family=phan&_total=accurate&_count=1").get_json()["total"] == 2
