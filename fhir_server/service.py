"""The FHIR service: routes a framework-free FhirRequest to its interaction.

The dispatcher is the single choke point: every HTTP request and every Bundle entry
passes `authorizer.authorize` here before its interaction runs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fhir_server.authorization import AllowAll, Authorizer
from fhir_server.errors import BadRequest, FhirError, InvalidResource, MethodNotAllowed, NotFound
from fhir_server.interactions.capabilities import capabilities
from fhir_server.interactions.common import prefix_issues, refuse_nul
from fhir_server.interactions.create import create
from fhir_server.interactions.delete import delete
from fhir_server.interactions.history import history
from fhir_server.interactions.model import FhirRequest, FhirResponse
from fhir_server.interactions.patch import patch
from fhir_server.interactions.read import read
from fhir_server.interactions.search import search
from fhir_server.interactions.transaction import batch_or_transaction
from fhir_server.interactions.update import update
from fhir_server.interactions.vread import vread
from fhir_server.operations import Operation, OperationRegistry
from fhir_server.paging import TokenSigner
from fhir_server.settings import Settings
from fhir_server.storage.repository import StoredResource, UnitOfWork, WriteResult

# A validator checks one resource and raises InvalidResource/Unprocessable.
Validator = Callable[[dict[str, Any], str, str], None]
# A write guard may refuse any change of a stored resource (e.g. a signed document: 409/405).
WriteGuard = Callable[[FhirRequest, StoredResource], None]
# A write hook runs right after a create/update/patch stored a resource, inside the same unit of work
# (database transaction): what it writes commits with the resource, what it raises rolls everything back.
WriteHook = Callable[[FhirRequest, UnitOfWork, WriteResult], None]
# A commit hook runs once per top-level write request (create, update, patch, delete, transaction),
# inside its unit of work just before the commit: what it writes commits with the request's writes.
CommitHook = Callable[[FhirRequest, UnitOfWork], None]


def route(req: FhirRequest) -> str:
    """The interaction name (R4 CapabilityStatement codes) for a request."""
    m = req.method
    if req.operation:
        return "operation"
    if req.res_type is None:
        if req.history:
            return "history-system"
        if m == "POST":
            return "transaction"
        if m in ("GET", "HEAD"):
            return "search-system"
    elif req.res_id is None:
        if req.history and m == "GET":
            return "history-type"
        return {"GET": "search-type", "HEAD": "search-type", "POST": "create", "PUT": "update",
                "DELETE": "delete", "PATCH": "patch"}.get(m, "unsupported")
    elif req.version_id is not None and m in ("GET", "HEAD"):
        return "vread"
    elif req.history and m == "GET":
        return "history-instance"
    else:
        return {"GET": "read", "HEAD": "read", "PUT": "update", "DELETE": "delete", "PATCH": "patch"}.get(
            m, "unsupported")
    return "unsupported"


_HANDLERS: dict[str, Callable[..., FhirResponse]] = {
    "read": read, "vread": vread, "create": create, "update": update, "patch": patch, "delete": delete,
    "history-system": history, "history-type": history, "history-instance": history,
    "search-type": search, "search-system": search, "transaction": batch_or_transaction,
}


class FhirService:
    def __init__(
        self,
        settings: Settings,
        repo: Any,
        search_engine: Any,
        *,
        validators: list[Validator] | None = None,
        operations: OperationRegistry | None = None,
        authorizer: Authorizer | None = None,
        secret: str = "",
    ) -> None:
        self.settings = settings
        self.repo = repo
        self.search = search_engine
        self.validators: list[Validator] = list(validators or [])
        self.operations = operations or OperationRegistry()
        self.authorizer: Authorizer = authorizer or AllowAll()
        self.page_signer = TokenSigner(secret or settings.secret_key or "dev", "history-page")
        self.started_at = datetime.now(UTC).isoformat(timespec="seconds")
        self.profile_provider: Callable[[str], list[str]] | None = None
        self.write_guards: list[WriteGuard] = []
        self.write_hooks: list[WriteHook] = []
        self.commit_hooks: list[CommitHook] = []
        # Called once per top-level request with (request, interaction, response or None, error or None).
        self.audit: Callable[[FhirRequest, str, FhirResponse | None, FhirError | None], None] | None = None
        # Resource types a component serves from a store of its own (auth: AuditEvent from the audit
        # trail): interaction → handler; the interactions not listed take the generic path.
        self.type_handlers: dict[str, dict[str, Callable[..., FhirResponse]]] = {}
        # Flask blueprints a component adds at the edge (auth pages, OAuth endpoints); create_app registers them.
        self.blueprints: list[Any] = []
        # Facts a component keeps with every write (auth: the Organizations each resource belongs to).
        self.owner_facts: Any = None

    # -- dispatch: the choke point ------------------------------------------------------
    def dispatch(self, req: FhirRequest, **kwargs: Any) -> FhirResponse:
        if self.audit is None or req.entry_index is not None:
            return self._dispatch(req, **kwargs)
        try:
            resp = self._dispatch(req, **kwargs)
        except FhirError as exc:
            self.audit(req, route(req), None, exc)
            raise
        self.audit(req, route(req), resp, None)
        return resp

    def _dispatch(self, req: FhirRequest, **kwargs: Any) -> FhirResponse:
        interaction = route(req)
        try:
            if req.params:
                refuse_nul(req.params)
            if interaction == "capabilities":
                return capabilities(self, req)
            if interaction == "operation":
                return self._operation(req)
            handler = _HANDLERS.get(interaction)
            if handler is None:
                raise MethodNotAllowed(f"{req.method} is not supported here", f"{req.method} không được hỗ trợ ở đây")
            if interaction == "transaction" and req.entry_index is not None:
                raise BadRequest("Bundles cannot be nested in a batch or transaction",
                                 "Không thể lồng Bundle trong batch hoặc transaction")
            self.authorizer.authorize(req, interaction)
            own = self.type_handlers.get(req.res_type or "")
            if own is not None and interaction in own:
                return own[interaction](self, req, **kwargs)
            if self.type_handlers and interaction in ("search-type", "search-system"):
                self._refuse_elsewhere(req)
            return handler(self, req, **kwargs)
        except FhirError as exc:
            if req.entry_index is not None and not getattr(exc, "_located", False):
                exc.issues = prefix_issues(exc.issues, req.entry_index)
                exc._located = True  # type: ignore[attr-defined]
            raise

    def capabilities(self, req: FhirRequest) -> FhirResponse:
        return capabilities(self, req)

    def _refuse_elsewhere(self, req: FhirRequest) -> None:
        """A type served from its own store is not in the generic index: a system search or an
        include that names it would silently find nothing, so it is refused instead."""
        for name, value in req.params:
            code = name.split(":")[0]
            if code == "_type":
                named = [t for t in value.split(",") if t in self.type_handlers]
            elif code in ("_include", "_revinclude"):
                named = [t for t in (value.split(":")[0], value.split(":")[-1]) if t in self.type_handlers]
            else:
                continue
            if named:
                raise BadRequest(f"{named[0]} is searched on its own ({named[0]}?...), not through {code}",
                                 f"{named[0]} được tìm kiếm riêng ({named[0]}?...), không qua {code}",
                                 expression=name)

    def _operation(self, req: FhirRequest) -> FhirResponse:
        code = (req.operation or "").lstrip("$")
        op: Operation | None = self.operations.find(code, req.res_type, req.res_id is not None)
        if op is None:
            raise NotFound(f"Operation ${code} is not supported here", f"Thao tác ${code} không được hỗ trợ ở đây")
        if op.affects_state and req.method == "GET":
            raise MethodNotAllowed(f"${code} changes state and needs POST", f"${code} làm thay đổi dữ liệu, cần POST")
        self.authorizer.authorize(req, "operation", op)
        return op.handler(self, req)

    # -- hooks used by interactions ---------------------------------------------------
    def validate(self, resource: dict[str, Any], res_type: str, req: FhirRequest | None, mode: str) -> None:
        for validator in self.validators:
            validator(resource, res_type, mode)

    def validate_entry_type(self, resource: Any, res_type: str | None, index: int) -> None:
        if not isinstance(resource, dict) or (res_type and resource.get("resourceType") != res_type):
            raise InvalidResource(
                f"Entry {index}: resource type does not match request.url",
                f"Mục {index}: loại tài nguyên không khớp với request.url",
                expression=f"Bundle.entry[{index}].resource.resourceType")

    def visible(self, req: FhirRequest, stored: StoredResource) -> bool:
        return self.authorizer.visible(req, stored)

    def read_visible(self, req: FhirRequest, res_type: str, res_id: str) -> StoredResource | None:
        """The current version of a resource if it lies inside the requester's boundary, else None.
        An authorizer may read and decide in one statement (`read_joined`); it returns None when it cannot."""
        if req.uow is not None:
            stored = req.uow.read(res_type, res_id)
        else:
            joined = getattr(self.authorizer, "read_joined", None)
            decided = joined(req, res_type, res_id) if joined is not None else None
            if decided is not None:
                return decided.stored
            stored = self.repo.read(res_type, res_id)
        return stored if stored is not None and self.visible(req, stored) else None

    def boundary(self, req: FhirRequest) -> Any:
        return self.authorizer.boundary(req)

    def authorize_write(self, req: FhirRequest, resource: dict[str, Any],
                        current: StoredResource | None = None) -> None:
        if current is not None and not current.deleted:
            for guard in self.write_guards:
                guard(req, current)
        self.authorizer.check_write(req, resource, current)

    def after_write(self, req: FhirRequest, uow: UnitOfWork, result: WriteResult) -> None:
        req.written = result.stored
        for hook in self.write_hooks:
            hook(req, uow, result)

    def before_commit(self, req: FhirRequest, uow: UnitOfWork) -> None:
        for hook in self.commit_hooks:
            hook(req, uow)

    def authorize_delete(self, req: FhirRequest, current: StoredResource) -> None:
        import orjson

        for guard in self.write_guards:
            guard(req, current)
        if current.content:
            self.authorizer.check_write(req, orjson.loads(current.content), current)

    # -- capability facts ------------------------------------------------------------------
    def profiles_for(self, res_type: str) -> list[str]:
        return self.profile_provider(res_type) if self.profile_provider else []

    def search_parameters_for(self, res_type: str | None) -> list[dict[str, Any]]:
        fn = getattr(self.search, "capability_params", None)
        return list(fn(res_type)) if fn else []

    def search_includes_for(self, res_type: str) -> list[str]:
        if res_type in self.type_handlers:
            return []
        fn = getattr(self.search, "capability_includes", None)
        return list(fn(res_type)) if fn else []

    def search_revincludes_for(self, res_type: str) -> list[str]:
        if res_type in self.type_handlers:
            return []
        fn = getattr(self.search, "capability_revincludes", None)
        return list(fn(res_type)) if fn else []

    def security_statement(self, base_url: str) -> dict[str, Any] | None:
        return self.authorizer.security_statement(base_url)
