"""The login and consent pages in a real browser (Debian's headless chromium via playwright, CONTRACTS.md B)."""

from __future__ import annotations

import json
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from authkit import World, authorize_url, close_app, make_world_app, pkce

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed")


@pytest.fixture(scope="module")
def live(tmp_path_factory: Any) -> Iterator[tuple[World, str]]:
    from werkzeug.serving import make_server

    app = make_world_app(f"sqlite:///{tmp_path_factory.mktemp('browser') / 'auth.sqlite3'}")
    world = World(app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield world, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    close_app(app)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync"])
        yield b
        b.close()


def test_sign_in_and_consent_in_a_browser_then_use_the_token(live: tuple[World, str], browser: Any) -> None:
    world, base = live
    redirect = f"{base}/fhir/metadata"  # any page of ours: the browser lands there with ?code=
    client, _ = world.store.create_client(name="Ứng dụng Vtelehealth", scope="patient/*.rs launch/patient",
                                          role="facility", organization=None, redirect_uris=[redirect], public=True)
    verifier, challenge = pkce()
    url = base + authorize_url(client.client_id, redirect, "patient/*.rs launch/patient", challenge).replace(
        "aud=http%3A%2F%2Flocalhost%2Ffhir", f"aud={urllib.parse.quote(base + '/fhir', safe='')}")
    page = browser.new_page(locale="vi-VN")
    page.goto(url)
    assert page.locator("h1").inner_text() == "Đăng nhập"
    page.get_by_role("link", name="English").click()
    assert page.locator("h1").inner_text() == "Sign in"
    page.get_by_label("Username").fill("benhnhan")
    page.get_by_label("Password").fill("sai mật khẩu")
    page.get_by_role("button", name="Sign in").click()
    assert "Wrong username or password" in page.get_by_role("alert").inner_text()
    page.get_by_label("Username").fill("benhnhan")
    page.get_by_label("Password").fill("mat-khau-1")
    page.get_by_role("button", name="Sign in").click()
    assert page.locator("h1").inner_text() == "Grant access"
    assert "Ứng dụng Vtelehealth" in page.content() and "patient/Appointment.rs" in page.content()
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(lambda u: u.startswith(redirect) and "code=" in u)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query)
    assert query["state"] == ["s1"]
    form = urllib.parse.urlencode({"grant_type": "authorization_code", "code": query["code"][0],
                                   "redirect_uri": redirect, "code_verifier": verifier,
                                   "client_id": client.client_id}).encode()
    with urllib.request.urlopen(urllib.request.Request(f"{base}/auth/token", data=form)) as resp:
        token = json.loads(resp.read())
    assert token["patient"] == "pat-central"
    req = urllib.request.Request(f"{base}/fhir/Patient/pat-central",
                                 headers={"Authorization": f"Bearer {token['access_token']}"})
    with urllib.request.urlopen(req) as resp:
        assert json.loads(resp.read())["id"] == "pat-central"
    page.close()


def test_cookie_login_page_in_a_browser(live: tuple[World, str], browser: Any) -> None:
    world, base = live
    world.store.create_user(username="kiem-tra", password="mat-khau-2", role="auditor", organization=None,
                            fhir_user=None, scope="user/*.rs", jurisdiction="75")
    context = browser.new_context(locale="vi-VN")
    page = context.new_page()
    page.goto(f"{base}/auth/login?next=/fhir/metadata")
    assert page.locator("h1").inner_text() == "Đăng nhập"
    page.get_by_label("Tên đăng nhập").fill("kiem-tra")
    page.get_by_label("Mật khẩu").fill("mat-khau-2")
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_url(f"{base}/fhir/metadata")
    cookie = next(c for c in context.cookies() if c["name"] == "fhir_access_token")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    context.close()
