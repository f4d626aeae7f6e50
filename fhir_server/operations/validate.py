"""[type]/$validate and [type]/[id]/$validate (R4 resource-operation-validate).

Checks the R4 structure, then the profiles (claimed, enforced or the nominated ``profile``) and the
Vietnamese rules, without storing anything. Answers 200 with an OperationOutcome listing every issue, valid
or not (the spec: the operation succeeded when validation was performed). ``mode`` = create | update |
delete; delete checks whether the stored resource may be deleted (an issued prescription may not).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from fhir_server.errors import BadRequest, Issue, NotFound, operation_outcome
from fhir_server.interactions.model import FhirRequest, FhirResponse
from fhir_server.operations import Operation
from fhir_server.operations.params import first, operation_inputs
from fhir_server.validation.structure import structure_issues

if TYPE_CHECKING:
    from fhir_server.service import FhirService

MODES = ("create", "update", "delete")


def _stored(svc: FhirService, res_type: str, res_id: str) -> dict[str, Any]:
    stored = svc.repo.read(res_type, res_id)
    if stored is None or stored.deleted or stored.content is None:
        raise NotFound(f"{res_type}/{res_id} not found", f"Không tìm thấy {res_type}/{res_id}")
    data: dict[str, Any] = orjson.loads(stored.content)
    return data


def validate(svc: FhirService, req: FhirRequest) -> FhirResponse:
    assert req.res_type is not None
    inputs = operation_inputs(req)
    mode = first(inputs, "mode") or "create"
    if mode not in MODES:
        raise BadRequest(f"Unknown mode '{mode}' (create, update or delete)",
                         f"mode '{mode}' không hợp lệ (create, update hoặc delete)", expression="mode")
    profile = first(inputs, "profile")
    resource = first(inputs, "resource")
    validator = getattr(svc, "profile_validator", None)
    issues: list[Issue] = []
    if mode in ("update", "delete") and req.res_id is None:  # R4: instance level only
        raise BadRequest(f"mode={mode} needs an instance: [type]/[id]/$validate",
                         f"mode={mode} cần một tài nguyên cụ thể: [type]/[id]/$validate", expression="mode")
    if mode == "delete" and req.res_id is not None:
        current = _stored(svc, req.res_type, req.res_id)
        if validator is not None:
            issues = validator.delete_issues(current, req.res_type)
    else:
        if resource is None and req.res_id is not None:
            resource = _stored(svc, req.res_type, req.res_id)
        if not isinstance(resource, dict):
            raise BadRequest("No resource to validate: send it as the body or the 'resource' parameter",
                             "Không có tài nguyên để kiểm tra: gửi trong nội dung hoặc tham số 'resource'",
                             expression="resource")
        if resource.get("resourceType") != req.res_type:
            issues.append(Issue(en=f"resourceType '{resource.get('resourceType')}' does not match {req.res_type}",
                                vi=f"resourceType '{resource.get('resourceType')}' không khớp {req.res_type}",
                                code="structure", expression=("resourceType",)))
        else:
            if mode == "update" and resource.get("id") != req.res_id:
                issues.append(Issue(en=f"mode=update: the resource needs the id {req.res_id} of the URL",
                                    vi=f"mode=update: tài nguyên cần có id {req.res_id} như trong URL",
                                    code="required", expression=(f"{req.res_type}.id",)))
            elif req.res_id is not None and resource.get("id") not in (None, req.res_id):
                issues.append(Issue(en=f"The id differs from the URL id {req.res_id}",
                                    vi=f"Id khác với id trong URL {req.res_id}", code="invalid",
                                    expression=(f"{req.res_type}.id",)))
            issues += structure_issues(resource, req.res_type)
            if validator is not None and not any(i.severity in ("error", "fatal") for i in issues):
                profiles = [profile] if profile else None
                if profile and profile not in validator.profiles:
                    issues.append(Issue(en=f"Profile {profile} is not known to this server",
                                        vi=f"Máy chủ không biết hồ sơ {profile}", code="not-supported",
                                        expression=("profile",)))
                else:
                    issues += validator.issues(resource, req.res_type, mode, profiles=profiles)
    if not issues:
        issues = [Issue(en="Validation successful, no issues found", vi="Hợp lệ, không có lỗi", code="informational",
                        severity="information")]
    return FhirResponse(status=200, resource=operation_outcome(issues, req.lang))


OPERATIONS = [
    Operation(code="validate", handler=validate, type_level=True, instance=True,
              definition="http://fhir.vntelehealth.org/r4/OperationDefinition/Resource-validate",
              documentation="Validate against R4, the profiles and the Vietnamese rules (mode, profile)"),
]
