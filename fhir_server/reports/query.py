"""The report's SQL: grouped aggregates, one statement per figure family.

Encounters come from the report index (facts.report_encounter: one row per counted
telehealth Encounter, clustered by period start, so a quarter is one range scan);
e-prescriptions and minutes from the search index (`MedicationRequest.encounter`,
`Composition.encounter/type/status` rows); MeasureReports of reported data from the search
index too. The organisation scope and the authorization `Boundary` (a predicate on
`resources`) sit in the same WHERE clause, so counts are exact and never leave the
requester's boundary. Only grouped rows reach Python (hundreds, not millions). See README.md
in this package for the definitions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Integer, and_, bindparam, case, func, literal_column, or_, select
from sqlalchemy.sql import ColumnElement

from fhir_server.reports.definitions import (
    FACILITY_TIER,
    PROVINCE_EXT,
)
from fhir_server.reports.facts import report_encounter
from fhir_server.search.hashing import param_key
from fhir_server.search.tables import search_date, search_reference
from fhir_server.storage.tables import resources

E = "Encounter"
P_DATE = param_key(E, "date")


@dataclass(frozen=True)
class Scope:
    start_us: int  # inclusive, Encounter.period.start
    end_us: int  # exclusive
    orgs: frozenset[str] | None = None  # Organization ids; None = every organization
    boundary: Any = None  # search Boundary from authorization (predicate on resources)
    buckets: tuple[int, ...] = ()  # bucket starts after start_us (trend): bucket = number passed


@dataclass(frozen=True)
class EncounterGroup:
    kind: str
    provider: str | None
    requester: str | None
    bucket: int
    cases: int
    sessions: int  # distinct Appointments + encounters without one
    eprescribed: int
    minutes: int  # consultations with final/amended minutes (Composition 11488-4)
    cost: float | None
    cost_recorded: int


@dataclass(frozen=True)
class ParticipantGroup:
    kind: str
    provider: str | None
    requester: str | None
    bucket: int
    target_type: str | None
    target_id: str | None
    participations: int


def _statement(scope: Scope) -> Any:
    """One scan of the report rows of the period and organisation scope, grouped."""
    f = report_encounter.alias("f")
    keys: list[Any] = [f.c.kind, f.c.provider, f.c.requester, f.c.participants]
    bucket: ColumnElement[Any] = literal_column("0", Integer)
    if scope.buckets:
        bucket = case(*[(f.c.start_us < b, i) for i, b in enumerate(scope.buckets)], else_=len(scope.buckets))
        keys.append(bucket)
    stmt = (
        select(f.c.kind, f.c.provider, f.c.requester, f.c.participants, bucket.label("bucket"),
               func.count().label("cases"),
               func.sum(f.c.leader).label("sessions"),  # 1 per appointment, and on each unscheduled case
               func.count(func.nullif(f.c.rx, 0)).label("rx"),
               func.count(func.nullif(f.c.minutes, 0)).label("minutes"),
               func.sum(f.c.cost).label("cost"), func.count(f.c.cost).label("cost_recorded"))
        .where(f.c.start_us >= scope.start_us, f.c.start_us < scope.end_us)
        .group_by(*keys)
    )
    if scope.orgs is not None:
        orgs = sorted(scope.orgs)
        stmt = stmt.where(or_(f.c.provider.in_(bindparam("orgs_a", orgs, expanding=True)),
                              f.c.requester.in_(bindparam("orgs_b", orgs, expanding=True))))
    if scope.boundary is not None:
        r = resources.alias("rb")
        predicate = scope.boundary.predicate(r, E)
        if predicate is not None:
            stmt = stmt.join(r, r.c.res_pk == f.c.res_pk).where(predicate)
    return stmt


def groups(conn: Any, scope: Scope) -> tuple[list[EncounterGroup], list[ParticipantGroup]]:
    encounters: dict[tuple[Any, ...], list[Any]] = {}
    participants: dict[tuple[Any, ...], int] = {}
    if conn.dialect.name == "postgresql":  # this transaction only: hash the groups in memory, no JIT start-up
        conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")
        conn.exec_driver_sql("SET LOCAL jit = off")
    for r in conn.execute(_statement(scope)):
        key = (r.kind, r.provider or None, r.requester or None, int(r.bucket))
        acc = encounters.setdefault(key, [0, 0, 0, 0, None, 0])
        acc[0] += int(r.cases)
        acc[1] += int(r.sessions or 0)
        acc[2] += int(r.rx or 0) if r.kind == "examination" else 0
        acc[3] += int(r.minutes or 0) if r.kind.startswith("consultation") else 0
        if r.cost is not None:
            acc[4] = (acc[4] or 0.0) + float(r.cost)
        acc[5] += int(r.cost_recorded)
        for ref in (r.participants or "").split():
            t, _, i = ref.partition("/")
            pkey = (*key, t or None, i or None)
            participants[pkey] = participants.get(pkey, 0) + int(r.cases)
    return ([EncounterGroup(k[0], k[1], k[2], k[3], cases=a[0], sessions=a[1], eprescribed=a[2], minutes=a[3],
                            cost=a[4], cost_recorded=a[5]) for k, a in encounters.items()],
            [ParticipantGroup(k[0], k[1], k[2], k[3], k[4], k[5], participations=n)
             for k, n in participants.items()])


@dataclass(frozen=True)
class OrgInfo:
    id: str
    name: str
    tier: str | None
    province: str | None
    part_of: str | None
    district: str | None  # Address.district text (pre-2025 data)


def _contents(conn: Any, res_type: str) -> Iterable[dict[str, Any]]:
    stmt = select(resources.c.content).where(resources.c.res_type == res_type, resources.c.deleted.is_(False))
    for (content,) in conn.execute(stmt):
        if content:
            yield orjson.loads(content)


def organizations(conn: Any) -> dict[str, OrgInfo]:
    out: dict[str, OrgInfo] = {}
    for org in _contents(conn, "Organization"):
        tier = next((c.get("code") for t in org.get("type", []) for c in t.get("coding", [])
                     if c.get("system") == FACILITY_TIER), None)
        province = district = None
        for addr in org.get("address", []):
            district = district or addr.get("district")
            for ext in addr.get("extension", []):
                if ext.get("url") == PROVINCE_EXT:
                    province = province or (ext.get("valueCoding") or {}).get("code")
        part_of = (org.get("partOf") or {}).get("reference", "")
        out[org["id"]] = OrgInfo(org["id"], org.get("name") or org["id"], tier, province,
                                 part_of.split("/")[-1] if part_of.startswith("Organization/") else None, district)
    return out


def practitioner_roles(conn: Any) -> dict[str, tuple[str | None, str | None]]:
    """PractitionerRole id → (Practitioner id, Organization id)."""
    out: dict[str, tuple[str | None, str | None]] = {}
    for role in _contents(conn, "PractitionerRole"):
        prac = (role.get("practitioner") or {}).get("reference", "")
        org = (role.get("organization") or {}).get("reference", "")
        out[role["id"]] = (prac.split("/")[-1] if prac.startswith("Practitioner/") else None,
                           org.split("/")[-1] if org.startswith("Organization/") else None)
    return out


def affiliations(conn: Any) -> list[tuple[str, str]]:
    """Active OrganizationAffiliation registrations as (upper-tier organization, participating facility)."""
    out = []
    for aff in _contents(conn, "OrganizationAffiliation"):
        if aff.get("active") is False:
            continue
        up = (aff.get("organization") or {}).get("reference", "")
        low = (aff.get("participatingOrganization") or {}).get("reference", "")
        if up.startswith("Organization/") and low.startswith("Organization/"):
            out.append((up.split("/")[-1], low.split("/")[-1]))
    return out


P_MREP_MEASURE = param_key("MeasureReport", "measure")
P_MREP_PERIOD = param_key("MeasureReport", "period")
P_MREP_STATUS = param_key("MeasureReport", "status")


def reported_reports(conn: Any, scope: Scope, measure_urls: list[str]) -> list[dict[str, Any]]:
    """data-collection MeasureReports for `measure_urls` whose period starts inside the scope's period."""
    m = search_reference.alias("m")
    d = search_date.alias("d")
    r = resources.alias("r")
    stmt = (
        select(r.c.content)
        .select_from(m)
        .join(d, and_(d.c.res_pk == m.c.res_pk, d.c.param == P_MREP_PERIOD))
        .join(r, r.c.res_pk == m.c.res_pk)
        .where(m.c.param == P_MREP_MEASURE, m.c.url.in_(measure_urls), r.c.deleted.is_(False),
               d.c.low >= scope.start_us, d.c.low < scope.end_us)
    )
    if scope.boundary is not None:
        predicate = scope.boundary.predicate(r, "MeasureReport")
        if predicate is not None:
            stmt = stmt.where(predicate)
    out = []
    for (content,) in conn.execute(stmt):
        rep = orjson.loads(content)
        if rep.get("type") == "data-collection" and rep.get("status") == "complete":
            out.append(rep)
    return out
