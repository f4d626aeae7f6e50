"""Helpers shared by interactions: type checks, validation, write wrappers, outcomes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from fhir_server.errors import BadRequest, InvalidResource, Issue, MethodNotAllowed, NotFound, PreconditionFailed
from fhir_server.interactions.model import FhirRequest, FhirResponse, parse_etag
from fhir_server.registry import TypeConfig, served
from fhir_server.storage.repository import UnitOfWork, WriteResult

if TYPE_CHECKING:
    from fhir_server.service import FhirService

ID_RE = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def require_type(res_type: str | None, interaction: str) -> TypeConfig:
    cfg = served(res_type or "")
    if cfg is None:
        raise NotFound(f"Resource type '{res_type}' is not served here",
                       f"Loại tài nguyên '{res_type}' không được hỗ trợ")
    if not cfg.supports(interaction):
        raise MethodNotAllowed(f"Interaction '{interaction}' is not allowed on {res_type}",
                               f"Thao tác '{interaction}' không được phép trên {res_type}")
    return cfg


def require_id(res_id: str | None, expression: str = "id") -> str:
    if not res_id or not ID_RE.match(res_id):
        raise BadRequest(f"'{res_id}' is not a valid FHIR id", f"'{res_id}' không phải là id FHIR hợp lệ",
                         expression=expression)
    return res_id


def if_match_version(req: FhirRequest) -> int | None:
    raw = req.header("if-match")
    version = parse_etag(raw)
    if version == -1:
        raise BadRequest(f"Malformed If-Match header: {raw}", f"Tiêu đề If-Match không hợp lệ: {raw}")
    return version


def body_resource(req: FhirRequest) -> dict[str, Any]:
    if not isinstance(req.body, dict):
        raise BadRequest("The request body must be a FHIR resource (JSON object)",
                         "Nội dung yêu cầu phải là một tài nguyên FHIR (đối tượng JSON)")
    return req.body


def check_body_type(resource: dict[str, Any], res_type: str) -> None:
    declared = resource.get("resourceType")
    if declared != res_type:
        raise InvalidResource(
            f"resourceType '{declared}' does not match the URL type '{res_type}'",
            f"resourceType '{declared}' không khớp với loại trong URL '{res_type}'",
            expression=f"{declared or res_type}.resourceType" if declared else "resourceType",
        )


def prefix_issues(issues: list[Issue], entry_index: int | None) -> list[Issue]:
    """Relocate FHIRPath expressions under Bundle.entry[i].resource for Bundle entries."""
    if entry_index is None:
        return issues
    out = []
    for issue in issues:
        exprs = tuple(
            f"Bundle.entry[{entry_index}].resource" + (e[e.index("."):] if "." in e else "")
            for e in issue.expression
        ) or (f"Bundle.entry[{entry_index}]",)
        out.append(Issue(en=issue.en, vi=issue.vi, code=issue.code, severity=issue.severity, expression=exprs))
    return out


def refuse_nul(params: list[tuple[str, str]]) -> None:
    """A NUL character in a parameter is bad input (PostgreSQL text cannot even hold it): 400, not 500."""
    for name, value in params:
        if "\x00" in name or "\x00" in value:
            raise BadRequest(f"Parameter '{name.replace(chr(0), '?')}' contains a NUL character",
                             f"Tham số '{name.replace(chr(0), '?')}' chứa ký tự NUL",
                             expression=name.replace("\x00", "?"))


@contextmanager
def unit_of_work(svc: FhirService, req: FhirRequest) -> Iterator[UnitOfWork]:
    """Join the Bundle's transaction when inside one, else open our own (and run the service's commit
    hooks in it before it commits, for a top-level request: not for a batch's entries)."""
    if req.uow is not None:
        yield req.uow
        return
    with svc.repo.unit_of_work() as uow:
        yield uow
        if req.entry_index is None:
            svc.before_commit(req, uow)


def single_match(svc: FhirService, uow: UnitOfWork, res_type: str, criteria: str, what: str,
                 req: FhirRequest | None = None) -> list[Any]:
    refuse_nul(parse_qsl(criteria, keep_blank_values=True))
    uow.lock_criteria(f"{res_type}?{criteria}")
    # Resources outside the requester's boundary do not match (they do not exist for it).
    boundary = svc.boundary(req) if req is not None else None
    matches = svc.search.match(uow.conn, res_type, criteria, limit=2, boundary=boundary)
    if len(matches) > 1:
        raise PreconditionFailed(
            f"Conditional {what}: criteria '{criteria}' match more than one {res_type}",
            f"Thao tác {what} có điều kiện: tiêu chí '{criteria}' khớp nhiều hơn một {res_type}",
        )
    return matches


def write_response(result: WriteResult, status: int | None = None) -> FhirResponse:
    stored = result.stored
    return FhirResponse(
        status=status or (201 if result.created else 200),
        resource=result.resource,
        content=stored.content,
        stored=stored,
        location=f"{stored.res_type}/{stored.res_id}/_history/{stored.version_id}",
        is_write=True,
    )
