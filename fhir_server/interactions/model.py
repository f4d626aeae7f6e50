"""Framework-free request and response values that every interaction takes and returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fhir_server.storage.repository import StoredResource


@dataclass
class FhirRequest:
    method: str
    res_type: str | None = None
    res_id: str | None = None
    version_id: str | None = None
    operation: str | None = None  # "$validate" etc.
    compartment: str | None = None
    history: bool = False
    params: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: Any = None  # parsed JSON (dict) or None
    content_type: str | None = None
    base_url: str = ""
    lang: str = "vi"
    principal: Any = None  # set by authorization
    uow: Any = None  # set inside a transaction Bundle: every entry shares it
    entry_index: int | None = None  # position in a Bundle, for error paths
    source_address: str | None = None
    # What a write stored (set by `FhirService.after_write`): the audit record of the write names it.
    written: Any = None
    # The request's AuditEvent was written in the write's own transaction (auth/audit.py).
    audited: bool = False

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def prefer(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for part in (self.header("prefer") or "").split(","):
            part = part.strip()
            for token in part.split(";"):
                if "=" in token:
                    k, v = token.split("=", 1)
                    out[k.strip().lower()] = v.strip().strip('"')
        return out

    @property
    def strict(self) -> bool:
        return self.prefer.get("handling") == "strict"

    def param(self, name: str) -> str | None:
        for k, v in self.params:
            if k == name:
                return v
        return None


@dataclass
class FhirResponse:
    status: int
    resource: dict[str, Any] | None = None  # built by the server
    content: str | None = None  # stored JSON text, served without re-parsing
    stored: StoredResource | None = None  # gives ETag, Last-Modified, Location
    location: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # Whether `Prefer: return=` applies (writes) or the body is always sent (reads).
    is_write: bool = False
    media_type: str | None = None  # non-FHIR payloads (csv, xlsx, html)
    raw: bytes | None = None

    @property
    def etag(self) -> str | None:
        return self.stored.etag if self.stored else None


def parse_etag(value: str | None) -> int | None:
    """`W/"3"` (or `"3"`, `3`) → 3; anything else is a bad request at the caller."""
    if value is None:
        return None
    v = value.strip()
    if v.startswith("W/"):
        v = v[2:]
    v = v.strip('"')
    return int(v) if v.isdigit() else -1
