"""The authorization seam: one object consulted by the dispatcher for every request.

The auth package supplies a real policy; `AllowAll` is what an embedded/test server
without authorization uses (never the default of the HTTP app once auth is installed).
"""

from __future__ import annotations

from typing import Any, Protocol

from fhir_server.interactions.model import FhirRequest
from fhir_server.storage.repository import StoredResource


class Authorizer(Protocol):
    def authorize(self, req: FhirRequest, interaction: str, operation: Any = None) -> None:
        """Raise NotAuthenticated/Forbidden unless the request may perform the interaction."""

    def visible(self, req: FhirRequest, stored: StoredResource) -> bool:
        """Whether a stored resource lies inside the requester's boundary (else: 404)."""

    def boundary(self, req: FhirRequest) -> Any:
        """A search `Boundary` (SQL predicate) or None for no restriction."""

    def check_write(self, req: FhirRequest, resource: dict[str, Any], current: StoredResource | None) -> None:
        """Raise Forbidden if the written resource would leave the requester's boundary."""

    def security_statement(self, base_url: str) -> dict[str, Any] | None: ...


class AllowAll:
    def authorize(self, req: FhirRequest, interaction: str, operation: Any = None) -> None:
        return None

    def visible(self, req: FhirRequest, stored: StoredResource) -> bool:
        return True

    def boundary(self, req: FhirRequest) -> Any:
        return None

    def check_write(self, req: FhirRequest, resource: dict[str, Any], current: StoredResource | None) -> None:
        return None

    def security_statement(self, base_url: str) -> dict[str, Any] | None:
        return None
