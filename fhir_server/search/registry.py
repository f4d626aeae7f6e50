"""Search parameters as data: SearchParameter resources compiled once into extractors.

The R4 definitions (vendored from hl7.fhir.r4.examples@4.0.1) and any extra
SearchParameter resources (e.g. the Vietnamese profiles') are compiled at start-up: each
(base type, code) gets FHIRPath extractors (fhirpathpy with the R4 model, so choice types
like `medication as CodeableConcept` work). fhirpathpy lacks `resolve()`, so the R4 idiom
`X.where(resolve() is T)` is compiled as "references in X whose target type is T".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from fhirpathpy import compile as fhirpath_compile
from fhirpathpy.models import models

from fhir_server.search.hashing import param_key

R4_PARAMS = Path(__file__).resolve().parent.parent / "data" / "r4" / "search-parameters.json"
_RESOLVE_IS = re.compile(r"\.where\(resolve\(\) is (\w+)\)")
SUPPORTED_TYPES = {"token", "string", "reference", "date", "number", "quantity", "uri", "composite"}


@dataclass(frozen=True)
class Extractor:
    fn: Callable[..., list[Any]]
    target_type: str | None  # from `where(resolve() is T)`


@dataclass
class SearchParam:
    code: str
    type: str
    res_type: str
    url: str
    expression: str
    targets: tuple[str, ...]
    extractors: list[Extractor]
    documentation: str = ""
    components: list[tuple[SearchParam, Extractor]] = field(default_factory=list)

    @property
    def key(self) -> int:
        return param_key(self.res_type, self.code)

    def values(self, resource: dict[str, Any]) -> list[tuple[Any, str | None]]:
        out: list[tuple[Any, str | None]] = []
        for ex in self.extractors:
            out.extend((v, ex.target_type) for v in ex.fn(resource))
        return out


def _split_alternatives(expression: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in expression:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "|" and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current.strip())
    return parts


def _parts_for(expression: str, res_type: str) -> list[str]:
    parts = []
    for part in _split_alternatives(expression):
        bare = part.lstrip("(")
        if bare.startswith(f"{res_type}.") or bare == res_type:
            parts.append(part)
        elif bare.startswith(("Resource.", "DomainResource.")):
            parts.append(part.replace("Resource.", f"{res_type}.", 1).replace("Domain" + res_type, res_type))
    return parts


class PathWalker:
    """Compiled equivalent of a plain FHIRPath path (`Type.a.b`): most R4 parameters are one.

    Walks dicts and lists as FHIRPath navigation does, including choice types (`value` finds
    `valueQuantity`). tests/test_search_extraction.py checks it against fhirpathpy on every
    R4 example; anything more complex is evaluated by fhirpathpy itself.
    """

    def __init__(self, steps: list[str]) -> None:
        self.steps = steps

    def __call__(self, resource: Any, *_: Any) -> list[Any]:
        items = [resource]
        for step in self.steps:
            found: list[Any] = []
            for item in items:
                if not isinstance(item, dict):
                    continue
                if step in item:
                    values = [item[step]]
                else:
                    values = [v for k, v in item.items() if k.startswith(step) and len(k) > len(step)
                              and k[len(step)].isupper()]
                for v in values:
                    if isinstance(v, list):
                        found.extend(x for x in v if x is not None)
                    elif v is not None:
                        found.append(v)
            items = found
        return items


_PLAIN_PATH = re.compile(r"^[A-Z][A-Za-z]+(\.[a-z][A-Za-z]*)+$")


def _compile(part: str) -> Extractor:
    target = None
    m = _RESOLVE_IS.search(part)
    if m:
        target = m.group(1)
        part = _RESOLVE_IS.sub("", part)
    if _PLAIN_PATH.match(part):
        return Extractor(fn=PathWalker(part.split(".")[1:]), target_type=target)
    fn = fhirpath_compile(part, model=models["r4"])
    return Extractor(fn=fn, target_type=target)


class SearchRegistry:
    """(type, code) → compiled SearchParam, for the served types."""

    def __init__(self, served_types: Iterable[str], definitions: Iterable[dict[str, Any]]) -> None:
        self.served = set(served_types)
        self.params: dict[tuple[str, str], SearchParam] = {}
        self.by_url: dict[str, dict[str, Any]] = {}
        self.skipped: list[str] = []
        definitions = list(definitions)
        for d in definitions:
            if d.get("url"):
                self.by_url[d["url"]] = d
        for d in definitions:
            self.add(d)

    @classmethod
    def from_files(cls, served_types: Iterable[str], extra: Iterable[dict[str, Any]] = ()) -> SearchRegistry:
        bundle = orjson.loads(R4_PARAMS.read_bytes())
        return cls(served_types, [e["resource"] for e in bundle["entry"]] + list(extra))

    def add(self, d: dict[str, Any]) -> None:
        ptype, code = d.get("type"), d.get("code")
        expression = d.get("expression") or ""
        if ptype not in SUPPORTED_TYPES or not code or not expression:
            self.skipped.append(f"{code} ({ptype})")
            return
        for base in d.get("base", []):
            bases = self.served if base in ("Resource", "DomainResource") else {base} & self.served
            for res_type in bases:
                parts = _parts_for(expression, res_type)
                if not parts:
                    continue
                param = SearchParam(
                    code=code, type=ptype, res_type=res_type, url=d.get("url", ""), expression=expression,
                    targets=tuple(d.get("target", [])), extractors=[_compile(p) for p in parts],
                    documentation=(d.get("description") or "")[:300],
                )
                if ptype == "composite" and not self._compile_components(param, d):
                    continue
                self.params[(res_type, code)] = param

    def _compile_components(self, param: SearchParam, d: dict[str, Any]) -> bool:
        for comp in d.get("component", []):
            sub = self.by_url.get(comp.get("definition", ""))
            if sub is None or sub.get("type") not in ("token", "reference", "quantity", "date", "string", "uri"):
                self.skipped.append(f"{param.code} (composite component)")
                return False
            sub_param = SearchParam(code=sub["code"], type=sub["type"], res_type=param.res_type,
                                    url=sub.get("url", ""), expression=comp["expression"], targets=(),
                                    extractors=[])
            param.components.append((sub_param, _compile(comp["expression"])))
        return bool(param.components)

    def get(self, res_type: str, code: str) -> SearchParam | None:
        return self.params.get((res_type, code))

    def for_type(self, res_type: str) -> list[SearchParam]:
        return [p for (t, _), p in self.params.items() if t == res_type]

    def reference_params(self, res_type: str) -> list[SearchParam]:
        return [p for p in self.for_type(res_type) if p.type == "reference"]
