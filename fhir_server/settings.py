"""Server settings: one frozen dataclass, read from the environment once."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

DEFAULT_SQLITE_PATH = Path("var") / "fhir.sqlite3"


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    database_url: str = f"sqlite:///{DEFAULT_SQLITE_PATH}"
    base_path: str = "/fhir"
    max_body_bytes: int = 16 * 1024 * 1024
    default_count: int = 20
    max_count: int = 1000
    history_default_count: int = 50
    # Secret for signed paging cursors; when unset, one is generated once and kept in
    # the database so every worker on every host shares it.
    secret_key: str | None = None
    default_language: str = "vi"
    # Authorization is on by default (default deny); only embedded tools and the REST-core
    # tests turn it off explicitly.
    auth_enabled: bool = True
    audit_enabled: bool = True
    public_directory: bool = True
    # Extra, component-specific settings (auth issuer, external IdP, trust anchors, ...).
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> Settings:
        env = dict(os.environ if env is None else env)
        values: dict[str, Any] = {}
        if env.get("FHIR_DATABASE_URL"):
            values["database_url"] = env["FHIR_DATABASE_URL"]
        if env.get("FHIR_MAX_BODY_BYTES"):
            values["max_body_bytes"] = int(env["FHIR_MAX_BODY_BYTES"])
        if env.get("FHIR_DEFAULT_COUNT"):
            values["default_count"] = int(env["FHIR_DEFAULT_COUNT"])
        if env.get("FHIR_MAX_COUNT"):
            values["max_count"] = int(env["FHIR_MAX_COUNT"])
        if env.get("FHIR_SECRET_KEY"):
            values["secret_key"] = env["FHIR_SECRET_KEY"]
        if env.get("FHIR_DEFAULT_LANGUAGE"):
            values["default_language"] = env["FHIR_DEFAULT_LANGUAGE"]
        if env.get("FHIR_AUTH_ENABLED"):
            values["auth_enabled"] = _bool(env["FHIR_AUTH_ENABLED"], True)
        if env.get("FHIR_AUDIT_ENABLED"):
            values["audit_enabled"] = _bool(env["FHIR_AUDIT_ENABLED"], True)
        if env.get("FHIR_PUBLIC_DIRECTORY"):
            values["public_directory"] = _bool(env["FHIR_PUBLIC_DIRECTORY"], True)
        values.update(overrides)
        return cls(**values)

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def env_flag(name: str, default: bool) -> bool:
    return _bool(os.environ.get(name), default)
