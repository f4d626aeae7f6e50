"""capabilities: GET /metadata, generated from the registry and live configuration."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fhir_server import __version__
from fhir_server.interactions.model import FhirRequest, FhirResponse
from fhir_server.registry import RESOURCE_TYPES

if TYPE_CHECKING:
    from fhir_server.service import FhirService

_TYPE_INTERACTIONS = ("read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create",
                      "search-type")


def build_capability_statement(svc: FhirService, base_url: str) -> dict[str, Any]:
    resources = []
    for name, cfg in RESOURCE_TYPES.items():
        entry: dict[str, Any] = {
            "type": name,
            "interaction": [{"code": code} for code in _TYPE_INTERACTIONS if cfg.supports(code)],
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": cfg.supports("update"),
            "conditionalCreate": cfg.conditional_create and cfg.supports("create"),
            "conditionalRead": "modified-since",
            "conditionalUpdate": cfg.conditional_update and cfg.supports("update"),
            "conditionalDelete": "single" if cfg.conditional_delete and cfg.supports("delete") else "not-supported",
            "referencePolicy": ["literal", "logical", "local"],
        }
        profiles = svc.profiles_for(name)
        if profiles:
            entry["supportedProfile"] = profiles
        params = svc.search_parameters_for(name)
        if params:
            entry["searchParam"] = params
            entry["searchInclude"] = svc.search_includes_for(name)
            entry["searchRevInclude"] = svc.search_revincludes_for(name)
        ops = [
            {"name": op.code, "definition": op.definition or f"{base_url}/OperationDefinition/{op.code}"}
            for op in svc.operations.all()
            if (op.type_level or op.instance) and (not op.resource_types or name in op.resource_types)
        ]
        if ops:
            entry["operation"] = ops
        resources.append(entry)
    rest: dict[str, Any] = {
        "mode": "server",
        "resource": resources,
        "interaction": [{"code": c} for c in ("transaction", "batch", "search-system", "history-system")],
        "searchParam": svc.search_parameters_for(None),
        "operation": [
            {"name": op.code, "definition": op.definition or f"{base_url}/OperationDefinition/{op.code}"}
            for op in svc.operations.all() if op.system
        ],
    }
    security = svc.security_statement(base_url)
    if security:
        rest["security"] = security
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": svc.started_at,
        "publisher": "Vietnam telehealth FHIR server project",
        "kind": "instance",
        "software": {"name": "vn-telehealth-fhir", "version": __version__},
        "implementation": {"description": "FHIR R4 server for Vietnam's telehealth network (Khám, chữa bệnh từ xa)",
                           "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [rest],
    }


def capabilities(svc: FhirService, req: FhirRequest) -> FhirResponse:
    return FhirResponse(status=200, resource=build_capability_statement(svc, req.base_url))
