"""The served resource types: one registry, so adding a type is one line."""

from __future__ import annotations

from dataclasses import dataclass

ALL_INTERACTIONS = (
    "read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create", "search-type",
)
READ_ONLY = ("read", "vread", "history-instance", "history-type", "search-type")


@dataclass(frozen=True)
class TypeConfig:
    name: str
    interactions: tuple[str, ...] = ALL_INTERACTIONS
    conditional_create: bool = True
    conditional_update: bool = True
    conditional_delete: bool = True

    def supports(self, interaction: str) -> bool:
        return interaction in self.interactions


_CLINICAL_AND_DIRECTORY = [
    "Organization", "Practitioner", "PractitionerRole", "Patient", "Location", "HealthcareService", "Schedule",
    "Slot", "Appointment", "Encounter", "MedicationRequest", "Medication", "Condition", "OrganizationAffiliation",
    "Composition", "Provenance", "DocumentReference", "Bundle", "Measure", "MeasureReport",
]
# Conformance resources are writable by operators (interaction-level policy decides who);
# the server's own definitions are loaded at start-up.
_CONFORMANCE = ["StructureDefinition", "SearchParameter", "CodeSystem", "ValueSet", "OperationDefinition"]

RESOURCE_TYPES: dict[str, TypeConfig] = {
    **{name: TypeConfig(name) for name in _CLINICAL_AND_DIRECTORY},
    # The audit trail is append-only (one version per event: no update, patch, delete or history);
    # it has a store of its own (auth/audit_trail.py).
    "AuditEvent": TypeConfig("AuditEvent", interactions=("create", "read", "vread", "search-type"),
                             conditional_create=False, conditional_update=False, conditional_delete=False),
    **{name: TypeConfig(name) for name in _CONFORMANCE},
    # The CapabilityStatement is generated (GET /metadata); stored ones are readable only.
    "CapabilityStatement": TypeConfig("CapabilityStatement", interactions=READ_ONLY, conditional_create=False,
                                      conditional_update=False, conditional_delete=False),
}


def served(type_name: str) -> TypeConfig | None:
    return RESOURCE_TYPES.get(type_name)
