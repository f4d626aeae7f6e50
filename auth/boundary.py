"""Data boundaries as SQL predicates over the `resources` table (compiled from the policy links).

A boundary has an anchor: the Organizations of the principal (its own, or every Organization
of a province) or the principal's Patient. A resource is inside when one of its type's links
(policy.toml [owner], [consulted], [patient]) reaches the anchor, directly or through
resources that are themselves inside (depth-limited). The predicate is ANDed into the one
SQL statement that pages, counts, chains, `_has`, `_include` and `_revinclude`, so nothing
outside shows up, not even in `_total`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, column, exists, false, or_, select, text, true

from fhir_server.registry import RESOURCE_TYPES
from fhir_server.search.hashing import h64, param_key
from fhir_server.search.tables import search_reference, search_token
from fhir_server.storage.tables import resources

MAX_DEPTH = 3
SAFE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
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
    """Builds, once per principal and type, the uncorrelated SELECTs of the res_pk of resources inside.

    A resource is inside when `resources.res_pk IN (one of them)`; the SELECTs do not depend on
    the outer query, so they are built once and reused by every search, read and history query.
    (Index rows of deleted resources are removed, so links never reach a deleted resource.)
    """

    def __init__(self, links: dict[str, tuple[str, ...]], owner: dict[str, tuple[str, ...]], anchor: Anchor,
                 dialect: Any = None) -> None:
        self.links = links  # links for the top level (owner, or owner + consulted)
        self.owner = owner  # links used for the resources a link goes through
        self.anchor = anchor
        self.dialect = dialect
        self._cache: dict[tuple[str, int, bool], list[Any]] = {}
        self._compiled: dict[tuple[str, int, bool], list[Any]] = {}
        self._compiled_sql: dict[tuple[str, int, bool], list[str]] = {}
        self._inside_text: dict[tuple[str, str, int, bool], Any] = {}

    def inside(self, alias: Any, res_type: str, depth: int = MAX_DEPTH, top: bool = True) -> Any:
        selects = self.compiled(res_type, depth, top)
        if not selects:
            return false()
        name = getattr(alias, "name", None)
        # (an anonymous alias's name is a str subclass rendered at compile time: not cacheable by name)
        if self.dialect is not None and isinstance(name, str) and type(name) is str and SAFE_NAME.match(name):
            # One text clause per alias name, built once: composing the IN (…) OR IN (…) expression for
            # every search cost more than planning it.
            key = (name, res_type, depth, top)
            clause = self._inside_text.get(key)
            if clause is None:
                parts = [f"{name}.res_pk IN ({sql})" for sql in self._compiled_sql[(res_type, depth, top)]]
                clause = self._inside_text[key] = text(f"({' OR '.join(parts)})")
            return clause
        conds = [alias.c.res_pk.in_(s) for s in selects]
        return conds[0] if len(conds) == 1 else or_(*conds)

    def inside_row(self, alias: Any, res_type: str, depth: int = MAX_DEPTH, top: bool = True) -> Any:
        """The same rule, correlated to one row of `alias` (EXISTS all the way down): the plan for
        checking a single resource (read, vread), where the IN-sets of `inside` would be built whole."""
        table = self.links if top else self.owner
        conds = [c for link in table.get(res_type, ()) if (c := self._row_link(alias, res_type, link, depth))
                 is not None]
        if not conds:
            return false()
        return conds[0] if len(conds) == 1 else or_(*conds)

    def _row_link(self, alias: Any, res_type: str, link: str, depth: int) -> Any:
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
                       self.inside_row(src, src_type, depth - 1, top=False)))
        code, _, target = link.partition(">")
        ref = search_reference.alias()
        if not target:
            return exists(select(ref.c.res_pk).where(
                ref.c.res_pk == alias.c.res_pk, ref.c.param == param_key(res_type, code),
                ref.c.target_type == self.anchor.res_type, self.anchor.contains(ref.c.target_id)))
        if depth <= 0:
            return None
        tgt = resources.alias()
        return exists(
            select(ref.c.res_pk).select_from(ref.join(tgt, and_(tgt.c.res_type == ref.c.target_type,
                                                                 tgt.c.res_id == ref.c.target_id)))
            .where(ref.c.res_pk == alias.c.res_pk, ref.c.param == param_key(res_type, code),
                   ref.c.target_type == target, tgt.c.deleted.is_(False),
                   self.inside_row(tgt, target, depth - 1, top=False)))

    def compiled(self, res_type: str, depth: int = MAX_DEPTH, top: bool = True) -> list[Any]:
        """The SELECTs as SQL text (compiled once: SQLAlchemy then only sees a short text per statement).

        Values are rendered as literals; they are param hashes, type names and ids that match the FHIR
        id pattern (the authorizer checks anchor ids), so nothing needs quoting beyond what the dialect does.
        """
        key = (res_type, depth, top)
        if key not in self._compiled:
            selects = self.selects(res_type, depth, top)
            if self.dialect is None:
                self._compiled[key] = selects
            else:
                sqls = self._compiled_sql[key] = [
                    str(s.compile(dialect=self.dialect, compile_kwargs={"literal_binds": True})) for s in selects]
                self._compiled[key] = [text(sql).columns(column("res_pk")) for sql in sqls]
        return self._compiled[key]

    def selects(self, res_type: str, depth: int = MAX_DEPTH, top: bool = True) -> list[Any]:
        key = (res_type, depth, top)
        if key not in self._cache:
            table = self.links if top else self.owner
            self._cache[key] = [s for link in table.get(res_type, ()) if (s := self._link(res_type, link, depth))
                                is not None]
        return self._cache[key]

    def _ids_inside(self, res_type: str, depth: int) -> list[Any]:
        """SELECTs of the ids of resources of res_type inside (for links that go through them); each link
        adds one level of nesting, so the statements stay shallow (SQLite limits parser depth)."""
        out: list[Any] = []
        for link in self.owner.get(res_type, ()):
            if link == "_create":
                continue
            if link == "_self":
                if res_type == self.anchor.res_type:
                    me = resources.alias()
                    out.append(select(me.c.res_id).where(me.c.res_type == res_type, me.c.deleted.is_(False),
                                                         self.anchor.contains(me.c.res_id)))
                continue
            if link.startswith("<"):
                if depth <= 0:
                    continue
                src_type, _, code = link[1:].partition(".")
                src_pks = self.selects(src_type, depth - 1, top=False)
                if src_pks:
                    ref = search_reference.alias()
                    out.append(select(ref.c.target_id).where(
                        ref.c.param == param_key(src_type, code), ref.c.target_type == res_type,
                        _any_in(ref.c.res_pk, src_pks)))
                continue
            code, _, target = link.partition(">")
            ref = search_reference.alias()
            tgt = resources.alias()
            if not target:
                cond = and_(ref.c.target_type == self.anchor.res_type, self.anchor.contains(ref.c.target_id))
            else:
                if depth <= 0:
                    continue
                ids = self._ids_inside(target, depth - 1)
                if not ids:
                    continue
                cond = and_(ref.c.target_type == target, _any_in(ref.c.target_id, ids))
            out.append(select(tgt.c.res_id).select_from(tgt.join(ref, ref.c.res_pk == tgt.c.res_pk))
                       .where(tgt.c.res_type == res_type, ref.c.param == param_key(res_type, code), cond))
        return out

    def _link(self, res_type: str, link: str, depth: int) -> Any:
        if link == "_create":
            return None
        if link == "_self":
            if res_type != self.anchor.res_type:
                return None
            me = resources.alias()
            return select(me.c.res_pk).where(me.c.res_type == res_type, me.c.deleted.is_(False),
                                             self.anchor.contains(me.c.res_id))
        if link.startswith("<"):
            if depth <= 0:
                return None
            src_type, _, code = link[1:].partition(".")
            src_pks = self.selects(src_type, depth - 1, top=False)
            if not src_pks:
                return None
            ref = search_reference.alias()
            me = resources.alias()
            return (select(me.c.res_pk).select_from(me.join(ref, and_(ref.c.target_type == me.c.res_type,
                                                                         ref.c.target_id == me.c.res_id)))
                    .where(me.c.res_type == res_type, ref.c.param == param_key(src_type, code),
                           _any_in(ref.c.res_pk, src_pks)))
        code, _, target = link.partition(">")
        ref = search_reference.alias()
        if not target:
            target_cond = and_(ref.c.target_type == self.anchor.res_type, self.anchor.contains(ref.c.target_id))
        else:
            if depth <= 0:
                return None
            ids = self._ids_inside(target, depth - 1)
            if not ids:
                return None
            target_cond = and_(ref.c.target_type == target, _any_in(ref.c.target_id, ids))
        return select(ref.c.res_pk).where(ref.c.param == param_key(res_type, code), target_cond)


def _only(alias: str, keys: list[int]) -> str:
    """The join condition that keeps only the reference rows of these parameters (none: no row).

    The unary plus keeps the condition a filter on the (res_pk, param) index's rows of one resource:
    without it SQLite may pick the (param, target) index for `param = constant` and read every row
    of that parameter."""
    if not keys:
        return " AND 1 = 0"
    if len(keys) == 1:
        return f" AND +{alias}.param = {keys[0]}"
    return f" AND +{alias}.param IN ({', '.join(str(k) for k in keys)})"


def _any_in(column_: Any, selects: list[Any]) -> Any:
    return column_.in_(selects[0]) if len(selects) == 1 else or_(*[column_.in_(s) for s in selects])


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


class RowChecker:
    """The rule of `LinkCompiler.inside_row`, evaluated for one resource with a few plan-cheap lookups.

    The correlated statement is correct but expensive to run for one row on PostgreSQL (its EXISTS
    become hashed subplans over every resource of the facility, and planning it takes milliseconds).
    This walks the same links from the resource outwards instead: one indexed lookup per resource
    visited (its row and its `search_reference` rows; for a reverse link, the referring resources),
    short-circuiting on the first link that reaches the anchor. Only for anchors given as a list of
    ids (organization and patient boundaries); `fetch(sql, params) -> rows` runs one statement.
    Exactly the semantics of `inside_row` (tests/test_auth_rowcheck.py compares both on every row).
    """

    def __init__(self, compiler: LinkCompiler, paramstyle: str) -> None:
        assert isinstance(compiler.anchor.ids, list)
        self.links = compiler.links
        self.owner = compiler.owner
        self.anchor_type = compiler.anchor.res_type
        self.anchor_ids = frozenset(compiler.anchor.ids)
        m = self._mark = "%s" if paramstyle in ("format", "pyformat") else "?"
        # Only the reference parameters that the links of a resource's type follow are read (an
        # Appointment's participant is indexed under actor, patient, practitioner and location; and an
        # IN list of every followed parameter made SQLite probe the (res_pk, param) index once per value).
        self._keys: dict[tuple[str, str], int] = {}
        types = sorted(set(self.links) | set(self.owner))
        # A nested resource's row (it must not be deleted) and its references; the references of a
        # referring resource (reverse links) by its row number.
        self.node_sqls = {t: ("SELECT r.deleted, ref.param, ref.target_type, ref.target_id FROM resources r "
                              "LEFT JOIN search_reference ref ON ref.res_pk = r.res_pk"
                              f"{_only('ref', self._forward_keys(self.owner, t))} "
                              f"WHERE r.res_type = {m} AND r.res_id = {m}") for t in types}
        self.refs_sqls = {t: ("SELECT ref.param, ref.target_type, ref.target_id FROM search_reference ref "
                              f"WHERE ref.res_pk = {m}{_only('ref', self._forward_keys(self.owner, t))}")
                          for t in types}
        self.reverse_sql = ("SELECT src.res_pk FROM search_reference ref JOIN resources src ON src.res_pk = ref.res_pk "
                            f"WHERE ref.param = {m} AND ref.target_type = {m} AND ref.target_id = {m} "
                            f"AND src.deleted = {m}")
        self._two_levels: dict[str, str] = {}
        self._targets: dict[str, frozenset[str]] = {}
        self._shortcuts: dict[str, tuple[bool, frozenset[int], dict[tuple[int, str], frozenset[int]]]] = {}

    def two_levels_sql(self, res_type: str) -> str:
        """The resource's references and, in the same statement, the rows and references of what they
        point at: most boundaries are decided within these two levels, in one round trip. Only the
        parameters the links of these two levels follow are read (an IN list of every followed
        parameter made SQLite probe the (res_pk, param) index once per value, per row: 60 probes for
        an Appointment where 7 do)."""
        sql = self._two_levels.get(res_type)
        if sql is None:
            first = self._forward_keys(self.links, res_type)
            second = sorted({k for t in self._hop_targets(res_type) for k in self._forward_keys(self.owner, t)})
            m = self._mark
            sql = self._two_levels[res_type] = (
                "SELECT ref.param AS c0, ref.target_type AS c1, ref.target_id AS c2, t.deleted AS c3, "
                "ref2.param AS c4, ref2.target_type AS c5, ref2.target_id AS c6 "
                "FROM resources r JOIN search_reference ref ON ref.res_pk = r.res_pk"
                f"{_only('ref', first)} "
                "LEFT JOIN resources t ON t.res_type = ref.target_type AND t.res_id = ref.target_id "
                f"LEFT JOIN search_reference ref2 ON ref2.res_pk = t.res_pk{_only('ref2', second)} "
                f"WHERE r.res_type = {m} AND r.res_id = {m}")
        return sql

    def _hop_targets(self, res_type: str) -> frozenset[str]:
        """The types the top links of `res_type` go through (`param>Type`): the two-level statement
        reads their references whole."""
        targets = self._targets.get(res_type)
        if targets is None:
            targets = self._targets[res_type] = frozenset(
                link.partition(">")[2] for link in self.links.get(res_type, ())
                if not link.startswith(("<", "_")) and ">" in link)
        return targets

    def _forward_keys(self, table: dict[str, tuple[str, ...]], res_type: str) -> list[int]:
        return sorted({self._key(res_type, link.partition(">")[0]) for link in table.get(res_type, ())
                       if not link.startswith(("<", "_"))})

    def _key(self, res_type: str, code: str) -> int:
        key = self._keys.get((res_type, code))
        if key is None:
            key = self._keys[(res_type, code)] = param_key(res_type, code)
        return key

    TWO_LEVELS_WIDTH = 7

    def visible(self, fetch: Any, res_type: str, res_id: str) -> bool:
        """Is the stored (not deleted) resource inside? One statement for the first two levels."""
        return self.decide(fetch, res_type, res_id, fetch(self.two_levels_sql(res_type), (res_type, res_id)))

    def decide(self, fetch: Any, res_type: str, res_id: str, two_levels: list[Any]) -> bool:
        """`visible`, given the rows of `two_levels_sql` (read with the resource itself: `read_with`)."""
        if self._shortcut(res_type, res_id, two_levels):
            return True
        refs: dict[tuple[Any, Any, Any], None] = {}
        known: dict[tuple[str, str], tuple[bool, list[tuple[Any, Any, Any]]]] = {}
        targets = self._hop_targets(res_type)
        for p, tt, ti, t_deleted, p2, tt2, ti2 in two_levels:
            refs[(p, tt, ti)] = None
            if t_deleted is not None and tt in targets:  # the target exists (and its references were read)
                node = known.setdefault((tt, ti), (bool(t_deleted), []))
                if p2 is not None and (p2, tt2, ti2) not in node[1]:
                    node[1].append((p2, tt2, ti2))
        return self._inside(_Prefetched(fetch, self.node_sqls, known), res_type, res_id, list(refs), MAX_DEPTH,
                            top=True)

    def _shortcut(self, res_type: str, res_id: str, two_levels: list[Any]) -> bool:
        """The links most reads are decided by, checked straight on the fetched rows: the resource is
        the anchor (`_self`), one of its references points at the anchor (`param`), or points at a live
        resource that does (`param>Type` then `param`). Only ever answers "inside"; anything else is
        left to the full walk, which would find the same links first."""
        rules = self._shortcuts.get(res_type)
        if rules is None:
            rules = self._shortcuts[res_type] = self._compile_shortcut(res_type)
        is_self, direct, hops = rules
        anchor, ids = self.anchor_type, self.anchor_ids
        if is_self and res_id in ids:
            return True
        for p, tt, ti, t_deleted, p2, tt2, ti2 in two_levels:
            if p in direct and tt == anchor and ti in ids:
                return True
            second = hops.get((p, tt))
            if second is not None and t_deleted is not None and not t_deleted and p2 in second and \
                    tt2 == anchor and ti2 in ids:
                return True
        return False

    def _compile_shortcut(self, res_type: str) -> tuple[bool, frozenset[int], dict[tuple[int, str], frozenset[int]]]:
        links = self.links.get(res_type, ())
        is_self = "_self" in links and res_type == self.anchor_type
        direct = frozenset(self._key(res_type, link) for link in links
                           if not link.startswith(("<", "_")) and ">" not in link)
        hops: dict[tuple[int, str], frozenset[int]] = {}
        for link in links:
            code, _, target = link.partition(">")
            if target and not link.startswith(("<", "_")):
                second = frozenset(self._key(target, t_link) for t_link in self.owner.get(target, ())
                                   if not t_link.startswith(("<", "_")) and ">" not in t_link)
                if second:
                    hops[(self._key(res_type, code), target)] = second
        return is_self, direct, hops

    def _node(self, fetch: Any, res_type: str, res_id: str, depth: int) -> bool:
        rows = fetch(self.node_sqls[res_type], (res_type, res_id))
        if not rows or rows[0][0]:  # absent or deleted
            return False
        refs = [(p, tt, ti) for _d, p, tt, ti in rows if p is not None]
        return self._inside(fetch, res_type, res_id, refs, depth, top=False)

    def _inside(self, fetch: Any, res_type: str, res_id: str, refs: list[Any], depth: int, top: bool) -> bool:
        table = self.links if top else self.owner
        for link in table.get(res_type, ()):
            if link == "_create":
                continue
            if link == "_self":
                if res_type == self.anchor_type and res_id in self.anchor_ids:
                    return True
                continue
            if link.startswith("<"):
                if depth <= 0:
                    continue
                src_type, _, code = link[1:].partition(".")
                for (src_pk,) in fetch(self.reverse_sql, (self._key(src_type, code), res_type, res_id, False)):
                    src_refs = [tuple(r) for r in fetch(self.refs_sqls[src_type], (src_pk,))]
                    if self._inside_pk(fetch, src_type, src_pk, src_refs, depth - 1):
                        return True
                continue
            code, _, target = link.partition(">")
            key = self._key(res_type, code)
            if not target:
                if any(p == key and tt == self.anchor_type and ti in self.anchor_ids for p, tt, ti in refs):
                    return True
                continue
            if depth <= 0:
                continue
            for tid in {ti for p, tt, ti in refs if p == key and tt == target}:
                if self._node(fetch, target, tid, depth - 1):
                    return True
        return False

    def _inside_pk(self, fetch: Any, res_type: str, res_pk: int, refs: list[Any], depth: int) -> bool:
        """A referring resource (known to exist and not be deleted): needs its id only for `_self`."""
        res_id = None
        if "_self" in self.owner.get(res_type, ()) and res_type == self.anchor_type:
            rows = fetch(f"SELECT res_id FROM resources WHERE res_pk = {self._mark}", (res_pk,))
            res_id = rows[0][0] if rows else None
        return self._inside(fetch, res_type, res_id or "", refs, depth, top=False)


class _Prefetched:
    """A `fetch` that answers the node lookups of the second level from rows already fetched."""

    def __init__(self, fetch: Any, node_sqls: dict[str, str],
                 known: dict[tuple[str, str], tuple[bool, list[Any]]]) -> None:
        self.fetch = fetch
        self.node_sqls = node_sqls
        self.known = known

    def __call__(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        if sql is self.node_sqls.get(params[0]):
            hit = self.known.get((params[0], params[1]))
            if hit is not None:
                deleted, refs = hit
                return [(deleted, p, tt, ti) for p, tt, ti in refs] or [(deleted, None, None, None)]
        rows: list[Any] = self.fetch(sql, params)
        return rows
