"""The search engine: compiled parameters + index writer + SQL queries + keyset paging.

One SQL statement finds a page of matches (filters, authorization boundary, sort, keyset
cursor), one more fetches `_include`/`_revinclude` targets per round, and one counts
when a total is wanted. Page links carry an HMAC-signed cursor (sort values + res_pk of
the page edge), so any worker can continue a query and pages stay correct while other
clients insert.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from sqlalchemy import and_, distinct, false, func, insert, or_, select, true, update

from fhir_server.errors import BadRequest, Issue
from fhir_server.paging import TokenSigner
from fhir_server.registry import RESOURCE_TYPES
from fhir_server.search.api import SearchRequest, SearchResult
from fhir_server.search.index import IndexWriter
from fhir_server.search.query import (
    Expander,
    QueryContext,
    UnknownParameter,
    driver_rank,
    index_subquery,
    param_clause,
    sort_expression,
)
from fhir_server.search.registry import SearchRegistry
from fhir_server.search.shaping import elements_shape, summary_shape
from fhir_server.search.tables import alias, search_reference
from fhir_server.settings import Settings
from fhir_server.storage.repository import StoredResource
from fhir_server.storage.sql import _row_to_stored
from fhir_server.storage.tables import resources, server_state

RESULT_PARAMS = {"_count", "_sort", "_include", "_revinclude", "_total", "_summary", "_elements", "_page", "_type",
                 "_contained", "_containedType"}
log = logging.getLogger("fhir_server.search")
PARAMS_GENERATION = "search-parameters-generation"
MAX_INCLUDE_ROUNDS = 4
CHUNK = 500


def _is_result_param(name: str) -> bool:
    return name.split(":")[0] in RESULT_PARAMS


@dataclass
class _Sort:
    code: str
    descending: bool


def _chunks(items: list[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


class SearchEngine:
    def __init__(self, engine: Any = None, settings: Settings | None = None, secret: str = "dev",
                 extra_parameters: Iterable[dict[str, Any]] = ()) -> None:
        self.settings = settings or Settings()
        self.registry = SearchRegistry.from_files(RESOURCE_TYPES, extra_parameters)
        self.writer = IndexWriter(self.registry)
        self.signer = TokenSigner(secret, "search-page")
        self.expander: Expander | None = None
        # Stored SearchParameters: reloaded when the reindex command bumps the generation.
        self.refresh_seconds = 5.0
        self._generation: str | None = None
        self._checked_at = time.monotonic()
        self.writer.before_write = self.refresh

    # -- the contract ---------------------------------------------------------------
    def index_writer(self) -> IndexWriter:
        return self.writer

    def add_parameters(self, definitions: Iterable[dict[str, Any]]) -> None:
        """Make extra SearchParameter resources searchable (after a reindex of existing data)."""
        for d in definitions:
            self.registry.by_url[d.get("url", "")] = d
            self.registry.add(d)

    # -- SearchParameter resources stored in the database ---------------------------------
    def load_stored_parameters(self, conn: Any) -> int:
        """Compile every stored, non-retired SearchParameter resource (at start-up and on refresh)."""
        import orjson

        rows = conn.execute(select(resources.c.content).where(
            resources.c.res_type == "SearchParameter", resources.c.deleted.is_(False)))
        definitions = [d for d in (orjson.loads(c) for (c,) in rows if c) if d.get("status") != "retired"]
        for d in definitions:
            try:
                self.add_parameters([d])
            except Exception:  # an expression the FHIRPath engine cannot compile: skipped, not fatal
                log.warning("stored SearchParameter %s could not be compiled; skipped", d.get("url") or d.get("id"))
                self.registry.skipped.append(f"{d.get('code')} (stored, does not compile)")
        self._generation = self._read_generation(conn)
        self._checked_at = time.monotonic()
        return len(definitions)

    @staticmethod
    def _read_generation(conn: Any) -> str | None:
        value = conn.execute(select(server_state.c.value).where(server_state.c.name == PARAMS_GENERATION)).scalar()
        return str(value) if value is not None else None

    def bump_generation(self, conn: Any) -> None:
        """Tell every process sharing the database to reload stored SearchParameters."""
        value = uuid.uuid4().hex
        updated = conn.execute(update(server_state).where(server_state.c.name == PARAMS_GENERATION)
                               .values(value=value)).rowcount
        if not updated:
            conn.execute(insert(server_state).values(name=PARAMS_GENERATION, value=value))
        self._generation = value

    def refresh(self, conn: Any) -> None:
        """Reload stored SearchParameters when a reindex elsewhere changed them (checked every few seconds)."""
        now = time.monotonic()
        if now - self._checked_at < self.refresh_seconds:
            return
        self._checked_at = now
        if self._read_generation(conn) != self._generation:
            self.load_stored_parameters(conn)

    def match(self, conn: Any, res_type: str, criteria: str, limit: int = 2, boundary: Any = None
              ) -> list[StoredResource]:
        self.refresh(conn)
        params = parse_qsl(criteria, keep_blank_values=True)
        if not params:
            raise BadRequest("Conditional criteria are empty", "Tiêu chí điều kiện bị trống")
        ctx = QueryContext(self.registry, "", boundary, self.expander)
        res = alias(resources, "r")
        where = self._filters(ctx, res, res_type, [(k, v) for k, v in params if not _is_result_param(k)],
                              strict=True, issues=[])
        stmt = select(res).where(*where).order_by(res.c.res_pk).limit(limit)
        return [_row_to_stored(r) for r in conn.execute(stmt)]

    def search(self, conn: Any, request: SearchRequest) -> SearchResult:
        self.refresh(conn)
        ctx = QueryContext(self.registry, request.base_url, request.boundary, self.expander)
        params = list(request.params)
        cursor: dict[str, Any] | None = None
        page = next((v for k, v in params if k == "_page"), None)
        if page is not None:
            cursor = self.signer.loads(page)
            params = [(str(k), str(v)) for k, v in cursor["q"]]
        types = self._types(request.res_type, params)
        issues: list[Issue] = []
        res = alias(resources, "r")
        filters = self._filters(ctx, res, request.res_type, [(k, v) for k, v in params if not _is_result_param(k)],
                                request.strict, issues, types)
        count = self._count(params)
        sorts = self._sorts(params)
        try:
            sort_exprs = [(sort_expression(ctx, res, request.res_type, s.code, s.descending), s.descending)
                          for s in sorts]
        except UnknownParameter as exc:
            raise BadRequest(f"Unknown sort parameter {exc.name}", f"Tham số sắp xếp không rõ {exc.name}",
                             expression="_sort") from exc
        kept = [(k, v) for k, v in params if not self._ignored(k, issues)]
        summary = next((v for k, v in params if k == "_summary"), None)
        total_mode = next((v for k, v in params if k == "_total"), None)
        if total_mode not in (None, "none", "estimate", "accurate"):
            raise BadRequest(f"Unknown _total value '{total_mode}'", f"Giá trị _total không hợp lệ '{total_mode}'",
                             expression="_total")
        result = SearchResult(matches=[], issues=[i for i in issues if i.severity != "error"])
        if summary == "count":
            result.summary_count_only = True
            result.total = self._counted(conn, ctx, res, filters, request.res_type, params)
            result.self_link = self._link(request.res_type, kept)
            return result
        shape = summary_shape(summary) if summary else None
        elements = next((v for k, v in params if k == "_elements"), None)
        if elements:
            shape = elements_shape(elements)
        result.shape = shape

        columns = [res, *[e.label(f"s{i}") for i, (e, _) in enumerate(sort_exprs)]]
        stmt = select(*columns).where(*filters)
        backwards = bool(cursor and cursor.get("d") == "prev")
        if cursor is not None:
            stmt = stmt.where(self._keyset(res, sort_exprs, cursor["k"], cursor["pk"], backwards))
        order = []
        for expr, desc in sort_exprs:
            forward = expr.desc().nulls_last() if desc else expr.asc().nulls_last()
            reverse = expr.asc().nulls_first() if desc else expr.desc().nulls_first()
            order.append(reverse if backwards else forward)
        order.append(res.c.res_pk.desc() if backwards else res.c.res_pk.asc())
        rows = list(conn.execute(stmt.order_by(*order).limit(count + 1))) if count > 0 else []
        more = len(rows) > count
        rows = rows[:count]
        if backwards:
            rows.reverse()
        result.matches = [_row_to_stored(r) for r in rows]
        keys = [[r._mapping[f"s{i}"] for i in range(len(sort_exprs))] for r in rows]

        # Links: self (the query as understood), first, next/previous with signed cursors.
        result.self_link = self._link(request.res_type, kept)
        result.first_link = self._link(request.res_type, [(k, v) for k, v in kept if k != "_page"])
        has_next = more if not backwards else cursor is not None
        has_prev = (cursor is not None and not backwards) or (backwards and more)
        if rows and has_next:
            token = self.signer.dumps({"q": kept, "k": keys[-1], "pk": rows[-1]._mapping["res_pk"], "d": "next"})
            result.next_link = self._link(request.res_type, [*kept, ("_page", token)])
        if rows and has_prev:
            token = self.signer.dumps({"q": kept, "k": keys[0], "pk": rows[0]._mapping["res_pk"], "d": "prev"})
            result.previous_link = self._link(request.res_type, [*kept, ("_page", token)])

        if total_mode == "none":
            result.total = None
        elif cursor is None and not more and total_mode is None:
            result.total = len(rows)
        elif total_mode in ("accurate", "estimate") or cursor is None:
            result.total = self._counted(conn, ctx, res, filters, request.res_type, params)
        result.includes = self._includes(conn, ctx, result.matches, params)
        return result

    # -- filters ----------------------------------------------------------------------
    def _types(self, res_type: str | None, params: list[tuple[str, str]]) -> list[str]:
        if res_type is not None:
            return [res_type]
        listed = [t for k, v in params if k == "_type" for t in v.split(",") if t]
        unknown = [t for t in listed if t not in RESOURCE_TYPES]
        if unknown:
            raise BadRequest(f"_type names unknown types: {', '.join(unknown)}",
                             f"_type có loại không rõ: {', '.join(unknown)}", expression="_type")
        return listed or list(RESOURCE_TYPES)

    def _filters(self, ctx: QueryContext, res: Any, res_type: str | None, params: list[tuple[str, str]],
                 strict: bool, issues: list[Issue], types: list[str] | None = None) -> list[Any]:
        filters: list[Any] = [res.c.deleted.is_(False)]
        types = types or ([res_type] if res_type else list(RESOURCE_TYPES))
        per_type: list[Any] = []
        unknown_in: dict[str, int] = {}
        for t in types:
            conds: list[Any] = [res.c.res_type == t, ctx.boundary_for(res, t)]
            ranks = [driver_rank(ctx, t, name, value) for name, value in params]
            driver = ranks.index(min(ranks)) if ranks else -1
            for i, (name, value) in enumerate(params):
                try:
                    conds.append(param_clause(ctx, res, t, name, value, correlated=i != driver))
                except UnknownParameter as exc:
                    # In a multi-type search a type without the parameter simply cannot match.
                    unknown_in[exc.name] = unknown_in.get(exc.name, 0) + 1
                    conds.append(false() if len(types) > 1 else true())
            per_type.append(and_(*conds))
        for name, times in unknown_in.items():
            if times == len(types):
                self._unknown(name, strict, issues)
        if len(types) > 1:
            # A parameter no listed type knows is ignored (lenient), not a reason to match nothing.
            ignored = {n for n, times in unknown_in.items() if times == len(types)}
            if ignored:
                return self._filters(ctx, res, res_type, [(k, v) for k, v in params if k not in ignored], strict,
                                     issues, types)
        filters.append(per_type[0] if len(per_type) == 1 else or_(*per_type))
        return filters

    @staticmethod
    def _unknown(name: str, strict: bool, issues: list[Issue]) -> None:
        en, vi = f"Unknown search parameter '{name}'", f"Tham số tìm kiếm không rõ '{name}'"
        if strict:
            raise BadRequest(en, vi, expression=name)
        if not any(name in i.expression for i in issues):
            issues.append(Issue(en=f"{en} was ignored", vi=f"{vi} đã bị bỏ qua", code="not-supported",
                                severity="warning", expression=(name,)))

    @staticmethod
    def _ignored(name: str, issues: list[Issue]) -> bool:
        return any(name in i.expression and i.code == "not-supported" for i in issues)

    def _count(self, params: list[tuple[str, str]]) -> int:
        raw = next((v for k, v in params if k == "_count"), None)
        if raw is None:
            return self.settings.default_count
        if not raw.isdigit():
            raise BadRequest(f"_count must be a non-negative integer, not '{raw}'",
                             f"_count phải là số nguyên không âm, không phải '{raw}'", expression="_count")
        return min(int(raw), self.settings.max_count)

    @staticmethod
    def _sorts(params: list[tuple[str, str]]) -> list[_Sort]:
        sorts = []
        for k, v in params:
            if k == "_sort":
                for part in v.split(","):
                    part = part.strip()
                    if part:
                        sorts.append(_Sort(part.lstrip("-"), part.startswith("-")))
        return sorts

    @staticmethod
    def _keyset(res: Any, sort_exprs: list[tuple[Any, bool]], keys: list[Any], pk: int, backwards: bool) -> Any:
        """Rows strictly after (or, backwards, before) the edge row in the order: keys NULLS LAST, then res_pk."""
        def eq(expr: Any, v: Any) -> Any:
            return expr.is_(None) if v is None else expr == v

        def beyond(expr: Any, v: Any, desc: bool) -> Any:
            if not backwards:
                if v is None:
                    return false()
                return or_(expr < v if desc else expr > v, expr.is_(None))
            if v is None:
                return expr.is_not(None)
            return expr > v if desc else expr < v

        terms = []
        prefix: list[Any] = []
        for (expr, desc), v in zip(sort_exprs, keys, strict=True):
            terms.append(and_(*prefix, beyond(expr, v, desc)))
            prefix.append(eq(expr, v))
        terms.append(and_(*prefix, res.c.res_pk < pk if backwards else res.c.res_pk > pk))
        return or_(*terms)

    def _counted(self, conn: Any, ctx: QueryContext, res: Any, filters: list[Any], res_type: str | None,
                 params: list[tuple[str, str]]) -> int:
        """The total. A single index predicate with no boundary is counted on its index rows alone:
        they exist only for current, non-deleted resources of the type (the parameter key is per type),
        so the resources table need not be probed once per match."""
        search = [(k, v) for k, v in params if not _is_result_param(k)]
        if res_type is not None and ctx.boundary is None and len(search) == 1:
            sub = index_subquery(ctx, res_type, *search[0])
            if sub is not None:
                inner = sub.subquery()
                return int(conn.execute(select(func.count(distinct(inner.c.res_pk)))).scalar_one())
        return self._total(conn, res, filters)

    @staticmethod
    def _total(conn: Any, res: Any, filters: list[Any]) -> int:
        return int(conn.execute(select(func.count()).select_from(res).where(*filters)).scalar_one())

    @staticmethod
    def _link(res_type: str | None, params: list[tuple[str, str]]) -> str:
        path = res_type or ""
        return f"{path}?{urlencode(params)}" if params else path

    # -- _include / _revinclude -------------------------------------------------------
    def _includes(self, conn: Any, ctx: QueryContext, matches: list[StoredResource],
                  params: list[tuple[str, str]]) -> list[StoredResource]:
        specs = [(k, v) for k, v in params if k.split(":")[0] in ("_include", "_revinclude")]
        if not specs or not matches:
            return []
        seen = {(m.res_type, m.res_id) for m in matches}
        included: list[StoredResource] = []
        current = matches
        for round_no in range(MAX_INCLUDE_ROUNDS):
            found: list[StoredResource] = []
            for key, value in specs:
                iterate = key.endswith(":iterate") or key.endswith(":recurse")
                if round_no > 0 and not iterate:
                    continue
                if key.startswith("_include"):
                    found += self._include(conn, ctx, current, value)
                else:
                    found += self._revinclude(conn, ctx, current, value)
            fresh = []
            for r in found:
                if (r.res_type, r.res_id) not in seen:
                    seen.add((r.res_type, r.res_id))
                    fresh.append(r)
            included += fresh
            if not fresh or not any(k.endswith((":iterate", ":recurse")) for k, _ in specs):
                break
            current = fresh
        return included

    def _include_params(self, value: str, name: str) -> tuple[str, list[Any], str | None]:
        parts = value.split(":")
        if len(parts) < 2 or parts[0] not in RESOURCE_TYPES:
            raise BadRequest(f"Malformed {name} value '{value}'", f"Giá trị {name} không hợp lệ '{value}'",
                             expression=name)
        source, code = parts[0], parts[1]
        target = parts[2] if len(parts) > 2 else None
        if code == "*":
            return source, self.registry.reference_params(source), target
        param = self.registry.get(source, code)
        if param is None or param.type != "reference":
            raise BadRequest(f"{name}: {source} has no reference parameter '{code}'",
                             f"{name}: {source} không có tham số tham chiếu '{code}'", expression=name)
        return source, [param], target

    def _include(self, conn: Any, ctx: QueryContext, current: list[StoredResource], value: str
                 ) -> list[StoredResource]:
        source, params, target = self._include_params(value, "_include")
        pks = [m.res_pk for m in current if m.res_type == source and m.res_pk is not None]
        if not pks or not params:
            return []
        ref = search_reference
        wanted: set[tuple[str, str]] = set()
        for chunk in _chunks(pks):
            stmt = select(ref.c.target_type, ref.c.target_id).where(
                ref.c.res_pk.in_(chunk), ref.c.param.in_([p.key for p in params]), ref.c.target_id.is_not(None))
            if target:
                stmt = stmt.where(ref.c.target_type == target)
            wanted |= {(t, i) for t, i in conn.execute(stmt) if t in RESOURCE_TYPES}
        return self._fetch(conn, ctx, wanted)

    def _revinclude(self, conn: Any, ctx: QueryContext, current: list[StoredResource], value: str
                    ) -> list[StoredResource]:
        source, params, target = self._include_params(value, "_revinclude")
        out: list[StoredResource] = []
        by_type: dict[str, list[str]] = {}
        for m in current:
            if target is None or m.res_type == target:
                by_type.setdefault(m.res_type, []).append(m.res_id)
        ref = search_reference
        r = alias(resources, "inc")
        for res_type, ids in by_type.items():
            for chunk in _chunks(ids):
                stmt = (select(r).distinct().select_from(ref.join(r, r.c.res_pk == ref.c.res_pk))
                        .where(ref.c.param.in_([p.key for p in params]), ref.c.target_type == res_type,
                               ref.c.target_id.in_(chunk), r.c.deleted.is_(False), r.c.res_type == source,
                               ctx.boundary_for(r, source)))
                out += [_row_to_stored(row) for row in conn.execute(stmt)]
        return out

    def _fetch(self, conn: Any, ctx: QueryContext, keys: set[tuple[str, str]]) -> list[StoredResource]:
        out: list[StoredResource] = []
        by_type: dict[str, list[str]] = {}
        for t, i in keys:
            by_type.setdefault(t, []).append(i)
        r = alias(resources, "inc")
        for res_type, ids in by_type.items():
            for chunk in _chunks(sorted(ids)):
                stmt = select(r).where(r.c.res_type == res_type, r.c.res_id.in_(chunk), r.c.deleted.is_(False),
                                       ctx.boundary_for(r, res_type))
                out += [_row_to_stored(row) for row in conn.execute(stmt)]
        return out

    # -- maintenance and capability facts ------------------------------------------------
    def reindex(self, repo: Any, res_type: str | None = None) -> int:
        import orjson

        done = 0
        batch: list[StoredResource] = []

        def flush() -> None:
            with repo.unit_of_work() as uow:
                for stored in batch:
                    assert stored.res_pk is not None and stored.content is not None
                    self.writer.remove(uow.conn, stored.res_pk)
                    self.writer.write(uow.conn, stored.res_pk, stored.res_type, orjson.loads(stored.content))

        for stored in repo.iter_current(res_type):
            batch.append(stored)
            if len(batch) >= CHUNK:
                flush()
                done += len(batch)
                batch = []
        if batch:
            flush()
            done += len(batch)
        return done

    def capability_params(self, res_type: str | None) -> list[dict[str, Any]]:
        common = [{"name": "_id", "type": "token", "definition": "http://hl7.org/fhir/SearchParameter/Resource-id"},
                  {"name": "_lastUpdated", "type": "date",
                   "definition": "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated"}]
        if res_type is None:
            return [*common, {"name": "_type", "type": "token"}]
        out = list(common)
        for p in sorted(self.registry.for_type(res_type), key=lambda p: p.code):
            if p.code in ("_id", "_lastUpdated"):
                continue
            entry: dict[str, Any] = {"name": p.code, "type": p.type}
            if p.url:
                entry["definition"] = p.url
            if p.documentation:
                entry["documentation"] = p.documentation
            out.append(entry)
        return out

    def capability_includes(self, res_type: str) -> list[str]:
        return ["*"] + [f"{res_type}:{p.code}" for p in self.registry.reference_params(res_type)]

    def capability_revincludes(self, res_type: str) -> list[str]:
        out = []
        for (source, code), p in sorted(self.registry.params.items()):
            if p.type == "reference" and (res_type in p.targets or not p.targets):
                out.append(f"{source}:{code}")
        return out
