"""Dashboard access with real logins (#7 × #5): a provincial regulator sees its province; a facility is refused.

Users are created with `python -m auth create-user`, the cookie `fhir_access_token` comes from logging in through
`/auth/login` (CONTRACTS.md B), and the page reaches `$telehealth-report` only through
`FhirService.dispatch`.

Users ask for `user/*.rs`; what they get is cut down to their role's ceiling (auth/policy.toml).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.reports_fixtures import Loaded, loaded_app, values
from tests.reports_live import OUTPUT, browser, live_server

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "Mật-khẩu-thử-7"


def create_user(db_url: str, username: str, *args: str) -> None:
    env = {**os.environ, "FHIR_DATABASE_URL": db_url}
    subprocess.run([sys.executable, "-m", "auth", "create-user", "--username", username, "--password", PASSWORD,
                    "--scope", "openid fhirUser user/*.rs", *args],
                   check=True, cwd=ROOT, env=env, capture_output=True, timeout=120)


def log_in(page: Any, username: str) -> None:
    page.wait_for_selector("input[name=username]")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


@pytest.fixture(scope="module")
def secured(tmp_path_factory: Any) -> Iterator[tuple[Loaded, Any]]:
    from fhir_server.app import create_app
    from fhir_server.settings import Settings

    tmp = tmp_path_factory.mktemp("dashboard-access")
    with loaded_app("sqlite", tmp) as world:  # data loaded with authorization off, then served with it on
        url = f"sqlite:///{tmp / 'reports.sqlite3'}"
        create_user(url, "syt-kontum", "--role", "regulator", "--jurisdiction", "51")
        create_user(url, "tyt-po-y", "--role", "facility", "--organization", "Organization/org-tyt-po-y")
        app = create_app(Settings(database_url=url, secret_key="test-secret", auth_enabled=True,
                                  audit_enabled=False))
        yield world, app
        app.extensions["fhir_service"].repo.engine.dispose()


def test_a_provincial_regulator_sees_its_province_and_is_refused_another(secured: tuple[Loaded, Any]) -> None:
    world, app = secured
    want = values(world.client.get("/fhir/$telehealth-report?period=2024-Q2&jurisdiction=51").get_json())
    hand = world.hand.figures(world.hand.encounters(date(2024, 4, 1), date(2024, 6, 30), world.hand.in_province("51")),
                              world.hand.in_province("51"), date(2024, 4, 1), date(2024, 6, 30))
    assert want == hand
    OUTPUT.mkdir(exist_ok=True)
    with live_server(app) as base, browser() as b:
        page = b.new_page(viewport={"width": 1200, "height": 900})
        page.goto(f"{base}/dashboard/?period=2024-Q2")
        assert "/auth/login" in page.url
        log_in(page, "syt-kontum")
        page.wait_for_selector("#indicators")
        assert "/dashboard/" in page.url
        assert page.locator("#province").input_value() == "51"
        cell = page.locator("tr[data-measure='kt-05-examination'][data-group='count'] td.num").inner_text()
        assert int(cell.replace(".", "")) == want[("kt-05-examination", "count")]
        page.screenshot(path=str(OUTPUT / "reports-dashboard-regulator.png"), full_page=True)
        resp = page.goto(f"{base}/dashboard/?province=75&period=2024-Q2")
        assert resp is not None and resp.status == 403
        assert "Access denied" in page.content()


def test_a_facility_user_is_refused(secured: tuple[Loaded, Any]) -> None:
    _world, app = secured
    with live_server(app) as base, browser() as b:
        page = b.new_page(viewport={"width": 1000, "height": 600})
        page.goto(f"{base}/dashboard/?province=51&period=2024-Q2")
        log_in(page, "tyt-po-y")
        assert "Không có quyền truy cập" in page.content() and "Access denied" in page.content()
        resp = page.goto(f"{base}/dashboard/?province=51&period=2024-Q2")
        assert resp is not None and resp.status == 403
        page.screenshot(path=str(OUTPUT / "reports-dashboard-facility-refused.png"), full_page=True)
