"""Building blocks of #6: RFC 8785 canonicalization, the key store (PKCS#12, PEM), signer
rules (algorithms, key strength, no key material in repr) and client-side signing (CLI)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from fhir_server.signatures.canonical import canonical_document
from fhir_server.signatures.jws import JwsError
from fhir_server.signatures.signer import KeyStore, LocalKeySigner
from fhir_server.signatures.verify import Verifier
from tests.signature_minutes import document_bundle

ROOT = Path(__file__).resolve().parent.parent


def test_canonical_form_ignores_key_order_whitespace_id_meta_and_signature() -> None:
    doc = document_bundle()
    shuffled = json.loads(json.dumps(doc, sort_keys=True, indent=3))
    shuffled.update(id="x", meta={"versionId": "2"}, signature={"data": "AA=="})
    assert canonical_document(doc) == canonical_document(shuffled)
    assert canonical_document({"resourceType": "Bundle", "b": [1, 2.50, "é"], "a": {"z": None, "y": True}}) == \
        '{"a":{"y":true,"z":null},"b":[1,2.5,"é"],"resourceType":"Bundle"}'.encode()


def test_canonical_form_changes_with_any_content_change() -> None:
    doc = document_bundle()
    changed = json.loads(json.dumps(doc))
    changed["entry"][0]["resource"]["title"] += " "
    assert canonical_document(doc) != canonical_document(changed)


def test_key_store_loads_pkcs12_and_pem_pairs_with_owners(signing_pki: Any, tmp_path: Path) -> None:
    rsa_key, rsa_cert = signing_pki.leaves["rsa"]
    ec_key, ec_cert = signing_pki.leaves["ec"]
    (tmp_path / "chair.p12").write_bytes(pkcs12.serialize_key_and_certificates(
        b"chair", rsa_key, rsa_cert, [signing_pki.inter, signing_pki.root],
        serialization.BestAvailableEncryption(b"s3cret")))
    (tmp_path / "secretary.key.pem").write_bytes(ec_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"s3cret")))
    (tmp_path / "secretary.crt.pem").write_bytes(ec_cert.public_bytes(serialization.Encoding.PEM)
                                                 + signing_pki.inter.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "owners.json").write_text('{"chair": "Practitioner/prac-chair"}')
    store = KeyStore.from_env({"FHIR_SIGNING_KEYSTORE": str(tmp_path), "FHIR_SIGNING_KEYSTORE_PASSWORD": "s3cret"})
    chair, secretary = store.get("chair"), store.get("secretary")
    assert chair is not None and secretary is not None
    assert chair.owner == "Practitioner/prac-chair" and chair.signer.algorithm == "PS256"
    assert secretary.signer.algorithm == "ES256"
    # the self-signed root never travels in x5c: trust comes from the verifier's anchors
    assert chair.signer.chain == [rsa_cert, signing_pki.inter]


def test_signer_refuses_weak_keys_and_foreign_certificates(signing_pki: Any) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(JwsError) as exc:
        LocalKeySigner("weak", weak, [signing_pki.leaf("weak-unit", weak, "BS Yếu")])
    assert exc.value.reason == "algorithm-too-weak"
    with pytest.raises(JwsError):
        LocalKeySigner("rs", signing_pki.leaves["rsa"][0], [signing_pki.leaves["rsa"][1]], algorithm="RS256")
    with pytest.raises(ValueError, match="does not belong"):
        LocalKeySigner("mix", signing_pki.leaves["ec"][0], [signing_pki.leaves["ec2"][1]])


def test_signer_repr_and_attributes_hold_no_key_material(signing_pki: Any) -> None:
    key, cert = signing_pki.leaves["ec"]
    s = LocalKeySigner("ec", key, [cert])
    assert "BEGIN" not in repr(s) and "Trần Thị Mai" in repr(s)
    assert not any(isinstance(v, str) and "PRIVATE" in v for v in vars(s).values())


def test_cli_sign_then_verify_round_trip(signing_pki: Any, tmp_path: Path) -> None:
    key, cert = signing_pki.leaves["ec"]
    (tmp_path / "k.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.BestAvailableEncryption(b"pw")))
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM)
                                     + signing_pki.inter.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "doc.json").write_text(json.dumps(document_bundle(), ensure_ascii=False), encoding="utf-8")
    cli = [sys.executable, "-m", "fhir_server.signatures"]
    done = subprocess.run([*cli, "sign", str(tmp_path / "doc.json"), "--key", str(tmp_path / "k.pem"), "--cert",
                           str(tmp_path / "c.pem"), "--password-env", "KEY_PW", "--who", "Practitioner/prac-chair",
                           "-o", str(tmp_path / "signed.json")], cwd=ROOT, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "KEY_PW": "pw"}, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "PRIVATE" not in done.stdout + done.stderr
    report = Verifier([signing_pki.root]).verify_package(json.loads((tmp_path / "signed.json").read_text()))
    assert report.valid


def test_demo_pki_gives_a_key_store_whose_signatures_verify_offline(tmp_path: Path) -> None:
    from fhir_server.signatures.__main__ import main
    from fhir_server.signatures.fhir_signature import sign_document, signature_type
    from fhir_server.signatures.revocation import RevocationChecker

    assert main(["demo-pki", str(tmp_path / "pki")]) == 0
    store = KeyStore.from_directory(tmp_path / "pki" / "keys")
    entry = store.get("prac-ngo-duc-tuan")
    assert entry is not None and entry.owner == "Practitioner/prac-ngo-duc-tuan"
    assert oct((tmp_path / "pki" / "keys" / "prac-ngo-duc-tuan.key.pem").stat().st_mode & 0o777) == "0o600"
    doc = document_bundle()
    doc["signature"] = sign_document(doc, entry.signer, {"reference": entry.owner},
                                     [signature_type("author")])  # type: ignore[list-item]
    verifier = Verifier.from_paths([tmp_path / "pki" / "ca.pem"], [tmp_path / "pki" / "ca.crl"], network=False)
    assert isinstance(verifier.revocation, RevocationChecker)
    assert verifier.verify_package(doc).valid
