"""The auditor page /auditor/ (CONTRACTS.md B): in headless Chromium, an uploaded valid
document shows green, the same file with one character changed shows red; plus the
page's access rules through the dispatcher (401 → login redirect, 403 page)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from fhir_server.authorization import AllowAll
from fhir_server.errors import Forbidden, NotAuthenticated
from fhir_server.settings import Settings
from fhir_server.signatures.fhir_signature import sign_document, signature_type
from fhir_server.signatures.signer import KeyStore
from tests.signature_minutes import composition, referenced_resources
from tests.signature_pki import signer

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]


def make_app(tmp: Path, pki: Any, **kwargs: Any) -> Any:
    from fhir_server.app import create_app

    store = KeyStore()
    store.add(signer(pki, "rsa"), owner="Practitioner/prac-chair")
    settings = Settings(database_url=f"sqlite:///{tmp / 'fhir.sqlite3'}", secret_key="t", auth_enabled=False,
                        audit_enabled=False, extra={"trust_anchors": str(pki.anchor_file), "signing_keystore": store})
    return create_app(settings, **kwargs)


def signed_minutes(client: Any) -> str:
    for r in [*referenced_resources(), composition()]:
        client.put(f"/fhir/{r['resourceType']}/{r['id']}", json=r, headers={"Content-Type": "application/fhir+json"})
    bundle_id = client.post("/fhir/Composition/comp-minutes/$document?persist=true").get_json()["id"]
    resp = client.post(f"/fhir/Bundle/{bundle_id}/$sign", json={"resourceType": "Parameters", "parameter": [
        {"name": "key", "valueString": "rsa"}, {"name": "final", "valueBoolean": True}]},
        headers={"Content-Type": "application/fhir+json"})
    assert resp.status_code == 200
    return str(bundle_id)


@pytest.fixture(scope="module")
def live(tmp_path_factory: Any, signing_pki: Any) -> Iterator[tuple[str, str, Any]]:
    app = make_app(tmp_path_factory.mktemp("live"), signing_pki)
    bundle_id = signed_minutes(app.test_client())
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", bundle_id, app
    server.shutdown()
    app.extensions["fhir_service"].repo.engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's /usr/bin/chromium is not installed (scripts/test.sh installs it when run as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


def verdict_after_upload(browser: Any, base: str, path: Path) -> tuple[str, str]:
    page = browser.new_page()
    try:
        page.goto(f"{base}/auditor/")
        page.wait_for_selector("body[data-ready=true]")
        page.set_input_files("#file", str(path))
        page.wait_for_selector("#verdict[data-valid]")
        return page.get_attribute("#verdict", "class") or "", page.inner_text("#result")
    finally:
        page.close()


def test_uploaded_valid_document_is_green_and_one_changed_character_is_red(
        live: tuple[str, str, Any], browser: Any, tmp_path: Path) -> None:
    base, bundle_id, app = live
    document = app.test_client().get(f"/fhir/Bundle/{bundle_id}").get_json()
    good = tmp_path / "minutes.json"
    good.write_text(json.dumps(document, ensure_ascii=False, indent=2), encoding="utf-8")
    css, text = verdict_after_upload(browser, base, good)
    assert css == "ok", text
    assert "HỢP LỆ" in text and "BS CKII Ngô Đức Tuấn" in text and "Kết luận, chẩn đoán" in text
    assert "Nhồi máu cơ tim cấp thành dưới" in text and "Chủ trì" in text

    tampered = tmp_path / "minutes-tampered.json"
    raw = good.read_text(encoding="utf-8")
    assert raw.count("I21.1") >= 1
    tampered.write_text(raw.replace("I21.1", "I21.2", 1), encoding="utf-8")
    css, text = verdict_after_upload(browser, base, tampered)
    assert css == "bad", text
    assert "KHÔNG HỢP LỆ" in text and "ĐÃ BỊ THAY ĐỔI" in text


def test_document_picked_from_the_search_list_is_verified(live: tuple[str, str, Any], browser: Any) -> None:
    base, bundle_id, _ = live
    page = browser.new_page()
    try:
        page.goto(f"{base}/auditor/?q=Nguyễn")
        page.wait_for_selector("body[data-ready=true]")
        page.click(f"button.doc[data-id='{bundle_id}']")
        page.wait_for_selector("#verdict[data-valid]")
        assert page.get_attribute("#verdict", "class") == "ok"
        assert "Biên bản hội chẩn từ xa" in page.inner_text("#document")
    finally:
        page.close()


def test_uploaded_file_that_is_not_a_document_is_red(live: tuple[str, str, Any], browser: Any,
                                                      tmp_path: Path) -> None:
    base, _, _ = live
    path = tmp_path / "patient.json"
    path.write_text('{"resourceType": "Patient"}')
    css, text = verdict_after_upload(browser, base, path)
    assert css == "bad" and "Bundle" in text


# -- access through the dispatcher (no browser needed) ---------------------------------------
class TokenRequired(AllowAll):
    """A minimal policy: no token → 401, token 'other' → 403 (the real one comes from auth/)."""

    def authorize(self, req: Any, interaction: str, operation: Any = None) -> None:
        token = (req.headers.get("authorization") or "").removeprefix("Bearer ")
        if not token:
            raise NotAuthenticated("A token is required", "Cần mã truy cập")
        if token != "auditor":
            raise Forbidden("Not allowed", "Không được phép")


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: Any, signing_pki: Any) -> Any:
    app = make_app(tmp_path_factory.mktemp("guarded"), signing_pki, authorizer=TokenRequired())
    yield app.test_client()
    app.extensions["fhir_service"].repo.engine.dispose()


def test_page_without_a_token_redirects_to_login(guarded: Any) -> None:
    resp = guarded.get("/auditor/")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/auth/login?next=")
    assert guarded.post("/auditor/api/verify", data="{}").status_code == 401


def test_page_with_a_token_of_another_role_is_403(guarded: Any) -> None:
    guarded.set_cookie("fhir_access_token", "other")
    resp = guarded.get("/auditor/")
    assert resp.status_code == 403 and "Không có quyền" in resp.get_data(as_text=True)
    guarded.delete_cookie("fhir_access_token")


def test_page_with_the_cookie_calls_the_api_with_a_bearer_token(guarded: Any, signing_pki: Any) -> None:
    guarded.set_cookie("fhir_access_token", "auditor")
    resp = guarded.get("/auditor/")
    assert resp.status_code == 200 and "script-src 'self'" in resp.headers["Content-Security-Policy"]
    from tests.signature_minutes import document_bundle

    doc = document_bundle()
    doc["signature"] = sign_document(doc, signer(signing_pki, "ec"), {"reference": "Practitioner/prac-chair"},
                                     [signature_type("author")])  # type: ignore[list-item]
    result = guarded.post("/auditor/api/verify", json=doc).get_json()
    assert result["report"]["parameter"][0] == {"name": "valid", "valueBoolean": True}
    guarded.delete_cookie("fhir_access_token")
