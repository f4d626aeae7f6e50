"""Certificate status (Decree 23/2025/NĐ-CP): OCSP (RFC 6960) and CRLs (RFC 5280 §5).

Order: the OCSP responder named in the certificate's Authority Information Access, then
CRLs — configured files first, then the certificate's CRL distribution points. The first
source that gives a signed, definitive answer decides. When none does, the verdict is
`unknown` with the reason of every source that failed, never a silent "good".

Network access can be turned off (`network=False`, the CLI's `--offline`); then only CRL
files count. Fetched CRLs are cached per checker (one verification run).
"""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, ExtensionOID

GOOD, REVOKED, UNKNOWN = "good", "revoked", "unknown"
MAX_RESPONSE_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class Status:
    state: str  # good | revoked | unknown
    source: str | None = None  # "OCSP <url>", "CRL <file or url>"
    revoked_at: datetime | None = None
    detail: str = ""


def _ext(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> x509.ExtensionType | None:
    try:
        return cert.extensions.get_extension_for_oid(oid).value
    except x509.ExtensionNotFound:
        return None


def ocsp_urls(cert: x509.Certificate) -> list[str]:
    aia = _ext(cert, ExtensionOID.AUTHORITY_INFORMATION_ACCESS)
    if not isinstance(aia, x509.AuthorityInformationAccess):
        return []
    return [d.access_location.value for d in aia
            if d.access_method == AuthorityInformationAccessOID.OCSP
            and isinstance(d.access_location, x509.UniformResourceIdentifier)]


def crl_urls(cert: x509.Certificate) -> list[str]:
    cdp = _ext(cert, ExtensionOID.CRL_DISTRIBUTION_POINTS)
    if not isinstance(cdp, x509.CRLDistributionPoints):
        return []
    return [name.value for dp in cdp for name in (dp.full_name or [])
            if isinstance(name, x509.UniformResourceIdentifier)]


def _signed_by(obj: x509.CertificateRevocationList | x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        if isinstance(obj, x509.CertificateRevocationList):
            return obj.issuer == issuer.subject and obj.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
        obj.verify_directly_issued_by(issuer)
        return True
    except (ValueError, TypeError, InvalidSignature):
        return False


@dataclass
class RevocationChecker:
    crl_files: list[Path] = field(default_factory=list)
    network: bool = True
    timeout: float = 5.0
    _crls: dict[str, x509.CertificateRevocationList | None] = field(default_factory=dict, repr=False)

    def check(self, cert: x509.Certificate, issuer: x509.Certificate, at: datetime) -> Status:
        failures: list[str] = []
        if self.network:
            for url in ocsp_urls(cert):
                status = self._ocsp(cert, issuer, url, failures)
                if status is not None:
                    return status
        sources: list[tuple[str, x509.CertificateRevocationList | None]] = []
        for f in self.crl_files:
            sources.append((f"CRL {f}", self._crl_file(f)))
        if self.network:
            sources.extend((f"CRL {url}", self._crl_url(url, failures)) for url in crl_urls(cert))
        for source, crl in sources:
            if crl is None or crl.issuer != cert.issuer:
                continue
            if not _signed_by(crl, issuer):
                failures.append(f"{source}: signature of the CRL does not verify with the issuer's key")
                continue
            entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
            if entry is not None:
                return Status(REVOKED, source, entry.revocation_date_utc,
                              f"listed as revoked on {entry.revocation_date_utc.isoformat()}")
            detail = ""
            if crl.next_update_utc is not None and crl.next_update_utc < at:
                detail = "CRL older than the signing time"
            return Status(GOOD, source, None, detail)
        if not ocsp_urls(cert) and not crl_urls(cert) and not self.crl_files:
            failures.append("the certificate names no OCSP responder or CRL distribution point and no CRL file is "
                            "configured")
        elif not failures:
            failures.append("no CRL for this issuer" + ("" if self.network else " (network checks are off)"))
        return Status(UNKNOWN, None, None, "; ".join(failures))

    # -- CRL ----------------------------------------------------------------------------
    def _crl_file(self, path: Path) -> x509.CertificateRevocationList | None:
        key = f"file:{path}"
        if key not in self._crls:
            self._crls[key] = _parse_crl(path.read_bytes())
        return self._crls[key]

    def _crl_url(self, url: str, failures: list[str]) -> x509.CertificateRevocationList | None:
        if url not in self._crls:
            try:
                data = self._fetch(url)
                self._crls[url] = _parse_crl(data)
                if self._crls[url] is None:
                    failures.append(f"CRL {url}: not a CRL")
            except OSError as exc:
                failures.append(f"CRL {url}: {exc}")
                self._crls[url] = None
        return self._crls[url]

    # -- OCSP ---------------------------------------------------------------------------
    def _ocsp(self, cert: x509.Certificate, issuer: x509.Certificate, url: str, failures: list[str]) -> Status | None:
        req = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
        try:
            data = self._fetch(url, req.public_bytes(serialization.Encoding.DER), "application/ocsp-request")
            resp = ocsp.load_der_ocsp_response(data)
        except (OSError, ValueError) as exc:
            failures.append(f"OCSP {url}: {exc}")
            return None
        if resp.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            failures.append(f"OCSP {url}: responder answered {resp.response_status.name}")
            return None
        if not self._ocsp_signed(resp, issuer):
            failures.append(f"OCSP {url}: response not signed by the issuer or its delegated OCSP responder")
            return None
        for single in resp.responses:
            if single.serial_number != cert.serial_number:
                continue
            if single.next_update_utc is not None and single.next_update_utc < datetime.now(UTC):
                failures.append(f"OCSP {url}: stale response (nextUpdate {single.next_update_utc.isoformat()})")
                return None
            if single.certificate_status == ocsp.OCSPCertStatus.GOOD:
                return Status(GOOD, f"OCSP {url}")
            if single.certificate_status == ocsp.OCSPCertStatus.REVOKED:
                when = single.revocation_time_utc
                return Status(REVOKED, f"OCSP {url}", when,
                              f"revoked on {when.isoformat()}" if when else "revoked")
            failures.append(f"OCSP {url}: responder does not know the certificate")
            return None
        failures.append(f"OCSP {url}: no answer for this certificate")
        return None

    @staticmethod
    def _ocsp_signed(resp: ocsp.OCSPResponse, issuer: x509.Certificate) -> bool:
        candidates = [issuer, *resp.certificates]
        for signer in candidates:
            if signer is not issuer:
                # RFC 6960 §4.2.2.2: a delegated responder is issued by the CA and has id-kp-OCSPSigning.
                eku = _ext(signer, ExtensionOID.EXTENDED_KEY_USAGE)
                if not _signed_by(signer, issuer) or not isinstance(eku, x509.ExtendedKeyUsage) \
                        or ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
                    continue
            try:
                _verify_with(signer, resp.signature, resp.tbs_response_bytes, resp.signature_hash_algorithm)
                return True
            except (InvalidSignature, TypeError, ValueError):
                continue
        return False

    def _fetch(self, url: str, body: bytes | None = None, content_type: str | None = None) -> bytes:
        if not url.startswith(("http://", "https://")):
            raise OSError(f"unsupported URL scheme in {url}")
        headers = {"Content-Type": content_type} if content_type else {}
        request = urllib.request.Request(url, data=body, headers=headers, method="POST" if body else "GET")
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            return bytes(response.read(MAX_RESPONSE_BYTES))


def _parse_crl(data: bytes) -> x509.CertificateRevocationList | None:
    try:
        if b"-----BEGIN X509 CRL-----" in data:
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError:
        return None


def _verify_with(signer: x509.Certificate, signature: bytes, data: bytes,
                 algorithm: hashes.HashAlgorithm | None) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    key = signer.public_key()
    if algorithm is None:
        raise ValueError("no hash algorithm")
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(signature, data, padding.PKCS1v15(), algorithm)
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, data, ec.ECDSA(algorithm))
    else:
        raise TypeError("unsupported OCSP signer key")
