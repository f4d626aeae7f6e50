"""A throw-away PKI for the signature tests, generated at test time with `cryptography`.

Root CA → intermediate CA → signer certificates (RSA-2048 and P-256, plus expired, revoked,
weak and status-less ones), a CRL and an OCSP responder, both served over HTTP on
127.0.0.1 from a thread. No key material is ever written to the repository.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

NOW = datetime.now(UTC).replace(microsecond=0)


def _name(cn: str, org: str = "Bệnh viện Đa khoa Đồng Nai") -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def ca_cert(subject: x509.Name, key: Any, issuer: x509.Name | None = None, issuer_key: Any = None,
            path_length: int | None = None) -> x509.Certificate:
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer or subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - timedelta(days=3650)).not_valid_after(NOW + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(issuer_key or key, hashes.SHA256()))


@dataclass
class Pki:
    base_url: str  # the local CRL/OCSP server
    root_key: Any = None
    root: Any = None
    inter_key: Any = None
    inter: Any = None
    revoked: set[int] = field(default_factory=set)
    certs: dict[int, x509.Certificate] = field(default_factory=dict)
    leaves: dict[str, tuple[Any, x509.Certificate]] = field(default_factory=dict)
    anchor_file: Path | None = None

    def __post_init__(self) -> None:
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = ca_cert(_name("VN Telehealth Test Root CA", "Test PKI"), self.root_key)
        self.inter_key = ec.generate_private_key(ec.SECP256R1())
        self.inter = ca_cert(_name("VN Telehealth Test Signing CA", "Test PKI"), self.inter_key,
                             self.root.subject, self.root_key, path_length=0)

    def leaf(self, name: str, key: Any, cn: str, *, ocsp_url: bool = True, crl_url: bool = True,
             not_before: datetime | None = None, not_after: datetime | None = None,
             issuer: tuple[Any, x509.Certificate] | None = None) -> x509.Certificate:
        issuer_key, issuer_cert = issuer or (self.inter_key, self.inter)
        builder = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(issuer_cert.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(not_before or NOW - timedelta(days=30))
                   .not_valid_after(not_after or NOW + timedelta(days=365))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True,
                                                key_encipherment=False, data_encipherment=False, key_agreement=False,
                                                key_cert_sign=False, crl_sign=False, encipher_only=False,
                                                decipher_only=False), critical=True))
        if ocsp_url:
            builder = builder.add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(f"{self.base_url}/ocsp"))]),
                critical=False)
        if crl_url:
            builder = builder.add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier(f"{self.base_url}/signing-ca.crl")], relative_name=None,
                reasons=None, crl_issuer=None)]), critical=False)
        cert = builder.sign(issuer_key, hashes.SHA256())
        self.certs[cert.serial_number] = cert
        self.leaves[name] = (key, cert)
        return cert

    def crl(self) -> bytes:
        builder = (x509.CertificateRevocationListBuilder().issuer_name(self.inter.subject)
                   .last_update(NOW - timedelta(hours=1)).next_update(NOW + timedelta(days=7)))
        for serial in sorted(self.revoked):
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(NOW - timedelta(minutes=30))
                .build())
        return builder.sign(self.inter_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def ocsp_response(self, der_request: bytes) -> bytes:
        req = ocsp.load_der_ocsp_request(der_request)
        cert = self.certs.get(req.serial_number)
        if cert is None:
            return ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED).public_bytes(
                serialization.Encoding.DER)
        revoked = cert.serial_number in self.revoked
        builder = ocsp.OCSPResponseBuilder().add_response(
            cert=cert, issuer=self.inter, algorithm=hashes.SHA1(),
            cert_status=ocsp.OCSPCertStatus.REVOKED if revoked else ocsp.OCSPCertStatus.GOOD,
            this_update=NOW - timedelta(minutes=5), next_update=NOW + timedelta(hours=1),
            revocation_time=NOW - timedelta(minutes=30) if revoked else None,
            revocation_reason=x509.ReasonFlags.key_compromise if revoked else None,
        ).responder_id(ocsp.OCSPResponderEncoding.HASH, self.inter)
        return builder.sign(self.inter_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def write_anchor(self, path: Path) -> Path:
        path.write_bytes(self.root.public_bytes(serialization.Encoding.PEM))
        return path


class _Handler(BaseHTTPRequestHandler):
    pki: Pki
    crl_only_serials: set[int]

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/signing-ca.crl":
            self._send(self.server.pki.crl(), "application/pkix-crl")  # type: ignore[attr-defined]
        else:
            self.send_error(404)

    def do_POST(self) -> None:
        if self.path != "/ocsp":
            self.send_error(404)
            return
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._send(self.server.pki.ocsp_response(body), "application/ocsp-response")  # type: ignore[attr-defined]


def start_pki() -> tuple[Pki, ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    pki = Pki(base_url=f"http://127.0.0.1:{server.server_address[1]}")
    server.pki = pki  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return pki, server


def build_standard_leaves(pki: Pki) -> None:
    """The named signer certificates every signature test uses (one RSA-2048 key in all)."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pki.leaf("rsa", rsa_key, "BS CKII Ngô Đức Tuấn")
    pki.leaf("ec", ec.generate_private_key(ec.SECP256R1()), "BS Trần Thị Mai")
    pki.leaf("ec2", ec.generate_private_key(ec.SECP256R1()), "ThS BS Lê Văn Hùng")
    pki.leaf("expired", ec.generate_private_key(ec.SECP256R1()), "BS Hết Hạn",
             not_before=NOW - timedelta(days=800), not_after=NOW - timedelta(days=1))
    revoked_crl = pki.leaf("revoked-crl", ec.generate_private_key(ec.SECP256R1()), "BS Thu Hồi CRL", ocsp_url=False)
    revoked_ocsp = pki.leaf("revoked-ocsp", ec.generate_private_key(ec.SECP256R1()), "BS Thu Hồi OCSP",
                            crl_url=False)
    pki.revoked.update({revoked_crl.serial_number, revoked_ocsp.serial_number})
    pki.leaf("no-status", ec.generate_private_key(ec.SECP256R1()), "BS Không Trạng Thái", ocsp_url=False,
             crl_url=False)
    pki.leaf("weak", rsa.generate_private_key(public_exponent=65537, key_size=1024), "BS Khóa Yếu")
    other_root_key = ec.generate_private_key(ec.SECP256R1())
    other_root = ca_cert(_name("Unknown Root CA", "Elsewhere"), other_root_key)
    pki.leaf("unknown-ca", ec.generate_private_key(ec.SECP256R1()), "BS CA Lạ", issuer=(other_root_key, other_root))


def signer(pki: Pki, name: str) -> Any:
    """A LocalKeySigner for one of the standard leaves (intermediate in x5c)."""
    from fhir_server.signatures.signer import LocalKeySigner

    key, cert = pki.leaves[name]
    chain = [cert] if name == "unknown-ca" else [cert, pki.inter]
    return LocalKeySigner(name, key, chain)


class RawSigner:
    """Signs with any algorithm, weak ones included: what a non-conforming client might send."""

    def __init__(self, key_id: str, key: Any, chain: list[x509.Certificate], algorithm: str) -> None:
        self.key_id, self.algorithm, self._key, self._chain = key_id, algorithm, key, chain

    @property
    def chain(self) -> list[x509.Certificate]:
        return self._chain

    def sign(self, data: bytes) -> bytes:
        import hmac

        from cryptography.hazmat.primitives.asymmetric import padding

        if self.algorithm == "HS256":
            return hmac.new(b"shared-secret", data, "sha256").digest()
        if self.algorithm == "RS256":
            return bytes(self._key.sign(data, padding.PKCS1v15(), hashes.SHA256()))
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        return bytes(self._key.sign(data, pss, hashes.SHA256()))
