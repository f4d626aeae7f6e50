"""JSON Web Signature (RFC 7515) with a detached payload (Appendix F) for FHIR signatures.

Compact serialization `BASE64URL(protected) . "" . BASE64URL(signature)`: the payload part is
left empty and the verifier supplies the payload (the canonical document) itself. The
signing input is still `BASE64URL(protected) "." BASE64URL(payload)` (RFC 7515 §5.1).

Protected header: `alg`, `x5c` (the signer's chain, leaf first, RFC 7515 §4.1.6), `sigT`
(claimed signing time, as ETSI JAdES TS 119 182-1 names it) and `c14n#S256` (SHA-256 of the
canonical content, base64url; it only lets a failed check say "content changed" rather than
"signature mismatch" — the signature itself covers the content).

Signing assembles the token here so that any `Signer` (local key, remote service, HSM) only
has to produce raw signature bytes. Verification uses joserfc (its compact deserializer
takes the detached payload) with an explicit algorithm allow-list; the key-strength rules
of Circular 15/2025/TT-BKHCN are checked here first, because a library's defaults are not
the regulation's.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc import jws as jose_jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey
from joserfc.registry import HeaderParameter, is_str

# Algorithms the server and its key store sign with (Circular 15/2025: RSASSA-PSS, ECDSA).
SIGNING_ALGORITHMS = ("PS256", "ES256")
# Accepted on verification: the above, their longer-hash forms, and RS256 (PKCS#1 v1.5,
# which older USB tokens produce).
VERIFY_ALGORITHMS = ("PS256", "PS384", "PS512", "ES256", "ES384", "RS256")
MIN_RSA_BITS = 2048
_EC_CURVES = {"ES256": "secp256r1", "ES384": "secp384r1"}
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}

SIGNING_TIME = "sigT"
CONTENT_DIGEST = "c14n#S256"

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class JwsError(ValueError):
    """A JWS that cannot be used; `reason` is one of the verification reason codes."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class _Registry(jose_jws.JWSRegistry):
    # x5c chains are kilobytes; documents can be large.
    max_header_length = 64 * 1024
    max_payload_length = 64 * 1024 * 1024
    max_signature_length = 2048


_HEADERS = {
    SIGNING_TIME: HeaderParameter("Claimed signing time (JAdES)", is_str),
    CONTENT_DIGEST: HeaderParameter("SHA-256 of the canonical content", is_str),
}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_description(key: PublicKey) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA-{key.key_size}"
    return f"EC {key.curve.name}"


def check_algorithm(alg: Any, key: PublicKey, *, signing: bool = False) -> None:
    """Raise JwsError('algorithm-too-weak') unless `alg` with this key is allowed."""
    allowed = SIGNING_ALGORITHMS if signing else VERIFY_ALGORITHMS
    if not isinstance(alg, str) or alg not in allowed:
        raise JwsError("algorithm-too-weak", f"algorithm {alg!r} is not allowed (allowed: {', '.join(allowed)})")
    if alg[:2] in ("PS", "RS"):
        if not isinstance(key, rsa.RSAPublicKey):
            raise JwsError("algorithm-too-weak", f"{alg} needs an RSA key, the certificate has {key_description(key)}")
        if key.key_size < MIN_RSA_BITS:
            raise JwsError("algorithm-too-weak", f"RSA key of {key.key_size} bits is below {MIN_RSA_BITS} bits")
    else:
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != _EC_CURVES[alg]:
            raise JwsError("algorithm-too-weak", f"{alg} needs an EC {_EC_CURVES[alg]} key, "
                                                 f"the certificate has {key_description(key)}")


def raw_sign(private_key: PrivateKey, alg: str, data: bytes) -> bytes:
    """The JWS signature value (RFC 7518 §3) over `data` with a local private key."""
    check_algorithm(alg, private_key.public_key(), signing=True)
    digest = _HASHES[alg[2:]]()
    if isinstance(private_key, rsa.RSAPrivateKey):
        # RFC 7518 §3.5: MGF1 with the same hash, salt as long as the hash output.
        pss = padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
        return private_key.sign(data, pss, digest)
    r, s = decode_dss_signature(private_key.sign(data, ec.ECDSA(digest)))
    size = (private_key.curve.key_size + 7) // 8
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def encode_header(header: dict[str, Any]) -> str:
    return b64url(json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def sign_detached(header: dict[str, Any], payload: bytes, sign: Callable[[bytes], bytes]) -> str:
    """Compact JWS with the payload part empty (RFC 7515 Appendix F)."""
    protected = encode_header(header)
    signature = sign(f"{protected}.{b64url(payload)}".encode("ascii"))
    return f"{protected}..{b64url(signature)}"


@dataclass(frozen=True)
class ParsedJws:
    header: dict[str, Any]
    token: str


def parse_detached(token: str) -> ParsedJws:
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise JwsError("malformed", "not a JWS compact serialization (three dot-separated parts)")
    if parts[1]:
        raise JwsError("malformed", "the JWS carries its payload; FHIR document signatures use a detached payload")
    try:
        header = json.loads(b64url_decode(parts[0]))
    except (ValueError, UnicodeDecodeError) as exc:
        raise JwsError("malformed", f"the JWS protected header is not base64url JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise JwsError("malformed", "the JWS protected header is not a JSON object")
    return ParsedJws(header=header, token=token.strip())


def verify_detached(parsed: ParsedJws, payload: bytes, key: PublicKey) -> None:
    """Raise JwsError('signature-mismatch') unless the signature verifies over `payload`."""
    alg = parsed.header.get("alg")
    check_algorithm(alg, key)
    jwk = RSAKey.import_key(key) if isinstance(key, rsa.RSAPublicKey) else ECKey.import_key(key)
    registry = _Registry(header_registry=_HEADERS, algorithms=[str(alg)])
    try:
        jose_jws.deserialize_compact(parsed.token, jwk, algorithms=[str(alg)], registry=registry, payload=payload)
    except JoseError as exc:
        raise JwsError("signature-mismatch", f"the signature does not verify: {exc}") from exc
