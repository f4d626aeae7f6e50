"""StructureDefinition differential → a compiled tree of element checks (done once, at start-up).

The base R4 structure is checked by ``fhir_server.validation.structure``; a profile adds only what its
differential constrains, so that is what is compiled: cardinality, fixed and pattern values, choice-type and
reference-target narrowing, required/extensible bindings against our ValueSets, slicing by value
(identifier ``system``, extension ``url``) with per-slice cardinality and constraints, and invariants —
FHIRPath expressions compiled with fhirpathpy, or, when marked with the ``server-rule`` extension, the
Python rule of that name (``fhir_server.profiles.rules``). Validation walks the tree over the resource JSON
and reports each issue at its FHIRPath location (``Patient.identifier[1]``), in Vietnamese and English.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fhirpathpy import compile as fhirpath_compile
from fhirpathpy.models import models

from fhir_server.errors import Issue
from fhir_server.profiles.fhirpath import Unsupported, compile_fast
from fhir_server.profiles.terminology import Terminology

TRANSLATION = "http://hl7.org/fhir/StructureDefinition/translation"
SERVER_RULE_SUFFIX = "/StructureDefinition/server-rule"
_FIRST_NAME = re.compile(r"^\s*\(?\s*([a-z][A-Za-z]*)")


@dataclass
class Constraint:
    key: str
    severity: str
    en: str
    vi: str
    expression: str
    fn: Callable[..., Any] | None  # compiled FHIRPath, or None for a server rule
    rule: str | None
    focus: str | None  # the first element the expression navigates to (for the issue location)


@dataclass
class Slice:
    name: str
    value: str | None
    node: Node


@dataclass
class Node:
    element_id: str
    name: str  # JSON name; for a choice element the prefix without [x]
    choice: bool = False
    min: int = 0
    max: int | None = None
    fixed: Any = None
    pattern: Any = None
    binding: tuple[str, str] | None = None  # (strength, ValueSet url)
    types: list[str] | None = None  # allowed choice types (JSON suffixes)
    targets: set[str] | None = None  # allowed reference target types
    constraints: list[Constraint] = field(default_factory=list)
    children: dict[str, Node] = field(default_factory=dict)
    slice_on: str | None = None  # discriminator path (system, url)
    slices: list[Slice] = field(default_factory=list)


@dataclass
class CompiledProfile:
    url: str
    name: str
    title: str
    res_type: str
    root: Node


@dataclass
class Context:
    """What validation of one resource knows: used by constraints and server rules."""

    resource: dict[str, Any]
    res_type: str
    mode: str
    profile: CompiledProfile | None = None
    services: Any = None  # the ProfileValidator (repository, terminology, settings)


def _translation(constraint: dict[str, Any]) -> str:
    for ext in (constraint.get("_human") or {}).get("extension", []):
        if ext.get("url") == TRANSLATION:
            parts = {e["url"]: next((v for k, v in e.items() if k.startswith("value")), None)
                     for e in ext.get("extension", [])}
            if parts.get("lang") == "vi" and parts.get("content"):
                return str(parts["content"])
    return str(constraint.get("human", ""))


def _compile_constraint(c: dict[str, Any]) -> Constraint:
    rule = next((e.get("valueCode") for e in c.get("extension", []) if e.get("url", "").endswith(SERVER_RULE_SUFFIX)),
                None)
    expression = c.get("expression", "")
    fn = None if rule else _evaluator(expression)
    m = _FIRST_NAME.match(expression)
    focus = m.group(1) if m and m.group(1) not in ("true", "false", "iif", "exists", "empty") else None
    return Constraint(key=c["key"], severity=c.get("severity", "error"), en=str(c.get("human", "")),
                      vi=_translation(c), expression=expression, fn=fn, rule=rule, focus=focus)


def _evaluator(expression: str) -> Callable[[Any, dict[str, Any]], list[Any]]:
    """The compiled fast path when the expression fits it, fhirpathpy otherwise (or when the data needs it)."""
    slow = fhirpath_compile(expression, model=models["r4"])
    fast = compile_fast(expression)
    if fast is None:
        return lambda node, env: list(slow(node, env))

    def run(node: Any, env: dict[str, Any]) -> list[Any]:
        try:
            return fast(node, env)
        except Unsupported:
            return list(slow(node, env))

    return run


def _segments(element_id: str) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for part in element_id.split(".")[1:]:
        name, _, slice_name = part.partition(":")
        out.append((name, slice_name or None))
    return out


def _node_for(root: Node, element_id: str) -> Node:
    node = root
    walked = element_id.split(".")[0]
    for name, slice_name in _segments(element_id):
        walked += "." + name
        child = node.children.get(name)
        if child is None:
            choice = name.endswith("[x]")
            child = Node(element_id=walked, name=name[:-3] if choice else name, choice=choice)
            node.children[name] = child
        node = child
        if slice_name:
            walked += ":" + slice_name
            found = next((s for s in node.slices if s.name == slice_name), None)
            if found is None:
                found = Slice(name=slice_name, value=None, node=Node(element_id=walked, name=node.name,
                                                                     choice=node.choice))
                node.slices.append(found)
            node = found.node
    return node


def _apply(node: Node, e: dict[str, Any]) -> None:
    if "min" in e:
        node.min = int(e["min"])
    if "max" in e:
        node.max = None if e["max"] == "*" else int(e["max"])
    for key, value in e.items():
        if key.startswith("fixed"):
            node.fixed = value
        elif key.startswith("pattern"):
            node.pattern = value
    binding = e.get("binding")
    if binding and binding.get("valueSet") and binding.get("strength") in ("required", "extensible"):
        node.binding = (binding["strength"], binding["valueSet"].split("|")[0])
    types = e.get("type")
    if types:
        codes = [t["code"] for t in types]
        if node.choice:
            node.types = [c[0].upper() + c[1:] for c in codes]
        targets = {p.rsplit("/", 1)[-1] for t in types for p in t.get("targetProfile", [])}
        if targets:
            node.targets = targets
    if e.get("slicing"):
        node.slice_on = e["slicing"]["discriminator"][0]["path"]
    for c in e.get("constraint", []):
        if c.get("source") in (None, "SELF") or not str(c.get("source", "")).startswith("http://hl7.org/"):
            node.constraints.append(_compile_constraint(c))


def _discriminators(node: Node, elements: dict[str, dict[str, Any]]) -> None:
    for child in node.children.values():
        if child.slice_on:
            for s in child.slices:
                target = s.node.children.get(child.slice_on)
                if target is not None and target.fixed is not None:
                    s.value = str(target.fixed)
                elif child.slice_on == "url":
                    types = elements.get(s.node.element_id, {}).get("type") or []
                    profiles = types[0].get("profile", []) if types else []
                    s.value = profiles[0] if profiles else None
        _discriminators(child, elements)
        for s in child.slices:
            _discriminators(s.node, elements)


def _tree(sd: dict[str, Any]) -> tuple[Node, dict[str, dict[str, Any]]]:
    res_type = sd["type"]
    root = Node(element_id=res_type, name=res_type)
    elements = {e["id"]: e for e in sd["differential"]["element"]}
    for e in sd["differential"]["element"]:
        node = root if e["id"] == res_type else _node_for(root, e["id"])
        _apply(node, e)
    return root, elements


def _inline_extensions(node: Node, elements: dict[str, dict[str, Any]], extensions: dict[str, Node]) -> None:
    """A slice typed with one of our extension definitions gets that definition's checks (value binding …)."""
    for child in node.children.values():
        for s in child.slices:
            types = elements.get(s.node.element_id, {}).get("type") or []
            url = (types[0].get("profile") or [None])[0] if types else None
            ext = extensions.get(url or "")
            if ext is not None:
                for name, sub in ext.children.items():
                    s.node.children.setdefault(name, sub)
            _inline_extensions(s.node, elements, extensions)
        _inline_extensions(child, elements, extensions)


def compile_profile(sd: dict[str, Any], extensions: dict[str, dict[str, Any]] | None = None) -> CompiledProfile:
    res_type = sd["type"]
    root, elements = _tree(sd)
    if extensions:
        _inline_extensions(root, elements, {url: _tree(e)[0] for url, e in extensions.items()})
    _discriminators(root, elements)
    return CompiledProfile(url=sd["url"], name=sd.get("name", sd["id"]), title=sd.get("title", ""), res_type=res_type,
                           root=root)


# ------------------------------------------------------------------------------ validation
RuleFn = Callable[[Context, Any, str, Constraint], list[Issue]]


def _items(node: Any, child: Node, loc: str) -> list[tuple[Any, str]]:
    if not isinstance(node, dict):
        return []
    if child.choice:
        n = len(child.name)
        keys = [k for k in node if k.startswith(child.name) and len(k) > n and k[n].isupper()]
    else:
        keys = [child.name] if child.name in node else []
    out: list[tuple[Any, str]] = []
    for key in keys:
        value = node[key]
        if isinstance(value, list):
            out.extend((v, f"{loc}.{key}[{i}]") for i, v in enumerate(value) if v is not None)
        elif value is not None:
            out.append((value, f"{loc}.{key}"))
    return out


def _contains(instance: Any, pattern: Any) -> bool:
    if isinstance(pattern, dict):
        return isinstance(instance, dict) and all(k in instance and _contains(instance[k], v)
                                                  for k, v in pattern.items())
    if isinstance(pattern, list):
        if not isinstance(instance, list):
            return False
        return all(any(_contains(i, p) for i in instance) for p in pattern)
    return bool(instance == pattern)


def _codings(value: Any) -> list[tuple[str | None, str]]:
    if isinstance(value, str):
        return [(None, value)]
    if isinstance(value, dict):
        if "coding" in value:
            return [(c.get("system"), c["code"]) for c in value.get("coding") or [] if isinstance(c, dict) and
                    isinstance(c.get("code"), str)]
        if isinstance(value.get("code"), str):
            return [(value.get("system"), value["code"])]
    return []


def _ref_type(reference: str) -> str | None:
    if reference.startswith(("#", "urn:")):
        return None
    parts = reference.split("/")
    if "_history" in parts:
        parts = parts[:parts.index("_history")]
    return parts[-2] if len(parts) >= 2 else None


class Walker:
    """Validates a resource against a compiled profile; collects issues."""

    def __init__(self, terminology: Terminology, rules: dict[str, RuleFn]) -> None:
        self.terminology = terminology
        self.rules = rules

    def validate(self, profile: CompiledProfile, ctx: Context) -> list[Issue]:
        out: list[Issue] = []
        ctx.profile = profile
        self._constraints(profile.root, ctx.resource, ctx.res_type, ctx, out)
        self._node(profile.root, [(ctx.resource, ctx.res_type)], ctx, out)
        return out

    def _node(self, node: Node, contexts: list[tuple[Any, str]], ctx: Context, out: list[Issue]) -> None:
        for child in node.children.values():
            for parent, loc in contexts:
                if not isinstance(parent, dict):
                    continue
                items = _items(parent, child, loc)
                self._cardinality(child, len(items), f"{loc}.{child.name}", ctx, out)
                self._values(child, items, ctx, out)
                if child.slices:
                    self._slices(child, items, loc, ctx, out)

    def _values(self, child: Node, items: list[tuple[Any, str]], ctx: Context, out: list[Issue]) -> None:
        for value, vloc in items:
            self._value(child, value, vloc, ctx, out)
            if child.constraints:
                self._constraints(child, value, vloc, ctx, out)
        if child.children and items:
            self._node(child, items, ctx, out)

    def _slices(self, child: Node, items: list[tuple[Any, str]], loc: str, ctx: Context, out: list[Issue]) -> None:
        key = child.slice_on or ""
        for s in child.slices:
            matched = [(v, vloc) for v, vloc in items if isinstance(v, dict) and s.value is not None and
                       v.get(key) == s.value]
            label = f"{loc}.{child.name}:{s.name}"
            where = f"{loc}.{child.name}.where({key}='{s.value}')" if s.value else f"{loc}.{child.name}"
            self._cardinality(s.node, len(matched), label, ctx, out, where=where)
            self._values(s.node, matched, ctx, out)

    def _cardinality(self, node: Node, count: int, loc: str, ctx: Context, out: list[Issue],
                     where: str | None = None) -> None:
        name = self._profile_name(ctx)
        if count < node.min:
            out.append(Issue(
                en=f"{loc}: at least {node.min} required by profile {name}, found {count}",
                vi=f"{loc}: hồ sơ {name} yêu cầu ít nhất {node.min}, hiện có {count}",
                code="required", expression=(where or loc,)))
        if node.max is not None and count > node.max:
            out.append(Issue(
                en=f"{loc}: at most {node.max} allowed by profile {name}, found {count}",
                vi=f"{loc}: hồ sơ {name} cho phép tối đa {node.max}, hiện có {count}",
                code="structure", expression=(where or loc,)))

    @staticmethod
    def _profile_name(ctx: Context) -> str:
        return ctx.profile.name if ctx.profile else ""

    def _value(self, node: Node, value: Any, loc: str, ctx: Context, out: list[Issue]) -> None:
        if node.fixed is not None and value != node.fixed:
            out.append(Issue(en=f"{loc} must be {node.fixed!r}", vi=f"{loc} phải là {node.fixed!r}", code="value",
                             expression=(loc,)))
        if node.pattern is not None and not _contains(value, node.pattern):
            out.append(Issue(en=f"{loc} must match the pattern {node.pattern}",
                             vi=f"{loc} phải khớp mẫu {node.pattern}", code="value", expression=(loc,)))
        if node.types is not None and node.choice:
            suffix = loc.rsplit(".", 1)[-1].split("[")[0][len(node.name):]
            if suffix not in node.types:
                out.append(Issue(en=f"{loc}: type {suffix} is not allowed here (allowed: {', '.join(node.types)})",
                                 vi=f"{loc}: kiểu {suffix} không được phép (cho phép: {', '.join(node.types)})",
                                 code="structure", expression=(loc,)))
        if node.targets is not None and isinstance(value, dict) and isinstance(value.get("reference"), str):
            target = _ref_type(value["reference"])
            if target is not None and target not in node.targets:
                allowed = ", ".join(sorted(node.targets))
                out.append(Issue(en=f"{loc}: a reference to {target} is not allowed (allowed: {allowed})",
                                 vi=f"{loc}: không được tham chiếu tới {target} (cho phép: {allowed})",
                                 code="structure", expression=(f"{loc}.reference",)))
        if node.binding is not None:
            self._binding(node.binding, value, loc, out)

    def _binding(self, binding: tuple[str, str], value: Any, loc: str, out: list[Issue]) -> None:
        strength, vs = binding
        if not self.terminology.knows_valueset(vs):
            return
        codings = _codings(value)
        if not codings:
            if strength == "required" and isinstance(value, dict) and value.get("text") and "coding" not in value:
                out.append(Issue(en=f"{loc}: a code from {vs} is required (text alone is not enough)",
                                 vi=f"{loc}: cần một mã thuộc {vs} (chỉ có văn bản là không đủ)",
                                 code="code-invalid", expression=(loc,)))
            return
        if any(self.terminology.contains(vs, system, code) for system, code in codings):
            return
        shown = ", ".join(f"{s}|{c}" if s else c for s, c in codings)
        if strength == "required":
            out.append(Issue(en=f"{loc}: the code {shown} is not in the required value set {vs}",
                             vi=f"{loc}: mã {shown} không thuộc tập giá trị bắt buộc {vs}",
                             code="code-invalid", expression=(loc,)))
        else:
            out.append(Issue(en=f"{loc}: the code {shown} is not in the extensible value set {vs}",
                             vi=f"{loc}: mã {shown} không thuộc tập giá trị mở rộng {vs}",
                             code="code-invalid", severity="warning", expression=(loc,)))

    def _constraints(self, node: Node, value: Any, loc: str, ctx: Context, out: list[Issue]) -> None:
        for c in node.constraints:
            if c.rule:
                fn = self.rules.get(c.rule)
                if fn is not None:
                    out.extend(fn(ctx, value, loc, c))
                continue
            if not isinstance(value, dict) or c.fn is None:
                continue
            try:
                result = c.fn(value, {"resource": ctx.resource, "rootResource": ctx.resource})
            except Exception as exc:
                out.append(Issue(en=f"{c.key}: could not be evaluated ({exc})", vi=f"{c.key}: không đánh giá được",
                                 code="invariant", severity="warning", expression=(loc,)))
                continue
            if result and not all(r is True for r in result):
                where = f"{loc}.{c.focus}" if c.focus else loc
                out.append(Issue(en=f"{c.key}: {c.en}", vi=f"{c.key}: {c.vi}", code="invariant",
                                 severity="warning" if c.severity == "warning" else "error", expression=(where,)))
