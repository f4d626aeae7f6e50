"""FHIR R4 `Signature` elements and the Provenance that records a signing.

R4 Signature: `type` 1..* (urn:iso-astm:E1762-95:2013), `when` instant, `who` Reference,
`targetFormat`, `sigFormat` (`application/jose`), `data` base64Binary — here the base64 of
the compact detached JWS. One `Bundle.signature` is allowed, so co-signers' signatures
travel in Provenance resources whose `target` is the document Bundle.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding

from fhir_server.signatures.canonical import canonical_document, content_digest
from fhir_server.signatures.jws import CONTENT_DIGEST, SIGNING_TIME, b64url, sign_detached
from fhir_server.signatures.signer import Signer

SIGNATURE_TYPE_SYSTEM = "urn:iso-astm:E1762-95:2013"
# Short names accepted by $sign → (code, display) of the ASTM E1762 signature types.
SIGNATURE_TYPES: dict[str, tuple[str, str]] = {
    "author": ("1.2.840.10065.1.12.1.1", "Author's Signature"),
    "coauthor": ("1.2.840.10065.1.12.1.2", "Coauthor's Signature"),
    "co-participant": ("1.2.840.10065.1.12.1.3", "Co-participant's Signature"),
    "verification": ("1.2.840.10065.1.12.1.5", "Verification Signature"),
    "validation": ("1.2.840.10065.1.12.1.6", "Validation Signature"),
    "witness": ("1.2.840.10065.1.12.1.8", "Signature Witness Signature"),
    "review": ("1.2.840.10065.1.12.1.13", "Review Signature"),
}
_BY_CODE = {code: (name, display) for name, (code, display) in SIGNATURE_TYPES.items()}
SIG_FORMAT = "application/jose"
TARGET_FORMAT = "application/fhir+json"
PROVENANCE_ACTIVITY = {"system": "http://terminology.hl7.org/CodeSystem/v3-DocumentCompletion", "code": "LA",
                       "display": "legally authenticated"}


def signature_type(value: str) -> dict[str, str] | None:
    """A Coding for a short name ("author") or an ASTM OID code."""
    if value in SIGNATURE_TYPES:
        code, display = SIGNATURE_TYPES[value]
    elif value in _BY_CODE:
        code, display = value, _BY_CODE[value][1]
    else:
        return None
    return {"system": SIGNATURE_TYPE_SYSTEM, "code": code, "display": display}


def instant(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sign_document(bundle: dict[str, Any], signer: Signer, who: dict[str, Any], types: list[dict[str, str]],
                  at: datetime | None = None) -> dict[str, Any]:
    """A Signature element over the canonical form of a document Bundle."""
    at = (at or datetime.now(UTC)).replace(microsecond=0)
    canonical = canonical_document(bundle)
    header = {
        "alg": signer.algorithm,
        "x5c": [base64.b64encode(c.public_bytes(Encoding.DER)).decode("ascii") for c in signer.chain],
        SIGNING_TIME: instant(at),
        CONTENT_DIGEST: b64url(content_digest(canonical)),
    }
    token = sign_detached(header, canonical, signer.sign)
    return {
        "type": types,
        "when": instant(at),
        "who": who,
        "targetFormat": TARGET_FORMAT,
        "sigFormat": SIG_FORMAT,
        "data": base64.b64encode(token.encode("ascii")).decode("ascii"),
    }


def provenance_for(bundle_ref: str, bundle: dict[str, Any], signature: dict[str, Any],
                   composition_ref: str | None = None) -> dict[str, Any]:
    """The Provenance recording one signing of the document Bundle."""
    target: dict[str, Any] = {"reference": bundle_ref}
    if bundle.get("identifier"):
        target["identifier"] = bundle["identifier"]
    prov: dict[str, Any] = {
        "resourceType": "Provenance",
        "target": [target],
        "recorded": signature["when"],
        "activity": {"coding": [PROVENANCE_ACTIVITY]},
        "agent": [{
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                                 "code": "attester", "display": "Attester"}]},
            "who": signature["who"],
        }],
        "signature": [signature],
    }
    if composition_ref:
        prov["entity"] = [{"role": "source", "what": {"reference": composition_ref}}]
    return prov

