"""FHIR document canonicalization for JSON signatures (R4 signatures page, RFC 8785).

The signed content of a document Bundle is the Bundle without `Bundle.id`, `Bundle.meta`
and `Bundle.signature` (the elements a server may change when it stores the document, and
the signature itself), serialized with the JSON Canonicalization Scheme (RFC 8785): keys
sorted by UTF-16 code units, no insignificant whitespace, ECMAScript number form.
Key order and whitespace in the received JSON therefore never change the signed bytes.
"""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785

# Elements left out of the signed content of a document Bundle.
EXCLUDED_ELEMENTS = ("id", "meta", "signature")
# The canonicalization URI the R4 signatures page defines for documents.
DOCUMENT_CANONICALIZATION = "http://hl7.org/fhir/canonicalization/json#document"


class CanonicalizationError(ValueError):
    """The JSON cannot be canonicalized (e.g. a number outside the IEEE-754 range)."""


def signed_content(bundle: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in bundle.items() if k not in EXCLUDED_ELEMENTS}


def canonical_document(bundle: dict[str, Any]) -> bytes:
    """The bytes every signature of a document Bundle covers."""
    try:
        return bytes(rfc8785.dumps(signed_content(bundle)))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise CanonicalizationError(str(exc)) from exc


def content_digest(canonical: bytes) -> bytes:
    return hashlib.sha256(canonical).digest()
