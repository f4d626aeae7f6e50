"""$telehealth-report: the Department of Health's quarterly telehealth indicators.

System level (`/$telehealth-report?jurisdiction=51&period=2024-Q2`) and instance level
(`/Organization/[id]/$telehealth-report`: the facility and its catchment). Returns a
Bundle (type collection) of MeasureReports, one per indicator (terminology/measures),
strata per `breakdown`; `_format=csv` or `_format=xlsx` gives the appendix-style table.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fhir_server.errors import BadRequest, Forbidden, NotFound
from fhir_server.interactions.model import FhirRequest, FhirResponse
from fhir_server.operations import Operation
from fhir_server.principal import ADMIN, FACILITY, REGULATOR, Principal
from fhir_server.reports import export
from fhir_server.reports.compute import BREAKDOWNS, Context, IndicatorResult, Keys, Value, evaluate_all
from fhir_server.reports.definitions import CANONICAL, load_indicators, load_population
from fhir_server.reports.period import Period, parse_period
from fhir_server.reports.query import (
    OrgInfo,
    Scope,
    affiliations,
    groups,
    organizations,
    practitioner_roles,
    reported_reports,
)
from fhir_server.search.date import parse_range

if TYPE_CHECKING:
    from fhir_server.service import FhirService

DEFINITION = f"{CANONICAL}/OperationDefinition/telehealth-report"
JURISDICTION_EXT = f"{CANONICAL}/StructureDefinition/report-jurisdiction"
BREAKDOWN_EXT = f"{CANONICAL}/StructureDefinition/report-breakdown"
PROVINCE_SYSTEM = f"{CANONICAL}/CodeSystem/province"
KNOWN = {"period", "start", "end", "jurisdiction", "organization", "breakdown", "_format", "format"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _bad(name: str, value: str, en: str, vi: str) -> BadRequest:
    return BadRequest(f"Invalid parameter '{name}' = '{value}': {en}",
                      f"Tham số '{name}' = '{value}' không hợp lệ: {vi}", expression=name)


def _forbidden(en: str, vi: str) -> Forbidden:
    return Forbidden(en, vi)


def _one(req: FhirRequest, name: str) -> str | None:
    values = [v for k, v in req.params if k == name]
    if len(values) > 1:
        raise _bad(name, ",".join(values), "give it once", "chỉ được dùng một lần")
    return values[0].strip() if values else None


def catchment(org_id: str, orgs: dict[str, OrgInfo], affs: list[tuple[str, str]]) -> frozenset[str]:
    """The facility, the units `partOf` it (recursively) and the facilities registered with it."""
    out = {org_id}
    changed = True
    while changed:
        changed = False
        for o in orgs.values():
            if o.part_of in out and o.id not in out:
                out.add(o.id)
                changed = True
    out |= {low for up, low in affs if up == org_id}
    return frozenset(out)


class ReportScope:
    def __init__(self, jurisdiction: str | None, organization: str | None, text: str) -> None:
        self.jurisdiction = jurisdiction
        self.organization = organization
        self.text = text


def _resolve_scope(svc: FhirService, req: FhirRequest, orgs: dict[str, OrgInfo]) -> ReportScope:
    principal: Principal | None = req.principal
    jurisdiction = _one(req, "jurisdiction")
    organization = _one(req, "organization")
    if req.res_type == "Organization":
        if organization:
            raise _bad("organization", organization, "not allowed on Organization/[id]/$telehealth-report",
                       "không dùng với Organization/[id]/$telehealth-report")
        organization = req.res_id
    if jurisdiction and organization:
        raise _bad("jurisdiction", jurisdiction, "give either jurisdiction or organization",
                   "chỉ dùng jurisdiction hoặc organization")
    if organization:
        organization = organization.removeprefix("Organization/")
        if organization not in orgs:
            if req.res_type == "Organization":
                raise NotFound(f"Organization/{organization} is not known", f"Không có Organization/{organization}")
            raise _bad("organization", organization, "no such Organization", "không có Organization này")
    if jurisdiction is not None and not (len(jurisdiction) == 2 and jurisdiction.isdigit()):
        raise _bad("jurisdiction", jurisdiction, "expected a 2-digit province code",
                   "cần mã tỉnh/thành phố 2 chữ số")
    # Authorization boundary of the report (the right `report` itself is checked by the authorizer).
    if principal is not None and principal.role != ADMIN:
        if principal.role == REGULATOR:
            own = principal.jurisdiction
            if own is not None:
                if organization and orgs[organization].province != own:
                    raise _forbidden(f"Organization/{organization} is outside jurisdiction {own}",
                                     f"Organization/{organization} nằm ngoài địa bàn {own}")
                if jurisdiction and jurisdiction != own:
                    raise _forbidden(f"Province {jurisdiction} is outside your jurisdiction {own}",
                                     f"Tỉnh {jurisdiction} nằm ngoài địa bàn quản lý {own}")
                if not organization:
                    jurisdiction = own
        elif principal.role == FACILITY:
            own_org = (principal.organization or "").removeprefix("Organization/")
            if req.res_type != "Organization" or not own_org or organization != own_org:
                raise _forbidden("A facility may only get its own Organization-level report",
                                 "Cơ sở chỉ được xem báo cáo của chính cơ sở mình")
        else:
            raise _forbidden("Reports are for regulators, administrators and facilities",
                             "Báo cáo chỉ dành cho cơ quan quản lý, quản trị viên và cơ sở y tế")
    if organization:
        return ReportScope(None, organization, f"{orgs[organization].name} (Organization/{organization})")
    if jurisdiction:
        return ReportScope(jurisdiction, None, f"Tỉnh/thành phố mã {jurisdiction}")
    return ReportScope(None, None, "Toàn quốc / national")


def build_report(svc: FhirService, req: FhirRequest) -> tuple[Period, ReportScope, list[IndicatorResult], Keys, str]:
    unknown = sorted({k for k, _ in req.params} - KNOWN)
    if unknown:
        raise _bad(unknown[0], dict(req.params)[unknown[0]], "unknown parameter", "tham số không được hỗ trợ")
    period = parse_period(_one(req, "period"), _one(req, "start"), _one(req, "end"))
    breakdown = _one(req, "breakdown")
    if breakdown is not None and breakdown not in BREAKDOWNS:
        raise _bad("breakdown", breakdown, f"expected one of {', '.join(BREAKDOWNS)}",
                   f"cần một trong {', '.join(BREAKDOWNS)}")
    buckets = period.quarters() if breakdown == "quarter" else []
    with svc.repo.read_connection() as conn:
        orgs = organizations(conn)
        scope = _resolve_scope(svc, req, orgs)
        affs = affiliations(conn)
        if scope.organization:
            scope_orgs: frozenset[str] | None = catchment(scope.organization, orgs, affs)
        elif scope.jurisdiction:
            scope_orgs = frozenset(o.id for o in orgs.values() if o.province == scope.jurisdiction)
        else:
            scope_orgs = None
        sql_scope = Scope(period.start_us, period.end_us, scope_orgs, svc.boundary(req),
                          tuple(b.start_us for b in buckets[1:]))
        indicators = load_indicators()
        enc, parts = groups(conn, sql_scope)
        reported = reported_reports(conn, sql_scope, [i.url for i in indicators
                                                      if any(c.metric == "reported" for _, _, p in i.groups()
                                                             for c in p.values())])
        roles = practitioner_roles(conn)
    for rep in reported:
        low = (parse_range((rep.get("period") or {}).get("start", "")) or (0, 0))[0]
        rep["_bucket"] = sum(1 for b in buckets[1:] if low >= b.start_us)
    ctx = Context(enc, parts, reported, orgs, roles, load_population(), scope_orgs, [b.label for b in buckets],
                  breakdown)
    results = evaluate_all(ctx, indicators)
    return period, scope, results, Keys(ctx), breakdown or ""


def _value_fields(v: Value, pop_codes: list[str], unit: str) -> dict[str, Any]:
    pops = []
    for code in pop_codes:
        count = v.denominator if code == "denominator" else v.count
        pops.append({"code": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/measure-population",
                                          "code": code}]}, "count": count or 0})
    out: dict[str, Any] = {"population": pops}
    if v.score is not None:
        if unit == "VND":
            out["measureScore"] = {"value": v.score, "unit": "VND", "system": "urn:iso:std:iso:4217", "code": "VND"}
        else:
            out["measureScore"] = {"value": v.score, "unit": unit}
    return out


def measure_report(res: IndicatorResult, period: Period, scope: ReportScope, keys: Keys, breakdown: str,
                   base_url: str) -> dict[str, Any]:
    ind = res.indicator
    groups = []
    for g in res.groups:
        pop_codes = list(g.criteria)
        unit = "VND" if g.code == "cost" else ind.unit
        group: dict[str, Any] = {"code": {"coding": [{"system": f"{CANONICAL}/CodeSystem/telehealth-report-group",
                                                      "code": g.code}], "text": g.text},
                                 **_value_fields(g.total, pop_codes, unit)}
        if breakdown:
            strata = []
            for key in sorted(g.strata, key=keys.label):
                value: dict[str, Any] = {"text": keys.label(key)}
                if key in keys.ctx.orgs:
                    value["coding"] = [{"system": f"{base_url}/Organization", "code": key,
                                        "display": keys.label(key)}]
                strata.append({"value": value, **_value_fields(g.strata[key], pop_codes, unit)})
            group["stratifier"] = [{"code": [{"text": breakdown}], "stratum": strata}]
        groups.append(group)
    report: dict[str, Any] = {
        "resourceType": "MeasureReport", "id": str(uuid.uuid4()),
        "extension": [{"url": BREAKDOWN_EXT, "valueCode": breakdown}] if breakdown else [],
        "status": "complete", "type": "summary", "measure": ind.url,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "period": {"start": period.start.date().isoformat(), "end": period.last_day.isoformat()},
        "group": groups,
    }
    if scope.jurisdiction:
        report["extension"].append({"url": JURISDICTION_EXT, "valueCoding": {"system": PROVINCE_SYSTEM,
                                                                             "code": scope.jurisdiction}})
    if scope.organization:
        report["reporter"] = {"reference": f"Organization/{scope.organization}"}
        report["subject"] = {"reference": f"Organization/{scope.organization}"}
    if not report["extension"]:
        del report["extension"]
    return report


def telehealth_report(svc: FhirService, req: FhirRequest) -> FhirResponse:
    fmt = (_one(req, "_format") or _one(req, "format") or "json").lower()
    if fmt not in ("json", "application/fhir+json", "application/json", "csv", "text/csv", "xlsx", XLSX):
        raise _bad("_format", fmt, "expected json, csv or xlsx", "cần json, csv hoặc xlsx")
    period, scope, results, keys, breakdown = build_report(svc, req)
    if fmt in ("csv", "text/csv", "xlsx", XLSX):
        rows = export.table(results, keys if breakdown else None, period.label)
        name = f"bao-cao-kcb-tu-xa-{scope.jurisdiction or scope.organization or 'toan-quoc'}-{period.label}"
        name = name.replace("/", "_")
        if fmt.endswith("csv"):
            return FhirResponse(status=200, raw=export.to_csv(rows), media_type="text/csv",
                                headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
        return FhirResponse(status=200, raw=export.to_xlsx(rows, scope.text, period.label), media_type=XLSX,
                            headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'})
    bundle = {
        "resourceType": "Bundle", "id": str(uuid.uuid4()), "type": "collection",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r}
                  for r in (measure_report(res, period, scope, keys, breakdown, req.base_url) for res in results)],
    }
    return FhirResponse(status=200, resource=bundle)


OPERATIONS = [
    Operation(code="telehealth-report", handler=telehealth_report, system=True, instance=True,
              resource_types=("Organization",), definition=DEFINITION, access="report",
              documentation="Telehealth activity indicators (Sở Y tế quarterly report) as MeasureReports, CSV or XLSX"),
]
