"""The /dashboard/ page in headless chromium (CONTRACTS.md B): table, SVG charts, spreadsheet download.

Authorization is off here (the access checks with real logins are in
tests/test_reports_dashboard_access.py); the page's handling of 401/403 from the choke point
is checked with a small token authorizer through the Flask client.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from openpyxl import load_workbook

from fhir_server.authorization import AllowAll
from fhir_server.errors import Forbidden, NotAuthenticated
from fhir_server.interactions.model import FhirRequest
from fhir_server.principal import FACILITY, REGULATOR, Principal
from tests.reports_fixtures import Loaded, loaded_app, values
from tests.reports_live import OUTPUT, browser, live_server


@pytest.fixture(scope="module")
def world(tmp_path_factory: Any) -> Iterator[Loaded]:
    with loaded_app("sqlite", tmp_path_factory.mktemp("dashboard")) as loaded:
        yield loaded


def test_dashboard_shows_indicators_charts_and_downloads_the_spreadsheet(world: Loaded) -> None:
    want = values(world.client.get("/fhir/$telehealth-report?period=2024-Q2&jurisdiction=51").get_json())
    OUTPUT.mkdir(exist_ok=True)
    with live_server(world.app) as base, browser() as b:
        page = b.new_page(viewport={"width": 1200, "height": 900}, accept_downloads=True)
        page.goto(f"{base}/dashboard/")
        page.select_option("#province", "51")
        page.fill("#period", "2024-Q2")
        page.click("button[type=submit]")
        page.wait_for_selector("#indicators")
        assert "province=51" in page.url and "period=2024-Q2" in page.url
        for (mid, group), value in want.items():
            cell = page.locator(f"tr[data-measure='{mid}'][data-group='{group}'] td.num").inner_text()
            shown = cell.replace(".", "").replace(",", ".") if group not in ("rate",) else cell.replace(",", "")
            assert (shown == "" and value is None) or float(shown) == pytest.approx(float(value or 0), abs=1e-3)
        bars = page.locator("#chart-facility rect.bar")
        assert bars.count() > 3
        by_facility = {bars.nth(i).get_attribute("data-label"): float(bars.nth(i).get_attribute("data-value") or 0)
                       for i in range(bars.count())}
        assert sum(by_facility.values()) == want[("kt-05-examination", "count")]
        assert page.locator("#chart-upper rect.bar").count() >= 1
        assert page.locator("#chart-trend polyline.series").count() == 4
        page.screenshot(path=str(OUTPUT / "reports-dashboard.png"), full_page=True)
        with page.expect_download() as info:
            page.click("#download-xlsx")
        download = info.value
        assert download.suggested_filename.endswith(".xlsx")
        sheet = load_workbook(io.BytesIO(Path(download.path()).read_bytes())).active
        assert sheet is not None
        rows = [r for r in sheet.iter_rows(values_only=True) if r and r[4] == "kt-05-examination"]
        assert rows[0][5] == want[("kt-05-examination", "count")]


class _TokenAuthorizer(AllowAll):
    """Bearer tokens `regulator-<province>` / `facility-<org>`; nothing else authenticates."""

    def authorize(self, req: FhirRequest, interaction: str, operation: Any = None) -> None:
        header = req.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            raise NotAuthenticated("A bearer token is required", "Cần bearer token")
        token = header[7:]
        if token.startswith("regulator-"):
            req.principal = Principal(client_id=token, role=REGULATOR, jurisdiction=token[10:])
        elif token.startswith("facility-"):
            req.principal = Principal(client_id=token, role=FACILITY, organization=f"Organization/{token[9:]}")
        else:
            raise NotAuthenticated("Unknown token", "Token không hợp lệ")
        if operation is not None and req.principal.role == FACILITY and req.res_type is None:
            raise Forbidden("Facilities may not read province reports", "Cơ sở không được xem báo cáo tỉnh")


@pytest.fixture
def guarded(world: Loaded) -> Iterator[Any]:
    svc = world.app.extensions["fhir_service"]
    before = svc.authorizer
    svc.authorizer = _TokenAuthorizer()
    try:
        yield world.app.test_client()
    finally:
        svc.authorizer = before


def test_without_a_cookie_the_page_redirects_to_login(guarded: Any) -> None:
    resp = guarded.get("/dashboard/?province=51&period=2024-Q2")
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith("/auth/login?next=")
    assert unquote(resp.headers["Location"].split("next=", 1)[1]) == "/dashboard/?province=51&period=2024-Q2"


def test_the_cookie_becomes_the_bearer_token_and_defaults_the_province(guarded: Any) -> None:
    guarded.set_cookie("fhir_access_token", "regulator-51")
    resp = guarded.get("/dashboard/?period=2024-Q2")
    assert resp.status_code == 200
    assert "<option value='51' selected>" in resp.get_data(as_text=True)


def test_another_province_is_refused_with_an_html_page(guarded: Any) -> None:
    guarded.set_cookie("fhir_access_token", "regulator-51")
    resp = guarded.get("/dashboard/?province=75&period=2024-Q2")
    assert resp.status_code == 403 and resp.mimetype == "text/html"
    body = resp.get_data(as_text=True)
    assert "Không có quyền truy cập" in body and "Access denied" in body


def test_a_facility_is_refused(guarded: Any) -> None:
    guarded.set_cookie("fhir_access_token", "facility-org-tyt-po-y")
    resp = guarded.get("/dashboard/?province=51&period=2024-Q2")
    assert resp.status_code == 403 and "Access denied" in resp.get_data(as_text=True)
    assert guarded.get("/dashboard/report.xlsx?province=51&period=2024-Q2").status_code == 403


def test_a_bad_period_is_a_bilingual_400_page(world: Loaded) -> None:
    resp = world.client.get("/dashboard/?province=51&period=2024-Q7")
    assert resp.status_code == 400 and "period" in resp.get_data(as_text=True)
