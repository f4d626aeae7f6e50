"""The one verifier of signed FHIR documents, used by the server and the offline CLI.

Input: a document Bundle (its `Bundle.signature`), optionally with the Provenance
resources that carry co-signers' signatures over the same document — either passed
separately or in a `searchset`/`collection` Bundle that holds the document Bundle and
its Provenances (what `GET Bundle?_id=X&_revinclude=Provenance:target` returns).

Each signature is checked in this order, and every failing check is reported:
format → algorithm and key strength → signature over the canonical content → chain to
the trust anchors at the signing time (validity, CA rules) → certificate status (OCSP,
CRL). A signature is `valid` only when all pass; `indeterminate` when everything passes
but the certificate status cannot be determined; `invalid` otherwise.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509

from fhir_server.signatures.canonical import CanonicalizationError, canonical_document, content_digest
from fhir_server.signatures.jws import (
    CONTENT_DIGEST,
    SIGNING_TIME,
    JwsError,
    b64url,
    key_description,
    parse_detached,
    verify_detached,
)
from fhir_server.signatures.revocation import GOOD, REVOKED, RevocationChecker
from fhir_server.signatures.x509_trust import TrustError, load_anchors, validate_chain

VALID, INVALID, INDETERMINATE = "valid", "invalid", "indeterminate"
CLOCK_SKEW_SECONDS = 1

# Reason code → (English, Vietnamese); the codes appear in the Parameters and the CLI report.
REASONS: dict[str, tuple[str, str]] = {
    "valid": ("signature valid", "chữ ký hợp lệ"),
    "content-changed": ("the document content changed after signing", "nội dung tài liệu đã bị thay đổi sau khi ký"),
    "signature-mismatch": ("the signature does not match the document and certificate",
                           "chữ ký không khớp với tài liệu và chứng thư số"),
    "certificate-expired": ("the certificate had expired at the signing time",
                            "chứng thư số đã hết hạn tại thời điểm ký"),
    "certificate-not-yet-valid": ("the certificate was not yet valid at the signing time",
                                  "chứng thư số chưa có hiệu lực tại thời điểm ký"),
    "certificate-revoked": ("the certificate has been revoked", "chứng thư số đã bị thu hồi"),
    "revocation-unknown": ("the certificate status (OCSP/CRL) could not be determined",
                           "không xác định được trạng thái chứng thư số (OCSP/CRL)"),
    "untrusted-chain": ("the certificate does not chain to a trusted CA",
                        "chứng thư số không thuộc tổ chức chứng thực được tin cậy"),
    "key-usage": ("the certificate may not be used for signing", "chứng thư số không được phép dùng để ký"),
    "algorithm-too-weak": ("the algorithm or key is too weak or not allowed",
                           "thuật toán hoặc khóa quá yếu hoặc không được phép"),
    "signing-time-mismatch": ("Signature.when differs from the signing time in the JWS",
                              "Signature.when khác thời điểm ký trong JWS"),
    "unsupported-format": ("the signature is not a JWS (sigFormat application/jose)",
                           "chữ ký không phải JWS (sigFormat application/jose)"),
    "malformed": ("the signature is malformed", "chữ ký không đúng định dạng"),
    "no-signature": ("the document carries no signature", "tài liệu không có chữ ký"),
}
_INDETERMINATE_REASONS = {"revocation-unknown"}


class NotADocument(ValueError):
    """The input is not a FHIR document Bundle (or a package holding one)."""


@dataclass(frozen=True)
class Reason:
    code: str
    detail: str = ""

    def message(self, lang: str = "en") -> str:
        en, vi = REASONS.get(self.code, (self.code, self.code))
        text = vi if lang == "vi" else en
        return f"{text}: {self.detail}" if self.detail else text


@dataclass
class SignatureVerdict:
    location: str  # FHIRPath of the Signature element, e.g. "Bundle.signature"
    reasons: list[Reason] = field(default_factory=list)
    types: list[dict[str, Any]] = field(default_factory=list)
    who: dict[str, Any] | None = None
    algorithm: str | None = None
    key: str | None = None
    signing_time: str | None = None
    signer: str | None = None  # certificate subject CN (or full subject)
    subject: str | None = None
    issuer: str | None = None
    serial: str | None = None
    not_before: str | None = None
    not_after: str | None = None
    chain: list[str] = field(default_factory=list)
    revocation: str | None = None  # good | revoked | unknown | None (not checked)
    revocation_source: str | None = None
    also_in: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        codes = {r.code for r in self.reasons}
        if codes - _INDETERMINATE_REASONS:
            return INVALID
        return INDETERMINATE if codes else VALID

    @property
    def valid(self) -> bool:
        return self.status == VALID

    def fail(self, code: str, detail: str = "") -> None:
        self.reasons.append(Reason(code, detail))


@dataclass
class DocumentReport:
    identifier: dict[str, Any] | None
    title: str | None
    signatures: list[SignatureVerdict]

    @property
    def valid(self) -> bool:
        return bool(self.signatures) and all(s.valid for s in self.signatures)


def is_document(bundle: Any) -> bool:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle" or bundle.get("type") != "document":
        return False
    entries = bundle.get("entry") or []
    first = entries[0].get("resource") if entries and isinstance(entries[0], dict) else None
    return isinstance(first, dict) and first.get("resourceType") == "Composition"


def split_package(bundle: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(document Bundle, Provenances) from a document Bundle or a searchset/collection holding one."""
    if is_document(bundle):
        return bundle, []
    if isinstance(bundle, dict) and bundle.get("resourceType") == "Bundle" \
            and bundle.get("type") in ("searchset", "collection"):
        resources: list[Any] = [e.get("resource") for e in bundle.get("entry") or [] if isinstance(e, dict)]
        documents = [r for r in resources if is_document(r)]
        if len(documents) == 1:
            provenances = [r for r in resources if isinstance(r, dict) and r.get("resourceType") == "Provenance"]
            document: dict[str, Any] = documents[0]
            return document, provenances
    raise NotADocument("the input is not a FHIR document Bundle (type document, a Composition first)")


def targets_document(provenance: dict[str, Any], document: dict[str, Any], reference: str | None) -> bool:
    for target in provenance.get("target") or []:
        if not isinstance(target, dict):
            continue
        ref = target.get("reference") or ""
        if reference and (ref == reference or ref.endswith("/" + reference)):
            return True
        if document.get("id") and (ref == f"Bundle/{document['id']}" or ref.endswith(f"/Bundle/{document['id']}")):
            return True
        if document.get("identifier") and target.get("identifier") == document.get("identifier"):
            return True
    return False


def _parse_instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def _common_name(name: x509.Name) -> str:
    cns = name.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else name.rfc4514_string()


class Verifier:
    def __init__(self, anchors: list[x509.Certificate], revocation: RevocationChecker | None = None) -> None:
        self.anchors = anchors
        self.revocation = revocation or RevocationChecker()

    @classmethod
    def from_paths(cls, trust: list[str | Path], crl_files: list[str | Path] | None = None,
                   network: bool = True) -> Verifier:
        checker = RevocationChecker(crl_files=[Path(p) for p in crl_files or []], network=network)
        return cls(load_anchors(trust), checker)

    def fresh(self) -> Verifier:
        """A verifier with an empty CRL cache (one per verification run)."""
        checker = RevocationChecker(crl_files=self.revocation.crl_files, network=self.revocation.network,
                                    timeout=self.revocation.timeout)
        return Verifier(self.anchors, checker)

    # -- documents ----------------------------------------------------------------------
    def verify_package(self, bundle: Any, provenances: list[dict[str, Any]] | None = None,
                       reference: str | None = None) -> DocumentReport:
        document, in_package = split_package(bundle)
        provs = [p for p in [*in_package, *(provenances or [])] if targets_document(p, document, reference)]
        try:
            canonical = canonical_document(document)
        except CanonicalizationError as exc:
            raise NotADocument(f"the document cannot be canonicalized (RFC 8785): {exc}") from exc
        comp = document["entry"][0]["resource"]
        verdicts: list[SignatureVerdict] = []
        seen: dict[str, SignatureVerdict] = {}
        candidates: list[tuple[str, Any]] = []
        if "signature" in document:
            candidates.append(("Bundle.signature", document["signature"]))
        for prov in provs:
            where = f"Provenance/{prov['id']}" if prov.get("id") else "Provenance"
            for i, sig in enumerate(prov.get("signature") or []):
                candidates.append((f"{where}.signature[{i}]", sig))
        for location, sig in candidates:
            key = sig.get("data") if isinstance(sig, dict) else None
            if isinstance(key, str) and key in seen:
                seen[key].also_in.append(location)
                continue
            verdict = self.verify_signature(sig, canonical, location)
            verdicts.append(verdict)
            if isinstance(key, str):
                seen[key] = verdict
        if not verdicts:
            none = SignatureVerdict(location="Bundle.signature")
            none.fail("no-signature")
            verdicts.append(none)
        return DocumentReport(identifier=document.get("identifier"), title=comp.get("title"), signatures=verdicts)

    # -- one signature ------------------------------------------------------------------
    def verify_signature(self, sig: Any, canonical: bytes, location: str) -> SignatureVerdict:
        v = SignatureVerdict(location=location)
        if not isinstance(sig, dict):
            v.fail("malformed", "not a Signature element")
            return v
        v.types = [t for t in sig.get("type") or [] if isinstance(t, dict)]
        v.who = sig.get("who") if isinstance(sig.get("who"), dict) else None
        if sig.get("sigFormat") != "application/jose":
            v.fail("unsupported-format", f"sigFormat is {sig.get('sigFormat')!r}")
            return v
        try:
            token = base64.b64decode(str(sig.get("data") or ""), validate=True).decode("ascii")
            parsed = parse_detached(token)
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            reason = exc.reason if isinstance(exc, JwsError) else "malformed"
            v.fail(reason, exc.message if isinstance(exc, JwsError) else "Signature.data is not base64 of a JWS")
            return v
        header = parsed.header
        v.algorithm = str(header.get("alg"))
        chain = self._x5c(header, v)
        if chain is None:
            return v
        leaf = chain[0]
        self._describe(leaf, chain, v)
        at = _parse_instant(header.get(SIGNING_TIME))
        when = _parse_instant(sig.get("when"))
        if at is None:
            if when is None:
                v.fail("malformed", "no signing time (JWS sigT or Signature.when)")
                return v
            at = when
        elif when is not None and abs((when - at).total_seconds()) > CLOCK_SKEW_SECONDS:
            v.fail("signing-time-mismatch", f"when {sig.get('when')} vs sigT {header.get(SIGNING_TIME)}")
        v.signing_time = at.astimezone(UTC).isoformat().replace("+00:00", "Z")
        try:
            verify_detached(parsed, canonical, leaf.public_key())  # type: ignore[arg-type]
        except JwsError as exc:
            if exc.reason == "signature-mismatch" and header.get(CONTENT_DIGEST) not in (
                    None, b64url(content_digest(canonical))):
                v.fail("content-changed", "the canonical content's SHA-256 differs from the one signed")
            else:
                v.fail(exc.reason, exc.message)
        try:
            path = validate_chain(leaf, chain[1:], self.anchors, at)
        except TrustError as exc:
            v.fail(exc.reason, exc.message)
            return v
        v.chain = [c.subject.rfc4514_string() for c in path.certificates]
        if v.reasons:
            return v  # already invalid: no need to ask OCSP/CRL
        status = self.revocation.check(leaf, path.issuer, at)
        v.revocation, v.revocation_source = status.state, status.source
        if status.state == REVOKED:
            v.fail("certificate-revoked", f"{status.detail} ({status.source})")
        elif status.state != GOOD:
            v.fail("revocation-unknown", status.detail)
        return v

    @staticmethod
    def _x5c(header: dict[str, Any], v: SignatureVerdict) -> list[x509.Certificate] | None:
        x5c = header.get("x5c")
        if not isinstance(x5c, list) or not x5c or not all(isinstance(c, str) for c in x5c):
            v.fail("malformed", "the JWS header has no x5c certificate chain")
            return None
        try:
            return [x509.load_der_x509_certificate(base64.b64decode(c, validate=True)) for c in x5c]
        except (binascii.Error, ValueError) as exc:
            v.fail("malformed", f"x5c holds an unreadable certificate: {exc}")
            return None

    @staticmethod
    def _describe(leaf: x509.Certificate, chain: list[x509.Certificate], v: SignatureVerdict) -> None:
        v.signer = _common_name(leaf.subject)
        v.subject = leaf.subject.rfc4514_string()
        v.issuer = leaf.issuer.rfc4514_string()
        v.serial = format(leaf.serial_number, "X")
        v.not_before = leaf.not_valid_before_utc.isoformat().replace("+00:00", "Z")
        v.not_after = leaf.not_valid_after_utc.isoformat().replace("+00:00", "Z")
        try:
            v.key = key_description(leaf.public_key())  # type: ignore[arg-type]
        except (AttributeError, TypeError):
            v.key = type(leaf.public_key()).__name__


# -- FHIR Parameters (the $verify-signature result) ---------------------------------------
def _part(name: str, key: str, value: Any) -> dict[str, Any]:
    return {"name": name, key: value}


def to_parameters(report: DocumentReport, lang: str = "vi") -> dict[str, Any]:
    params: list[dict[str, Any]] = [_part("valid", "valueBoolean", report.valid)]
    if report.identifier:
        params.append(_part("document", "valueIdentifier", report.identifier))
    if report.title:
        params.append(_part("title", "valueString", report.title))
    for s in report.signatures:
        parts: list[dict[str, Any]] = [
            _part("valid", "valueBoolean", s.valid),
            _part("status", "valueCode", s.status),
            _part("location", "valueString", s.location),
        ]
        for r in s.reasons or [Reason("valid")]:
            parts.append({"name": "reason", "part": [_part("code", "valueCode", r.code),
                                                      _part("message", "valueString", r.message(lang))]})
        parts += [_part("type", "valueCoding", t) for t in s.types]
        if s.who:
            parts.append(_part("who", "valueReference", s.who))
        strings = [("signer", s.signer), ("algorithm", s.algorithm), ("key", s.key),
                   ("certificateSubject", s.subject), ("certificateIssuer", s.issuer),
                   ("certificateSerial", s.serial), ("revocation", s.revocation),
                   ("revocationSource", s.revocation_source)]
        parts += [_part(n, "valueString", val) for n, val in strings if val]
        times = [("signingTime", s.signing_time), ("certificateNotBefore", s.not_before),
                 ("certificateNotAfter", s.not_after)]
        parts += [_part(n, "valueInstant", val) for n, val in times if val]
        parts += [_part("chain", "valueString", c) for c in s.chain]
        parts += [_part("alsoIn", "valueString", loc) for loc in s.also_in]
        params.append({"name": "signature", "part": parts})
    return {"resourceType": "Parameters", "parameter": params}


def report_to_dict(report: DocumentReport, lang: str = "en") -> dict[str, Any]:
    """A plain JSON summary (CLI --json, tests comparing server and CLI)."""
    return {
        "valid": report.valid,
        "signatures": [{"location": s.location, "status": s.status, "valid": s.valid,
                        "reasons": [r.code for r in s.reasons], "signer": s.signer, "serial": s.serial,
                        "issuer": s.issuer, "signingTime": s.signing_time} for s in report.signatures],
    }
