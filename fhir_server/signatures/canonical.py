"""FHIR document canonicalization for JSON signatures (R4 signatures page, RFC 8785).

The signed content of a document Bundle is the Bundle without `Bundle.id`, `Bundle.meta`
and `Bundle.signature` (the elements a server may change when it stores the document, and
the signature itself), serialized with the JSON Canonicalization Scheme (RFC 8785): keys
sorted by UTF-16 code units, no insignificant whitespace, ECMAScript number form.
Key order and whitespace in the received JSON therefore never change the signed bytes.

`canonicalize` is RFC 8785 on top of orjson: one pass in Python checks the value (string
keys, integers within ±(2**53 − 1), finite floats, strings without lone surrogates) and
turns every float into its ECMAScript `Number::toString` form (an `orjson.Fragment`);
orjson then writes the rest, which already is RFC 8785's form: no whitespace, UTF-8, the
escapes of §3.2.2.2 (`\\b \\t \\n \\f \\r \\" \\\\`, other controls as lower-case `\\u00hh`) and
keys sorted by code point. Code-point order equals UTF-16 order unless an object has a key
with a character at or above U+E000 (a supplementary character sorts after U+E000–U+FFFF by
code point but before them by UTF-16 code unit): such objects are re-ordered by UTF-16 code
units in the same pass and written without orjson's sort. It is checked against the
pure-Python `rfc8785` package on generated documents (tests/test_signatures_canonical.py)
and is 8–25× faster on a minutes document (bench/README.md, #6).
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import orjson

# Elements left out of the signed content of a document Bundle.
EXCLUDED_ELEMENTS = ("id", "meta", "signature")
# The canonicalization URI the R4 signatures page defines for documents.
DOCUMENT_CANONICALIZATION = "http://hl7.org/fhir/canonicalization/json#document"
_INT_LIMIT = 2**53 - 1


class CanonicalizationError(ValueError):
    """The JSON cannot be canonicalized (e.g. a number outside the IEEE-754 range)."""


def ecmascript_number(f: float) -> str:
    """ECMA-262 Number::toString (RFC 8785 §3.2.2.3) of a finite float."""
    if math.isnan(f) or math.isinf(f):
        raise CanonicalizationError(f"{f} is not representable in JSON (RFC 8785)")
    if f == 0:
        return "0"
    if f < 0:
        return "-" + ecmascript_number(-f)
    # repr gives the shortest digits that round-trip (ECMA-262's s and k); value = int(digits) × 10**exp10.
    mantissa, _, exp = repr(f).partition("e")
    whole, _, frac = mantissa.partition(".")
    digits, exp10 = (whole + frac).lstrip("0"), int(exp or 0) - len(frac)
    stripped = digits.rstrip("0")
    exp10 += len(digits) - len(stripped)
    digits = stripped
    k = len(digits)
    n = k + exp10  # ECMA-262: value = s × 10**(n − k)
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * (-n) + digits
    e = n - 1
    sign = "+" if e >= 0 else "-"
    return (digits[0] + ("." + digits[1:] if k > 1 else "")) + "e" + sign + str(abs(e))


def _utf16(key: str) -> bytes:
    return key.encode("utf-16be", "surrogatepass")


class _Prepared:
    __slots__ = ("resort",)

    def __init__(self) -> None:
        self.resort = False


def _prepare(value: Any, state: _Prepared) -> Any:
    """The value with floats as ECMAScript-number fragments (the same object when nothing changes)."""
    t = type(value)
    if t is str or t is bool or value is None:
        return value
    if t is dict:
        changed: dict[str, Any] | None = None
        utf16 = False
        for key, item in value.items():
            if type(key) is not str:
                raise CanonicalizationError(f"object key {key!r} is not a string")
            if not key.isascii() and max(key) >= "\ue000":
                utf16 = True
            new = _prepare(item, state)
            if new is not item:
                if changed is None:
                    changed = dict(value)
                changed[key] = new
        out = value if changed is None else changed
        if utf16:
            state.resort = True
            return _Utf16Object(sorted(out.items(), key=lambda kv: _utf16(kv[0])))
        return out
    if t is list or t is tuple:
        items: list[Any] | None = None
        for i, item in enumerate(value):
            new = _prepare(item, state)
            if new is not item:
                if items is None:
                    items = list(value)
                items[i] = new
        return value if items is None else items
    if t is int:
        if -_INT_LIMIT <= value <= _INT_LIMIT:
            return value
        raise CanonicalizationError(f"{value} exceeds the safe integer range of JSON numbers (RFC 8785)")
    if t is float:
        return orjson.Fragment(ecmascript_number(value))
    # Subclasses (a str or dict subclass, IntEnum...) take the general path.
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return _prepare(int(value), state)
    if isinstance(value, float):
        return _prepare(float(value), state)
    if isinstance(value, dict):
        return _prepare(dict(value), state)
    if isinstance(value, list | tuple):
        return _prepare(list(value), state)
    raise CanonicalizationError(f"{type(value).__name__} is not a JSON value")


class _Utf16Object:
    """An object whose members are already in UTF-16 key order (serialized by `_write`)."""

    __slots__ = ("items",)

    def __init__(self, items: list[tuple[str, Any]]) -> None:
        self.items = items


def _write(value: Any) -> bytes:
    """Serialization for the rare documents with a UTF-16-ordered object (no orjson key sort)."""
    if isinstance(value, _Utf16Object):
        return b"{" + b",".join(orjson.dumps(k) + b":" + _write(v) for k, v in value.items) + b"}"
    if isinstance(value, dict):
        return b"{" + b",".join(orjson.dumps(k) + b":" + _write(v)
                                for k, v in sorted(value.items(), key=lambda kv: _utf16(kv[0]))) + b"}"
    if isinstance(value, list):
        return b"[" + b",".join(_write(v) for v in value) + b"]"
    return orjson.dumps(value)


def canonicalize(value: Any) -> bytes:
    """RFC 8785 (JCS) bytes of a JSON value."""
    state = _Prepared()
    prepared = _prepare(value, state)
    try:
        if state.resort:
            return _write(prepared)
        return orjson.dumps(prepared, option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONEncodeError, TypeError) as exc:  # e.g. a lone surrogate in a string
        raise CanonicalizationError(str(exc)) from exc


def signed_content(bundle: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in bundle.items() if k not in EXCLUDED_ELEMENTS}


def canonical_document(bundle: dict[str, Any]) -> bytes:
    """The bytes every signature of a document Bundle covers."""
    return canonicalize(signed_content(bundle))


def content_digest(canonical: bytes) -> bytes:
    return hashlib.sha256(canonical).digest()
