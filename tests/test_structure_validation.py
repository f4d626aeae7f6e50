"""Structural validation: the official R4 examples pass and round-trip; each kind of fault names its element."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from fhir_server.errors import InvalidResource
from fhir_server.registry import RESOURCE_TYPES
from fhir_server.validation.structure import validate_structure

EXAMPLES = sorted((Path(__file__).parent / "fixtures" / "r4-examples").glob("*.json"))
_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")


def normalise(value: Any) -> Any:
    """R4B models re-print instants (`.715Z` → `.715000Z`) and integral decimals; compare values."""
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if isinstance(value, str) and _INSTANT.match(value):
        return datetime.fromisoformat(value.replace("Z", "+00:00")).isoformat()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def test_examples_cover_every_served_type() -> None:
    types = {p.name.split("-", 1)[0] for p in EXAMPLES}
    # SearchParameter examples are the vendored definitions themselves (next test).
    assert types | {"SearchParameter"} == set(RESOURCE_TYPES)


def test_vendored_search_parameters_are_valid() -> None:
    bundle = json.loads((Path(__file__).parent.parent / "fhir_server/data/r4/search-parameters.json").read_text())
    for entry in bundle["entry"]:
        validate_structure(entry["resource"], "SearchParameter")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_r4_example_is_valid(path: Path) -> None:
    resource = json.loads(path.read_text())
    validate_structure(resource, resource["resourceType"])


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_r4_example_round_trips_through_r4b_model(path: Path) -> None:
    resource = json.loads(path.read_text())
    model = get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    dumped = json.loads(model.model_dump_json(by_alias=True, exclude_none=True))
    assert normalise(dumped) == normalise(resource)


def issues_of(resource: dict[str, Any], res_type: str = "Appointment") -> list[tuple[str, tuple[str, ...]]]:
    with pytest.raises(InvalidResource) as info:
        validate_structure(resource, res_type)
    return [(i.code, i.expression) for i in info.value.issues]


def appointment(**extra: Any) -> dict[str, Any]:
    return {"resourceType": "Appointment", "status": "booked",
            "participant": [{"actor": {"reference": "Practitioner/1"}, "status": "accepted"}], **extra}


def test_nested_unknown_element_is_located() -> None:
    bad = appointment()
    bad["participant"][0]["actor"]["colour"] = "blue"
    assert ("structure", ("Appointment.participant[0].actor.colour",)) in issues_of(bad)


def test_wrong_primitive_type_is_located() -> None:
    assert issues_of(appointment(minutesDuration="ten"))[0][1] == ("Appointment.minutesDuration",)


def test_invalid_required_binding_code_is_located() -> None:
    assert issues_of(appointment(status="maybe"))[0][1] == ("Appointment.status",)


def test_missing_status_is_reported() -> None:
    bad = appointment()
    del bad["status"]
    assert any(expr == ("Appointment.status",) for _, expr in issues_of(bad))


def test_missing_participant_is_reported() -> None:
    bad = appointment()
    del bad["participant"]
    assert ("required", ("Appointment.participant",)) in issues_of(bad)


def test_bad_id_is_reported() -> None:
    assert issues_of(appointment(id="no spaces allowed"))[0][1] == ("Appointment.id",)


def test_wrong_resource_type_is_reported() -> None:
    with pytest.raises(InvalidResource) as info:
        validate_structure({"resourceType": "Patient"}, "Appointment")
    assert info.value.issues[0].expression == ("Patient.resourceType",)


def test_contained_resource_validated_against_its_own_type() -> None:
    bad = appointment(contained=[{"resourceType": "Patient", "id": "p", "gender": "robot"}])
    assert issues_of(bad)[0][1] == ("Appointment.contained[0].gender",)


def test_bundle_entry_validated_against_its_own_type() -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": appointment(status="x")}]}
    assert issues_of(bundle, "Bundle")[0][1] == ("Bundle.entry[0].resource.status",)


def test_messages_are_bilingual() -> None:
    with pytest.raises(InvalidResource) as info:
        validate_structure(appointment(colour="red"), "Appointment")
    issue = info.value.issues[0]
    assert issue.en == "Unknown element 'colour'" and issue.vi == "Phần tử không được biết 'colour'"
