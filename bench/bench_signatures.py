"""Signature benchmark (issue #6): sign and verify throughput of a typical consultation-minutes
document with RSA-2048 (PS256) and P-256 (ES256), next to the raw `cryptography` sign/verify
rate of the same key over the same bytes (the floor).

- sign   = RFC 8785 canonicalization of the document + JWS header + signature + Signature element
- verify = canonicalization + JWS (joserfc) + X.509 path to the anchor + CRL status from a file
           (no network, so the figure does not depend on an OCSP responder's latency)
- floor  = `key.sign(canonical)` / `public_key.verify(sig, canonical)` with the same padding/curve
- verify (rfc8785) = the same verification with the pure-Python `rfc8785` package as canonicalizer
  (the implementation before the orjson-based one), measured in the same run
- canonicalization alone: ours (orjson-based RFC 8785) against the `rfc8785` package

Usage: .venv/bin/python bench/bench_signatures.py [--seconds 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import rfc8785  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa  # noqa: E402

import fhir_server.signatures.verify as verify_module  # noqa: E402
from fhir_server.signatures.canonical import canonical_document, signed_content  # noqa: E402
from fhir_server.signatures.fhir_signature import sign_document, signature_type  # noqa: E402
from fhir_server.signatures.revocation import RevocationChecker  # noqa: E402
from fhir_server.signatures.signer import LocalKeySigner  # noqa: E402
from fhir_server.signatures.verify import Verifier  # noqa: E402
from tests.signature_minutes import document_bundle  # noqa: E402
from tests.signature_pki import Pki  # noqa: E402


def rate(fn: Callable[[], object], seconds: float) -> float:
    fn()  # warm-up
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        fn()
        n += 1
    return n / elapsed


def floor_ops(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, data: bytes
              ) -> tuple[Callable[[], object], Callable[[], object]]:
    """Raw `cryptography` sign and verify over the same bytes with the same key and scheme."""
    if isinstance(key, rsa.RSAPrivateKey):
        rsa_key, pss = key, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        rsa_sig = rsa_key.sign(data, pss, hashes.SHA256())
        return (lambda: rsa_key.sign(data, pss, hashes.SHA256()),
                lambda: rsa_key.public_key().verify(rsa_sig, data, pss, hashes.SHA256()))
    ec_key = key
    ec_sig = ec_key.sign(data, ec.ECDSA(hashes.SHA256()))
    return (lambda: ec_key.sign(data, ec.ECDSA(hashes.SHA256())),
            lambda: ec_key.public_key().verify(ec_sig, data, ec.ECDSA(hashes.SHA256())))


def bench_key(label: str, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, pki: Pki, verifier: Verifier,
              seconds: float) -> None:
    doc = document_bundle()
    cert = pki.leaf(label, key, f"Bench {label}", ocsp_url=False, crl_url=False)
    signer = LocalKeySigner(label, key, [cert, pki.inter])
    who, types = {"reference": "Practitioner/prac-chair"}, [signature_type("author") or {}]
    signed = {**doc, "signature": sign_document(doc, signer, who, types)}
    assert verifier.fresh().verify_package(signed).valid
    floor_sign, floor_verify = floor_ops(key, canonical_document(doc))
    ours = {"sign": lambda: sign_document(doc, signer, who, types),
            "verify": lambda: verifier.fresh().verify_package(signed)}
    for op, floor in (("sign", floor_sign), ("verify", floor_verify)):
        r_ours, r_floor = rate(ours[op], seconds), rate(floor, seconds)
        print(f"{label:<10}{op:<8}{r_ours:>10.0f}{r_floor:>10.0f}{r_ours / r_floor:>12.2f}")
    verify_module.canonical_document = reference_canonical  # type: ignore[assignment]
    try:
        r_ref = rate(ours["verify"], seconds)
    finally:
        verify_module.canonical_document = canonical_document
    print(f"{label:<10}{'verify*':<8}{r_ref:>10.0f}{r_floor:>10.0f}{r_ref / r_floor:>12.2f}"
          "   (* with the rfc8785 package as canonicalizer)")


def reference_canonical(bundle: dict[str, object]) -> bytes:
    return bytes(rfc8785.dumps(signed_content(bundle)))  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    pki = Pki(base_url="http://127.0.0.1:9")  # no OCSP/CRL URLs are put in these certificates
    doc = document_bundle()
    print(f"document: {len(doc['entry'])} entries, canonical form {len(canonical_document(doc))} bytes")
    with tempfile.TemporaryDirectory() as tmp:
        crl = Path(tmp) / "ca.crl"
        crl.write_bytes(pki.crl())
        verifier = Verifier([pki.root], RevocationChecker(crl_files=[crl], network=False))
        c_ours = rate(lambda: canonical_document(doc), args.seconds)
        c_ref = rate(lambda: reference_canonical(doc), args.seconds)
        assert canonical_document(doc) == reference_canonical(doc)
        print(f"canonicalization/s: ours {c_ours:.0f}, rfc8785 package {c_ref:.0f}, ours/rfc8785 {c_ours / c_ref:.1f}")
        print(f"{'key':<10}{'op':<8}{'ours/s':>10}{'floor/s':>10}{'ours/floor':>12}")
        bench_key("RSA-2048", rsa.generate_private_key(public_exponent=65537, key_size=2048), pki, verifier,
                  args.seconds)
        bench_key("P-256", ec.generate_private_key(ec.SECP256R1()), pki, verifier, args.seconds)
    print("Other helpers share this machine: compare the ratios, not the absolute rates.")


if __name__ == "__main__":
    main()
