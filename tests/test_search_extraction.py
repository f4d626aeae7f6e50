"""Every served search parameter extracts what the spec means, on the official R4 examples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fhirpathpy import compile as fhirpath_compile
from fhirpathpy.models import models

from fhir_server.registry import RESOURCE_TYPES
from fhir_server.search.index import DIRECT_PARAMS, IndexWriter, rows_for_param
from fhir_server.search.registry import _RESOLVE_IS, PathWalker, SearchRegistry, _parts_for

EXAMPLES = sorted((Path(__file__).parent / "fixtures" / "r4-examples").glob("*.json"))
REGISTRY = SearchRegistry.from_files(RESOURCE_TYPES)


def example(name: str) -> dict[str, Any]:
    return dict(json.loads((Path(__file__).parent / "fixtures" / "r4-examples" / name).read_text()))


def test_every_served_type_has_parameters() -> None:
    for res_type in RESOURCE_TYPES:
        assert REGISTRY.for_type(res_type), res_type


def test_only_special_parameters_are_skipped() -> None:
    assert all(s.split(" ")[0] in {"_text", "_content", "_query", "near"} for s in REGISTRY.skipped)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_compiled_paths_agree_with_fhirpathpy(path: Path) -> None:
    resource = json.loads(path.read_text())
    for param in REGISTRY.for_type(resource["resourceType"]):
        for part, extractor in zip(_parts_for(param.expression, param.res_type), param.extractors, strict=True):
            if isinstance(extractor.fn, PathWalker):
                expected = fhirpath_compile(_RESOLVE_IS.sub("", part), model=models["r4"])(resource)
                assert extractor.fn(resource) == expected, (param.code, part)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_parameter_extracts_without_error(path: Path) -> None:
    resource = json.loads(path.read_text())
    IndexWriter(REGISTRY).rows(resource["resourceType"], resource)


def codes(res_type: str, code: str, resource: dict[str, Any]) -> list[Any]:
    param = REGISTRY.get(res_type, code)
    assert param is not None and code not in DIRECT_PARAMS
    return rows_for_param(param, resource)


def test_appointment_actor_references() -> None:
    rows = codes("Appointment", "actor", example("Appointment-example.json"))
    assert {(r["target_type"], r["target_id"]) for r in rows} == {
        ("Patient", "example"), ("Practitioner", "example"), ("Location", "1")}
    patients = codes("Appointment", "patient", example("Appointment-example.json"))
    assert [(r["target_type"], r["target_id"]) for r in patients] == [("Patient", "example")]


def test_appointment_date_is_a_range() -> None:
    rows = codes("Appointment", "date", example("Appointment-example.json"))
    assert len(rows) == 1 and rows[0]["low"] < rows[0]["high"]


def test_patient_name_parts_are_folded() -> None:
    values = {r["value"] for r in codes("Patient", "name", example("Patient-example.json"))}
    assert {"chalmers", "peter", "james", "jim"} <= values


def test_patient_identifier_token_has_system_and_value() -> None:
    rows = codes("Patient", "identifier", example("Patient-example.json"))
    assert ("urn:oid:1.2.36.146.595.217.0.1", "12345") in {(r["system"], r["code"]) for r in rows}


def test_medication_request_code_uses_choice_type() -> None:
    resource = example("MedicationRequest-medrx0308.json")
    coding = resource["medicationCodeableConcept"]["coding"][0]
    rows = codes("MedicationRequest", "code", resource)
    assert (coding["system"], coding["code"]) in {(r["system"], r["code"]) for r in rows}
    assert codes("MedicationRequest", "medication", resource) == []


def test_encounter_class_and_period() -> None:
    resource = example("Encounter-example.json")
    assert codes("Encounter", "class", resource)
    assert codes("Encounter", "status", resource)[0]["code"] == resource["status"]


def test_slot_schedule_reference() -> None:
    resource = next(json.loads(p.read_text()) for p in EXAMPLES if p.name.startswith("Slot-"))
    rows = codes("Slot", "schedule", resource)
    assert rows[0]["target_type"] == "Schedule"
