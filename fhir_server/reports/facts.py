"""The report index: one row per counted telehealth Encounter, kept in the write transaction.

The search index stores each parameter as its own row, so a report over a million
encounters would probe five index tables per encounter (≈ 7 µs each on SQLite: 7 s). This
table holds, per Encounter of class VR with a telehealth-service type and a status that
counts (not cancelled / entered-in-error), exactly the columns the report groups by, clustered
by period start, so a province's quarter is one range scan. Rows are written and removed by
`ReportIndexWriter`, which wraps the search IndexWriter (same transaction as the resource
row); `rebuild` fills it for data written before this component was installed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    DDL,
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    String,
    Table,
    and_,
    delete,
    event,
    func,
    insert,
    select,
    update,
)

from fhir_server.reports.definitions import (
    CONSULT_NOTE,
    COST_EXT,
    EXCLUDED_STATUSES,
    KINDS,
    REQUESTING_ORG_EXT,
    TELEHEALTH_SERVICE,
    V3_ACTCODE,
)
from fhir_server.search.date import parse_range
from fhir_server.storage.tables import metadata, resources

PK = BigInteger().with_variant(Integer(), "sqlite")

# Clustered in GROUP BY order (kind, provider, requester, participants) then period start: with
# ANALYZE statistics SQLite answers a period with a skip-scan of this key and no sort.
report_encounter = Table(
    "report_encounter", metadata,
    Column("kind", String(40), primary_key=True),  # telehealth-service code
    Column("provider", String(64), primary_key=True),  # serviceProvider Organization id ('' = none)
    Column("requester", String(64), primary_key=True),  # requesting-organization extension ('' = none)
    Column("participants", String(255), primary_key=True),  # "PractitionerRole/a Practitioner/b" sorted
    Column("start_us", BigInteger, primary_key=True),  # Encounter.period.start, µs since epoch
    Column("res_pk", PK, primary_key=True),
    Column("res_id", String(64), nullable=False),
    Column("appointment", String(64), nullable=False),  # first Encounter.appointment id ('' = none)
    Column("leader", Integer, nullable=False),  # 1 on one encounter per (appointment, kind, provider, requester)
    Column("cost", Float, nullable=True),  # telehealth-cost extension (VND)
    Column("rx", Integer, nullable=False),  # MedicationRequests (not cancelled/entered-in-error) → it
    Column("minutes", Integer, nullable=False),  # final/amended consultation minutes → it
    Index("ux_report_encounter_pk", "res_pk", unique=True),
    Index("ix_report_encounter_id", "res_id"),
    Index("ix_report_encounter_appt", "appointment", "kind", "provider", "requester"),
    sqlite_with_rowid=False,
)

# PostgreSQL: the group count of (kind, provider, requester, participants) is far below the product of the
# single-column estimates; without this the planner sorts a million rows instead of hashing a few thousand.
event.listen(report_encounter, "after_create", DDL(
    "CREATE STATISTICS IF NOT EXISTS report_encounter_groups (ndistinct) "
    "ON kind, provider, requester, participants FROM report_encounter").execute_if(dialect="postgresql"))

# E-prescriptions and minutes pointing at an Encounter (so their counts follow writes and deletes).
report_link = Table(
    "report_link", metadata,
    Column("res_pk", PK, primary_key=True),  # the MedicationRequest / Composition
    Column("kind", String(8), nullable=False),  # rx | minutes
    Column("encounter_id", String(64), nullable=False),
    Index("ix_report_link_encounter", "encounter_id", "kind"),
)


def _org_id(ref: Any) -> str | None:
    r = (ref or {}).get("reference", "") if isinstance(ref, dict) else ""
    return r.split("/", 1)[1] if r.startswith("Organization/") else None


def fact_row(res_pk: int, encounter: dict[str, Any]) -> dict[str, Any] | None:
    """The report row of an Encounter, or None when it is not a counted telehealth encounter."""
    cls = encounter.get("class") or {}
    if cls.get("system") != V3_ACTCODE or cls.get("code") != "VR":
        return None
    if encounter.get("status") in EXCLUDED_STATUSES:
        return None
    kind = next((c.get("code") for t in encounter.get("type", []) for c in (t.get("coding") or [])
                 if c.get("system") == TELEHEALTH_SERVICE and c.get("code") in KINDS), None)
    start = (encounter.get("period") or {}).get("start")
    rng = parse_range(start) if isinstance(start, str) else None
    if kind is None or rng is None:
        return None
    requester = cost = None
    for ext in encounter.get("extension", []):
        if ext.get("url") == REQUESTING_ORG_EXT and requester is None:
            requester = _org_id(ext.get("valueReference"))
        elif ext.get("url") == COST_EXT and cost is None:
            value = (ext.get("valueMoney") or {}).get("value")
            cost = float(value) if isinstance(value, int | float) else None
    appts = [a.get("reference", "") for a in encounter.get("appointment", []) if isinstance(a, dict)]
    appt = next((a.split("/", 1)[1] for a in appts if a.startswith("Appointment/")), None)
    parts = sorted({(p.get("individual") or {}).get("reference", "") for p in encounter.get("participant", [])
                    if isinstance(p, dict)} - {""})
    participants = ""
    for ref in parts:  # bounded by the column width; more participants than fit are not counted
        if len(participants) + len(ref) + 1 > 255:
            break
        participants = f"{participants} {ref}".strip()
    return {"start_us": rng[0], "res_pk": res_pk, "res_id": encounter.get("id") or "", "kind": kind,
            "provider": _org_id(encounter.get("serviceProvider")) or "", "requester": requester or "",
            "appointment": appt or "", "cost": cost, "participants": participants, "leader": 1, "rx": 0,
            "minutes": 0}


def link_row(res_pk: int, res_type: str, resource: dict[str, Any]) -> dict[str, Any] | None:
    """A counted e-prescription or consultation-minutes link to an Encounter, or None."""
    ref = (resource.get("encounter") or {}).get("reference", "")
    if not isinstance(ref, str) or not ref.startswith("Encounter/"):
        return None
    if res_type == "MedicationRequest" and resource.get("status") not in EXCLUDED_STATUSES:
        return {"res_pk": res_pk, "kind": "rx", "encounter_id": ref.split("/", 1)[1]}
    if res_type == "Composition" and resource.get("status") in ("final", "amended") and any(
            c.get("system") == CONSULT_NOTE[0] and c.get("code") == CONSULT_NOTE[1]
            for c in (resource.get("type") or {}).get("coding", [])):
        return {"res_pk": res_pk, "kind": "minutes", "encounter_id": ref.split("/", 1)[1]}
    return None


class ReportIndexWriter:
    """Wraps the search IndexWriter: the same calls, plus the report row of each Encounter."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def rows(self, res_type: str, resource: dict[str, Any]) -> Any:
        return self.inner.rows(res_type, resource)

    def write(self, conn: Any, res_pk: int, res_type: str, resource: dict[str, Any]) -> Any:
        written = self.inner.write(conn, res_pk, res_type, resource)
        if res_type == "Encounter":
            row = fact_row(res_pk, resource)
            if row is not None:
                write_fact(conn, row)
        elif res_type in ("MedicationRequest", "Composition"):
            link = link_row(res_pk, res_type, resource)
            if link is not None:
                conn.execute(insert(report_link), [link])
                col = report_encounter.c[link["kind"]]
                conn.execute(update(report_encounter).where(report_encounter.c.res_id == link["encounter_id"])
                             .values({col: col + 1}))
        return written

    def remove(self, conn: Any, res_pk: int) -> None:
        self.inner.remove(conn, res_pk)
        remove_fact(conn, res_pk)


def write_fact(conn: Any, row: dict[str, Any]) -> None:
    f, link = report_encounter, report_link
    counts = dict(conn.execute(select(link.c.kind, func.count()).where(link.c.encounter_id == row["res_id"])
                               .group_by(link.c.kind)).all())
    row = {**row, "rx": int(counts.get("rx", 0)), "minutes": int(counts.get("minutes", 0))}
    if row["appointment"]:
        taken = conn.execute(select(f.c.res_pk).where(
            f.c.appointment == row["appointment"], f.c.kind == row["kind"], f.c.provider == row["provider"],
            f.c.requester == row["requester"], f.c.leader == 1).limit(1)).first()
        row["leader"] = 0 if taken else 1
    conn.execute(insert(f), [row])


def remove_fact(conn: Any, res_pk: int) -> None:
    f, link = report_encounter, report_link
    linked = conn.execute(select(link.c.kind, link.c.encounter_id).where(link.c.res_pk == res_pk)).first()
    if linked is not None:
        col = f.c[linked.kind]
        conn.execute(update(f).where(f.c.res_id == linked.encounter_id).values({col: col - 1}))
        conn.execute(delete(link).where(link.c.res_pk == res_pk))
        return
    old = conn.execute(select(f.c.appointment, f.c.kind, f.c.provider, f.c.requester, f.c.leader)
                       .where(f.c.res_pk == res_pk)).first()
    if old is None:
        return
    conn.execute(delete(f).where(f.c.res_pk == res_pk))
    if old.leader and old.appointment:  # hand the session over to another case of the same appointment
        same = and_(f.c.appointment == old.appointment, f.c.kind == old.kind, f.c.provider == old.provider,
                    f.c.requester == old.requester)
        heir = conn.execute(select(func.min(f.c.res_pk)).where(same)).scalar()
        if heir is not None:
            conn.execute(update(f).where(f.c.res_pk == heir).values(leader=1))


def install_writer(svc: Any) -> None:
    if not isinstance(svc.repo.index, ReportIndexWriter):
        svc.repo.index = ReportIndexWriter(svc.repo.index)
    writer = getattr(svc.search, "writer", None)
    if writer is not None and not isinstance(writer, ReportIndexWriter):
        svc.search.writer = ReportIndexWriter(writer)


def rebuild(engine: Any) -> int:
    """Recompute the report tables from the stored resources (after installing on existing data)."""
    import orjson

    done = 0
    with engine.connect().execution_options(fhir_write=True) as conn, conn.begin():
        conn.execute(delete(report_encounter))
        conn.execute(delete(report_link))
        for res_type in ("MedicationRequest", "Composition", "Encounter"):
            stmt = select(resources.c.res_pk, resources.c.content).where(
                resources.c.res_type == res_type, resources.c.deleted.is_(False)).order_by(resources.c.res_pk)
            for res_pk, content in conn.execute(stmt).all():
                if not content:
                    continue
                resource = orjson.loads(content)
                if res_type == "Encounter":
                    row = fact_row(res_pk, resource)
                    if row is not None:
                        write_fact(conn, row)
                        done += 1
                else:
                    link = link_row(res_pk, res_type, resource)
                    if link is not None:
                        conn.execute(insert(report_link), [link])
    return done
