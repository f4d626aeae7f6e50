"""In-memory terminology service over the CodeSystems and ValueSets of ``terminology/`` (compiled once).

Implements what R4 ``ValueSet/$expand``, ``ValueSet/$validate-code`` and ``CodeSystem/$lookup`` need:
compose ``include``/``exclude`` with ``system`` (whole CodeSystem), ``concept`` lists, ``filter``
(``is-a``, ``descendent-of``, ``=`` on a property) and ``valueSet`` imports. Every ValueSet is expanded
once at start-up; membership is a set lookup. Text filters are accent-insensitive (``nguyen`` finds
``Nguyễn``, ``d`` finds ``đ``) and match the start of any word of the display or of a designation.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from terminology import loader


def fold(text: str) -> str:
    """Lower-case, without diacritics (đ → d): the key of accent-insensitive matching."""
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()


_WORD = re.compile(r"[0-9a-z]+")


@dataclass
class Concept:
    system: str
    code: str
    display: str
    version: str | None = None
    designations: list[dict[str, Any]] = field(default_factory=list)
    properties: list[dict[str, Any]] = field(default_factory=list)
    parent: str | None = None
    children: list[str] = field(default_factory=list)
    abstract: bool = False
    inactive: bool = False
    search_words: tuple[str, ...] = ()
    compact: str = ""

    def english(self) -> str | None:
        for d in self.designations:
            if (d.get("language") or "").startswith("en"):
                return str(d.get("value"))
        return None

    def matches(self, text_filter: str) -> bool:
        """Every word of the (folded) filter starts some word of the display or a designation."""
        words = _WORD.findall(fold(text_filter))
        if all(any(w.startswith(f) for w in self.search_words) for f in words):
            return True
        joined = "".join(words)
        return bool(joined) and joined in self.compact


@dataclass
class CodeSystem:
    url: str
    version: str | None
    name: str
    resource: dict[str, Any]
    concepts: dict[str, Concept]
    case_sensitive: bool = True

    def get(self, code: str) -> Concept | None:
        found = self.concepts.get(code)
        if found is None and not self.case_sensitive:
            low = code.lower()
            found = next((c for k, c in self.concepts.items() if k.lower() == low), None)
        return found

    def descendants(self, code: str) -> list[str]:
        out: list[str] = []
        stack = list(self.concepts[code].children) if code in self.concepts else []
        while stack:
            c = stack.pop(0)
            out.append(c)
            stack.extend(self.concepts[c].children)
        return out


class UnknownValueSet(KeyError):
    pass


class Terminology:
    """CodeSystems by URL, ValueSets by URL with their expansion (ordered, no duplicates)."""

    def __init__(self, resources: Iterable[dict[str, Any]]) -> None:
        self.codesystems: dict[str, CodeSystem] = {}
        self.valuesets: dict[str, dict[str, Any]] = {}
        self.conceptmaps: dict[str, dict[str, Any]] = {}
        for r in resources:
            if r["resourceType"] == "CodeSystem":
                self.codesystems[r["url"]] = _compile_codesystem(r)
            elif r["resourceType"] == "ValueSet":
                self.valuesets[r["url"]] = r
            elif r["resourceType"] == "ConceptMap":
                self.conceptmaps[r["url"]] = r
        self._expansions: dict[str, list[Concept]] = {}
        self._members: dict[str, set[tuple[str, str]]] = {}
        for url in self.valuesets:
            self.expansion(url)

    # -- expansion ------------------------------------------------------------------------
    def expansion(self, url: str, _stack: tuple[str, ...] = ()) -> list[Concept]:
        url = url.split("|")[0]
        if url in self._expansions:
            return self._expansions[url]
        vs = self.valuesets.get(url)
        if vs is None or url in _stack:
            raise UnknownValueSet(url)
        compose = vs.get("compose") or {}
        included: dict[tuple[str, str], Concept] = {}
        for inc in compose.get("include", []):
            for c in self._select(inc, (*_stack, url)):
                included.setdefault((c.system, c.code), c)
        for exc in compose.get("exclude", []):
            for c in self._select(exc, (*_stack, url)):
                included.pop((c.system, c.code), None)
        concepts = list(included.values())
        self._expansions[url] = concepts
        self._members[url] = set(included)
        return concepts

    def _select(self, inc: dict[str, Any], stack: tuple[str, ...]) -> list[Concept]:
        system = inc.get("system")
        selected: list[Concept] | None = None
        if system:
            cs = self.codesystems.get(system)
            if inc.get("concept"):
                selected = []
                for ref in inc["concept"]:
                    known = cs.get(ref["code"]) if cs else None
                    display = ref.get("display") or (known.display if known else "")
                    designations = ref.get("designation") or (known.designations if known else [])
                    selected.append(_concept(system, ref["code"], display, designations,
                                             known.properties if known else [], version=inc.get("version"),
                                             extension=ref.get("extension")))
            elif cs is not None:
                selected = [c for c in cs.concepts.values() if _passes(cs, c, inc.get("filter", []))]
            else:
                selected = []
        for vs_url in inc.get("valueSet", []):
            members = self.expansion(vs_url, stack)
            keys = {(c.system, c.code) for c in members}
            selected = [c for c in (selected if selected is not None else members) if (c.system, c.code) in keys]
        return selected or []

    def expand_resource(self, vs: dict[str, Any], text_filter: str | None = None) -> list[Concept]:
        """Expand a ValueSet given in the request (not stored): its compose over the known CodeSystems."""
        compose = vs.get("compose") or {}
        included: dict[tuple[str, str], Concept] = {}
        for inc in compose.get("include", []):
            for c in self._select(inc, ()):
                included.setdefault((c.system, c.code), c)
        for exc in compose.get("exclude", []):
            for c in self._select(exc, ()):
                included.pop((c.system, c.code), None)
        concepts = list(included.values())
        return [c for c in concepts if c.matches(text_filter)] if text_filter else concepts

    def contains(self, vs_url: str, system: str | None, code: str) -> bool:
        members = self._members.get(vs_url.split("|")[0])
        if members is None:
            raise UnknownValueSet(vs_url)
        if system is None:
            return any(c == code for _, c in members)
        return (system, code) in members

    def knows_valueset(self, vs_url: str) -> bool:
        return vs_url.split("|")[0] in self._members

    def find_in_valueset(self, vs_url: str, system: str | None, code: str) -> Concept | None:
        for c in self.expansion(vs_url):
            if c.code == code and (system is None or c.system == system):
                return c
        return None

    def expand(self, vs_url: str, text_filter: str | None = None) -> list[Concept]:
        concepts = self.expansion(vs_url)
        if text_filter:
            concepts = [c for c in concepts if c.matches(text_filter)]
        return concepts

    def codes_of(self, vs_url: str) -> list[tuple[str, str]]:
        """(system, code) pairs: what the `:in` search modifier needs."""
        return [(c.system, c.code) for c in self.expansion(vs_url)]

    def lookup(self, system: str, code: str) -> Concept | None:
        cs = self.codesystems.get(system)
        return cs.get(code) if cs else None


def _concept(system: str, code: str, display: str, designations: list[dict[str, Any]],
             properties: list[dict[str, Any]], *, version: str | None = None, parent: str | None = None,
             extension: list[dict[str, Any]] | None = None) -> Concept:
    words: list[str] = _WORD.findall(fold(display)) + _WORD.findall(fold(code))
    for d in designations:
        words += _WORD.findall(fold(str(d.get("value", ""))))
    props = list(properties)
    for ext in extension or []:  # verification marks on ValueSet concepts (circular30)
        if ext.get("url", "").endswith("/verification-status") and ext.get("valueCode") == "unverified":
            props.append({"code": "status", "valueCode": "unverified"})
    inactive = any(p.get("code") in ("status", "inactive") and p.get("valueCode") in ("retired", "inactive")
                   for p in props)
    compact = " ".join(["".join(_WORD.findall(fold(display))),
                        *("".join(_WORD.findall(fold(str(d.get("value", ""))))) for d in designations)])
    return Concept(system=system, code=code, display=display, version=version, designations=list(designations),
                   properties=props, parent=parent, inactive=inactive, search_words=tuple(words), compact=compact)


def _compile_codesystem(r: dict[str, Any]) -> CodeSystem:
    concepts: dict[str, Concept] = {}

    def walk(items: list[dict[str, Any]], parent: str | None) -> None:
        for item in items:
            c = _concept(r["url"], item["code"], item.get("display", ""), item.get("designation", []),
                         item.get("property", []), version=r.get("version"), parent=parent)
            c.abstract = any(p.get("code") in ("notSelectable", "abstract") and p.get("valueBoolean")
                             for p in item.get("property", []))
            concepts[c.code] = c
            if parent:
                concepts[parent].children.append(c.code)
            walk(item.get("concept", []), c.code)

    walk(r.get("concept", []), None)
    return CodeSystem(url=r["url"], version=r.get("version"), name=r.get("name", ""), resource=r, concepts=concepts,
                      case_sensitive=r.get("caseSensitive", True))


def _passes(cs: CodeSystem, c: Concept, filters: list[dict[str, Any]]) -> bool:
    for f in filters:
        prop, op, value = f.get("property"), f.get("op"), f.get("value", "")
        if prop == "concept" and op == "is-a":
            if not (c.code == value or c.code in cs.descendants(value)):
                return False
        elif prop == "concept" and op == "descendent-of":
            if c.code not in cs.descendants(value):
                return False
        elif op == "=":
            if not any(p.get("code") == prop and str(next((v for k, v in p.items() if k.startswith("value")), ""))
                       == value for p in c.properties):
                return False
        else:
            return False  # unsupported filters select nothing rather than everything
    return True


@cache
def default_terminology() -> Terminology:
    """The project's terminology (terminology/*.json), compiled once per process."""
    return Terminology(loader.iter_resources())
