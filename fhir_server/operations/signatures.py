"""$sign and $verify-signature on document Bundles (issue #6).

- `POST Bundle/[id]/$sign` (right "sign"): sign a stored document Bundle with a key of the
  server's key store. Parameters: `key` (key id, required), `type` (author | coauthor |
  witness | verification | … or an ASTM E1762 code; default coauthor, author when final),
  `final` (boolean: the chair's or verification signature goes into `Bundle.signature`;
  after it the Bundle is immutable), `who` (Reference; default the key's owner, else the
  user). Every signing also stores a Provenance (target the Bundle, agent, signature), and
  from the first signing on the Composition the document was built from is immutable.
  Returns Parameters {provenance, bundle}.
- `GET|POST Bundle/[id]/$verify-signature`, `POST [base]/$verify-signature` and
  `POST Bundle/$verify-signature` (right "verify"): Parameters {valid, signature*}; the
  body is a document Bundle, a searchset/collection holding one and its Provenances, or
  Parameters with a `resource` part.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import orjson

from fhir_server.errors import BadRequest, Conflict, Forbidden, Unprocessable
from fhir_server.interactions.common import unit_of_work
from fhir_server.interactions.model import FhirRequest, FhirResponse
from fhir_server.interactions.read import load_current
from fhir_server.operations import Operation
from fhir_server.signatures.fhir_signature import provenance_for, sign_document, signature_type
from fhir_server.signatures.server import register_signed_document, signatures_of
from fhir_server.signatures.verify import NotADocument, is_document, to_parameters

if TYPE_CHECKING:
    from fhir_server.service import FhirService

BASE = "http://fhir.vntelehealth.org/r4/OperationDefinition"  # the definitions: profiles/build.py


def _params(req: FhirRequest) -> dict[str, Any]:
    """Parameters body parts and query parameters as {name: value}."""
    out: dict[str, Any] = {k: v for k, v in req.params}
    body = req.body
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        for p in body.get("parameter") or []:
            if not isinstance(p, dict) or "name" not in p:
                continue
            value = p.get("resource")
            if value is None:
                value = next((v for k, v in p.items() if k.startswith("value")), None)
            out[p["name"]] = value
    return out


def _load_document(svc: FhirService, req: FhirRequest) -> tuple[dict[str, Any], int]:
    stored = load_current(svc, FhirRequest(method="GET", res_type="Bundle", res_id=req.res_id,
                                           principal=req.principal, base_url=req.base_url, uow=req.uow))
    assert stored.content is not None
    bundle = orjson.loads(stored.content)
    if not is_document(bundle):
        raise Unprocessable(f"Bundle/{req.res_id} is not a document Bundle (type document, Composition first)",
                            f"Bundle/{req.res_id} không phải Bundle tài liệu (type document, Composition đầu tiên)",
                            expression="Bundle.type")
    return bundle, stored.version_id


def _provenances(svc: FhirService, req: FhirRequest, bundle_id: str) -> list[dict[str, Any]]:
    with svc.repo.read_connection() as conn:
        found = svc.search.match(conn, "Provenance", f"target=Bundle/{bundle_id}", limit=1000,
                                 boundary=svc.boundary(req))
    return [orjson.loads(p.content) for p in found if p.content and svc.visible(req, p)]


def _bool(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


# -- $sign ---------------------------------------------------------------------------------
def sign(svc: FhirService, req: FhirRequest) -> FhirResponse:
    params = _params(req)
    key_id = params.get("key")
    if not isinstance(key_id, str) or not key_id:
        raise BadRequest("$sign needs the parameter 'key' (a key id of the server's key store)",
                         "$sign cần tham số 'key' (mã khóa trong kho khóa của máy chủ)", expression="Parameters.key")
    config = signatures_of(svc)
    entry = config.keystore.get(key_id)
    if entry is None:
        raise BadRequest(f"Unknown signing key '{key_id}'", f"Không có khóa ký '{key_id}'",
                         expression="Parameters.key")
    principal = req.principal
    if principal is not None and not principal.is_admin and entry.owner and entry.owner != principal.user:
        raise Forbidden(f"Key '{key_id}' belongs to {entry.owner}, not to the signed-in user",
                        f"Khóa '{key_id}' thuộc về {entry.owner}, không phải người dùng đang đăng nhập")
    final = _bool(params.get("final"))
    type_value = params.get("type") or ("author" if final else "coauthor")
    coding = signature_type(type_value) if isinstance(type_value, str) else (
        type_value if isinstance(type_value, dict) and type_value.get("code") else None)
    if coding is None:
        raise BadRequest(f"Unknown signature type '{type_value}'", f"Loại chữ ký không hợp lệ '{type_value}'",
                         expression="Parameters.type")
    who = params.get("who")
    if not isinstance(who, dict):
        owner = entry.owner or (principal.user if principal is not None else None)
        if not owner:
            raise BadRequest("$sign needs 'who' (a Reference to the signing Practitioner)",
                             "$sign cần 'who' (tham chiếu tới người ký)", expression="Parameters.who")
        who = {"reference": owner}
    bundle, version = _load_document(svc, req)
    if final and "signature" in bundle:
        raise Conflict(f"Bundle/{req.res_id} already carries its final signature",
                       f"Bundle/{req.res_id} đã có chữ ký cuối cùng")
    signature = sign_document(bundle, entry.signer, who, [coding])
    comp_id = bundle["entry"][0]["resource"].get("id")
    provenance = provenance_for(f"Bundle/{req.res_id}", bundle, signature,
                                f"Composition/{comp_id}" if comp_id else None)
    svc.authorize_write(req, provenance)
    assert req.res_id is not None
    with unit_of_work(svc, req) as uow:
        out: list[dict[str, Any]] = []
        if final:
            result = uow.upsert("Bundle", req.res_id, {**bundle, "signature": signature}, if_match=version,
                                method="PUT")
            out.append({"name": "bundle", "resource": result.resource})
        else:
            out.append({"name": "bundle", "resource": bundle})
        created = uow.upsert("Provenance", str(uuid.uuid4()), provenance, method="POST")
        register_signed_document(svc, uow, req.res_id, bundle)
        out.insert(0, {"name": "provenance", "resource": created.resource})
    return FhirResponse(status=200, resource={"resourceType": "Parameters", "parameter": out})


# -- $verify-signature ---------------------------------------------------------------------
def verify_stored(svc: FhirService, req: FhirRequest) -> FhirResponse:
    bundle, _ = _load_document(svc, req)
    assert req.res_id is not None
    provs = _provenances(svc, req, req.res_id)
    report = signatures_of(svc).verifier.fresh().verify_package(bundle, provs, f"Bundle/{req.res_id}")
    return FhirResponse(status=200, resource=to_parameters(report, req.lang))


def verify_posted(svc: FhirService, req: FhirRequest) -> FhirResponse:
    body = req.body
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        body = _params(req).get("resource") or _params(req).get("bundle")
    if not isinstance(body, dict):
        raise BadRequest("POST a document Bundle (or Parameters with a 'resource' part)",
                         "Hãy gửi một Bundle tài liệu (hoặc Parameters có phần 'resource')")
    try:
        report = signatures_of(svc).verifier.fresh().verify_package(body)
    except NotADocument as exc:
        raise Unprocessable("The input is not a FHIR document Bundle (type document, a Composition first)",
                            "Dữ liệu gửi lên không phải Bundle tài liệu FHIR (type document, Composition đầu tiên)",
                            expression="Bundle.type") from exc
    return FhirResponse(status=200, resource=to_parameters(report, req.lang))


def verify_signature(svc: FhirService, req: FhirRequest) -> FhirResponse:
    return verify_stored(svc, req) if req.res_id else verify_posted(svc, req)


OPERATIONS = [
    Operation(code="sign", handler=sign, instance=True, resource_types=("Bundle",), affects_state=True,
              access="sign", definition=f"{BASE}/Bundle-sign",
              documentation="Sign a document Bundle with a key of the server's key store (JWS, detached)"),
    Operation(code="verify-signature", handler=verify_signature, system=True, type_level=True, instance=True,
              resource_types=("Bundle",), access="verify", definition=f"{BASE}/Bundle-verify-signature",
              documentation="Verify every signature of a document Bundle: Parameters {valid, signature*}"),
]
