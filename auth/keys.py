"""Signing keys in the database, rotated without downtime.

The newest key whose `retire_at` lies in the future signs; every key whose `expires_at`
(retire_at + the longest token lifetime) lies in the future is published in the JWKS and
verifies, so tokens signed before a rotation stay valid until they expire. Any worker may
rotate: the new key is a row, and the others pick it up on their next refresh (or at once,
when a token names a kid they do not know yet).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from typing import Any

from joserfc.jwk import ECKey, KeySet
from sqlalchemy import Engine, func, insert, select

from auth.db import write_conn
from auth.tables import auth_keys

ALG = "ES256"


class KeyStore:
    def __init__(self, engine: Engine, rotate_after: int = 7 * 24 * 3600, max_token_lifetime: int = 3600,
                 refresh_every: float = 60.0) -> None:
        self.engine = engine
        self.rotate_after = rotate_after
        self.max_token_lifetime = max_token_lifetime
        self.refresh_every = refresh_every
        self._lock = threading.Lock()
        self._loaded_at = 0.0
        self._public: dict[str, ECKey] = {}
        self._signing: ECKey | None = None
        self._signing_retire = 0

    # -- database --------------------------------------------------------------------
    def _load(self) -> None:
        now = int(time.time())
        with self.engine.connect() as conn:
            rows = list(conn.execute(select(auth_keys).where(auth_keys.c.expires_at > now)
                                     .order_by(auth_keys.c.created_at.desc())))
        public: dict[str, ECKey] = {}
        signing: ECKey | None = None
        retire = 0
        for r in rows:
            public[r.kid] = ECKey.import_key(json.loads(r.public_jwk))
            if signing is None and r.retire_at > now:
                signing = ECKey.import_key(json.loads(r.private_jwk))
                retire = r.retire_at
        self._public, self._signing, self._signing_retire = public, signing, retire
        self._loaded_at = time.monotonic()

    def rotate(self) -> str:
        """Create a new signing key (the previous one keeps verifying until its tokens expire)."""
        kid = secrets.token_urlsafe(12)
        key = ECKey.generate_key("P-256", parameters={"kid": kid, "alg": ALG, "use": "sig"}, private=True)
        with write_conn(self.engine) as conn:
            # Strictly newer than every key so far (the newest signs), even if the clock stepped back.
            newest = conn.execute(select(func.max(auth_keys.c.created_at))).scalar() or 0
            now = max(int(time.time()), int(newest) + 1)
            conn.execute(insert(auth_keys).values(
                kid=kid, alg=ALG, private_jwk=json.dumps(key.as_dict(private=True)),
                public_jwk=json.dumps(key.as_dict(private=False)), created_at=now,
                retire_at=now + self.rotate_after, expires_at=now + self.rotate_after + self.max_token_lifetime))
        with self._lock:
            self._load()
        return kid

    def _fresh(self) -> None:
        if time.monotonic() - self._loaded_at > self.refresh_every:
            with self._lock:
                self._load()

    # -- use ---------------------------------------------------------------------------
    def signing_key(self) -> ECKey:
        self._fresh()
        if self._signing is None or self._signing_retire <= time.time():
            with self._lock:
                self._load()
            if self._signing is None or self._signing_retire <= time.time():
                self.rotate()
        assert self._signing is not None
        return self._signing

    def verification_key(self, kid: str | None) -> ECKey | None:
        self._fresh()
        if kid is None:
            return None
        key = self._public.get(kid)
        if key is None and time.monotonic() - self._loaded_at > 1.0:
            with self._lock:  # a key another worker has just made
                self._load()
            key = self._public.get(kid)
        return key

    def jwks(self) -> dict[str, Any]:
        self._fresh()
        if not self._public:
            self.signing_key()
        return dict(KeySet(list(self._public.values())).as_dict(private=False))
