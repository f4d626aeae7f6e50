"""64-bit keys for index rows (HAPI's design): one integer equality finds a token."""

from __future__ import annotations

import hashlib


def h64(*parts: str) -> int:
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def param_key(res_type: str, code: str) -> int:
    return h64(res_type, code)
