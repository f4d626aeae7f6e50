"""The report's SQL: aggregates over the search index tables, one statement per figure family.

Every statement starts from the Encounter `date` index rows of the period (a range scan of
`ix_date_low`) and joins, per encounter, its `class` (VR), `type` (telehealth-service),
`service-provider`, `requesting-organization`, `status` rows; the organisation scope and the
authorization `Boundary` (a predicate on `resources`) sit in the same WHERE clause, so
counts are exact and never leave the requester's boundary. Only grouped rows reach Python
(hundreds, not millions). See README.md in this package for the definitions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Integer, and_, bindparam, case, exists, func, literal, not_, or_, select
from sqlalchemy.sql import ColumnElement

from fhir_server.reports.definitions import (
    EXCLUDED_STATUSES,
    FACILITY_TIER,
    PROVINCE_EXT,
    TELEHEALTH_SERVICE,
    V3_ACTCODE,
)
from fhir_server.search.hashing import h64, param_key
from fhir_server.search.tables import search_date, search_number, search_reference, search_token
from fhir_server.storage.tables import resources

E = "Encounter"
P_DATE = param_key(E, "date")
P_TYPE = param_key(E, "type")
P_STATUS = param_key(E, "status")
P_SP = param_key(E, "service-provider")
P_REQ = param_key(E, "requesting-organization")
P_APPT = param_key(E, "appointment")
P_PART = param_key(E, "participant")
P_COST = param_key(E, "telehealth-cost")
H_VR = h64(E, "class", V3_ACTCODE, "VR")
H_TYPE_SYS = h64(E, "type", TELEHEALTH_SERVICE)
H_EXCLUDED = [h64(E, "status", s) for s in EXCLUDED_STATUSES]
P_MR_ENC = param_key("MedicationRequest", "encounter")
H_MR_EXCLUDED = [h64("MedicationRequest", "status", s) for s in EXCLUDED_STATUSES]
P_MR_STATUS = param_key("MedicationRequest", "status")
P_COMP_ENC = param_key("Composition", "encounter")
H_COMP_TYPE = h64("Composition", "type", "http://loinc.org", "11488-4")
H_COMP_STATUS = [h64("Composition", "status", s) for s in ("final", "amended")]


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
    appointments: int  # distinct Appointments
    unscheduled: int  # encounters without an Appointment (each its own session)
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


def _base(scope: Scope) -> Any:
    """Per telehealth encounter of the scope: res_pk, kind, provider, requester, bucket."""
    d = search_date.alias("d")
    c = search_token.alias("c")
    t = search_token.alias("t")
    sp = search_reference.alias("sp")
    rq = search_reference.alias("rq")
    st = search_token.alias("st")
    bucket: ColumnElement[Any] = literal(0, Integer)
    if scope.buckets:
        bucket = case(*[(d.c.low < b, i) for i, b in enumerate(scope.buckets)], else_=len(scope.buckets))
    stmt = (
        select(d.c.res_pk.label("res_pk"), t.c.code.label("kind"), sp.c.target_id.label("provider"),
               rq.c.target_id.label("requester"), bucket.label("bucket"))
        .select_from(d)
        .join(c, and_(c.c.hash_sys_code == H_VR, c.c.res_pk == d.c.res_pk))
        .join(t, and_(t.c.res_pk == d.c.res_pk, t.c.param == P_TYPE, t.c.hash_sys == H_TYPE_SYS))
        .outerjoin(sp, and_(sp.c.res_pk == d.c.res_pk, sp.c.param == P_SP))
        .outerjoin(rq, and_(rq.c.res_pk == d.c.res_pk, rq.c.param == P_REQ))
        .where(d.c.param == P_DATE, d.c.low >= scope.start_us, d.c.low < scope.end_us)
        .where(~exists().where(st.c.res_pk == d.c.res_pk, st.c.hash_code.in_(H_EXCLUDED)))
    )
    if scope.orgs is not None:
        orgs = sorted(scope.orgs)
        stmt = stmt.where(or_(sp.c.target_id.in_(bindparam("orgs_a", orgs, expanding=True)),
                              rq.c.target_id.in_(bindparam("orgs_b", orgs, expanding=True))))
    if scope.boundary is not None:
        r = resources.alias("rb")
        predicate = scope.boundary.predicate(r, E)
        if predicate is not None:
            stmt = stmt.join(r, r.c.res_pk == d.c.res_pk).where(predicate)
    return stmt.subquery("base")


def encounter_groups(conn: Any, scope: Scope) -> list[EncounterGroup]:
    base = _base(scope)
    ap = search_reference.alias("ap")
    cost = search_number.alias("cost")
    mr = search_reference.alias("mr")
    mst = search_token.alias("mst")
    er = resources.alias("er")
    has_rx = exists().where(
        er.c.res_pk == base.c.res_pk, mr.c.param == P_MR_ENC, mr.c.target_id == er.c.res_id,
        mr.c.target_type == E,
        not_(exists().where(mst.c.res_pk == mr.c.res_pk, mst.c.param == P_MR_STATUS,
                            mst.c.hash_code.in_(H_MR_EXCLUDED))))
    eprescribed = func.sum(case((and_(base.c.kind == "examination", has_rx), 1), else_=0))
    cp = search_reference.alias("cp")
    ct = search_token.alias("ct")
    cs = search_token.alias("cs")
    er2 = resources.alias("er2")
    has_minutes = exists().where(
        er2.c.res_pk == base.c.res_pk, cp.c.param == P_COMP_ENC, cp.c.target_id == er2.c.res_id,
        cp.c.target_type == E,
        exists().where(ct.c.res_pk == cp.c.res_pk, ct.c.hash_sys_code == H_COMP_TYPE),
        exists().where(cs.c.res_pk == cp.c.res_pk, cs.c.hash_code.in_(H_COMP_STATUS)))
    minutes = func.sum(case((and_(base.c.kind.like("consultation%"), has_minutes), 1), else_=0))
    stmt = (
        select(base.c.kind, base.c.provider, base.c.requester, base.c.bucket, func.count().label("cases"),
               func.count(ap.c.target_id.distinct()).label("appointments"),
               func.sum(case((ap.c.target_id.is_(None), 1), else_=0)).label("unscheduled"),
               eprescribed.label("eprescribed"), minutes.label("minutes"), func.sum(cost.c.low).label("cost"),
               func.count(cost.c.low).label("cost_recorded"))
        .select_from(base)
        .outerjoin(ap, and_(ap.c.res_pk == base.c.res_pk, ap.c.param == P_APPT))
        .outerjoin(cost, and_(cost.c.res_pk == base.c.res_pk, cost.c.param == P_COST))
        .group_by(base.c.kind, base.c.provider, base.c.requester, base.c.bucket)
    )
    return [EncounterGroup(r.kind, r.provider, r.requester, int(r.bucket), int(r.cases), int(r.appointments),
                           int(r.unscheduled or 0), int(r.eprescribed or 0), int(r.minutes or 0),
                           float(r.cost) if r.cost is not None else None, int(r.cost_recorded))
            for r in conn.execute(stmt)]


def participant_groups(conn: Any, scope: Scope) -> list[ParticipantGroup]:
    base = _base(scope)
    p = search_reference.alias("p")
    stmt = (
        select(base.c.kind, base.c.provider, base.c.requester, base.c.bucket, p.c.target_type, p.c.target_id,
               func.count().label("n"))
        .select_from(base)
        .join(p, and_(p.c.res_pk == base.c.res_pk, p.c.param == P_PART))
        .group_by(base.c.kind, base.c.provider, base.c.requester, base.c.bucket, p.c.target_type, p.c.target_id)
    )
    return [ParticipantGroup(r.kind, r.provider, r.requester, int(r.bucket), r.target_type, r.target_id, int(r.n))
            for r in conn.execute(stmt)]


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
