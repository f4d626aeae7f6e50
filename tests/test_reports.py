"""$telehealth-report: every indicator against a hand count over the generated resources (#7).

The data set (tests/reports_fixtures.py) is the seed directory — Kon Tum's pilot stations and
support hospitals (seed 003), Đồng Nai's facilities and upper-tier registrations (seed 001) —
with seeded synthetic appointments, encounters, prescriptions, minutes and reported data over
three quarters, loaded once per backend through a transaction Bundle. The expected figures
come from tests/reports_oracle.py (plain Python, no SQL).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from fhir_server.authorization import AllowAll
from fhir_server.errors import Forbidden
from fhir_server.interactions.model import FhirRequest
from fhir_server.principal import FACILITY, REGULATOR, Principal
from fhir_server.reports.definitions import load_indicators
from fhir_server.storage.tables import resources
from tests.conftest import BACKENDS
from tests.reports_fixtures import Loaded, loaded_app, strata, values

PERIODS = {"2024-Q2": (date(2024, 4, 1), date(2024, 6, 30)), "2024-H1": (date(2024, 1, 1), date(2024, 6, 30)),
           "2024": (date(2024, 1, 1), date(2024, 12, 31))}


@pytest.fixture(scope="module", params=BACKENDS)
def world(request: Any, tmp_path_factory: Any) -> Iterator[Loaded]:
    with loaded_app(request.param, tmp_path_factory.mktemp(f"reports-{request.param}")) as loaded:
        yield loaded


def report(world: Loaded, query: str, path: str = "/fhir/$telehealth-report") -> dict[str, Any]:
    resp = world.client.get(f"{path}?{query}")
    assert resp.status_code == 200, resp.get_data(as_text=True)[:400]
    body: dict[str, Any] = resp.get_json()
    return body


def expected(world: Loaded, period: str, scope: set[str] | None) -> dict[tuple[str, str], Any]:
    start, end = PERIODS[period]
    return world.hand.figures(world.hand.encounters(start, end, scope), scope, start, end)


@pytest.mark.parametrize(("jurisdiction", "period"), [("51", "2024-Q2"), ("75", "2024-H1"), (None, "2024")])
def test_every_indicator_equals_the_hand_count(world: Loaded, jurisdiction: str | None, period: str) -> None:
    query = f"period={period}" + (f"&jurisdiction={jurisdiction}" if jurisdiction else "")
    got = values(report(world, query))
    scope = world.hand.in_province(jurisdiction) if jurisdiction else None
    want = expected(world, period, scope)
    assert set(want) == set(got)  # every Measure group is reported and hand-counted
    assert got == want
    assert want[("kt-04-advice", "count")] > 0 and want[("kt-05-examination", "eprescribed")] >= 0


def test_the_bundle_has_one_measure_report_per_indicator(world: Loaded) -> None:
    bundle = report(world, "period=2024-Q2&jurisdiction=51")
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    measures = [e["resource"]["measure"] for e in bundle["entry"]]
    assert measures == [i.url for i in load_indicators()]
    rep = bundle["entry"][0]["resource"]
    assert rep["resourceType"] == "MeasureReport" and rep["type"] == "summary" and rep["status"] == "complete"
    assert rep["period"] == {"start": "2024-04-01", "end": "2024-06-30"}


def test_breakdown_by_facility_equals_the_hand_count(world: Loaded) -> None:
    bundle = report(world, "period=2024-Q2&jurisdiction=51&breakdown=facility")
    encs = world.hand.encounters(date(2024, 4, 1), date(2024, 6, 30), world.hand.in_province("51"))
    for mid, kind in (("kt-04-advice", "advice"), ("kt-05-examination", "examination")):
        want: dict[str, int] = {}
        for e in encs:
            if e["kind"] == kind:
                want[e["facility"]] = want.get(e["facility"], 0) + 1
        got = {k: v for k, v in strata(bundle, mid, "count").items() if v}
        assert got == want


def test_breakdown_by_upper_tier_hospital(world: Loaded) -> None:
    bundle = report(world, "period=2024&jurisdiction=51&breakdown=upper-tier")
    encs = world.hand.encounters(date(2024, 1, 1), date(2024, 12, 31), world.hand.in_province("51"))
    want: dict[str, int] = {}
    for e in encs:
        if e["referred"] and e["kind"].startswith("consultation") and world.hand.tier(e["requester"]) != "commune":
            want[e["provider"]] = want.get(e["provider"], 0) + 1
    got = {k: v for k, v in strata(bundle, "kt-10-consultation-upper-tier", "count").items() if v}
    assert got == want and "org-bvdk-tinh-kon-tum" in got


def test_breakdown_by_district(world: Loaded) -> None:
    bundle = report(world, "period=2024&jurisdiction=51&breakdown=district")
    encs = world.hand.encounters(date(2024, 1, 1), date(2024, 12, 31), world.hand.in_province("51"))
    want: dict[str, int] = {}
    for e in encs:
        if e["kind"] == "advice":
            org = world.hand.orgs[e["facility"]]
            parent = (org.get("partOf") or {}).get("reference", "").removeprefix("Organization/")
            district = e["facility"] if world.hand.tier(e["facility"]) == "district" else (
                parent if world.hand.tier(parent) == "district" else None)
            if district:
                want[district] = want.get(district, 0) + 1
    got = {k: v for k, v in strata(bundle, "kt-04-advice", "count").items()
           if v and k.startswith("org-ttyt-")}
    assert got == want


def test_trend_per_quarter(world: Loaded) -> None:
    bundle = report(world, "period=2024&jurisdiction=51&breakdown=quarter")
    got = strata(bundle, "kt-05-examination", "count")
    for q, (start, end) in {"2024-Q1": (date(2024, 1, 1), date(2024, 3, 31)),
                            "2024-Q2": (date(2024, 4, 1), date(2024, 6, 30)),
                            "2024-Q3": (date(2024, 7, 1), date(2024, 9, 30))}.items():
        encs = world.hand.encounters(start, end, world.hand.in_province("51"))
        assert got[q] == sum(1 for e in encs if e["kind"] == "examination")
    assert got.get("2024-Q4", 0) == 0


def test_organization_level_report_covers_the_facility_and_its_catchment(world: Loaded) -> None:
    got = values(report(world, "period=2024-H1", "/fhir/Organization/org-ttyt-dak-glei/$telehealth-report"))
    scope = world.hand.catchment("org-ttyt-dak-glei")
    assert "org-tyt-dak-pek" in scope  # partOf the district centre
    assert got == expected(world, "2024-H1", scope)


def test_start_and_end_dates_equal_the_named_period(world: Loaded) -> None:
    by_name = values(report(world, "period=2024-Q2&jurisdiction=75"))
    by_dates = values(report(world, "start=2024-04-01&end=2024-06-30&jurisdiction=75"))
    assert by_name == by_dates


def test_csv_holds_the_same_numbers(world: Loaded) -> None:
    resp = world.client.get("/fhir/$telehealth-report?period=2024-Q2&jurisdiction=51&_format=csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(resp.get_data().decode("utf-8-sig"))))
    assert rows[0][:6] == ["TT", "Nội dung", "Nhóm số liệu", "ĐVT", "Mã chỉ số (Measure)", "Kỳ 2024-Q2"]
    assert _table_values(rows) == _json_values(world, "period=2024-Q2&jurisdiction=51")


def test_xlsx_holds_the_same_numbers(world: Loaded) -> None:
    resp = world.client.get("/fhir/$telehealth-report?period=2024-Q2&jurisdiction=51&_format=xlsx")
    assert resp.status_code == 200
    assert resp.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    sheet = load_workbook(io.BytesIO(resp.get_data())).active
    assert sheet is not None
    cells = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert str(cells[0][0]).startswith("CHỈ SỐ CHÍNH ĐỂ THEO DÕI")
    header = next(i for i, r in enumerate(cells) if r and r[0] == "TT")
    rows = [["" if c is None else str(c) for c in r] for r in cells[header:]]
    assert _table_values(rows) == _json_values(world, "period=2024-Q2&jurisdiction=51")


def _table_values(rows: list[list[str]]) -> dict[tuple[str, str], float | None]:
    """(measure id, group text) → number of the period column."""
    out: dict[tuple[str, str], float | None] = {}
    for r in rows[1:]:
        out[(r[4], r[2])] = float(r[5]) if r[5] not in ("", None) else None
    return out


def _json_values(world: Loaded, query: str) -> dict[tuple[str, str], float | None]:
    bundle = report(world, query)
    out: dict[tuple[str, str], float | None] = {}
    for entry in bundle["entry"]:
        rep = entry["resource"]
        for g in rep["group"]:
            v = values({"entry": [{"resource": {**rep, "group": [g]}}]})
            value = next(iter(v.values()))
            out[(rep["measure"].rsplit("/", 1)[1], g["code"]["text"])] = None if value is None else float(value)
    return out


@pytest.mark.parametrize(("query", "parameter"), [
    ("period=2024-Q5", "period"), ("period=24", "period"), ("period=2024&start=2024-01-01", "period"),
    ("start=2024-01-01", "end"), ("start=2024-13-01&end=2024-12-31", "start"), ("", "period"),
    ("period=2024&breakdown=ward", "breakdown"), ("period=2024&jurisdiction=Kon%20Tum", "jurisdiction"),
    ("period=2024&organization=org-nope", "organization"), ("period=2024&colour=red", "colour"),
    ("period=2024&_format=pdf", "_format"), ("period=2024&jurisdiction=51&organization=org-tyt-po-y", "jurisdiction"),
])
def test_bad_parameters_answer_400_naming_the_parameter(world: Loaded, query: str, parameter: str) -> None:
    for lang, marker in (("vi", "Tham số"), ("en", "")):
        resp = world.client.get(f"/fhir/$telehealth-report?{query}", headers={"Accept-Language": lang})
        assert resp.status_code == 400
        issue = resp.get_json()["issue"][0]
        assert issue["expression"] == [parameter]
        assert parameter in issue["details"]["text"] and issue["diagnostics"]
        assert marker in issue["details"]["text"] or lang == "en" or "Thiếu" in issue["details"]["text"]


def test_unknown_organization_instance_is_404(world: Loaded) -> None:
    assert world.client.get("/fhir/Organization/org-nope/$telehealth-report?period=2024").status_code == 404


def _dispatch(world: Loaded, principal: Principal | None, params: list[tuple[str, str]],
              res_id: str | None = None) -> dict[str, Any]:
    svc = world.app.extensions["fhir_service"]
    resp = svc.dispatch(FhirRequest(method="GET", res_type="Organization" if res_id else None, res_id=res_id,
                                    operation="$telehealth-report", params=params, principal=principal,
                                    base_url="http://localhost/fhir"))
    body: dict[str, Any] = resp.resource
    return body


def test_a_provincial_regulator_gets_its_province_only(world: Loaded) -> None:
    kon_tum = Principal(client_id="syt-51", role=REGULATOR, jurisdiction="51")
    own = values(_dispatch(world, kon_tum, [("period", "2024-Q2")]))
    assert own == values(report(world, "period=2024-Q2&jurisdiction=51"))
    with pytest.raises(Forbidden):
        _dispatch(world, kon_tum, [("period", "2024-Q2"), ("jurisdiction", "75")])
    with pytest.raises(Forbidden):
        _dispatch(world, kon_tum, [("period", "2024-Q2"), ("organization", "org-ttyt-cam-my")])
    national = Principal(client_id="byt", role=REGULATOR, jurisdiction=None)
    assert values(_dispatch(world, national, [("period", "2024-Q2"), ("jurisdiction", "75")])) == values(
        report(world, "period=2024-Q2&jurisdiction=75"))


def test_a_facility_gets_only_its_own_organization_report(world: Loaded) -> None:
    ttyt = Principal(client_id="his-dak-glei", role=FACILITY, organization="Organization/org-ttyt-dak-glei",
                     tier="district")
    own = _dispatch(world, ttyt, [("period", "2024-H1")], res_id="org-ttyt-dak-glei")
    assert values(own) == values(report(world, "period=2024-H1",
                                        "/fhir/Organization/org-ttyt-dak-glei/$telehealth-report"))
    with pytest.raises(Forbidden):
        _dispatch(world, ttyt, [("period", "2024-H1"), ("jurisdiction", "51")])
    with pytest.raises(Forbidden):
        _dispatch(world, ttyt, [("period", "2024-H1")], res_id="org-ttyt-dak-to")


class _HideEncounters(AllowAll):
    """An authorization boundary (SQL predicate on `resources`) that hides some encounters."""

    def __init__(self, hidden: set[str]) -> None:
        self.hidden = hidden

    def boundary(self, req: FhirRequest) -> Any:
        hidden = self.hidden

        class Boundary:
            def predicate(self, table: Any, res_type: str | None) -> Any:
                return table.c.res_id.not_in(sorted(hidden))

        return Boundary()


def test_the_authorization_boundary_is_applied_inside_the_sql(world: Loaded) -> None:
    svc = world.app.extensions["fhir_service"]
    encs = world.hand.encounters(date(2024, 4, 1), date(2024, 6, 30), world.hand.in_province("51"))
    hidden = {e["r"]["id"] for e in encs if e["kind"] == "advice"}
    before = svc.authorizer
    svc.authorizer = _HideEncounters(hidden)
    try:
        got = values(report(world, "period=2024-Q2&jurisdiction=51"))
    finally:
        svc.authorizer = before
    assert got[("kt-04-advice", "count")] == 0
    assert got[("kt-05-examination", "count")] == sum(1 for e in encs if e["kind"] == "examination")


def test_writes_updates_and_deletes_move_the_counts(world: Loaded) -> None:
    """An empty quarter (2025-Q1): the report follows create, update (cancel) and delete."""
    c = world.client
    q = "period=2025-Q1&jurisdiction=51"

    def figure(key: tuple[str, str]) -> Any:
        return values(report(world, q))[key]

    enc = {"resourceType": "Encounter", "id": "enc-live", "status": "finished",
           "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "VR"},
           "type": [{"coding": [{"system": "http://fhir.vntelehealth.org/r4/CodeSystem/telehealth-service",
                                 "code": "examination"}]}],
           "period": {"start": "2025-02-03T09:00:00+07:00"},
           "serviceProvider": {"reference": "Organization/org-tyt-po-y"}}
    assert figure(("kt-05-examination", "count")) == 0
    assert c.put("/fhir/Encounter/enc-live", json=enc).status_code == 201
    assert figure(("kt-05-examination", "count")) == 1
    mr = {"resourceType": "MedicationRequest", "id": "mr-live", "status": "active", "intent": "order",
          "subject": {"reference": "Patient/pat-syn-000001"}, "encounter": {"reference": "Encounter/enc-live"},
          "medicationCodeableConcept": {"text": "Amoxicillin"}}
    assert c.put("/fhir/MedicationRequest/mr-live", json=mr).status_code == 201
    assert figure(("kt-05-examination", "eprescribed")) == 1
    assert c.put("/fhir/Encounter/enc-live", json={**enc, "serviceProvider": {
        "reference": "Organization/org-tyt-dak-pek"}}).status_code == 200  # the link survives an update
    assert figure(("kt-05-examination", "eprescribed")) == 1
    assert c.put("/fhir/MedicationRequest/mr-live", json={**mr, "status": "entered-in-error"}).status_code == 200
    assert figure(("kt-05-examination", "eprescribed")) == 0
    assert c.put("/fhir/Encounter/enc-live", json={**enc, "status": "cancelled"}).status_code == 200
    assert figure(("kt-05-examination", "count")) == 0
    assert c.put("/fhir/Encounter/enc-live", json=enc).status_code == 200
    assert c.delete("/fhir/Encounter/enc-live").status_code == 204
    assert figure(("kt-05-examination", "count")) == 0


def test_reported_data_is_accepted_as_a_data_collection_measure_report(world: Loaded) -> None:
    q = "period=2025-Q1&jurisdiction=51"
    before = values(report(world, q))[("kt-09-app-install-support", "count")]
    body = {"resourceType": "MeasureReport", "status": "complete", "type": "data-collection",
            "measure": "http://fhir.vntelehealth.org/r4/Measure/kt-09-app-install-support",
            "reporter": {"reference": "Organization/org-tyt-po-y"},
            "period": {"start": "2025-01-01", "end": "2025-03-31"},
            "group": [{"population": [{"code": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/measure-population",
                "code": "initial-population"}]}, "count": 37}]}]}
    assert world.client.post("/fhir/MeasureReport", json=body).status_code == 201
    assert values(report(world, q))[("kt-09-app-install-support", "count")] == before + 37


def test_measure_files_are_bilingual_and_name_their_source() -> None:
    for ind in load_indicators():
        m = ind.measure
        assert m["resourceType"] == "Measure" and m["url"].endswith("/Measure/" + m["id"])
        assert m["title"] and m["subtitle"] and "Nguồn / Source" in m["description"]
        assert "seed 00" in m["description"]
        assert Path(__file__).resolve().parent.parent.joinpath(
            "terminology", "measures", f"Measure-{m['id']}.json").exists()


def test_resources_table_is_untouched_by_reports(world: Loaded) -> None:
    """The report reads; it stores nothing (MeasureReports are returned, not persisted)."""
    engine = world.app.extensions["fhir_service"].repo.engine
    from sqlalchemy import func, select

    with engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(resources)).scalar()
    report(world, "period=2024&breakdown=facility")
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(resources)).scalar() == n


def test_measures_and_the_operation_definition_are_valid_r4() -> None:
    import orjson

    from fhir_server.reports.operation import DEFINITION
    from fhir_server.validation.structure import validate_structure

    for ind in load_indicators():
        validate_structure(ind.measure, "Measure")
    path = Path(__file__).resolve().parent.parent / "fhir_server/reports/OperationDefinition-telehealth-report.json"
    od = orjson.loads(path.read_bytes())
    validate_structure(od, "OperationDefinition")
    assert od["url"] == DEFINITION and od["code"] == "telehealth-report"


def test_rebuild_recomputes_the_report_index(world: Loaded) -> None:
    from fhir_server.reports.facts import rebuild

    before = values(report(world, "period=2024&breakdown=facility"))
    engine = world.app.extensions["fhir_service"].repo.engine
    assert rebuild(engine) > 0
    assert values(report(world, "period=2024&breakdown=facility")) == before
