"""Composition/[id]/$document: assemble the FHIR document Bundle (R4 composition-operation-document).

The Bundle has type `document`, the Composition first, then every resource the
Composition references and, one level further, what those reference (a PractitionerRole's
Practitioner and Organization, an Encounter's serviceProvider), each once. With
`persist=true` the Bundle is also stored: that changes state, so it needs POST (GET with
persist=true is 405); plain generation works with GET and POST.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from fhir_server.errors import BadRequest, MethodNotAllowed, Unprocessable
from fhir_server.interactions.model import FhirRequest, FhirResponse
from fhir_server.interactions.read import load_current
from fhir_server.operations import Operation

if TYPE_CHECKING:
    from fhir_server.service import FhirService

MAX_DEPTH = 2


def references(node: Any, path: str, out: list[tuple[str, str]]) -> None:
    """Collect (literal reference, FHIRPath of the element) pairs, skipping contained ones."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str) and not value.startswith("#"):
                out.append((value, path))
            elif key != "contained":
                references(value, f"{path}.{key}", out)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            references(value, f"{path}[{i}]", out)


def _relative(ref: str, base_url: str) -> str | None:
    if ref.startswith(base_url + "/"):
        ref = ref[len(base_url) + 1:]
    parts = ref.split("/")
    if len(parts) == 2 and all(parts) and "?" not in ref and ":" not in ref:
        return ref
    if len(parts) == 4 and parts[2] == "_history":
        return "/".join(parts[:2])
    return None


def assemble_document(svc: FhirService, req: FhirRequest, composition: dict[str, Any]) -> dict[str, Any]:
    base = req.base_url
    included: dict[str, dict[str, Any]] = {f"Composition/{composition['id']}": composition}
    frontier: list[tuple[dict[str, Any], str]] = [(composition, "Composition")]
    for depth in range(MAX_DEPTH):
        found: list[tuple[str, str]] = []
        for resource, path in frontier:
            references(resource, path, found)
        frontier = []
        for ref, path in found:
            key = _relative(ref, base)
            if key is None or key in included:
                continue
            res_type, res_id = key.split("/")
            stored = svc.repo.read(res_type, res_id)
            if stored is None or stored.deleted or stored.content is None or not svc.visible(req, stored):
                if depth == 0:
                    raise Unprocessable(
                        f"Referenced resource {key} does not exist; the document cannot be assembled",
                        f"Tài nguyên được tham chiếu {key} không tồn tại; không thể lập tài liệu",
                        expression=f"{path}.reference")
                continue
            resource = orjson.loads(stored.content)
            included[key] = resource
            frontier.append((resource, res_type))
    return {
        "resourceType": "Bundle",
        "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid.uuid4()}"},
        "type": "document",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "entry": [{"fullUrl": f"{base}/{key}", "resource": resource} for key, resource in included.items()],
    }


def document(svc: FhirService, req: FhirRequest) -> FhirResponse:
    # [base]/Composition/[id]/$document, or [base]/Composition/$document?id=[id] (R4 OperationDefinition).
    res_id = req.res_id or req.param("id")
    if not res_id:
        raise BadRequest("$document needs the Composition id (in the URL or the 'id' parameter)",
                         "$document cần id của Composition (trong URL hoặc tham số 'id')", expression="id")
    stored = load_current(svc, FhirRequest(method="GET", res_type="Composition", res_id=res_id,
                                           principal=req.principal, base_url=req.base_url, uow=req.uow))
    assert stored.content is not None
    bundle = assemble_document(svc, req, orjson.loads(stored.content))
    persist = req.param("persist")
    if persist is None and isinstance(req.body, dict) and req.body.get("resourceType") == "Parameters":
        persist = next((str(p.get("valueBoolean")).lower() for p in req.body.get("parameter") or []
                        if isinstance(p, dict) and p.get("name") == "persist"), None)
    if (persist or "").lower() == "true":
        if req.method != "POST":
            raise MethodNotAllowed("$document with persist=true stores the document Bundle and needs POST",
                                   "$document với persist=true lưu Bundle tài liệu nên cần POST",
                                   expression="persist", headers={"Allow": "POST"})
        created = svc.dispatch(FhirRequest(method="POST", res_type="Bundle", body=bundle, base_url=req.base_url,
                                           lang=req.lang, principal=req.principal, headers=dict(req.headers),
                                           source_address=req.source_address))
        return created
    return FhirResponse(status=200, resource=bundle)


OPERATIONS = [
    Operation(code="document", handler=document, instance=True, type_level=True, resource_types=("Composition",),
              definition="http://fhir.vntelehealth.org/r4/OperationDefinition/Composition-document",
              documentation="Assemble the document Bundle of a Composition (persist=true stores it)"),
]
