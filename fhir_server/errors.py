"""Typed FHIR errors, mapped once to HTTP status and OperationOutcome.

Every error a user can see is bilingual: a Vietnamese and an English text.
Modules raise these; only the HTTP edge turns them into responses, through
``ERROR_TABLE`` (the single mapping of error class to status and issue code).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class Issue:
    """One OperationOutcome.issue: message in both languages, FHIRPath location."""

    en: str
    vi: str
    code: str = "invalid"
    severity: str = "error"
    expression: tuple[str, ...] = ()

    def to_fhir(self, lang: str = "vi") -> dict[str, Any]:
        primary, secondary = (self.vi, self.en) if lang == "vi" else (self.en, self.vi)
        out: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "details": {"text": primary},
            "diagnostics": secondary,
        }
        if self.expression:
            out["expression"] = list(self.expression)
        return out


class FhirError(Exception):
    """Base of every error that becomes an OperationOutcome."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "invalid"

    def __init__(
        self,
        en: str,
        vi: str | None = None,
        *,
        expression: str | list[str] | tuple[str, ...] | None = None,
        issues: list[Issue] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(en)
        if isinstance(expression, str):
            expression = (expression,)
        self.issues: list[Issue] = list(issues or [])
        if not self.issues:
            self.issues = [Issue(en=en, vi=vi or en, code=self.code, expression=tuple(expression or ()))]
        self.headers = dict(headers or {})

    def outcome(self, lang: str = "vi") -> dict[str, Any]:
        return operation_outcome(self.issues, lang)


class BadRequest(FhirError):
    status, code = 400, "invalid"


class InvalidResource(FhirError):
    """The body is not a valid resource of the declared type (structure)."""

    status, code = 400, "structure"


class Unprocessable(FhirError):
    """Well-formed but breaks a business rule or a profile."""

    status, code = 422, "processing"


class NotAuthenticated(FhirError):
    status, code = 401, "login"


class Forbidden(FhirError):
    status, code = 403, "forbidden"


class NotFound(FhirError):
    status, code = 404, "not-found"


class MethodNotAllowed(FhirError):
    status, code = 405, "not-supported"


class NotAcceptable(FhirError):
    status, code = 406, "not-supported"


class Conflict(FhirError):
    status, code = 409, "conflict"


class Gone(FhirError):
    status, code = 410, "deleted"


class PreconditionFailed(FhirError):
    status, code = 412, "conflict"


class PayloadTooLarge(FhirError):
    status, code = 413, "too-costly"


class UnsupportedMediaType(FhirError):
    status, code = 415, "not-supported"


class TooManyMatches(PreconditionFailed):
    """Conditional interaction whose criteria match more than one resource."""

    code = "multiple-matches"


class InternalError(FhirError):
    status, code = 500, "exception"


ERROR_TABLE: dict[type[FhirError], tuple[int, str]] = {
    cls: (cls.status, cls.code)
    for cls in (
        BadRequest, InvalidResource, Unprocessable, NotAuthenticated, Forbidden, NotFound,
        MethodNotAllowed, NotAcceptable, Conflict, Gone, PreconditionFailed, TooManyMatches,
        PayloadTooLarge, UnsupportedMediaType, InternalError,
    )
}


def operation_outcome(issues: list[Issue], lang: str = "vi") -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [i.to_fhir(lang) for i in issues]}


def information_outcome(en: str, vi: str, lang: str = "vi") -> dict[str, Any]:
    return operation_outcome([Issue(en=en, vi=vi, code="informational", severity="information")], lang)
