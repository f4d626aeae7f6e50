"""Ownership facts: which Organizations each stored resource belongs to, kept at write time.

The organization boundary of a read (policy.toml [owner] + [consulted]) is a walk over references,
up to three hops deep (an Appointment → its PractitionerRole → that role's Organization). Walking it
on every read cost a PostgreSQL read more than the read itself (bench/README.md, #5). The walk's
answer does not depend on who asks: the set of Organizations a resource reaches is the same for
every facility, and a facility's boundary holds the resource when its own Organization is in that
set. So the set is computed when something it depends on is written, in the same transaction, and
a bounded read becomes one statement with one extra index probe (`READ_CONDITION`).

What a resource's set depends on: its own followed references; the live resources those reach (their
existence and references); and, for reverse links (a Practitioner belongs through the PractitionerRoles
that point at it), which live resources point at it. A write of X therefore refreshes X and every
resource within MAX_DEPTH reverse hops of X or of what X points at through a reverse link (the
"dependants"), and nothing at all when the write changed none of X's followed references.

Concurrency (PostgreSQL; SQLite serialises writers): a transaction that computes a set takes a shared
advisory lock on each resource (type, id) it looks at, before looking; a writer takes exclusive locks
on what its write changes (X and the reverse-link targets) before finding the dependants. Either the
writer waits for the walker to commit, and then finds the walker's new resource among the dependants,
or the walker waits for the writer, and then sees the new state (two-phase locking). A transaction
that would take more than LOCK_BUDGET node locks takes one global exclusive lock instead.

Exactly the rule of `auth.boundary.RowChecker` and `LinkCompiler.inside_row` (tests/test_auth_rowcheck.py
and tests/test_auth_owner_facts.py compare them on every row, after moves, deletes and re-links).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Index, PrimaryKeyConstraint, String, Table, text

from auth.boundary import MAX_DEPTH, SAFE_NAME
from fhir_server.search.hashing import param_key
from fhir_server.search.tables import search_reference
from fhir_server.storage.tables import SurrogateKey, metadata

ANCHOR = "Organization"
CHUNK = 400
LOCK_BUDGET = 128
GLOBAL_LOCK = 727_275  # next to the schema lock (fhir_server/app.py)

owner_facts = Table(
    "auth_owner_facts", metadata,
    Column("res_pk", SurrogateKey, nullable=False),
    Column("org_id", String(64), nullable=False),
    PrimaryKeyConstraint("res_pk", "org_id", name="pk_auth_owner_facts"),
    Index("ix_auth_owner_facts_org", "org_id", "res_pk"),  # a search's boundary: the rows of one facility
)

# The bounded read's condition, correlated to the `resources` row being read (one index probe).
READ_CONDITION = "SELECT 1 FROM auth_owner_facts o WHERE o.res_pk = resources.res_pk AND o.org_id = {mark}"


_INSIDE: dict[tuple[str, str], Any] = {}


def facts_inside(alias: Any, org: str) -> Any:
    """A search's boundary for one facility: the row belongs to `org` (ANDed into the one statement
    that pages, counts, includes and chains). `org` matches the FHIR id pattern (the caller checks),
    so it is safe as a literal; the clause is built once per alias name."""
    name = getattr(alias, "name", None)
    if isinstance(name, str) and type(name) is str and SAFE_NAME.match(name):
        clause = _INSIDE.get((name, org))
        if clause is None:
            if len(_INSIDE) > 4096:
                _INSIDE.clear()
            clause = _INSIDE[(name, org)] = text(
                f"{name}.res_pk IN (SELECT f.res_pk FROM auth_owner_facts f WHERE f.org_id = '{org}')")
        return clause
    return alias.c.res_pk.in_(text(f"SELECT f.res_pk FROM auth_owner_facts f WHERE f.org_id = '{org}'")
                              .columns(owner_facts.c.res_pk))


@dataclass(frozen=True)
class Spec:
    kind: str  # self | direct | hop | reverse
    key: int = 0  # the reference parameter's key (for reverse: the source type's parameter)
    other: str = ""  # hop: the target type; reverse: the source type


def _specs(res_type: str, links: Iterable[str]) -> tuple[Spec, ...]:
    out = []
    for link in links:
        if link == "_create":
            continue
        if link == "_self":
            if res_type == ANCHOR:
                out.append(Spec("self"))
            continue
        if link.startswith("<"):
            src, _, code = link[1:].partition(".")
            out.append(Spec("reverse", param_key(src, code), src))
            continue
        code, _, target = link.partition(">")
        key = param_key(res_type, code)
        out.append(Spec("hop", key, target) if target else Spec("direct", key))
    return tuple(out)


class OwnerGraph:
    """The link tables compiled once: what each type's set follows, and who depends on whom."""

    def __init__(self, read_links: dict[str, tuple[str, ...]], owner_links: dict[str, tuple[str, ...]]) -> None:
        self.top = {t: specs for t, links in read_links.items() if (specs := _specs(t, links))}
        self.nested = {t: specs for t, links in owner_links.items() if (specs := _specs(t, links))}
        # written type → {param key: types whose resources X points at and that follow it back (reverse)}
        self.reverse_targets: dict[str, dict[int, set[str]]] = {}
        # written type → [(dependant type, its parameter key)] for dependants that point at X (hop)
        self.referrers: dict[str, list[tuple[str, int]]] = {}
        # written type → the parameter keys whose change can change anyone's set
        self.followed: dict[str, set[int]] = {}
        for table in (self.top, self.nested):
            for t, specs in table.items():
                for s in specs:
                    if s.kind in ("direct", "hop"):
                        self.followed.setdefault(t, set()).add(s.key)
                    if s.kind == "hop" and (t, s.key) not in self.referrers.get(s.other, []):
                        self.referrers.setdefault(s.other, []).append((t, s.key))
                    if s.kind == "reverse":
                        self.reverse_targets.setdefault(s.other, {}).setdefault(s.key, set()).add(t)
                        self.followed.setdefault(s.other, set()).add(s.key)
        self.relevant = frozenset(self.top) | frozenset(self.followed) | frozenset(self.referrers)
        digest = hashlib.sha256(repr((sorted(read_links.items()), sorted(owner_links.items()), MAX_DEPTH)).encode())
        self.mark = f"auth-owner-facts-{digest.hexdigest()[:16]}"


class _Sql:
    """The few statements, as driver SQL for the connection's dialect (IN lists built per call)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.postgres = conn.dialect.name == "postgresql"
        self.m = "%s" if conn.dialect.paramstyle in ("format", "pyformat") else "?"

    def rows(self, sql: str, params: Iterable[Any]) -> list[Any]:
        return list(self.conn.exec_driver_sql(sql, tuple(params)).all())

    def marks(self, n: int) -> str:
        return ", ".join([self.m] * n)

    def refs(self, pks: list[int]) -> dict[int, list[tuple[int, str, str]]]:
        out: dict[int, list[tuple[int, str, str]]] = {}
        for chunk in _chunks(pks):
            for pk, p, tt, ti in self.rows(
                    "SELECT res_pk, param, target_type, target_id FROM search_reference "
                    f"WHERE res_pk IN ({self.marks(len(chunk))}) AND target_id IS NOT NULL", chunk):
                out.setdefault(pk, []).append((p, tt, ti))
        return out

    def live(self, res_type: str, ids: list[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for chunk in _chunks(ids):
            out.update((i, pk) for i, pk in self.rows(
                f"SELECT res_id, res_pk FROM resources WHERE res_type = {self.m} "
                f"AND res_id IN ({self.marks(len(chunk))}) AND deleted = {self.m}", [res_type, *chunk, False]))
        return out

    def live_refs(self, res_type: str, ids: list[str]) -> tuple[dict[str, int], dict[int, list[tuple[int, str, str]]]]:
        """`live`, with the references of each (what the next hop of a walk reads): one round trip."""
        pks: dict[str, int] = {}
        refs: dict[int, list[tuple[int, str, str]]] = {}
        for chunk in _chunks(ids):
            for i, pk, p, tt, ti in self.rows(
                    "SELECT r.res_id, r.res_pk, ref.param, ref.target_type, ref.target_id FROM resources r "
                    "LEFT JOIN search_reference ref ON ref.res_pk = r.res_pk AND ref.target_id IS NOT NULL "
                    f"WHERE r.res_type = {self.m} AND r.res_id IN ({self.marks(len(chunk))}) AND r.deleted = {self.m}",
                    [res_type, *chunk, False]):
                pks[i] = pk
                got = refs.setdefault(pk, [])
                if p is not None:
                    got.append((p, tt, ti))
        return pks, refs

    def referrers(self, keys: list[int], target_type: str, ids: list[str]) -> list[Any]:
        """(res_pk, res_type, res_id, param, target_id) of live resources pointing at these."""
        out: list[Any] = []
        for chunk in _chunks(ids):
            out += self.rows(
                "SELECT src.res_pk, src.res_type, src.res_id, ref.param, ref.target_id FROM search_reference ref "
                "JOIN resources src ON src.res_pk = ref.res_pk "
                f"WHERE ref.target_type = {self.m} AND ref.target_id IN ({self.marks(len(chunk))}) "
                f"AND ref.param IN ({self.marks(len(keys))}) AND src.deleted = {self.m}",
                [target_type, *chunk, *keys, False])
        return out

    def nodes(self, pks: list[int]) -> list[Any]:
        out: list[Any] = []
        for chunk in _chunks(pks):
            out += self.rows(f"SELECT res_pk, res_type, res_id FROM resources WHERE res_pk IN "
                             f"({self.marks(len(chunk))}) AND deleted = {self.m}", [*chunk, False])
        return out

    def facts(self, pks: list[int]) -> set[tuple[int, str]]:
        out: set[tuple[int, str]] = set()
        for chunk in _chunks(pks):
            out.update((pk, org) for pk, org in self.rows(
                f"SELECT res_pk, org_id FROM auth_owner_facts WHERE res_pk IN ({self.marks(len(chunk))})", chunk))
        return out

    def remove_facts(self, pairs: Iterable[tuple[int, str]]) -> None:
        rows = list(pairs)
        if rows:
            self.conn.exec_driver_sql(
                f"DELETE FROM auth_owner_facts WHERE res_pk = {self.m} AND org_id = {self.m}", rows)

    def add_facts(self, pairs: Iterable[tuple[int, str]]) -> None:
        rows = list(pairs)
        if rows:
            verb = "INSERT" if self.postgres else "INSERT OR IGNORE"
            tail = " ON CONFLICT DO NOTHING" if self.postgres else ""
            self.conn.exec_driver_sql(
                f"{verb} INTO auth_owner_facts (res_pk, org_id) VALUES ({self.m}, {self.m}){tail}", rows)

    # -- locks (PostgreSQL) ------------------------------------------------------------------
    def lock(self, nodes: Iterable[tuple[str, str]], exclusive: bool,
             also_shared: Iterable[tuple[str, str]] = ()) -> None:
        """Advisory locks on these (type, id), exclusive or shared (and `also_shared` shared), in one
        statement (each group in key order; the global lock, shared, with the first)."""
        if not self.postgres:
            return  # SQLite: BEGIN IMMEDIATE already serialises every writer
        state = txn_state(self.conn)
        if state["global"] == "exclusive":
            return
        held_any = state["exclusive"] | state["shared"]
        keys = sorted({_lock_key(t, i) for t, i in nodes} - (state["exclusive"] if exclusive else held_any))
        shared = sorted({_lock_key(t, i) for t, i in also_shared} - held_any - set(keys))
        excl, shr = (keys, shared) if exclusive else ([], sorted({*keys, *shared}))
        first = state["global"] is None  # every upkeep holds the global lock shared (the builder: exclusive)
        if not excl and not shr and not first:
            return
        if len(held_any) + len(excl) + len(shr) > LOCK_BUDGET:
            # too many node locks for PostgreSQL's lock table: stop everyone else's fact upkeep instead
            self.conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({GLOBAL_LOCK})")
            state["global"] = "exclusive"
            return
        # (UNION ALL runs its branches in order: the global lock first)
        parts = [f"SELECT pg_advisory_xact_lock_shared({GLOBAL_LOCK})"] if first else []
        params: list[Any] = []
        if excl:
            parts.append("SELECT pg_advisory_xact_lock(k) FROM unnest(%s::bigint[]) AS k")
            params.append(excl)
        if shr:
            parts.append("SELECT pg_advisory_xact_lock_shared(k) FROM unnest(%s::bigint[]) AS k")
            params.append(shr)
        self.conn.exec_driver_sql(" UNION ALL ".join(parts), tuple(params))
        state["global"] = state["global"] or "shared"
        state["exclusive"].update(excl)
        state["shared"].update(shr)


def txn_state(conn: Any) -> dict[str, Any]:
    """This transaction's locks and pending old references (`conn.info` outlives a transaction)."""
    txn = conn.get_transaction()
    state: dict[str, Any] | None = conn.info.get("owner_facts")
    if state is None or state["txn"] is not txn:
        state = conn.info["owner_facts"] = {"txn": txn, "global": None, "shared": set(), "exclusive": set(),
                                            "old": {}}
    return state


def _lock_key(res_type: str, res_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{res_type}/{res_id}".encode(), digest_size=8).digest(), "big",
                          signed=True)


def _chunks(items: list[Any]) -> Iterable[list[Any]]:
    for i in range(0, len(items), CHUNK):
        yield items[i:i + CHUNK]


Node = tuple[int, str, str, bool, int]  # res_pk, type, id, top level?, depth left


class OwnerFacts:
    """Computes the sets (`compute`), and keeps them as writes change what they depend on (`changed`)."""

    def __init__(self, graph: OwnerGraph) -> None:
        self.graph = graph

    # -- the walk --------------------------------------------------------------------------
    def compute(self, conn: Any, origins: dict[Any, Node],
                known: dict[int, Iterable[tuple[int, str, str]]] | None = None) -> dict[Any, set[str]]:
        """The Organizations each origin (a live resource, walked from the top or as a node that a
        walk goes through, with the depth it has left) reaches: the rule of RowChecker, for many
        resources at once, hop by hop (a few statements per hop, whatever the fan-out). `known`: the
        followed references of resources just written (not read again)."""
        q = _Sql(conn)
        g = self.graph
        facts: dict[Any, set[str]] = {key: set() for key in origins}
        frontier: dict[Node, set[Any]] = {}
        for key, node in origins.items():
            frontier.setdefault(node, set()).add(key)
        have: dict[int, list[tuple[int, str, str]]] = {pk: list(r) for pk, r in (known or {}).items()}
        while frontier:
            q.lock(((t, i) for _pk, t, i, _top, _d in frontier), exclusive=False)
            pks = {pk for pk, _t, _i, _top, _d in frontier}
            refs = q.refs(sorted(pks - set(have)))
            for pk in pks & set(have):
                refs[pk] = have[pk]
            hops: dict[tuple[str, str, int], set[Any]] = {}  # (type, id, depth left there) → origins
            # (source type, target type) → {(source's parameter key, target id, depth left there): origins}
            backs: dict[tuple[str, str], dict[tuple[int, str, int], set[Any]]] = {}
            for (pk, t, i, top, depth), origs in frontier.items():
                for s in (g.top if top else g.nested).get(t, ()):
                    if s.kind == "self":
                        for o in origs:
                            facts[o].add(i)
                    elif s.kind == "direct":
                        for p, tt, ti in refs.get(pk, ()):
                            if p == s.key and tt == ANCHOR:
                                for o in origs:
                                    facts[o].add(ti)
                    elif depth > 0 and s.kind == "hop":
                        for p, tt, ti in refs.get(pk, ()):
                            if p == s.key and tt == s.other:
                                hops.setdefault((tt, ti, depth - 1), set()).update(origs)
                    elif depth > 0 and s.kind == "reverse":
                        backs.setdefault((s.other, t), {}).setdefault((s.key, i, depth - 1), set()).update(origs)
            nxt: dict[Node, set[Any]] = {}
            q.lock(((tt, ti) for tt, ti, _d in hops), exclusive=False)
            by_type: dict[str, set[str]] = {}
            for tt, ti, _d in hops:
                by_type.setdefault(tt, set()).add(ti)
            for tt, ids in by_type.items():
                live, their_refs = q.live_refs(tt, sorted(ids))  # (locked above: read after the lock)
                have.update(their_refs)
                for (ht, ti, d), origs in hops.items():
                    if ht == tt and ti in live:
                        nxt.setdefault((live[ti], tt, ti, False, d), set()).update(origs)
            for (src_type, t), wanted in backs.items():
                found: dict[tuple[int, str], list[tuple[int, str]]] = {}
                for src_pk, src_t, src_id, p, ti in q.referrers(sorted({k for k, _i, _d in wanted}), t,
                                                                sorted({i for _k, i, _d in wanted})):
                    if src_t == src_type:
                        found.setdefault((p, ti), []).append((src_pk, src_id))
                for (k, i, d), origs in wanted.items():
                    for src_pk, src_id in found.get((k, i), ()):
                        nxt.setdefault((src_pk, src_type, src_id, False, d), set()).update(origs)
            frontier = nxt
        return facts

    # -- what a write changes ----------------------------------------------------------------
    def followed_refs(self, res_type: str, refs: Iterable[tuple[int, str, str]]) -> frozenset[tuple[int, str, str]]:
        keys = self.graph.followed.get(res_type, set())
        return frozenset(r for r in refs if r[0] in keys)

    def changed(self, conn: Any, res_pk: int, res_type: str, res_id: str,
                old: frozenset[tuple[int, str, str]] | None, new: frozenset[tuple[int, str, str]],
                existence: bool = False) -> None:
        """After a write of X (its index rows already replaced): `old` are X's followed references
        before (None: X is new, or re-created after a delete), `new` after (empty for a delete);
        `existence`: X went (a delete), which changes every walk through X even with the same references.

        A create only adds (a node and edges out of it), so every new path goes through X: a resource
        that X points at through a reverse link (a Patient, for an Appointment's `patient`) gains what X
        reaches from there, without walking its other referrers again (that walk grows with the
        patient's record). Everything else that X's write touches is walked again in full."""
        g = self.graph
        if res_type not in g.relevant or (not existence and old is not None and old == new):
            return
        q = _Sql(conn)
        back = g.reverse_targets.get(res_type, {})
        targets = sorted({(tt, ti) for p, tt, ti in (old or frozenset()) | new if tt in back.get(p, ())})
        # (and, shared, what X's own walk goes to first: its hop targets)
        hops = {(s.other, ti) for table in (g.top, g.nested) for s in table.get(res_type, ()) if s.kind == "hop"
                for p, tt, ti in new if p == s.key and tt == s.other}
        q.lock([(res_type, res_id), *targets], exclusive=True, also_shared=sorted(hops))
        target_nodes: list[tuple[int, str, str]] = []
        by_type: dict[str, list[str]] = {}
        for tt, ti in targets:
            by_type.setdefault(tt, []).append(ti)
        for tt, ids in by_type.items():
            target_nodes += [(pk, tt, ti) for ti, pk in q.live(tt, sorted(set(ids))).items()]
        created = old is None and not existence
        # What walks through X or through a target: found hop by hop from them (for a create, not the
        # targets themselves as X's reverse dependants: they are handled by addition below).
        start = [(res_pk, res_type, res_id)]
        level = self._dependants(q, start, skip_reverse=created) + (
            self._dependants(q, target_nodes) if target_nodes else [])
        seen = {res_pk} if created else {res_pk, *(pk for pk, _t, _i in target_nodes)}
        for hop in range(MAX_DEPTH):  # (a walk reaches at most MAX_DEPTH hops out)
            level = [n for n in level if n[0] not in seen]
            if not level:
                break
            seen.update(pk for pk, _t, _i in level)
            if hop < MAX_DEPTH - 1:
                level = self._dependants(q, level)
        self._store(conn, q, seen, (res_pk, res_type, res_id), created, new, target_nodes)

    def _store(self, conn: Any, q: _Sql, seen: set[int], x: tuple[int, str, str], created: bool,
               new: frozenset[tuple[int, str, str]], target_nodes: list[tuple[int, str, str]]) -> None:
        """Walk again every resource in `seen` and replace its stored set; for a create, X (known, with
        no stored set yet) is walked from its references in hand, and each target not in `seen` gains
        what X reaches as a node of that target's walk (one hop down), in the same walk."""
        g = self.graph
        res_pk, res_type, res_id = x
        origins: dict[Any, Node] = {}
        again = sorted(seen - {res_pk}) if created else sorted(seen)
        for pk, t, i in q.nodes(again) if again else []:
            if t in g.top:
                origins[pk] = (pk, t, i, True, MAX_DEPTH)
        if created:
            if res_type in g.top:
                origins[res_pk] = (res_pk, res_type, res_id, True, MAX_DEPTH)
            for pk, tt, ti in target_nodes:
                if pk not in seen and MAX_DEPTH > 0 and any(s.kind == "reverse" and s.other == res_type and
                                                             (s.key, tt, ti) in new for s in g.top.get(tt, ())):
                    origins[("through", pk)] = (res_pk, res_type, res_id, False, MAX_DEPTH - 1)
        walked: set[tuple[int, str]] = set()
        gained: set[tuple[int, str]] = set()
        items = list(origins.items())
        for n in range(0, len(items), CHUNK):
            for key, orgs in self.compute(conn, dict(items[n:n + CHUNK]), {res_pk: new}).items():
                if isinstance(key, tuple):
                    gained.update((key[1], org) for org in orgs)
                else:
                    walked.update((key, org) for org in orgs)
        old = q.facts(again)
        q.remove_facts(sorted(old - walked))
        q.add_facts(sorted((walked - old) | gained))

    def _dependants(self, q: _Sql, level: list[tuple[int, str, str]], skip_reverse: bool = False
                    ) -> list[tuple[int, str, str]]:
        """Resources whose walk goes through one of these: those that point at them (hop links) and
        those they point at that follow such pointers back (reverse links; not with `skip_reverse`)."""
        g = self.graph
        out: dict[int, tuple[int, str, str]] = {}
        by_type: dict[str, list[tuple[int, str]]] = {}
        for pk, t, i in level:
            by_type.setdefault(t, []).append((pk, i))
        for t, nodes in by_type.items():
            deps = g.referrers.get(t, [])
            if deps:
                keys = sorted({k for _s, k in deps})
                for src_pk, src_t, src_id, _p, _ti in q.referrers(keys, t, sorted({i for _pk, i in nodes})):
                    out[src_pk] = (src_pk, src_t, src_id)
            back = g.reverse_targets.get(t, {})
            if back and not skip_reverse:
                wanted: dict[str, list[str]] = {}
                for refs in q.refs([pk for pk, _i in nodes]).values():
                    for p, tt, ti in refs:
                        if tt in back.get(p, ()):
                            wanted.setdefault(tt, []).append(ti)
                for tt, ids in wanted.items():
                    for ti, pk in q.live(tt, sorted(set(ids))).items():
                        out[pk] = (pk, tt, ti)
        return list(out.values())

    # -- whole store -------------------------------------------------------------------------
    def rebuild(self, conn: Any) -> int:
        """Every set from scratch (a new database, or a changed policy): returns how many were stored."""
        q = _Sql(conn)
        conn.exec_driver_sql("DELETE FROM auth_owner_facts")
        types = sorted(self.graph.top)
        last, stored = 0, 0
        while True:
            rows = q.rows(f"SELECT res_pk, res_type, res_id FROM resources WHERE res_pk > {q.m} "
                          f"AND deleted = {q.m} AND res_type IN ({q.marks(len(types))}) ORDER BY res_pk LIMIT {CHUNK}",
                          [last, False, *types])
            if not rows:
                return stored
            facts = self.compute(conn, {pk: (pk, t, i, True, MAX_DEPTH) for pk, t, i in rows})
            pairs = sorted((pk, org) for pk, orgs in facts.items() for org in orgs)
            q.add_facts(pairs)
            stored += len(pairs)
            last = rows[-1][0]


class OwnerFactsIndexWriter:
    """Wraps the search IndexWriter (same calls, same transaction) and keeps the sets current."""

    def __init__(self, inner: Any, facts: OwnerFacts) -> None:
        self.inner = inner
        self.facts = facts

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def rows(self, res_type: str, resource: dict[str, Any]) -> Any:
        return self.inner.rows(res_type, resource)

    def remove(self, conn: Any, res_pk: int) -> None:
        q = _Sql(conn)
        rows = q.rows(f"SELECT r.res_type, r.res_id, r.deleted, ref.param, ref.target_type, ref.target_id "
                      f"FROM resources r LEFT JOIN search_reference ref ON ref.res_pk = r.res_pk "
                      f"AND ref.target_id IS NOT NULL WHERE r.res_pk = {q.m}", [res_pk])
        self.inner.remove(conn, res_pk)
        if not rows or rows[0][0] not in self.facts.graph.relevant:
            return
        res_type, res_id, deleted = rows[0][0], rows[0][1], bool(rows[0][2])
        old = self.facts.followed_refs(res_type, [(p, tt, ti) for *_x, p, tt, ti in rows if p is not None])
        if deleted:  # a delete: nothing follows
            self.facts.changed(conn, res_pk, res_type, res_id, old, frozenset(), existence=True)
        else:  # an update (or a reindex): `write` follows with the new rows
            txn_state(conn)["old"][res_pk] = old

    def write(self, conn: Any, res_pk: int, res_type: str, resource: dict[str, Any]) -> Any:
        written = self.inner.write(conn, res_pk, res_type, resource)
        old = txn_state(conn)["old"].pop(res_pk, None)
        if res_type not in self.facts.graph.relevant:
            return written
        if isinstance(written, dict):  # the rows the index writer just inserted
            refs = [(r["param"], r.get("target_type"), r.get("target_id")) for r in written.get(search_reference, ())
                    if r.get("target_id") is not None]
        else:  # an index writer that does not say what it wrote
            q = _Sql(conn)
            refs = [tuple(r) for r in q.rows(f"SELECT param, target_type, target_id FROM search_reference "
                                             f"WHERE res_pk = {q.m} AND target_id IS NOT NULL", [res_pk])]
        new = self.facts.followed_refs(res_type, refs)
        self.facts.changed(conn, res_pk, res_type, str(resource.get("id") or ""), old, new)
        return written


def install(svc: Any, policy: Any) -> OwnerFacts:
    """Keep the sets with every write (authorization on or off, so a database used both ways stays
    complete), and build them once for a store that has none or was built under other links."""
    from fhir_server.registry import RESOURCE_TYPES

    graph = OwnerGraph({t: policy.read_links(t) for t in RESOURCE_TYPES}, policy.owner)
    facts = OwnerFacts(graph)
    if not isinstance(svc.repo.index, OwnerFactsIndexWriter):
        svc.repo.index = OwnerFactsIndexWriter(svc.repo.index, facts)
    writer = getattr(svc.search, "writer", None)
    if writer is not None and not isinstance(writer, OwnerFactsIndexWriter):
        svc.search.writer = OwnerFactsIndexWriter(writer, facts)
    ensure_built(svc.repo, facts)
    svc.owner_facts = facts
    return facts


def ensure_built(repo: Any, facts: OwnerFacts, force: bool = False) -> None:
    """Build the sets unless this store says they were built under the same links. `force`: after
    a loader that inserted rows around the write path (bench/datagen.py)."""
    from sqlalchemy import delete, insert, select

    from fhir_server.storage.tables import server_state

    mark = facts.graph.mark
    state = server_state.c
    with repo.engine.connect() as conn:
        if not force and conn.execute(select(state.value).where(state.name == mark)).scalar():
            return
    with repo.unit_of_work() as uow:
        conn = uow.conn
        if conn.dialect.name == "postgresql":  # one builder; writers wait (their upkeep takes it shared)
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({GLOBAL_LOCK})")
            txn_state(conn)["global"] = "exclusive"
        if not force and conn.execute(select(state.value).where(state.name == mark)).scalar():
            return
        facts.rebuild(conn)
        conn.execute(delete(server_state).where(state.name.like("auth-owner-facts-%")))
        conn.execute(insert(server_state).values(name=mark, value="built"))
