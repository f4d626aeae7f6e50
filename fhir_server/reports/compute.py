"""Indicator values from the grouped SQL rows (query.py) → results per group and stratum.

The SQL returns rows grouped by (kind, serviceProvider, requesting organization, bucket);
each indicator's criteria (Measure.group.population.criteria) select rows and sum or count
distinct over them. See README.md for the definitions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from fhir_server.reports.definitions import Criteria, Indicator
from fhir_server.reports.query import EncounterGroup, OrgInfo, ParticipantGroup

BREAKDOWNS = ("facility", "district", "commune", "upper-tier", "quarter")
LOCAL_KEY = "__local__"
NONE_KEY = "__none__"


@dataclass
class Value:
    count: int | None = None  # population count (or numerator for rates)
    denominator: int | None = None
    score: float | None = None  # rate per 1,000 or total cost

    def display(self, group_code: str) -> float | int | None:
        """The figure shown in tables: the score for cost and rates, else the count."""
        return self.score if group_code in ("cost", "rate") else self.count


@dataclass
class GroupResult:
    code: str
    text: str
    criteria: dict[str, Criteria]
    total: Value
    strata: dict[str, Value] = field(default_factory=dict)


@dataclass
class IndicatorResult:
    indicator: Indicator
    groups: list[GroupResult]


@dataclass
class Context:
    encounters: list[EncounterGroup]
    participants: list[ParticipantGroup]
    reported: list[dict[str, Any]]
    orgs: dict[str, OrgInfo]
    roles: dict[str, tuple[str | None, str | None]]
    population: dict[str, int]
    scope_orgs: frozenset[str] | None
    bucket_labels: list[str]
    breakdown: str | None


def referred(provider: str | None, requester: str | None) -> bool:
    return requester is not None and requester != provider


def reporting_facility(provider: str | None, requester: str | None) -> str | None:
    return requester if referred(provider, requester) else provider


class Keys:
    """Stratum key of a row for a breakdown (None: the row belongs to no stratum)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def district_of(self, org_id: str | None) -> str:
        seen = 0
        while org_id and seen < 5:
            org = self.ctx.orgs.get(org_id)
            if org is None:
                return NONE_KEY
            if org.tier == "district":
                return org.id
            if org.part_of is None:
                return f"text:{org.district}" if org.district else NONE_KEY
            org_id, seen = org.part_of, seen + 1
        return NONE_KEY

    def for_facility(self, facility: str | None, bucket: int = 0) -> str | None:
        b = self.ctx.breakdown
        if b == "facility":
            return facility or NONE_KEY
        if b == "district":
            return self.district_of(facility)
        if b == "commune":
            org = self.ctx.orgs.get(facility or "")
            return facility if org is not None and org.tier == "commune" else None
        if b == "quarter":
            return self.ctx.bucket_labels[bucket] if bucket < len(self.ctx.bucket_labels) else None
        return None

    def __call__(self, provider: str | None, requester: str | None, bucket: int) -> str | None:
        if self.ctx.breakdown == "upper-tier":
            return provider or NONE_KEY if referred(provider, requester) else LOCAL_KEY
        return self.for_facility(reporting_facility(provider, requester), bucket)

    def label(self, key: str) -> str:
        if key == LOCAL_KEY:
            return "Tự thực hiện (không chuyển tuyến) / done locally"
        if key == NONE_KEY:
            return "Không xác định / unknown"
        if key.startswith("text:"):
            return key[5:]
        org = self.ctx.orgs.get(key)
        return org.name if org else key


def _selects(c: Criteria, orgs: dict[str, OrgInfo], kind: str, provider: str | None, requester: str | None) -> bool:
    if c.kinds and kind not in c.kinds:
        return False
    is_referred = referred(provider, requester)
    if c.origin == "local" and is_referred:
        return False
    if c.origin == "referred" and not is_referred:
        return False
    if c.requester_tier:
        tier = orgs[requester].tier if requester in orgs else None
        if (c.requester_tier == "commune") != (tier == "commune"):
            return False
    return True


def _partition(rows: Iterable[Any], key: Callable[[Any], str | None]) -> dict[str | None, list[Any]]:
    out: dict[str | None, list[Any]] = {}
    for r in rows:
        out.setdefault(key(r), []).append(r)
    return out


class Evaluator:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.keys = Keys(ctx)

    def encounter_value(self, c: Criteria, rows: list[EncounterGroup], parts: list[ParticipantGroup]) -> Value:
        orgs = self.ctx.orgs
        m = c.metric
        if m == "cases":
            return Value(count=sum(r.cases for r in rows))
        if m == "sessions":
            return Value(count=sum(r.sessions for r in rows))
        if m == "eprescribed":
            return Value(count=sum(r.eprescribed for r in rows))
        if m == "minutes":
            return Value(count=sum(r.minutes for r in rows))
        if m == "cost":
            recorded = [r for r in rows if r.cost is not None]
            return Value(count=sum(r.cost_recorded for r in recorded),
                         score=sum(r.cost or 0.0 for r in recorded) if recorded else None)
        if m == "stations":
            stations = {o for r in rows for o in (r.provider, r.requester)
                        if o in orgs and orgs[o].tier == "commune" and self._in_scope(o)}
            return Value(count=len(stations))
        if m == "doctors":
            return Value(count=len({self._practitioner(p) for p in parts} - {None}))
        if m in ("upper-participants", "lower-participants"):
            upper = lower = 0
            for p in parts:
                org = self._role_org(p)
                if referred(p.provider, p.requester) and org != p.requester:
                    upper += p.participations
                else:
                    lower += p.participations
            return Value(count=upper if m == "upper-participants" else lower)
        raise ValueError(f"unknown metric {m}")

    def _in_scope(self, org: str) -> bool:
        return self.ctx.scope_orgs is None or org in self.ctx.scope_orgs

    def _practitioner(self, p: ParticipantGroup) -> str | None:
        if p.target_type == "Practitioner":
            return p.target_id
        if p.target_type == "PractitionerRole" and p.target_id:
            return self.ctx.roles.get(p.target_id, (None, None))[0]
        return None

    def _role_org(self, p: ParticipantGroup) -> str | None:
        if p.target_type == "PractitionerRole" and p.target_id:
            return self.ctx.roles.get(p.target_id, (None, None))[1]
        return None

    # -- one population ---------------------------------------------------------------------
    def evaluate(self, c: Criteria) -> tuple[Value, dict[str, Value]]:
        if c.metric == "reported":
            return self._reported()
        if c.metric == "rate":
            return self._rate(c)
        orgs = self.ctx.orgs
        rows = [r for r in self.ctx.encounters if _selects(c, orgs, r.kind, r.provider, r.requester)]
        parts = [p for p in self.ctx.participants if _selects(c, orgs, p.kind, p.provider, p.requester)]
        total = self.encounter_value(c, rows, parts)
        strata: dict[str, Value] = {}
        if self.ctx.breakdown:
            by_rows = _partition(rows, lambda r: self.keys(r.provider, r.requester, r.bucket))
            by_parts = _partition(parts, lambda p: self.keys(p.provider, p.requester, p.bucket))
            for key in (set(by_rows) | set(by_parts)) - {None}:
                assert key is not None
                strata[key] = self.encounter_value(c, by_rows.get(key, []), by_parts.get(key, []))
        return total, strata

    def _rate(self, c: Criteria) -> tuple[Value, dict[str, Value]]:
        pop = self.ctx.population
        communes = [o for o in pop if o in self.ctx.orgs and self._in_scope(o)]
        rows = [r for r in self.ctx.encounters if _selects(c, self.ctx.orgs, r.kind, r.provider, r.requester)
                and reporting_facility(r.provider, r.requester) in pop]

        def value(sel: list[EncounterGroup], members: list[str]) -> Value:
            num = sum(r.cases for r in sel if reporting_facility(r.provider, r.requester) in members)
            den = sum(pop[o] for o in members)
            return Value(count=num, denominator=den, score=round(num * 1000 / den, 3) if den else None)

        total = value(rows, communes)
        strata: dict[str, Value] = {}
        b = self.ctx.breakdown
        if b in ("facility", "district", "commune"):
            members_by: dict[str, list[str]] = {}
            for o in communes:
                k = self.keys.for_facility(o)
                if k is not None:
                    members_by.setdefault(k, []).append(o)
            for k, members in members_by.items():
                strata[k] = value(rows, members)
        elif b == "quarter":
            for i, label in enumerate(self.ctx.bucket_labels):
                strata[label] = value([r for r in rows if r.bucket == i], communes)
        return total, strata

    def _reported(self) -> tuple[Value, dict[str, Value]]:
        total = 0
        strata: dict[str, Value] = {}
        for rep in self.ctx.reported:
            reporter = (rep.get("reporter") or {}).get("reference", "").split("/")[-1]
            if not self._in_scope(reporter):
                continue
            n = sum(int(p.get("count", 0)) for g in rep.get("group", []) for p in g.get("population", [])
                    if p.get("code", {}).get("coding", [{}])[0].get("code") == "initial-population")
            total += n
            if self.ctx.breakdown and self.ctx.breakdown != "upper-tier":
                bucket = int(rep.get("_bucket", 0))
                key = self.keys.for_facility(reporter, bucket)
                if key is not None:
                    strata.setdefault(key, Value(count=0))
                    strata[key].count = (strata[key].count or 0) + n
        return Value(count=total), strata


def evaluate_all(ctx: Context, indicators: Iterable[Indicator]) -> list[IndicatorResult]:
    ev = Evaluator(ctx)
    out = []
    for ind in indicators:
        groups = []
        for code, text, pops in ind.groups():
            criteria = pops.get("initial-population") or pops.get("numerator")
            assert criteria is not None
            total, strata = ev.evaluate(criteria)
            groups.append(GroupResult(code, text, pops, total, strata))
        out.append(IndicatorResult(ind, groups))
    return out
