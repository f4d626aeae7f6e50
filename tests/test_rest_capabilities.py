"""GET /metadata: a CapabilityStatement generated from the registry and live configuration."""

from __future__ import annotations

from typing import Any

from fhir_server.registry import RESOURCE_TYPES


def test_metadata_lists_every_served_type(client: Any) -> None:
    cs = client.get("/fhir/metadata").get_json()
    assert cs["resourceType"] == "CapabilityStatement" and cs["fhirVersion"] == "4.0.1"
    listed = {r["type"] for r in cs["rest"][0]["resource"]}
    assert listed == set(RESOURCE_TYPES)


def test_metadata_reflects_type_configuration(client: Any) -> None:
    cs = client.get("/fhir/metadata").get_json()
    by_type = {r["type"]: r for r in cs["rest"][0]["resource"]}
    audit = {i["code"] for i in by_type["AuditEvent"]["interaction"]}
    assert "update" not in audit and "delete" not in audit and "create" in audit
    appt = {i["code"] for i in by_type["Appointment"]["interaction"]}
    assert {"read", "vread", "update", "patch", "delete", "create", "search-type", "history-instance"} <= appt
    assert by_type["Appointment"]["conditionalDelete"] == "single"


def test_metadata_lists_search_parameters_of_the_engine(client: Any) -> None:
    cs = client.get("/fhir/metadata").get_json()
    by_type = {r["type"]: r for r in cs["rest"][0]["resource"]}
    names = {p["name"] for p in by_type["Appointment"].get("searchParam", [])}
    assert {"date", "practitioner", "patient", "status", "_id", "_lastUpdated"} <= names


def test_metadata_declares_system_interactions(client: Any) -> None:
    cs = client.get("/fhir/metadata").get_json()
    codes = {i["code"] for i in cs["rest"][0]["interaction"]}
    assert codes == {"transaction", "batch", "search-system", "history-system"}
