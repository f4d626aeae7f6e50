"""Data boundaries as SQL predicates over the `resources` table (compiled from the policy links).

A boundary has an anchor: the Organizations of the principal (its own, or every Organization
of a province) or the principal's Patient. A resource is inside when one of its type's links
(policy.toml [owner], [consulted], [patient]) reaches the anchor, directly or through
resources that are themselves inside (depth-limited). The predicate is ANDed into the one
SQL statement that pages, counts, chains, `_has`, `_include` and `_revinclude`, so nothing
outside shows up, not even in `_total`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, false, or_, select, true

from fhir_server.registry import RESOURCE_TYPES
from fhir_server.search.hashing import h64, param_key
from fhir_server.search.tables import search_reference, search_token
from fhir_server.storage.tables import resources

MAX_DEPTH = 3
PROVINCE_PARAM = "address-province"
PROVINCE_SYSTEM = "http://fhir.vntelehealth.org/r4/CodeSystem/province"
PROVINCE_EXTENSION = "http://fhir.vntelehealth.org/r4/StructureDefinition/address-province"
PROVINCE_SEARCH_PARAMETER = {
    "resourceType": "SearchParameter", "id": "Organization-address-province",
    "url": "http://fhir.vntelehealth.org/r4/SearchParameter/Organization-address-province",
    "name": "address-province", "status": "active", "code": PROVINCE_PARAM, "base": ["Organization"],
    "type": "token",
    "description": "Province code (2 digits) of an Organization's address (extension address-province)",
    "expression": f"Organization.address.extension('{PROVINCE_EXTENSION}').value",
}


@dataclass(frozen=True)
class Anchor:
    """What the boundary is anchored on: ids of `res_type` (a list or a SQL subquery)."""

    res_type: str
    ids: Any  # list[str] | SQL select of ids

    def contains(self, column: Any) -> Any:
        return column.in_(self.ids)


def organizations_of_province(code: str) -> Any:
    tok = search_token.alias()
    org = resources.alias()
    return (select(org.c.res_id)
            .where(org.c.res_type == "Organization", org.c.deleted.is_(False),
                   org.c.res_pk.in_(select(tok.c.res_pk).where(
                       tok.c.param == param_key("Organization", PROVINCE_PARAM),
                       tok.c.hash_sys_code == h64("Organization", PROVINCE_PARAM, PROVINCE_SYSTEM, code)))))


class LinkCompiler:
    """Builds `inside(alias, type)` predicates from one links table for one anchor."""

    def __init__(self, links: dict[str, tuple[str, ...]], owner: dict[str, tuple[str, ...]], anchor: Anchor) -> None:
        self.links = links  # links for the top level (owner, or owner + consulted)
        self.owner = owner  # links used for the resources a link goes through
        self.anchor = anchor

    def inside(self, alias: Any, res_type: str, depth: int = MAX_DEPTH, top: bool = True) -> Any:
        table = self.links if top else self.owner
        conds = [c for link in table.get(res_type, ()) if (c := self._link(alias, res_type, link, depth)) is not None]
        if not conds:
            return false()
        return conds[0] if len(conds) == 1 else or_(*conds)

    def _link(self, alias: Any, res_type: str, link: str, depth: int) -> Any:
        if link == "_create":
            return None
        if link == "_self":
            return self.anchor.contains(alias.c.res_id) if res_type == self.anchor.res_type else None
        if link.startswith("<"):
            if depth <= 0:
                return None
            src_type, _, code = link[1:].partition(".")
            src = resources.alias()
            ref = search_reference.alias()
            return exists(
                select(ref.c.res_pk).select_from(ref.join(src, src.c.res_pk == ref.c.res_pk))
                .where(ref.c.param == param_key(src_type, code), ref.c.target_type == res_type,
                       ref.c.target_id == alias.c.res_id, src.c.deleted.is_(False),
                       self.inside(src, src_type, depth - 1, top=False)))
        code, _, target = link.partition(">")
        ref = search_reference.alias()
        if not target:
            target_cond = and_(ref.c.target_type == self.anchor.res_type, self.anchor.contains(ref.c.target_id))
        else:
            if depth <= 0:
                return None
            tgt = resources.alias()
            target_cond = and_(ref.c.target_type == target, ref.c.target_id.in_(
                select(tgt.c.res_id).where(tgt.c.res_type == target, tgt.c.deleted.is_(False),
                                           self.inside(tgt, target, depth - 1, top=False))))
        return alias.c.res_pk.in_(select(ref.c.res_pk).where(ref.c.param == param_key(res_type, code), target_cond))


class SqlBoundary:
    """The search `Boundary` of one principal (fhir_server/search/api.py)."""

    def __init__(self, per_type: dict[str, Any]) -> None:
        # type → None (no limit) | callable(alias) → predicate | False (nothing)
        self.per_type = per_type

    def predicate(self, resources_table: Any, res_type: str | None) -> Any:
        if res_type is None:
            parts = []
            for t in RESOURCE_TYPES:
                p = self._one(resources_table, t)
                parts.append(and_(resources_table.c.res_type == t, true() if p is None else p))
            return or_(*parts)
        return self._one(resources_table, res_type)

    def _one(self, table: Any, res_type: str) -> Any:
        rule = self.per_type.get(res_type, False)
        if rule is None:
            return None
        if rule is False:
            return false()
        return rule(table)

    def unrestricted(self, res_type: str) -> bool:
        return self.per_type.get(res_type, False) is None

    def nothing(self, res_type: str) -> bool:
        return self.per_type.get(res_type, False) is False
