"""Terminology operations over the project's CodeSystems and ValueSets (R4 valueset-operation-expand,
valueset-operation-validate-code, codesystem-operation-lookup).

- ``ValueSet/$expand`` and ``ValueSet/[id]/$expand``: ``url`` | ``valueSet`` | instance, ``filter``
  (accent-insensitive, word prefixes: ``nguyen`` finds ``Nguyễn``), ``count``, ``offset``,
  ``displayLanguage`` (``en`` uses the English designation), ``includeDesignations``, ``activeOnly``;
  answers the ValueSet with ``expansion`` (``total``, ``offset``, ``parameter``, ``contains``).
- ``ValueSet/$validate-code`` (type and instance): ``url``, ``code`` + ``system`` | ``coding`` |
  ``codeableConcept``, optional ``display``; answers Parameters ``result``, ``message``, ``display``.
- ``CodeSystem/$lookup``: ``system`` + ``code`` | ``coding``, ``property``; answers Parameters ``name``,
  ``version``, ``display``, ``designation``, ``property``; an unknown code is 404.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fhir_server.errors import BadRequest, NotFound
from fhir_server.interactions.model import FhirRequest, FhirResponse
from fhir_server.operations import Operation
from fhir_server.operations.params import first, integer, operation_inputs
from fhir_server.profiles.terminology import Concept, Terminology, default_terminology

if TYPE_CHECKING:
    from fhir_server.service import FhirService

MAX_COUNT = 1000
OD = "http://fhir.vntelehealth.org/r4/OperationDefinition/"


def _terminology(svc: FhirService) -> Terminology:
    found = getattr(svc, "terminology", None)
    return found if isinstance(found, Terminology) else default_terminology()


def _valueset_url(svc: FhirService, req: FhirRequest, inputs: dict[str, list[Any]], term: Terminology) -> str:
    if req.res_id is not None:
        for url, vs in term.valuesets.items():
            if vs.get("id") == req.res_id:
                return url
        raise NotFound(f"ValueSet/{req.res_id} is not one of the server's value sets",
                       f"ValueSet/{req.res_id} không phải tập giá trị của máy chủ")
    url = first(inputs, "url")
    if url is None and isinstance(first(inputs, "valueSet"), dict):
        url = first(inputs, "valueSet").get("url")
    if not url:
        raise BadRequest("Give the ValueSet: url, valueSet or ValueSet/[id]/$…",
                         "Cần chỉ rõ ValueSet: url, valueSet hoặc ValueSet/[id]/$…", expression="url")
    url = str(url).split("|")[0]
    if not term.knows_valueset(url):
        raise NotFound(f"Unknown ValueSet {url}", f"Không biết tập giá trị {url}", expression="url")
    return url


def _display(c: Concept, language: str | None) -> str:
    if language and language.lower().startswith("en"):
        return c.english() or c.display
    return c.display


def expand(svc: FhirService, req: FhirRequest) -> FhirResponse:
    inputs = operation_inputs(req)
    term = _terminology(svc)
    given = first(inputs, "valueSet")
    inline = isinstance(given, dict) and given.get("compose") and req.res_id is None and first(inputs, "url") is None
    url = "" if inline else _valueset_url(svc, req, inputs, term)
    text = first(inputs, "filter")
    offset = integer(inputs, "offset", 0) or 0
    count = integer(inputs, "count")
    language = first(inputs, "displayLanguage")
    designations = str(first(inputs, "includeDesignations")).lower() == "true"
    active_only = str(first(inputs, "activeOnly")).lower() == "true"
    concepts = term.expand_resource(given, text) if inline else term.expand(url, text)
    if active_only:
        concepts = [c for c in concepts if not c.inactive]
    total = len(concepts)
    page = concepts[offset:offset + min(count, MAX_COUNT)] if count is not None else concepts[offset:offset + MAX_COUNT]
    contains = []
    for c in page:
        item: dict[str, Any] = {"system": c.system, "code": c.code, "display": _display(c, language)}
        if c.version:
            item["version"] = c.version
        if c.abstract:
            item["abstract"] = True
        if c.inactive:
            item["inactive"] = True
        if designations and c.designations:
            item["designation"] = c.designations
        contains.append(item)
    parameters: list[dict[str, Any]] = []
    if text:
        parameters.append({"name": "filter", "valueString": str(text)})
    if count is not None:
        parameters.append({"name": "count", "valueInteger": count})
    parameters.append({"name": "offset", "valueInteger": offset})
    if language:
        parameters.append({"name": "displayLanguage", "valueCode": str(language)})
    source = given if inline else term.valuesets[url]
    vs = {k: v for k, v in source.items() if k not in ("compose", "text")}
    vs["expansion"] = {
        "identifier": f"urn:uuid:{uuid.uuid4()}",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "total": total, "offset": offset, "parameter": parameters,
    }
    if contains:
        vs["expansion"]["contains"] = contains
    return FhirResponse(status=200, resource=vs)


def _candidates(inputs: dict[str, list[Any]]) -> list[tuple[str | None, str, str | None]]:
    code, system, display = first(inputs, "code"), first(inputs, "system"), first(inputs, "display")
    if code is not None:
        return [(system, str(code), display)]
    coding = first(inputs, "coding")
    if isinstance(coding, dict) and coding.get("code"):
        return [(coding.get("system"), coding["code"], coding.get("display") or display)]
    cc = first(inputs, "codeableConcept")
    if isinstance(cc, dict):
        out = [(c.get("system"), c["code"], c.get("display")) for c in cc.get("coding") or [] if c.get("code")]
        if out:
            return out
    raise BadRequest("Give code (+ system), coding or codeableConcept",
                     "Cần code (+ system), coding hoặc codeableConcept", expression="code")


def validate_code(svc: FhirService, req: FhirRequest) -> FhirResponse:
    inputs = operation_inputs(req)
    term = _terminology(svc)
    url = _valueset_url(svc, req, inputs, term)
    vi = req.lang == "vi"
    messages: list[str] = []
    for system, code, display in _candidates(inputs):
        found = term.find_in_valueset(url, system, code)
        if found is None:
            messages.append(f"Mã {system or ''}|{code} không thuộc {url}" if vi else
                            f"The code {system or ''}|{code} is not in {url}")
            continue
        names = {found.display, *(str(d.get("value")) for d in found.designations)}
        params: list[dict[str, Any]] = [{"name": "result", "valueBoolean": True},
                                        {"name": "display", "valueString": found.display}]
        if display and display not in names:
            params[0]["valueBoolean"] = False
            params.insert(1, {"name": "message", "valueString":
                              f"Tên hiển thị '{display}' không đúng; đúng là '{found.display}'" if vi else
                              f"The display '{display}' is wrong; it should be '{found.display}'"})
        return FhirResponse(status=200, resource={"resourceType": "Parameters", "parameter": params})
    return FhirResponse(status=200, resource={"resourceType": "Parameters", "parameter": [
        {"name": "result", "valueBoolean": False}, {"name": "message", "valueString": "; ".join(messages)}]})


def _property_value(p: dict[str, Any]) -> dict[str, Any]:
    for key, value in p.items():
        if key.startswith("value"):
            return {key: value}
    return {"valueString": ""}


def lookup(svc: FhirService, req: FhirRequest) -> FhirResponse:
    inputs = operation_inputs(req)
    term = _terminology(svc)
    system, code = first(inputs, "system"), first(inputs, "code")
    coding = first(inputs, "coding")
    if code is None and isinstance(coding, dict):
        system, code = coding.get("system"), coding.get("code")
    if not system or not code:
        raise BadRequest("$lookup needs system and code (or coding)", "$lookup cần system và code (hoặc coding)",
                         expression="code")
    cs = term.codesystems.get(str(system))
    if cs is None:
        raise NotFound(f"Unknown code system {system}", f"Không biết hệ mã {system}", expression="system")
    concept = cs.get(str(code))
    if concept is None:
        raise NotFound(f"Code '{code}' not found in {system}", f"Không tìm thấy mã '{code}' trong {system}",
                       expression="code")
    wanted = {str(p) for p in inputs.get("property", [])}
    language = first(inputs, "displayLanguage")
    out: list[dict[str, Any]] = [{"name": "name", "valueString": cs.name}]
    if cs.version:
        out.append({"name": "version", "valueString": cs.version})
    out.append({"name": "display", "valueString": _display(concept, language)})
    for d in concept.designations:
        parts: list[dict[str, Any]] = []
        if d.get("language"):
            parts.append({"name": "language", "valueCode": d["language"]})
        if d.get("use"):
            parts.append({"name": "use", "valueCoding": d["use"]})
        parts.append({"name": "value", "valueString": str(d.get("value", ""))})
        out.append({"name": "designation", "part": parts})
    props = [{"code": "parent", "valueCode": concept.parent}] if concept.parent else []
    props += [{"code": "child", "valueCode": c} for c in concept.children]
    props += concept.properties
    for p in props:
        if wanted and p["code"] not in wanted:
            continue
        out.append({"name": "property", "part": [{"name": "code", "valueCode": p["code"]},
                                                 {"name": "value", **_property_value(p)}]})
    return FhirResponse(status=200, resource={"resourceType": "Parameters", "parameter": out})


OPERATIONS = [
    Operation(code="expand", handler=expand, type_level=True, instance=True, resource_types=("ValueSet",),
              definition=OD + "ValueSet-expand", documentation="Expand a ValueSet (accent-insensitive filter)"),
    Operation(code="validate-code", handler=validate_code, type_level=True, instance=True,
              resource_types=("ValueSet",), definition=OD + "ValueSet-validate-code",
              documentation="Is a code in a ValueSet"),
    Operation(code="lookup", handler=lookup, type_level=True, resource_types=("CodeSystem",),
              definition=OD + "CodeSystem-lookup", documentation="Look up a code of a CodeSystem"),
]
