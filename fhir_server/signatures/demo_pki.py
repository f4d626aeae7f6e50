"""A throw-away PKI for trying signatures locally (`python -m fhir_server.signatures demo-pki DIR`).

Writes, generated on the spot (never committed): `ca.pem` (the trust anchor), `ca.crl` (an
empty CRL, 30 days), `ca.key.pem` (to issue more certificates or a new CRL) and a key store
`keys/` with one P-256 key and certificate per demo doctor plus `owners.json`. Files holding
private keys are created with mode 0600. For demonstrations only: a real deployment uses
certificates from a licensed Vietnamese CA and keys on the doctors' tokens or an HSM.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DEMO_SIGNERS = {
    "prac-ngo-duc-tuan": "BS CKII Ngô Đức Tuấn",
    "prac-le-thi-phuong-tram": "BS Lê Thị Phương Trâm",
    "prac-dinh-cao-minh": "BS Đinh Cao Minh",
}


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Demo only - not a licensed CA"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_private(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))


def generate(folder: Path, signers: dict[str, str] | None = None) -> dict[str, Path]:
    now = datetime.now(UTC)
    keys = folder / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("VN Telehealth Demo CA")).issuer_name(_name(
        "VN Telehealth Demo CA")).public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256()))
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    _write_private(folder / "ca.key.pem", ca_key)
    crl = (x509.CertificateRevocationListBuilder().issuer_name(ca.subject).last_update(now)
           .next_update(now + timedelta(days=30)).sign(ca_key, hashes.SHA256()))
    (folder / "ca.crl").write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    owners = {}
    for pid, cn in (signers or DEMO_SIGNERS).items():
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=730))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False),
                               critical=True)
                .sign(ca_key, hashes.SHA256()))
        _write_private(keys / f"{pid}.key.pem", key)
        (keys / f"{pid}.crt.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        owners[pid] = f"Practitioner/{pid}"
    (keys / "owners.json").write_text(json.dumps(owners, indent=2))
    return {"anchors": folder / "ca.pem", "crl": folder / "ca.crl", "keystore": keys}
