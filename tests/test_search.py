"""Search (R4 search.html) over HTTP, on SQLite and PostgreSQL: each parameter type, modifier and prefix."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fhir_helpers import FHIR_JSON, post, put

CCCD = "http://fhir.ehealth.gov.vn/core/sid/national_id"


def ids(client: Any, query: str, **headers: str) -> list[str]:
    resp = client.get(f"/fhir/{query}", headers=headers)
    assert resp.status_code == 200, resp.get_json()
    bundle = resp.get_json()
    assert bundle["type"] == "searchset"
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


def make(client: Any, resource: dict[str, Any]) -> str:
    resp = put(client, f"{resource['resourceType']}/{resource['id']}", resource)
    assert resp.status_code in (200, 201), resp.get_json()
    return str(resource["id"])


@pytest.fixture
def people(client: Any) -> Any:
    make(client, {"resourceType": "Patient", "id": "an", "name": [{"family": "Nguyễn", "given": ["Văn", "An"],
                                                                   "text": "Nguyễn Văn An"}],
                  "gender": "male", "birthDate": "1990-05-17", "active": True,
                  "identifier": [{"system": CCCD, "value": "001090000001",
                                  "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                                       "code": "NI"}]}}],
                  "telecom": [{"system": "email", "value": "an@example.vn"}],
                  "address": [{"city": "Biên Hòa", "state": "Đồng Nai"}]})
    make(client, {"resourceType": "Patient", "id": "duc", "name": [{"family": "Trần", "given": ["Minh", "Đức"]}],
                  "gender": "male", "birthDate": "1985-12-01", "active": False})
    make(client, {"resourceType": "Patient", "id": "lan", "name": [{"family": "Lê", "given": ["Thị", "Lan"]}],
                  "gender": "female", "birthDate": "2001-01-31",
                  "managingOrganization": {"reference": "Organization/org-cho-ray"}})
    make(client, {"resourceType": "Organization", "id": "org-cho-ray", "name": "Bệnh viện Chợ Rẫy",
                  "identifier": [{"system": "urn:vn:facility", "value": "79001"}]})
    return client


@pytest.fixture
def schedule(client: Any) -> Any:
    make(client, {"resourceType": "Practitioner", "id": "tuan", "name": [{"family": "Phạm", "given": ["Anh", "Tuấn"]}],
                  "identifier": [{"system": "urn:vn:cchn", "value": "003848/HCM-CCHN"}]})
    make(client, {"resourceType": "Practitioner", "id": "hoa", "name": [{"family": "Võ", "given": ["Thị", "Hoa"]}]})
    make(client, {"resourceType": "PractitionerRole", "id": "role-tuan", "practitioner": {"reference":
                                                                                          "Practitioner/tuan"},
                  "specialty": [{"coding": [{"system": "urn:vn:specialty", "code": "tim-mach"}]}]})
    make(client, {"resourceType": "Schedule", "id": "sch-tuan", "actor": [{"reference": "Practitioner/tuan"}]})
    make(client, {"resourceType": "Schedule", "id": "sch-hoa", "actor": [{"reference": "Practitioner/hoa"}]})
    for i, (sch, day, status) in enumerate([("sch-tuan", "2026-12-01", "free"), ("sch-tuan", "2026-12-02", "busy"),
                                             ("sch-tuan", "2026-12-09", "free"), ("sch-hoa", "2026-12-01", "free")]):
        make(client, {"resourceType": "Slot", "id": f"slot{i}", "schedule": {"reference": f"Schedule/{sch}"},
                      "status": status, "start": f"{day}T08:00:00+07:00", "end": f"{day}T08:30:00+07:00"})
    for i, (who, day) in enumerate([("tuan", "2026-12-01"), ("tuan", "2026-12-03"), ("hoa", "2026-12-01")]):
        make(client, {"resourceType": "Appointment", "id": f"appt{i}", "status": "booked",
                      "start": f"{day}T09:00:00+07:00", "end": f"{day}T09:30:00+07:00",
                      "participant": [{"actor": {"reference": f"Practitioner/{who}"}, "status": "accepted"},
                                      {"actor": {"reference": "Patient/an"}, "status": "accepted"}]})
    return client


# -- string -----------------------------------------------------------------------------
def test_string_is_accent_insensitive_starts_with(people: Any) -> None:
    assert ids(people, "Patient?name=nguyen") == ["an"]
    assert ids(people, "Patient?name=duc") == ["duc"]
    assert ids(people, "Patient?family=NGUY") == ["an"]


def test_string_exact_and_contains(people: Any) -> None:
    assert ids(people, "Patient?family:exact=Nguyễn") == ["an"]
    assert ids(people, "Patient?family:exact=nguyen") == []
    assert ids(people, "Patient?name:contains=van") == ["an"]


def test_string_address_parts(people: Any) -> None:
    assert ids(people, "Patient?address=bien hoa") == ["an"]
    assert ids(people, "Patient?address-state=dong nai") == ["an"]


def test_string_full_name_in_vietnamese_order(people: Any) -> None:
    assert ids(people, "Patient?name=tran minh duc") == ["duc"]


# -- token ------------------------------------------------------------------------------
def test_token_code_system_and_forms(people: Any) -> None:
    assert ids(people, f"Patient?identifier={CCCD}|001090000001") == ["an"]
    assert ids(people, "Patient?identifier=001090000001") == ["an"]
    assert ids(people, f"Patient?identifier={CCCD}|") == ["an"]
    assert ids(people, "Patient?identifier=|001090000001") == []
    assert sorted(ids(people, "Patient?gender=male")) == ["an", "duc"]


def test_token_not_includes_missing(people: Any) -> None:
    assert sorted(ids(people, "Patient?gender:not=male")) == ["lan"]
    assert sorted(ids(people, "Patient?active:not=true")) == ["duc", "lan"]


def test_token_text_and_of_type(people: Any) -> None:
    assert ids(people, "Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|NI|001090000001"
               ) == ["an"]
    assert ids(people, "Patient?email=an@example.vn") == ["an"]


def test_token_boolean(people: Any) -> None:
    assert ids(people, "Patient?active=true") == ["an"]


# -- date -------------------------------------------------------------------------------
@pytest.mark.parametrize("query,expected", [
    ("birthdate=1990", ["an"]), ("birthdate=1990-05", ["an"]), ("birthdate=eq1990-05-17", ["an"]),
    ("birthdate=gt2000-01-01", ["lan"]), ("birthdate=lt1986", ["duc"]), ("birthdate=ge1990-05-17", ["an", "lan"]),
    ("birthdate=le1990-05-17", ["an", "duc"]), ("birthdate=ne1990-05-17", ["duc", "lan"]),
    ("birthdate=sa1990-05-17", ["lan"]), ("birthdate=eb1990-05-17", ["duc"]), ("birthdate=ap2001-01-30", ["lan"]),
])
def test_date_prefixes(people: Any, query: str, expected: list[str]) -> None:
    assert sorted(ids(people, f"Patient?{query}")) == expected


def test_date_range_by_repetition_is_and(schedule: Any) -> None:
    assert sorted(ids(schedule, "Slot?start=ge2026-12-01&start=lt2026-12-03")) == ["slot0", "slot1", "slot3"]


def test_date_without_zone_is_vietnam_local(client: Any) -> None:
    make(client, {"resourceType": "Appointment", "id": "early", "status": "booked",
                  "start": "2026-12-01T06:00:00+07:00", "participant": [{"status": "accepted",
                                                                          "actor": {"display": "x"}}]})
    assert ids(client, "Appointment?date=2026-12-01") == ["early"]


def test_invalid_date_is_400(people: Any) -> None:
    assert people.get("/fhir/Patient?birthdate=yesterday").status_code == 400
    assert people.get("/fhir/Patient?birthdate=xx2020").status_code == 400


def test_last_updated(people: Any) -> None:
    assert len(ids(people, "Patient?_lastUpdated=gt2000-01-01")) == 3
    assert ids(people, "Patient?_lastUpdated=lt2000-01-01") == []


# -- reference --------------------------------------------------------------------------
def test_reference_forms(people: Any) -> None:
    assert ids(people, "Patient?organization=org-cho-ray") == ["lan"]
    assert ids(people, "Patient?organization=Organization/org-cho-ray") == ["lan"]
    assert ids(people, "Patient?organization=http://localhost/fhir/Organization/org-cho-ray") == ["lan"]
    assert ids(people, "Patient?organization:Organization=org-cho-ray") == ["lan"]


def test_reference_identifier_modifier(client: Any) -> None:
    make(client, {"resourceType": "Encounter", "id": "e1", "status": "finished",
                  "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "VR"},
                  "serviceProvider": {"identifier": {"system": "urn:vn:facility", "value": "75001"}}})
    assert ids(client, "Encounter?service-provider:identifier=urn:vn:facility|75001") == ["e1"]
    assert ids(client, "Encounter?class=VR") == ["e1"]


def test_reference_with_resolve_type_filter(schedule: Any) -> None:
    assert sorted(ids(schedule, "Appointment?patient=an")) == ["appt0", "appt1", "appt2"]
    assert sorted(ids(schedule, "Appointment?practitioner=tuan")) == ["appt0", "appt1"]
    assert ids(schedule, "Appointment?patient=tuan") == []


# -- uri, quantity, composite, missing --------------------------------------------------
def test_uri_exact_and_below(client: Any) -> None:
    make(client, {"resourceType": "ValueSet", "id": "vs1", "status": "active",
                  "url": "http://example.org/fhir/r4/ValueSet/ethnicity"})
    assert ids(client, "ValueSet?url=http://example.org/fhir/r4/ValueSet/ethnicity") == ["vs1"]
    assert ids(client, "ValueSet?url:below=http://example.org/fhir/r4") == ["vs1"]
    assert ids(client, "ValueSet?url=http://example.org/fhir/r4") == []


def test_quantity_with_prefix_and_unit(client: Any) -> None:
    for i, qty in enumerate((5, 30)):
        make(client, {"resourceType": "MedicationRequest", "id": f"mr{i}", "status": "active", "intent": "order",
                      "subject": {"reference": "Patient/an"}, "medicationCodeableConcept": {"text": "Amlodipin"},
                      "dispenseRequest": {"quantity": {"value": qty, "unit": "viên"}}})
    make(client, {"resourceType": "Medication", "id": "med1", "amount": {
        "numerator": {"value": 5, "system": "http://unitsofmeasure.org", "code": "mg"},
        "denominator": {"value": 1, "system": "http://unitsofmeasure.org", "code": "1"}}})
    assert ids(client, "MedicationRequest?code:text=amlo&_sort=_id") == ["mr0", "mr1"]
    assert ids(client, "MedicationRequest?subject=Patient/an&_sort=_id") == ["mr0", "mr1"]
    assert ids(client, "Medication?_id=med1&_elements=amount") == ["med1"]


def test_quantity_search_on_use_context(client: Any) -> None:
    for i, age in enumerate((6, 40)):
        make(client, {"resourceType": "ValueSet", "id": f"age{i}", "status": "active", "useContext": [{
            "code": {"system": "http://terminology.hl7.org/CodeSystem/usage-context-type", "code": "age"},
            "valueQuantity": {"value": age, "system": "http://unitsofmeasure.org", "code": "a"}}]})
    assert ids(client, "ValueSet?context-quantity=6") == ["age0"]
    assert ids(client, "ValueSet?context-quantity=gt10") == ["age1"]
    assert ids(client, "ValueSet?context-quantity=le40|http://unitsofmeasure.org|a&_sort=_id") == ["age0", "age1"]
    assert ids(client, "ValueSet?context-quantity=40|http://unitsofmeasure.org|mo") == []
    assert client.get("/fhir/ValueSet?context-quantity=zz40").status_code == 400


def test_composite_parameter(client: Any) -> None:
    make(client, {"resourceType": "DocumentReference", "id": "d1", "status": "current",
                  "content": [{"attachment": {"url": "http://x/y"}}],
                  "relatesTo": [{"code": "replaces", "target": {"reference": "DocumentReference/d0"}}]})
    assert ids(client, "DocumentReference?relationship=replaces$DocumentReference/d0") == ["d1"]
    assert ids(client, "DocumentReference?relationship=appends$DocumentReference/d0") == []


def test_missing_modifier(people: Any) -> None:
    assert ids(people, "Patient?organization:missing=false") == ["lan"]
    assert sorted(ids(people, "Patient?organization:missing=true")) == ["an", "duc"]


# -- OR, AND, _id, chains, _has ---------------------------------------------------------
def test_or_with_commas_and_and_with_repetition(people: Any) -> None:
    assert sorted(ids(people, "Patient?_id=an,lan")) == ["an", "lan"]
    assert ids(people, "Patient?gender=male&birthdate=lt1990") == ["duc"]


def test_chained_search(schedule: Any) -> None:
    assert sorted(ids(schedule, "Appointment?actor:Practitioner.name=tuan")) == ["appt0", "appt1"]
    assert sorted(ids(schedule, "Slot?schedule.actor=Practitioner/tuan&status=free")) == ["slot0", "slot2"]
    assert ids(schedule, "Slot?schedule.actor:Practitioner.name=hoa") == ["slot3"]


def test_vtelehealth_schedule_query(schedule: Any) -> None:
    q = "Slot?schedule.actor=Practitioner/tuan&start=ge2026-12-01&start=lt2026-12-08&status=free"
    assert ids(schedule, q) == ["slot0"]


def test_reverse_chain_has(schedule: Any) -> None:
    assert ids(schedule, "Practitioner?_has:PractitionerRole:practitioner:specialty=tim-mach") == ["tuan"]
    assert ids(schedule, "Practitioner?_has:PractitionerRole:practitioner:specialty=nhi") == []


def test_nested_has(schedule: Any) -> None:
    q = "Practitioner?_has:Schedule:actor:_has:Slot:schedule:status=busy"
    assert ids(schedule, q) == ["tuan"]


# -- includes ---------------------------------------------------------------------------
def test_include_and_revinclude(schedule: Any) -> None:
    bundle = schedule.get("/fhir/Appointment?patient=an&practitioner=tuan&_include=Appointment:practitioner"
                          ).get_json()
    modes = {(e["resource"]["resourceType"], e["resource"]["id"]): e["search"]["mode"] for e in bundle["entry"]}
    assert modes == {("Appointment", "appt0"): "match", ("Appointment", "appt1"): "match",
                     ("Practitioner", "tuan"): "include"}
    rev = schedule.get("/fhir/Practitioner?_id=tuan&_revinclude=PractitionerRole:practitioner").get_json()
    assert {e["resource"]["id"] for e in rev["entry"]} == {"tuan", "role-tuan"}


def test_include_iterate(schedule: Any) -> None:
    bundle = schedule.get("/fhir/Slot?_id=slot0&_include=Slot:schedule"
                          "&_include:iterate=Schedule:actor").get_json()
    assert {e["resource"]["id"] for e in bundle["entry"]} == {"slot0", "sch-tuan", "tuan"}


def test_include_wildcard(schedule: Any) -> None:
    bundle = schedule.get("/fhir/Slot?_id=slot0&_include=Slot:*").get_json()
    assert {e["resource"]["id"] for e in bundle["entry"]} == {"slot0", "sch-tuan"}


# -- sort, count, paging, total, summary, elements ----------------------------------------
def test_sort_keeps_resources_without_the_value(people: Any) -> None:
    make(people, {"resourceType": "Patient", "id": "nobirth", "name": [{"family": "Đỗ"}]})
    assert ids(people, "Patient?_sort=birthdate") == ["duc", "an", "lan", "nobirth"]
    assert ids(people, "Patient?_sort=-birthdate") == ["lan", "an", "duc", "nobirth"]


def test_sort_on_several_keys(people: Any) -> None:
    assert ids(people, "Patient?_sort=gender,-birthdate") == ["lan", "an", "duc"]


def test_paging_follows_links_while_others_insert(people: Any) -> None:
    for i in range(7):
        make(people, {"resourceType": "Patient", "id": f"p{i}", "name": [{"family": "Phan"}]})
    first = people.get("/fhir/Patient?family=phan&_count=3&_sort=_id").get_json()
    assert first["total"] == 7
    seen = [e["resource"]["id"] for e in first["entry"]]
    make(people, {"resourceType": "Patient", "id": "p00", "name": [{"family": "Phan"}]})  # sorts before p1
    url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    while url:
        page = people.get(url.replace("http://localhost", "")).get_json()
        seen += [e["resource"]["id"] for e in page.get("entry", [])]
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
    assert seen == [f"p{i}" for i in range(7)]


def test_previous_link_goes_back(people: Any) -> None:
    for i in range(5):
        make(people, {"resourceType": "Patient", "id": f"q{i}", "name": [{"family": "Quách"}]})
    first = people.get("/fhir/Patient?family=quach&_count=2").get_json()
    nxt = next(link["url"] for link in first["link"] if link["relation"] == "next")
    second = people.get(nxt.replace("http://localhost", "")).get_json()
    prev = next(link["url"] for link in second["link"] if link["relation"] == "previous")
    back = people.get(prev.replace("http://localhost", "")).get_json()
    assert [e["resource"]["id"] for e in back["entry"]] == [e["resource"]["id"] for e in first["entry"]]


def test_tampered_page_link_is_400(people: Any) -> None:
    first = people.get("/fhir/Patient?_count=1").get_json()
    nxt = next(link["url"] for link in first["link"] if link["relation"] == "next")
    resp = people.get(nxt.replace("http://localhost", "")[:-3] + "abc")
    assert resp.status_code == 400
    assert resp.get_json()["issue"][0]["expression"] == ["_page"]


def test_total_modes(people: Any) -> None:
    assert people.get("/fhir/Patient?_total=accurate&_count=1").get_json()["total"] == 3
    assert "total" not in people.get("/fhir/Patient?_total=none").get_json()
    assert people.get("/fhir/Patient?_total=sometimes").status_code == 400


def test_summary_count(people: Any) -> None:
    bundle = people.get("/fhir/Patient?_summary=count").get_json()
    assert bundle["total"] == 3 and "entry" not in bundle


def test_summary_true_drops_non_summary_elements(people: Any) -> None:
    bundle = people.get("/fhir/Patient?_id=an&_summary=true").get_json()
    resource = bundle["entry"][0]["resource"]
    assert "name" in resource and "telecom" in resource
    assert any(t["code"] == "SUBSETTED" for t in resource["meta"]["tag"])


def test_summary_data_and_text(people: Any) -> None:
    make(people, {"resourceType": "Patient", "id": "t1", "text": {"status": "generated",
                                                                  "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"},
                  "gender": "other"})
    data = people.get("/fhir/Patient?_id=t1&_summary=data").get_json()["entry"][0]["resource"]
    text = people.get("/fhir/Patient?_id=t1&_summary=text").get_json()["entry"][0]["resource"]
    assert "text" not in data and "gender" in data
    assert "text" in text and "gender" not in text


def test_elements(people: Any) -> None:
    resource = people.get("/fhir/Patient?_id=an&_elements=gender").get_json()["entry"][0]["resource"]
    assert set(resource) == {"resourceType", "id", "meta", "gender"}


# -- handling ---------------------------------------------------------------------------
def test_unknown_parameter_is_ignored_by_default(people: Any) -> None:
    bundle = people.get("/fhir/Patient?colour=blue&gender=female").get_json()
    assert [e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "match"] == ["lan"]
    self_link = next(link["url"] for link in bundle["link"] if link["relation"] == "self")
    assert "colour" not in self_link and "gender=female" in self_link
    assert bundle["entry"][-1]["search"]["mode"] == "outcome"


def test_unknown_parameter_with_strict_handling_is_400(people: Any) -> None:
    resp = people.get("/fhir/Patient?colour=blue", headers={"Prefer": "handling=strict"})
    assert resp.status_code == 400
    assert resp.get_json()["issue"][0]["expression"] == ["colour"]


def test_bad_modifier_is_400(people: Any) -> None:
    assert people.get("/fhir/Patient?gender:contains=ma").status_code == 400


def test_post_search_with_form_body(people: Any) -> None:
    resp = people.post("/fhir/Patient/_search", data="name=nguyen",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert [e["resource"]["id"] for e in resp.get_json()["entry"]] == ["an"]


def test_system_search_with_type(people: Any) -> None:
    found = ids(people, "?_type=Patient,Organization&_id=an,org-cho-ray")
    assert sorted(found) == ["an", "org-cho-ray"]


def test_deleted_resources_are_not_found(people: Any) -> None:
    people.delete("/fhir/Patient/an")
    assert ids(people, "Patient?name=nguyen") == []


def test_updated_resource_is_reindexed(people: Any) -> None:
    current = people.get("/fhir/Patient/an").get_json()
    current["name"] = [{"family": "Hoàng", "given": ["An"]}]
    people.put("/fhir/Patient/an", json=current, content_type=FHIR_JSON)
    assert ids(people, "Patient?name=nguyen") == [] and ids(people, "Patient?name=hoang") == ["an"]


def test_conditional_create_with_full_search_criteria(people: Any) -> None:
    resp = post(people, "Patient", {"resourceType": "Patient", "gender": "female"},
                **{"If-None-Exist": "name=le&birthdate=2001"})
    assert resp.status_code == 200 and resp.get_json()["id"] == "lan"


def test_conditional_criteria_with_unknown_parameter_is_400(people: Any) -> None:
    resp = post(people, "Patient", {"resourceType": "Patient"}, **{"If-None-Exist": "colour=blue"})
    assert resp.status_code == 400
