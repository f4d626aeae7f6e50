"""Signers: who turns a JWS signing input into signature bytes.

`Signer` is the interface (a local key, a remote-signing service, an HSM or USB token
behind PKCS#11 all fit: they only return raw JWS signature bytes and the certificate
chain). `LocalKeySigner` holds a key loaded from a PKCS#12 file or PEM files; `KeyStore`
maps key ids to signers and their owning Practitioner.

Private keys stay inside the signer object: never serialized, logged or returned; the
repr shows only the key id and certificate subject.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key, pkcs12

from fhir_server.signatures.jws import PrivateKey, check_algorithm, raw_sign

ENV_KEYSTORE = "FHIR_SIGNING_KEYSTORE"
ENV_KEYSTORE_PASSWORD = "FHIR_SIGNING_KEYSTORE_PASSWORD"


class Signer(Protocol):
    key_id: str
    algorithm: str  # PS256 or ES256

    @property
    def chain(self) -> list[x509.Certificate]:
        """The signer's certificate first, then intermediates (not the root)."""

    def sign(self, signing_input: bytes) -> bytes:
        """Raw JWS signature value (RFC 7518 §3) over the signing input."""


def default_algorithm(key: PrivateKey) -> str:
    return "PS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"


class LocalKeySigner:
    """A signer over a private key held in this process (PKCS#12 or PEM key store)."""

    def __init__(self, key_id: str, private_key: PrivateKey, chain: list[x509.Certificate],
                 algorithm: str | None = None) -> None:
        if not isinstance(private_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise ValueError("only RSA and EC keys can sign")
        if not chain:
            raise ValueError("a signer needs its certificate")
        self.key_id = key_id
        self.algorithm = algorithm or default_algorithm(private_key)
        check_algorithm(self.algorithm, private_key.public_key(), signing=True)
        if chain[0].public_key() != private_key.public_key():
            raise ValueError(f"key {key_id}: the certificate does not belong to the private key")
        self.__key = private_key
        self._chain = list(chain)

    @property
    def chain(self) -> list[x509.Certificate]:
        return list(self._chain)

    def sign(self, signing_input: bytes) -> bytes:
        return raw_sign(self.__key, self.algorithm, signing_input)

    def __repr__(self) -> str:
        return f"LocalKeySigner({self.key_id!r}, {self.algorithm}, {self._chain[0].subject.rfc4514_string()!r})"

    @classmethod
    def from_pkcs12(cls, key_id: str, data: bytes, password: bytes | None) -> LocalKeySigner:
        key, cert, extra = pkcs12.load_key_and_certificates(data, password)
        if key is None or cert is None:
            raise ValueError(f"key {key_id}: the PKCS#12 file needs a private key and its certificate")
        # Drop self-signed roots: trust comes from the verifier's anchors, not from x5c.
        intermediates = [c for c in (extra or []) if c.subject != c.issuer]
        return cls(key_id, key, [cert, *intermediates])  # type: ignore[arg-type]

    @classmethod
    def from_pem(cls, key_id: str, key_pem: bytes, chain_pem: bytes, password: bytes | None) -> LocalKeySigner:
        key = load_pem_private_key(key_pem, password)
        chain = [c for c in x509.load_pem_x509_certificates(chain_pem) if c.subject != c.issuer]
        return cls(key_id, key, chain)  # type: ignore[arg-type]


@dataclass
class KeyEntry:
    signer: Signer
    owner: str | None = None  # "Practitioner/<id>" the key belongs to


@dataclass
class KeyStore:
    entries: dict[str, KeyEntry] = field(default_factory=dict)

    def add(self, signer: Signer, owner: str | None = None) -> None:
        self.entries[signer.key_id] = KeyEntry(signer, owner)

    def get(self, key_id: str) -> KeyEntry | None:
        return self.entries.get(key_id)

    def __contains__(self, key_id: str) -> bool:
        return key_id in self.entries

    @classmethod
    def from_directory(cls, path: str | Path, password: bytes | None = None) -> KeyStore:
        """`<id>.p12` / `<id>.pfx` files, or `<id>.key.pem` + `<id>.crt.pem` pairs; optional
        `owners.json` ({"<id>": "Practitioner/<pid>"}) names each key's owner."""
        store = cls()
        root = Path(path)
        owners_file = root / "owners.json"
        owners: dict[str, str] = json.loads(owners_file.read_text()) if owners_file.exists() else {}
        for f in sorted(root.iterdir()):
            if f.suffix.lower() in (".p12", ".pfx"):
                signer: Signer = LocalKeySigner.from_pkcs12(f.stem, f.read_bytes(), password)
            elif f.name.endswith(".key.pem"):
                key_id = f.name[: -len(".key.pem")]
                signer = LocalKeySigner.from_pem(key_id, f.read_bytes(), (root / f"{key_id}.crt.pem").read_bytes(),
                                                 password)
            else:
                continue
            store.add(signer, owners.get(signer.key_id))
        return store

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> KeyStore:
        env = dict(os.environ if env is None else env)
        path = env.get(ENV_KEYSTORE)
        if not path:
            return cls()
        password = env.get(ENV_KEYSTORE_PASSWORD)
        return cls.from_directory(path, password.encode() if password else None)
