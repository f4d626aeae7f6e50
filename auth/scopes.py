"""SMART App Launch scopes (v2, with the v1 forms mapped): parsing, ceilings and intersections.

`patient/Encounter.rs`, `user/*.cruds`, `system/Observation.rs?category=laboratory`; v1
`.read` → `rs`, `.write` → `cud`, `.*` → `cruds`. Granted = requested ∩ ceiling, always
written back in the v2 form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode

from fhir_server.registry import RESOURCE_TYPES

ACTION_ORDER = "cruds"
CONTEXTS = ("patient", "user", "system")
# Scopes that are not resource scopes but are understood (and granted when asked for).
IDENTITY_SCOPES = frozenset({"openid", "fhirUser", "profile", "launch", "launch/patient", "offline_access",
                             "online_access"})
_RESOURCE_SCOPE = re.compile(r"^(patient|user|system)/(\*|[A-Z][A-Za-z]+)\.([a-z*]+)(\?.*)?$")
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}


@dataclass(frozen=True)
class ResourceScope:
    context: str
    res_type: str  # a type or "*"
    actions: frozenset[str]
    query: tuple[tuple[str, str], ...] = ()  # v2 query restriction (AND of parameters)

    def to_string(self) -> str:
        acts = "".join(a for a in ACTION_ORDER if a in self.actions)
        q = f"?{urlencode(self.query)}" if self.query else ""
        return f"{self.context}/{self.res_type}.{acts}{q}"


def parse_scope(text: str) -> ResourceScope | None:
    m = _RESOURCE_SCOPE.match(text)
    if not m:
        return None
    context, res_type, acts, query = m.groups()
    if res_type != "*" and res_type not in RESOURCE_TYPES:
        return None
    if acts in _V1 or (query is None and acts in ("read", "write")):
        acts = _V1[acts]
    # v2: a subsequence of c r u d s in that order.
    it = iter(ACTION_ORDER)
    if not acts or not all(ch in it for ch in acts):
        return None
    params = tuple(parse_qsl(query[1:], keep_blank_values=False)) if query else ()
    if query and not params:
        return None
    return ResourceScope(context, res_type, frozenset(acts), params)


def split(scope: str | None) -> list[str]:
    return [s for s in (scope or "").split() if s]


def intersect(requested: str | None, ceiling: dict[str, frozenset[str]], contexts: frozenset[str]) -> str:
    """The granted scope string: requested ∩ ceiling (per type and action), in v2 form."""
    identity: list[str] = []
    per: dict[tuple[str, tuple[tuple[str, str], ...]], dict[str, set[str]]] = {}
    for text in split(requested):
        if text in IDENTITY_SCOPES:
            if text not in identity:
                identity.append(text)
            continue
        sc = parse_scope(text)
        if sc is None or sc.context not in contexts:
            continue
        types = list(ceiling) if sc.res_type == "*" else [sc.res_type]
        bucket = per.setdefault((sc.context, sc.query), {})
        for t in types:
            allowed = sc.actions & ceiling.get(t, frozenset())
            if allowed:
                bucket.setdefault(t, set()).update(allowed)
    out: list[str] = []
    for (context, query), by_type in per.items():
        if not by_type:
            continue
        if query:
            out += [ResourceScope(context, t, frozenset(a), query).to_string() for t, a in sorted(by_type.items())]
            continue
        common = set(ACTION_ORDER)
        for t in RESOURCE_TYPES:
            common &= by_type.get(t, set())
        if common:
            out.append(ResourceScope(context, "*", frozenset(common)).to_string())
        for t, acts in sorted(by_type.items()):
            extra = acts - common
            if extra:
                out.append(ResourceScope(context, t, frozenset(extra)).to_string())
    return " ".join(identity + out)


@dataclass(frozen=True)
class Grants:
    """What a granted scope set allows, per type and action; `queries` lists v2 restrictions."""

    actions: dict[str, frozenset[str]]
    # (type, action) → restrictions; an empty tuple means unrestricted for that pair.
    queries: dict[tuple[str, str], tuple[tuple[tuple[str, str], ...], ...]]
    contexts: frozenset[str]

    def allows(self, res_type: str, action: str) -> bool:
        return action in self.actions.get(res_type, frozenset())

    def restrictions(self, res_type: str, action: str) -> tuple[tuple[tuple[str, str], ...], ...]:
        return self.queries.get((res_type, action), ())


@lru_cache(maxsize=1024)
def grants_for(scopes: frozenset[str]) -> Grants:
    actions: dict[str, set[str]] = {}
    restricted: dict[tuple[str, str], list[tuple[tuple[str, str], ...]]] = {}
    unrestricted: set[tuple[str, str]] = set()
    contexts: set[str] = set()
    for text in scopes:
        sc = parse_scope(text)
        if sc is None:
            continue
        contexts.add(sc.context)
        for t in (RESOURCE_TYPES if sc.res_type == "*" else [sc.res_type]):
            actions.setdefault(t, set()).update(sc.actions)
            for a in sc.actions:
                if sc.query:
                    restricted.setdefault((t, a), []).append(sc.query)
                else:
                    unrestricted.add((t, a))
    queries = {k: tuple(v) for k, v in restricted.items() if k not in unrestricted}
    return Grants({t: frozenset(a) for t, a in actions.items()}, queries, frozenset(contexts))
