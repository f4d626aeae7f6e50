"""Auth settings: from `Settings.extra` first, then the environment (FHIR_AUTH_*)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from fhir_server.settings import Settings


@dataclass(frozen=True)
class AuthConfig:
    issuer: str | None = None  # default: <origin>/auth of the request
    audience: str | None = None  # default: the FHIR base URL of the request
    access_token_lifetime: int = 900
    refresh_token_lifetime: int = 14 * 24 * 3600
    cookie_token_lifetime: int = 900
    key_rotation: int = 7 * 24 * 3600
    leeway: int = 30
    # Resource-server mode: tokens from an external identity provider.
    external_issuer: str | None = None
    external_jwks_url: str | None = None
    external_jwks_file: str | None = None
    external_audience: str | None = None
    external_org_claim: str = "organization"
    external_role_claim: str = "role"

    @classmethod
    def from_settings(cls, settings: Settings, env: dict[str, str] | None = None) -> AuthConfig:
        env = dict(os.environ if env is None else env)
        extra: dict[str, Any] = dict(settings.extra.get("auth", {}))
        values: dict[str, Any] = {}
        for name, field in cls.__dataclass_fields__.items():
            raw = extra.get(name, env.get(f"FHIR_AUTH_{name.upper()}"))
            if raw is None or raw == "":
                continue
            values[name] = int(raw) if field.type == "int" else raw
        return cls(**values)
