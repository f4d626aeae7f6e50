"""The orjson-based RFC 8785 canonicalizer gives exactly the bytes of the reference `rfc8785`
package (pure Python) — on generated JSON, generated FHIR-shaped documents and the edge cases
of §3.2.2 (numbers, escapes, UTF-16 key order) — and refuses what it refuses."""

from __future__ import annotations

import copy
import math
import struct
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_server.signatures.canonical import CanonicalizationError, canonical_document, canonicalize
from tests.signature_minutes import document_bundle

SAFE = 2**53 - 1
# Keys that exercise the UTF-16 ordering: ASCII, Vietnamese, U+E000–U+FFFF and supplementary characters.
KEY_ALPHABET = st.sampled_from(["a", "b", "Z", "_", "é", "ệ", "đ", "\ue000", "\uffff", "\ufb01", "😀", "𝄞",
                                "\U00010000", "\x00", "\x7f", "\u2028"])
keys = st.one_of(st.text(KEY_ALPHABET, max_size=4), st.text(max_size=6))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-SAFE, SAFE),
                    st.floats(allow_nan=False, allow_infinity=False), st.text())
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(keys, inner, max_size=6)), max_leaves=40)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_generated_json_matches_the_reference_implementation(value: Any) -> None:
    assert canonicalize(value) == rfc8785.dumps(value)


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_float_is_written_in_ecmascript_form(f: float) -> None:
    assert canonicalize([f, {"v": f}]) == rfc8785.dumps([f, {"v": f}])


def test_random_bit_patterns_of_doubles() -> None:
    import random

    rng = random.Random(8785)
    for _ in range(20000):
        f = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        if math.isfinite(f):
            assert canonicalize(f) == rfc8785.dumps(f), repr(f)


@st.composite
def fhir_documents(draw: Any) -> dict[str, Any]:
    doc = copy.deepcopy(document_bundle())
    comp = doc["entry"][0]["resource"]
    comp["title"] = draw(st.text(max_size=30))
    comp["section"][0]["text"]["div"] = f'<div xmlns="http://www.w3.org/1999/xhtml">{draw(st.text())}</div>'
    doc["entry"].append({"fullUrl": "urn:uuid:7d0c0c8e-0000-4000-8000-000000000001", "resource": {
        "resourceType": "Observation", "status": "final", "code": {"text": draw(st.text(max_size=10))},
        "valueQuantity": {"value": draw(st.floats(allow_nan=False, allow_infinity=False)), "unit": "mmHg"},
        "extension": [{"url": "http://example.org/x", draw(keys): draw(json_values)}]}})
    return doc


@settings(max_examples=150, deadline=None)
@given(fhir_documents())
def test_generated_fhir_documents_match_the_reference_implementation(doc: dict[str, Any]) -> None:
    content = {k: v for k, v in doc.items() if k not in ("id", "meta", "signature")}
    assert canonical_document(doc) == rfc8785.dumps(content)


def test_edge_cases_of_rfc8785() -> None:
    cases: list[Any] = [
        {"numbers": [333333333.33333329, 1e30, 4.50, 2e-3, 0.000000000000000000000000001, -0.0, 1e21, 1e-7]},
        {"string": "€$\u000f\nA'B\"\\\\\"/", "literals": [None, True, False]},
        {"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
         "1": "One", "\U0001f600": "Emoji: Grinning Face", "\u0080": "Control", "\u00f6": "Latin Small Letter O"},
        {"nested": {"z": [], "a": {}, "m": [{"b": 1, "a": 2}]}},
        "", [], {}, SAFE, -SAFE,
    ]
    for value in cases:
        assert canonicalize(value) == rfc8785.dumps(value), value


def test_rfc8785_appendix_b_sort_example() -> None:
    # RFC 8785 §3.2.3: the example object's members in UTF-16 order.
    value = {"\u20ac": 1, "\r": 2, "\ufb33": 3, "1": 4, "\U0001f600": 5, "\u0080": 6, "\u00f6": 7}
    order = [k for k, _ in sorted(value.items(), key=lambda kv: kv[0].encode("utf-16be"))]
    assert order == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]
    assert canonicalize(value).decode() == "{" + ",".join(f'"{k}":{value[k]}' for k in order).replace(
        "\r", "\\r") + "}"


@pytest.mark.parametrize("value", [2**53, -(2**53), float("nan"), float("inf"), "\ud800", {1: "x"}, {"k": {1, 2}}])
def test_what_cannot_be_canonicalized_is_refused_like_the_reference(value: Any) -> None:
    with pytest.raises(CanonicalizationError):
        canonicalize(value)
    with pytest.raises((rfc8785.CanonicalizationError, TypeError, ValueError, AttributeError)):
        rfc8785.dumps(value)


def test_key_order_and_whitespace_of_the_input_do_not_matter() -> None:
    doc = document_bundle()
    reordered = {k: doc[k] for k in reversed(list(doc))}
    reordered["entry"] = [{k: e[k] for k in reversed(list(e))} for e in doc["entry"]]
    assert canonical_document(reordered) == canonical_document(doc)
