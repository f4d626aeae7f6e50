"""Authorization state in the shared database (every worker on every host sees the same)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, String, Table, Text

from fhir_server.storage.tables import metadata

auth_clients = Table(
    "auth_clients", metadata,
    Column("client_id", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("secret_hash", String(128), nullable=True),  # sha256 of a 256-bit random secret
    Column("jwks", Text, nullable=True),  # registered public JWKS (private_key_jwt)
    Column("jwks_uri", Text, nullable=True),
    Column("auth_method", String(32), nullable=False),  # client_secret_basic | private_key_jwt | none
    Column("grant_types", Text, nullable=False),  # space-separated
    Column("redirect_uris", Text, nullable=False, default=""),  # space-separated
    Column("scope", Text, nullable=False),  # the scopes this client may ever ask for
    Column("role", String(16), nullable=False),
    Column("organization", String(128), nullable=True),
    Column("jurisdiction", String(8), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
)

auth_users = Table(
    "auth_users", metadata,
    Column("username", String(128), primary_key=True),
    Column("password_hash", String(256), nullable=False),  # pbkdf2_sha256$iterations$salt$hash
    Column("display_name", Text, nullable=True),
    Column("role", String(16), nullable=False),
    Column("organization", String(128), nullable=True),
    Column("jurisdiction", String(8), nullable=True),
    Column("fhir_user", String(128), nullable=True),  # Practitioner/<id> | Patient/<id>
    Column("scope", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
)

auth_codes = Table(
    "auth_codes", metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("client_id", String(64), nullable=False),
    Column("username", String(128), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("code_challenge", String(128), nullable=False),
    Column("code_challenge_method", String(8), nullable=False),
    Column("nonce", Text, nullable=True),
    Column("expires_at", BigInteger, nullable=False),
)

auth_refresh_tokens = Table(
    "auth_refresh_tokens", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("client_id", String(64), nullable=False),
    Column("username", String(128), nullable=True),
    Column("scope", Text, nullable=False),
    Column("issued_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("revoked", Boolean, nullable=False, default=False),
    Index("ix_refresh_client", "client_id"),
)

# Revoked access tokens (by jti) until they would have expired anyway.
auth_revoked = Table(
    "auth_revoked", metadata,
    Column("jti", String(64), primary_key=True),
    Column("expires_at", BigInteger, nullable=False),
)

# Client-assertion jtis already used (RFC 7523 replay protection).
auth_assertions = Table(
    "auth_assertions", metadata,
    Column("key", String(200), primary_key=True),
    Column("expires_at", BigInteger, nullable=False),
)

# The server's signing keys; the newest active one signs, all unexpired ones verify.
auth_keys = Table(
    "auth_keys", metadata,
    Column("kid", String(64), primary_key=True),
    Column("alg", String(8), nullable=False),
    Column("private_jwk", Text, nullable=False),
    Column("public_jwk", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("retire_at", BigInteger, nullable=False),  # stops signing
    Column("expires_at", BigInteger, nullable=False),  # leaves the JWKS (retire_at + max token lifetime)
)

# Failed sign-ins per username (login throttling, shared by every worker): after MAX_LOGIN_FAILURES within
# LOGIN_WINDOW seconds the username is locked for LOGIN_LOCKOUT seconds (auth/store.py).
auth_login_failures = Table(
    "auth_login_failures", metadata,
    Column("username", String(128), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("first_at", BigInteger, nullable=False),  # epoch seconds of the window's first failure
    Column("locked_until", BigInteger, nullable=False, default=0),
)
