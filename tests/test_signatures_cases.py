"""Every tamper and certificate case, verified by the server (POST /$verify-signature) and by
the offline CLI (`python -m fhir_server.signatures verify`, a subprocess on the same files):
both must give the expected verdict and agree signature by signature."""

from __future__ import annotations

import base64
import copy
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

from fhir_server.settings import Settings
from fhir_server.signatures.fhir_signature import provenance_for, sign_document, signature_type
from fhir_server.signatures.jws import b64url, b64url_decode
from tests.signature_minutes import document_bundle
from tests.signature_pki import NOW, RawSigner, signer

ROOT = Path(__file__).resolve().parent.parent
CHAIR = {"reference": "Practitioner/prac-chair", "display": "BS CKII Ngô Đức Tuấn"}
MEMBER = {"reference": "Practitioner/prac-member"}

# case → (document valid?, reason codes of each signature in report order)
EXPECTED: dict[str, tuple[bool, list[list[str]]]] = {
    "rsa-ps256": (True, [[]]),
    "ec-es256": (True, [[]]),
    "rsa-rs256-legacy-token": (True, [[]]),
    "two-signers": (True, [[], []]),
    "reordered-keys-and-new-id-meta": (True, [[]]),
    "signed-while-valid-certificate-expired-since": (True, [[]]),
    "changed-section-text": (False, [["content-changed"]]),
    "removed-entry": (False, [["content-changed"]]),
    "swapped-certificate": (False, [["signature-mismatch"]]),
    "cosigner-signed-another-document": (False, [[], ["content-changed"]]),
    "expired-certificate": (False, [["certificate-expired"]]),
    "revoked-crl": (False, [["certificate-revoked"]]),
    "revoked-ocsp": (False, [["certificate-revoked"]]),
    "unknown-ca": (False, [["untrusted-chain"]]),
    "weak-rsa-1024": (False, [["algorithm-too-weak"]]),
    "weak-hs256": (False, [["algorithm-too-weak"]]),
    "status-unknown": (False, [["revocation-unknown"]]),
}


def _signed(s: Any, doc: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    doc = doc or document_bundle()
    doc["signature"] = sign_document(doc, s, CHAIR, [signature_type("author")], **kw)  # type: ignore[list-item]
    return doc


def _package(doc: dict[str, Any], provenances: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": doc}, *({"resource": p} for p in provenances)]}


def build_cases(pki: Any) -> dict[str, Any]:
    weak_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    weak_cert = pki.leaf("weak-1024", weak_key, "BS Khóa Yếu 1024")
    rsa_key, rsa_cert = pki.leaves["rsa"]
    cases: dict[str, Any] = {
        "rsa-ps256": _signed(signer(pki, "rsa")),
        "ec-es256": _signed(signer(pki, "ec")),
        "rsa-rs256-legacy-token": _signed(RawSigner("rs", rsa_key, [rsa_cert, pki.inter], "RS256")),
        "expired-certificate": _signed(signer(pki, "expired")),
        "signed-while-valid-certificate-expired-since": _signed(signer(pki, "expired"), at=NOW - timedelta(days=30)),
        "revoked-crl": _signed(signer(pki, "revoked-crl")),
        "revoked-ocsp": _signed(signer(pki, "revoked-ocsp")),
        "unknown-ca": _signed(signer(pki, "unknown-ca")),
        "weak-rsa-1024": _signed(RawSigner("weak", weak_key, [weak_cert, pki.inter], "PS256")),
        "weak-hs256": _signed(RawSigner("hs", None, [pki.leaves["ec"][1], pki.inter], "HS256")),
        "status-unknown": _signed(signer(pki, "no-status")),
    }
    doc = _signed(signer(pki, "rsa"))
    cosign = sign_document(doc, signer(pki, "ec2"), MEMBER, [signature_type("coauthor")])  # type: ignore[list-item]
    cases["two-signers"] = _package(doc, [{**provenance_for("Bundle/x", doc, cosign), "id": "prov-member"}])
    other = copy.deepcopy(doc)
    other["entry"][0]["resource"]["title"] = "Một biên bản khác"
    forged = sign_document(other, signer(pki, "ec2"), MEMBER, [signature_type("coauthor")])  # type: ignore[list-item]
    cases["cosigner-signed-another-document"] = _package(doc, [{**provenance_for("Bundle/x", doc, forged),
                                                                "id": "prov-forged"}])

    valid = _signed(signer(pki, "ec"))
    changed = copy.deepcopy(valid)
    section = changed["entry"][0]["resource"]["section"][0]["text"]
    section["div"] = section["div"].replace("65 tuổi", "66 tuổi")
    cases["changed-section-text"] = changed
    removed = copy.deepcopy(valid)
    removed["entry"] = [e for e in removed["entry"] if e["resource"]["resourceType"] != "Condition"]
    cases["removed-entry"] = removed
    # Reordered keys, another id and meta (what a server adds when it stores the document).
    reordered = json.loads(json.dumps({"meta": {"versionId": "7"}, "id": "stored-elsewhere", **valid},
                                      sort_keys=True))
    cases["reordered-keys-and-new-id-meta"] = dict(reversed(list(reordered.items())))
    swapped = copy.deepcopy(valid)
    token = base64.b64decode(swapped["signature"]["data"]).decode()
    header_b64, _, sig_b64 = token.split(".")
    header = json.loads(b64url_decode(header_b64))
    header["x5c"][0] = base64.b64encode(pki.leaves["ec2"][1].public_bytes(Encoding.DER)).decode()
    new_token = f"{b64url(json.dumps(header).encode())}..{sig_b64}"
    swapped["signature"]["data"] = base64.b64encode(new_token.encode()).decode()
    cases["swapped-certificate"] = swapped
    return cases


@pytest.fixture(scope="module")
def case_files(signing_pki: Any, tmp_path_factory: Any) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cases")
    files = {}
    for name, bundle in build_cases(signing_pki).items():
        path = folder / f"{name}.json"
        # Pretty-printed with non-ASCII text, like a file an auditor receives.
        path.write_text(json.dumps(bundle, ensure_ascii=False, indent=1), encoding="utf-8")
        files[name] = path
    assert set(files) == set(EXPECTED)
    return files


@pytest.fixture(scope="module")
def module_client(signing_pki: Any, tmp_path_factory: Any) -> Any:
    from fhir_server.app import create_app

    db = tmp_path_factory.mktemp("db") / "fhir.sqlite3"
    app = create_app(Settings(database_url=f"sqlite:///{db}", secret_key="t", auth_enabled=False, audit_enabled=False,
                              extra={"trust_anchors": str(signing_pki.anchor_file)}))
    yield app.test_client()
    app.extensions["fhir_service"].repo.engine.dispose()


def server_verdict(client: Any, path: Path) -> tuple[bool, list[tuple[str, list[str]]]]:
    resp = client.post("/fhir/$verify-signature", data=path.read_bytes(),
                       headers={"Content-Type": "application/fhir+json"})
    assert resp.status_code == 200, resp.get_json()
    result = resp.get_json()["parameter"]
    valid = next(p["valueBoolean"] for p in result if p["name"] == "valid")
    sigs = []
    for p in result:
        if p["name"] != "signature":
            continue
        location = next(x["valueString"] for x in p["part"] if x["name"] == "location")
        reasons = [x["part"][0]["valueCode"] for x in p["part"] if x["name"] == "reason"]
        sigs.append((location, [r for r in reasons if r != "valid"]))
    return valid, sigs


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fhir_server.signatures", "verify", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"})


@pytest.fixture(scope="module")
def cli_verdicts(case_files: dict[str, Path], signing_pki: Any) -> dict[str, Any]:
    done = run_cli(*map(str, case_files.values()), "--trust", str(signing_pki.anchor_file), "--json")
    assert done.returncode == 1, done.stderr  # some cases are invalid
    return {Path(r["file"]).stem: r for r in json.loads(done.stdout)}


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_server_verdict_matches_the_expected_one(module_client: Any, case_files: dict[str, Path], case: str) -> None:
    valid, sigs = server_verdict(module_client, case_files[case])
    assert (valid, [reasons for _, reasons in sigs]) == EXPECTED[case]


def test_offline_cli_agrees_with_the_server_on_every_case(module_client: Any, case_files: dict[str, Path],
                                                          cli_verdicts: dict[str, Any]) -> None:
    for case, path in case_files.items():
        valid, sigs = server_verdict(module_client, path)
        cli = cli_verdicts[case]
        assert cli["valid"] == valid, case
        assert [(s["location"], s["reasons"]) for s in cli["signatures"]] == sigs, case


def test_cli_exit_status_and_readable_report(case_files: dict[str, Path], signing_pki: Any) -> None:
    trust = ["--trust", str(signing_pki.anchor_file)]
    ok = run_cli(str(case_files["two-signers"]), *trust)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "RESULT: VALID" in ok.stdout and "BS CKII Ngô Đức Tuấn" in ok.stdout and "serial" in ok.stdout
    bad = run_cli(str(case_files["changed-section-text"]), *trust, "--lang", "vi")
    assert bad.returncode == 1 and "content-changed" in bad.stdout and "NOT VALID" in bad.stdout


def test_cli_refuses_a_non_document_and_missing_trust_anchors(tmp_path: Path, case_files: dict[str, Path],
                                                              signing_pki: Any) -> None:
    other = tmp_path / "patient.json"
    other.write_text('{"resourceType": "Patient"}')
    assert run_cli(str(other), "--trust", str(signing_pki.anchor_file)).returncode == 2
    assert run_cli(str(case_files["ec-es256"])).returncode == 2


def test_cli_offline_mode_uses_only_given_crl_files(case_files: dict[str, Path], signing_pki: Any,
                                                    tmp_path: Path) -> None:
    trust = ["--trust", str(signing_pki.anchor_file), "--offline", "--json"]
    unknown = json.loads(run_cli(str(case_files["ec-es256"]), *trust).stdout)[0]
    assert unknown["signatures"][0]["reasons"] == ["revocation-unknown"]
    crl = tmp_path / "signing-ca.crl"
    crl.write_bytes(signing_pki.crl())
    good = json.loads(run_cli(str(case_files["ec-es256"]), *trust, "--crl", str(crl)).stdout)[0]
    revoked = json.loads(run_cli(str(case_files["revoked-ocsp"]), *trust, "--crl", str(crl)).stdout)[0]
    assert good["valid"] and revoked["signatures"][0]["reasons"] == ["certificate-revoked"]


def test_cli_needs_neither_flask_nor_a_database(case_files: dict[str, Path], signing_pki: Any) -> None:
    code = ("import sys; from fhir_server.signatures.__main__ import main; "
            f"rc = main([ 'verify', {str(case_files['ec-es256'])!r}, '--trust', {str(signing_pki.anchor_file)!r}]); "
            "assert not {'flask', 'sqlalchemy', 'werkzeug'} & set(sys.modules), sys.modules.keys(); sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
