"""Vietnamese rules that need more than FHIRPath over one resource (named by ``server-rule`` in the profiles).

Each rule is ``fn(ctx, value, location, constraint) -> [Issue]``; ``value`` is the element the constraint
sits on (the resource, or e.g. the matched CCCD identifier). Facts and their confidence:
``/work/shared/reference/vietnam.md`` (CCCD digit rule [H]; prescription code, 30-day and child rules [M];
Circular 30/2023 rows 1–20 [H], 21–50 [M]).

``identifier_issues`` are checked on every write whatever the profile: an identifier of the CCCD, BHYT,
facility-code or prescription-code system must have that system's shape, and a coding of one of the
project's complete CodeSystems must use a code that exists (e.g. an unknown ethnicity code).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from fhir_server.errors import Issue
from fhir_server.profiles.compiler import Constraint, Context, RuleFn
from terminology.loader import CANONICAL_BASE, MOH_CORE_BASE

if TYPE_CHECKING:
    from fhir_server.profiles.validator import ProfileValidator

MOH = MOH_CORE_BASE
BASE = CANONICAL_BASE
NATIONAL_ID = f"{MOH}/sid/national_id"
INSURANCE = f"{MOH}/sid/insurance_number"
FACILITY = f"{BASE}/sid/facility-code"
PRESCRIPTION = f"{BASE}/sid/prescription-code"
SD = f"{BASE}/StructureDefinition/"
TELEHEALTH_SERVICE = f"{BASE}/CodeSystem/telehealth-service"
CIRCULAR30 = f"{BASE}/ValueSet/circular30-remote-treatment"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
ISSUED = ("active", "completed")
MUTABLE_ON_ISSUED = {"meta", "text", "status", "statusReason"}

SHAPES: dict[str, tuple[re.Pattern[str], str, str]] = {
    NATIONAL_ID: (re.compile(r"^[0-9]{12}$"), "CCCD (personal identification number) is 12 digits",
                  "Số CCCD (số định danh cá nhân) gồm 12 chữ số"),
    INSURANCE: (re.compile(r"^[A-Z]{2}[1-5][0-9]{12}$"),
                "BHYT card number: 2 letters + benefit level 1–5 + 2-digit province + 10 digits",
                "Mã thẻ BHYT: 2 chữ cái + mức hưởng 1–5 + 2 chữ số mã tỉnh + 10 chữ số"),
    FACILITY: (re.compile(r"^[0-9]{5}$"), "The facility code (mã cơ sở KCB) is 5 digits",
               "Mã cơ sở KCB gồm 5 chữ số"),
    PRESCRIPTION: (re.compile(r"^[0-9]{5}[0-9a-z]{7}-[cnhy]$"),
                   "Prescription code: 5-digit facility code + 7 characters [0-9a-z] + '-' + kind (c/n/h/y)",
                   "Mã đơn thuốc: 5 chữ số mã cơ sở + 7 ký tự [0-9a-z] + '-' + loại đơn (c/n/h/y)"),
}


def _services(ctx: Context) -> ProfileValidator:
    services: ProfileValidator = ctx.services
    return services


def cccd_digits_issue(cccd: str, birth: str | None, gender: str | None, loc: str) -> Issue | None:
    """Digit 4 = century and sex (1900s 0/1, 2000s 2/3, …), digits 5–6 = birth year mod 100 (vietnam.md [H])."""
    if not re.fullmatch(r"[0-9]{12}", cccd) or not birth or not re.match(r"^[0-9]{4}", birth):
        return None
    year = int(birth[:4])
    base = 2 * (year // 100 - 19)
    allowed = {"male": {base}, "female": {base + 1}}.get(gender or "", {base, base + 1})
    if int(cccd[3]) in allowed and cccd[4:6] == f"{year % 100:02d}":
        return None
    return Issue(
        en=f"vn-cccd-2: CCCD {cccd} does not match birth date {birth} and sex {gender or '?'} "
           f"(digit 4 must be {'/'.join(map(str, sorted(allowed)))}, digits 5–6 must be {year % 100:02d})",
        vi=f"vn-cccd-2: Số CCCD {cccd} không khớp ngày sinh {birth} và giới tính {gender or '?'} "
           f"(chữ số thứ 4 phải là {'/'.join(map(str, sorted(allowed)))}, chữ số 5–6 phải là {year % 100:02d})",
        code="business-rule", expression=(f"{loc}.value",))


def cccd_birth_sex(ctx: Context, value: Any, loc: str, c: Constraint) -> list[Issue]:
    if not isinstance(value, dict) or not isinstance(value.get("value"), str):
        return []
    issue = cccd_digits_issue(value["value"], ctx.resource.get("birthDate"), ctx.resource.get("gender"), loc)
    return [issue] if issue else []


def _read_ref(ctx: Context, reference: Any) -> dict[str, Any] | None:
    if not isinstance(reference, dict) or not isinstance(reference.get("reference"), str):
        return None
    parts = reference["reference"].split("/")
    if "_history" in parts:
        parts = parts[:parts.index("_history")]
    if len(parts) < 2:
        return None
    return _services(ctx).read(parts[-2], parts[-1])


def facility_codes(org: dict[str, Any] | None) -> list[str]:
    return [i["value"] for i in (org or {}).get("identifier", []) if i.get("system") == FACILITY and "value" in i]


def prescription_facility_prefix(ctx: Context, value: Any, loc: str, c: Constraint) -> list[Issue]:
    code = value.get("value") if isinstance(value, dict) else None
    if not isinstance(code, str) or len(code) < 5:
        return []
    requester = ctx.resource.get("requester")
    target = _read_ref(ctx, requester)
    where = (f"{ctx.res_type}.requester",)
    if target is None:
        return [Issue(en=f"{c.key}: the requester could not be found, so the prescription code's facility prefix "
                         "cannot be checked", vi=f"{c.key}: không tìm thấy người kê đơn nên không kiểm tra được tiền "
                      "tố mã cơ sở của mã đơn thuốc", code="business-rule", expression=where)]
    org = target if target.get("resourceType") == "Organization" else _read_ref(ctx, target.get("organization"))
    codes = facility_codes(org)
    if not codes:
        return [Issue(en=f"{c.key}: the requester's facility has no facility code (mã cơ sở KCB)",
                      vi=f"{c.key}: cơ sở của người kê đơn chưa có mã cơ sở KCB", code="business-rule",
                      expression=where)]
    if code[:5] not in codes:
        return [Issue(en=f"{c.key}: prescription code prefix {code[:5]} differs from the requester's facility code "
                         f"{', '.join(codes)}",
                      vi=f"{c.key}: tiền tố {code[:5]} của mã đơn thuốc khác mã cơ sở KCB của người kê đơn "
                         f"{', '.join(codes)}", code="business-rule", expression=(f"{loc}.value",))]
    return []


def months_between(birth: date, on: date) -> int:
    return (on.year - birth.year) * 12 + on.month - birth.month - (1 if on.day < birth.day else 0)


def _date(value: Any) -> date | None:
    if not isinstance(value, str) or not re.match(r"^\d{4}-\d{2}-\d{2}", value):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def child_under_72_months(ctx: Context, value: Any, loc: str, c: Constraint) -> list[Issue]:
    patient = _read_ref(ctx, ctx.resource.get("subject"))
    birth = _date((patient or {}).get("birthDate"))
    if birth is None:
        return []
    on = _date(ctx.resource.get("authoredOn")) or datetime.now(UTC).date()
    if months_between(birth, on) >= 72:
        return []
    have = {e.get("url") for e in ctx.resource.get("extension", []) if isinstance(e, dict)}
    missing = [n for n in ("patient-weight", "accompanying-adult") if SD + n not in have]
    if not missing:
        return []
    return [Issue(en=f"{c.key}: {c.en} (missing: {', '.join(missing)})", vi=f"{c.key}: {c.vi} (thiếu: "
                  f"{', '.join(missing)})", code="business-rule",
                  expression=tuple(f"{ctx.res_type}.extension('{SD}{n}')" for n in missing))]


def issued_prescription_immutable(ctx: Context, value: Any, loc: str, c: Constraint) -> list[Issue]:
    if ctx.mode not in ("update", "delete") or not ctx.resource.get("id"):
        return []
    current = _services(ctx).read(ctx.res_type, str(ctx.resource["id"]))
    if current is None or current.get("status") not in ISSUED:
        return []
    if ctx.mode == "delete":
        return [Issue(en=f"{c.key}: an issued prescription cannot be deleted; cancel it or replace it",
                      vi=f"{c.key}: không được xóa đơn thuốc đã phát hành; hãy hủy hoặc thay thế bằng đơn mới",
                      code="business-rule", expression=(ctx.res_type,))]
    changed = sorted(k for k in set(current) | set(ctx.resource)
                     if k not in MUTABLE_ON_ISSUED and current.get(k) != ctx.resource.get(k))
    if not changed:
        return []
    return [Issue(en=f"{c.key}: {c.en} (changed: {', '.join(changed)})",
                  vi=f"{c.key}: {c.vi} (đã thay đổi: {', '.join(changed)})", code="business-rule",
                  expression=tuple(f"{ctx.res_type}.{k}" for k in changed))]


def circular30_remote_treatment(ctx: Context, value: Any, loc: str, c: Constraint) -> list[Issue]:
    res = ctx.resource
    remote_treatment = any(cd.get("system") == TELEHEALTH_SERVICE and cd.get("code") == "examination"
                           for t in res.get("type", []) if isinstance(t, dict) for cd in t.get("coding", []))
    if not remote_treatment:
        return []
    svc = _services(ctx)
    severity = svc.circular30_severity
    terminology = svc.terminology
    reasons = res.get("reasonCode") or []
    if not reasons:
        return [Issue(en=f"{c.key}: {c.en}: no reasonCode given", vi=f"{c.key}: {c.vi}: chưa có reasonCode",
                      code="business-rule", severity=severity, expression=(f"{ctx.res_type}.reasonCode",))]
    out = []
    for i, reason in enumerate(reasons):
        codes = [cd.get("code", "") for cd in (reason or {}).get("coding", []) if cd.get("system") == ICD10]
        ok = any(terminology.contains(CIRCULAR30, ICD10, code) or
                 terminology.contains(CIRCULAR30, ICD10, code.split(".")[0]) for code in codes)
        if not ok:
            shown = ", ".join(codes) or "(no ICD-10 code)"
            out.append(Issue(en=f"{c.key}: {c.en}; {shown} is not in Circular 30/2023",
                             vi=f"{c.key}: {c.vi}; {shown} không thuộc danh mục Thông tư 30/2023",
                             code="business-rule", severity=severity, expression=(f"{ctx.res_type}.reasonCode[{i}]",)))
    return out


RULES: dict[str, RuleFn] = {
    "cccd-birth-sex": cccd_birth_sex,
    "prescription-facility-prefix": prescription_facility_prefix,
    "child-under-72-months": child_under_72_months,
    "issued-prescription-immutable": issued_prescription_immutable,
    "circular30-remote-treatment": circular30_remote_treatment,
}


# ------------------------------------------------------------------------- always-on checks
def _codings(node: Any, path: str) -> Iterator[tuple[dict[str, Any], str]]:
    if isinstance(node, dict):
        if isinstance(node.get("system"), str) and isinstance(node.get("code"), str):
            yield node, path
        for key, value in node.items():
            if key in ("contained", "text") or key.startswith("_"):
                continue
            if isinstance(value, list):
                for i, item in enumerate(value):
                    if isinstance(item, dict):
                        yield from _codings(item, f"{path}.{key}[{i}]")
            elif isinstance(value, dict):
                yield from _codings(value, f"{path}.{key}")


def identifier_issues(resource: dict[str, Any], res_type: str, validator: ProfileValidator) -> list[Issue]:
    """Checks that hold for every resource, claimed profile or not (cheap: one pass)."""
    out: list[Issue] = []
    for i, ident in enumerate(resource.get("identifier") or []):
        if not isinstance(ident, dict):
            continue
        shape = SHAPES.get(ident.get("system", ""))
        value = ident.get("value")
        if shape is None or not isinstance(value, str):
            continue
        loc = f"{res_type}.identifier[{i}]"
        if not shape[0].match(value):
            out.append(Issue(en=f"{shape[1]} ('{value}')", vi=f"{shape[2]} ('{value}')", code="value",
                             expression=(f"{loc}.value",)))
        elif ident["system"] == NATIONAL_ID and res_type in ("Patient", "Practitioner"):
            issue = cccd_digits_issue(value, resource.get("birthDate"), resource.get("gender"), loc)
            if issue:
                out.append(issue)
    if validator.check_codes:
        for coding, loc in _codings(resource, res_type):
            system = coding["system"]
            cs = validator.terminology.codesystems.get(system)
            if cs is None or cs.resource.get("content") != "complete":
                continue
            if cs.get(coding["code"]) is None:
                out.append(Issue(en=f"Unknown code '{coding['code']}' in {system}",
                                 vi=f"Mã '{coding['code']}' không có trong {system}", code="code-invalid",
                                 expression=(loc,)))
    return out
