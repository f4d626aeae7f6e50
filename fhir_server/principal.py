"""Who is asking: the authenticated principal that authorization attaches to `FhirRequest.principal`.

The authorization component (``auth/``) builds it from a verified access token; everything
else (interactions, operations, reports, pages) only reads it. Kept in the core so that
components can depend on the shape without importing the auth package.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Roles a principal can hold (the policy table in auth/ gives each its ceiling and boundary).
FACILITY = "facility"  # a HIS backend or a staff user of one facility; tier decides the ceiling
PATIENT = "patient"  # a patient-facing app user: own compartment only
ADMIN = "admin"  # operators and data migration: every scope, no boundary
AUDITOR = "auditor"  # read-only: signed minutes, Provenance, AuditEvent, $verify-signature
REGULATOR = "regulator"  # Sở Y tế (one province) or Bộ Y tế (national): read-only plus reports
ROLES = (FACILITY, PATIENT, ADMIN, AUDITOR, REGULATOR)

# Facility tiers (terminology/CodeSystem-facility-tier.json).
TIERS = ("central", "provincial", "district", "commune")


@dataclass(frozen=True)
class Principal:
    client_id: str
    role: str = FACILITY
    # "Organization/<id>" the client or user belongs to (None only for admin/national roles).
    organization: str | None = None
    tier: str | None = None  # one of TIERS for facility principals
    # Province code (2 digits, terminology/CodeSystem-province.json); None = national.
    jurisdiction: str | None = None
    user: str | None = None  # fhirUser: "Practitioner/<id>" or "Patient/<id>"
    patient: str | None = None  # launch/patient context: "Patient/<id>"
    scopes: frozenset[str] = field(default_factory=frozenset)  # granted scopes, as issued
    token_id: str | None = None  # jti of the access token (for audit)

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN
