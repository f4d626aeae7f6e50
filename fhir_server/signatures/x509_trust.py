"""X.509 path validation (RFC 5280) to configured trust anchors, at the signing time.

Trust anchors come from configuration: `FHIR_TRUST_ANCHORS` names a PEM file (one or more
certificates) or a directory of `*.pem`/`*.crt` files. The chain is built from the JWS
`x5c` certificates (leaf first) plus the anchors: each certificate must be issued by the
next (name match and signature), every issuer must be a CA allowed to sign certificates
(basicConstraints cA, keyUsage keyCertSign, pathLen), every certificate must be valid at
the signing time, and the leaf, when it has keyUsage, must allow digitalSignature or
nonRepudiation (contentCommitment).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtensionOID

MAX_CHAIN = 8
ENV_TRUST_ANCHORS = "FHIR_TRUST_ANCHORS"
_SHA256 = hashes.SHA256()


class TrustError(ValueError):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def load_certificates(path: str | Path) -> list[x509.Certificate]:
    """Every PEM certificate in a file, or in the *.pem / *.crt / *.cer files of a directory."""
    p = Path(path)
    files = sorted(f for f in p.iterdir() if f.suffix.lower() in (".pem", ".crt", ".cer")) if p.is_dir() else [p]
    certs: list[x509.Certificate] = []
    for f in files:
        data = f.read_bytes()
        if b"-----BEGIN CERTIFICATE-----" in data:
            certs.extend(x509.load_pem_x509_certificates(data))
        else:
            certs.append(x509.load_der_x509_certificate(data))
    return certs


def load_anchors(paths: Iterable[str | Path]) -> list[x509.Certificate]:
    out: list[x509.Certificate] = []
    for path in paths:
        out.extend(load_certificates(path))
    return out


def anchors_from_env(env: dict[str, str] | None = None) -> list[x509.Certificate]:
    value = (os.environ if env is None else env).get(ENV_TRUST_ANCHORS, "")
    return load_anchors([p for p in value.split(os.pathsep) if p])


def _ext(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> x509.ExtensionType | None:
    try:
        return cert.extensions.get_extension_for_oid(oid).value
    except x509.ExtensionNotFound:
        return None


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def describe(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def _check_time(cert: x509.Certificate, at: datetime, leaf: bool) -> None:
    who = "the signer's certificate" if leaf else f"CA certificate {describe(cert)}"
    if at > cert.not_valid_after_utc:
        raise TrustError("certificate-expired",
                         f"{who} expired on {cert.not_valid_after_utc.isoformat()}, before the signing time "
                         f"{at.isoformat()}")
    if at < cert.not_valid_before_utc:
        raise TrustError("certificate-not-yet-valid",
                         f"{who} is valid only from {cert.not_valid_before_utc.isoformat()}, after the signing "
                         f"time {at.isoformat()}")


def _check_issuer(issuer: x509.Certificate, below: int) -> None:
    bc = _ext(issuer, ExtensionOID.BASIC_CONSTRAINTS)
    if not isinstance(bc, x509.BasicConstraints) or not bc.ca:
        raise TrustError("untrusted-chain", f"{describe(issuer)} is not a CA certificate")
    if bc.path_length is not None and below > bc.path_length:
        raise TrustError("untrusted-chain", f"{describe(issuer)}: path length constraint exceeded")
    ku = _ext(issuer, ExtensionOID.KEY_USAGE)
    if isinstance(ku, x509.KeyUsage) and not ku.key_cert_sign:
        raise TrustError("untrusted-chain", f"{describe(issuer)} may not sign certificates (keyUsage)")


@dataclass(frozen=True)
class Chain:
    certificates: list[x509.Certificate]  # leaf first, trust anchor last

    @property
    def leaf(self) -> x509.Certificate:
        return self.certificates[0]

    @property
    def issuer(self) -> x509.Certificate:
        return self.certificates[1] if len(self.certificates) > 1 else self.certificates[0]

    @property
    def anchor(self) -> x509.Certificate:
        return self.certificates[-1]


def validate_chain(leaf: x509.Certificate, intermediates: list[x509.Certificate],
                   anchors: list[x509.Certificate], at: datetime) -> Chain:
    """The path leaf → … → anchor valid at `at`, or TrustError."""
    ku = _ext(leaf, ExtensionOID.KEY_USAGE)
    if isinstance(ku, x509.KeyUsage) and not (ku.digital_signature or ku.content_commitment):
        raise TrustError("key-usage", "the signer's certificate may not be used for signatures (keyUsage)")
    _check_time(leaf, at, leaf=True)
    anchor_fps = {a.fingerprint(_SHA256) for a in anchors}
    path = [leaf]
    while len(path) <= MAX_CHAIN:
        current = path[-1]
        if current.fingerprint(_SHA256) in anchor_fps:
            return Chain(path)
        for anchor in anchors:
            if _issued_by(current, anchor):
                _check_issuer(anchor, len(path) - 1)
                _check_time(anchor, at, leaf=False)
                return Chain([*path, anchor])
        nxt = next((c for c in intermediates if c not in path and _issued_by(current, c)), None)
        if nxt is None:
            raise TrustError("untrusted-chain",
                             f"no path from {describe(leaf)} to a trusted CA (issuer {current.issuer.rfc4514_string()}"
                             " is not a configured trust anchor)")
        _check_issuer(nxt, len(path) - 1)
        _check_time(nxt, at, leaf=False)
        path.append(nxt)
    raise TrustError("untrusted-chain", "certificate chain too long")

