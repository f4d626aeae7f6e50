"""Search and read of the audit trail (auth/audit_trail.py) with the R4 AuditEvent parameters.

Data over code: `COLUMNS` says, for each parameter, which columns of a captured request's row hold
its values (and as what); every token, reference, string and uri parameter also matches the
`audit_index` rows of events given whole. Paging is keyset over (sort key, row number) with signed,
stateless cursors; `_total` and the data boundary apply to the same statement, so an auditor counts
only what it may read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import BigInteger, and_, cast, false, func, literal, or_, select, union_all

from auth.audit import SUBTYPE_SYSTEM, TYPE_SYSTEM
from auth.audit_trail import KEYED_COLUMNS, KEYS_MARK, ROW_COLUMNS, audit_index, audit_trail, stored_of
from fhir_server.errors import BadRequest, Issue
from fhir_server.paging import TokenSigner
from fhir_server.search import date as date_search
from fhir_server.search.normalize import fold
from fhir_server.search.query import split_values
from fhir_server.search.reference import parse_literal
from fhir_server.search.shaping import elements_shape, summary_shape
from fhir_server.search.token import split_token
from fhir_server.storage.tables import server_state

T = audit_trail.c
I = audit_index.c  # noqa: E741


@dataclass(frozen=True)
class Col:
    """A column of a captured request's row that holds a parameter's value."""

    name: str | None  # None: the value is the same on every captured row (`value`)
    kind: str  # ref ("Type/id") | token | string
    system: str | None = None  # the token's system (fixed for the column)
    only_type: str | None = None  # a reference column counted only when it points at this type
    value: str | None = None


# Parameter → the columns of a captured row that carry it (see auth.audit.event_from_columns).
COLUMNS: dict[str, tuple[Col, ...]] = {
    "agent": (Col("user_ref", "ref"), Col("org_ref", "ref")),
    "patient": (Col("user_ref", "ref", only_type="Patient"), Col("entity", "ref", only_type="Patient")),
    "entity": (Col("entity", "ref"),),
    "altid": (Col("client_id", "token"),),
    "address": (Col("address", "string"),),
    "subtype": (Col("interaction", "token", system=SUBTYPE_SYSTEM),),
    "type": (Col(None, "token", system=TYPE_SYSTEM, value="rest"),),
}
# Parameters held in a column of every row (captured or given whole).
ROW_TOKENS = {"action": T.action, "outcome": T.outcome}
# `recorded` has seconds precision at least, so a row's range is at most this wide (lets range
# comparisons on the high end use the index on the low end).
MAX_WIDTH_US = 999_999
SORTS = {"date": T.recorded_us, "_lastUpdated": T.stored_us, "_id": T.pk}
QUIET = {"_format", "_pretty"}
NOT_HERE = {"_include", "_revinclude", "_contained", "_containedType", "_type", "_has", "_text", "_content",
            "_list", "_filter", "_query"}
SELECTED = [getattr(T, c) for c in ROW_COLUMNS]


@dataclass
class TrailQuery:
    params: list[tuple[str, str]]
    base_url: str
    strict: bool
    boundary: Any  # SQL predicate on audit_trail, None (no limit) or False (nothing)
    default_count: int
    max_count: int


class TrailSearch:
    def __init__(self, registry: Any, secret: str, deferred_keys: bool = False) -> None:
        self.registry = registry
        self.signer = TokenSigner(secret, "audit-trail-page")
        self.params = {p.code: p for p in registry.for_type("AuditEvent")}
        # SQLite: the keyed columns are searched through `audit_index` up to the mark (auth/audit_keys.py)
        self.deferred_keys = deferred_keys

    def _columns(self, pairs: list[tuple[Col, Any]], side: Any) -> Any:
        """A parameter's column conditions ORed with its `audit_index` rows. Where the keyed columns
        have no index (SQLite), their conditions are only asked of the rows after the mark: the rows
        before it have their values among the `audit_index` rows."""
        plain = [part for c, part in pairs if not (self.deferred_keys and c.name in KEYED_COLUMNS)]
        keyed = [part for c, part in pairs if self.deferred_keys and c.name in KEYED_COLUMNS]
        indexed: Any = select(I.pk).where(side)
        if keyed:  # one IN of a UNION ALL, not an OR: SQLite then looks the rows up instead of scanning
            tail = select(T.pk).where(T.pk > _keys_mark(), or_(*keyed)).correlate(None)
            indexed = union_all(indexed, tail)
        return or_(*plain, T.pk.in_(indexed))

    # -- one parameter ---------------------------------------------------------------------
    def clause(self, name: str, raw: str, base_url: str) -> Any:
        """SQL for one `name[:modifier]=value[,value]` (values ORed)."""
        code, _, modifier = name.partition(":")
        values = [v for v in split_values(raw) if v]
        if not values:
            raise BadRequest(f"Parameter {name} has no value", f"Tham số {name} không có giá trị", expression=name)
        if code == "_id":
            _no_modifier(name, modifier)
            return or_(*[_id_clause(v) for v in values])
        if code in ("date", "_lastUpdated"):
            _no_modifier(name, modifier)
            return or_(*[self._date(code, v, name) for v in values])
        if code in ROW_TOKENS:
            _no_modifier(name, modifier)
            return or_(*[_token_column(ROW_TOKENS[code], None, v) for v in values])
        param = self.params.get(code)
        if param is None or param.type not in ("token", "reference", "string", "uri"):
            raise _Unknown(code)
        return or_(*[self._value(param, modifier, v, base_url, name) for v in values])

    def _date(self, code: str, raw: str, name: str) -> Any:
        prefix, s_low, s_high = date_search.parse_search_value(raw, name)
        if code == "_lastUpdated":
            low, high, width = T.stored_us, T.stored_us + 999, 999
        else:
            low, high, width = T.recorded_us, T.recorded_high_us, MAX_WIDTH_US
        cond = date_search.compare(low, high, prefix, s_low, s_high)
        if prefix == "gt":
            cond = and_(low > s_high - width, cond)
        elif prefix in ("ge", "eq"):
            cond = and_(low >= s_low - width, cond)
        return cond

    def _value(self, param: Any, modifier: str, raw: str, base_url: str, name: str) -> Any:
        cols = COLUMNS.get(param.code, ())
        if param.type == "reference":
            if modifier and not modifier[0].isupper():
                raise _unsupported_modifier(name)
            parsed = _reference(raw, modifier or None, base_url)
            if parsed is None:
                return false()
            ref_type, ref_id, url = parsed
            targets = (ref_type,) if ref_type else tuple(param.targets)
            pairs = [(c, _ref_column(c, targets, ref_id, url)) for c in cols]
            side = and_(I.param == param.code, I.value == (url or ref_id))
            if url is None and ref_type:
                side = and_(side, I.system == ref_type)
            elif url is not None:
                side = and_(side, I.system.is_(None))
        elif param.type == "token":
            if modifier:
                raise _unsupported_modifier(name)
            pairs = [(c, _token_col(c, raw)) for c in cols]
            system, code = split_token(raw)
            side = I.param == param.code
            if code:
                side = and_(side, I.value == code)
            if system == "":
                side = and_(side, I.system.is_(None))
            elif system is not None:
                side = and_(side, I.system == system)
        elif param.type == "string":
            if modifier not in ("", "exact", "contains"):
                raise _unsupported_modifier(name)
            folded = fold(raw)
            pairs = [(c, _string_column(getattr(T, c.name), modifier, raw)) for c in cols if c.name]
            if modifier == "contains":
                side = and_(I.param == param.code, I.value.like(f"%{_like_escape(folded)}%", escape="\\"))
            elif modifier == "exact":
                side = and_(I.param == param.code, I.value == folded)
            else:
                side = and_(I.param == param.code, I.value >= folded, I.value < folded + "\U0010ffff")
        else:  # uri
            if modifier:
                raise _unsupported_modifier(name)
            pairs, side = [], and_(I.param == param.code, I.value == raw)
        return self._columns(pairs, side)

    # -- the query -------------------------------------------------------------------------
    def search(self, conn: Any, q: TrailQuery) -> Any:
        from fhir_server.search.api import SearchResult

        params = list(q.params)
        cursor = None
        page = next((v for k, v in params if k == "_page"), None)
        if page is not None:
            cursor = self.signer.loads(page)
            params = [(str(k), str(v)) for k, v in cursor["q"]]
        issues: list[Issue] = []
        filters: list[Any] = []
        kept: list[tuple[str, str]] = []
        for k, v in params:
            code = k.split(":")[0]
            if code in ("_count", "_sort", "_total", "_summary", "_elements"):
                kept.append((k, v))
                continue
            if code == "_page" or code in QUIET:
                continue
            try:
                if code in NOT_HERE or "." in code:
                    raise _Unknown(code)
                filters.append(self.clause(k, v, q.base_url))
            except _Unknown:
                en = f"Parameter '{k}' is not supported for AuditEvent"
                vi = f"Tham số '{k}' không được hỗ trợ cho AuditEvent"
                if q.strict:
                    raise BadRequest(en, vi, expression=k) from None
                issues.append(Issue(f"{en}; it was ignored", f"{vi}; đã bỏ qua", code="not-supported",
                                    severity="warning", expression=(k,)))
                continue
            kept.append((k, v))
        if q.boundary is False:
            filters.append(false())
        elif q.boundary is not None:
            filters.append(q.boundary)
        count = _count(params, q.default_count, q.max_count)
        sort_col, descending = _sort(params)
        total_mode = next((v for k, v in params if k == "_total"), None)
        if total_mode not in (None, "none", "estimate", "accurate"):
            raise BadRequest(f"Unknown _total value '{total_mode}'", f"Giá trị _total không hợp lệ '{total_mode}'",
                             expression="_total")
        result = SearchResult(matches=[], issues=issues)
        result.self_link = _link(kept)
        summary = next((v for k, v in params if k == "_summary"), None)
        if summary == "count":
            result.summary_count_only = True
            result.total = _counted(conn, filters)
            return result
        shape = summary_shape(summary) if summary else None
        elements = next((v for k, v in params if k == "_elements"), None)
        result.shape = elements_shape(elements) if elements else shape

        backwards = bool(cursor and cursor.get("d") == "prev")
        stmt = select(*SELECTED, sort_col.label("sort_key")).where(*filters)
        if cursor is not None:
            stmt = stmt.where(_keyset(sort_col, descending, cursor["k"], cursor["pk"], backwards))
        key_order = sort_col.desc() if descending != backwards else sort_col.asc()
        stmt = stmt.order_by(key_order, T.pk.desc() if backwards else T.pk.asc())
        rows = list(conn.execute(stmt.limit(count + 1))) if count > 0 else []
        more = len(rows) > count
        rows = rows[:count]
        if backwards:
            rows.reverse()
        result.matches = [stored_of(r) for r in rows]
        result.first_link = _link(kept)
        has_next = more if not backwards else cursor is not None
        has_prev = (cursor is not None and not backwards) or (backwards and more)
        if rows and has_next:
            token = self.signer.dumps({"q": kept, "k": rows[-1].sort_key, "pk": rows[-1].pk, "d": "next"})
            result.next_link = _link([*kept, ("_page", token)])
        if rows and has_prev:
            token = self.signer.dumps({"q": kept, "k": rows[0].sort_key, "pk": rows[0].pk, "d": "prev"})
            result.previous_link = _link([*kept, ("_page", token)])
        if total_mode == "none":
            result.total = None
        elif cursor is None and not more and total_mode is None:
            result.total = len(rows)
        elif total_mode in ("accurate", "estimate") or cursor is None:
            result.total = _counted(conn, filters)
        return result

    def read(self, conn: Any, res_id: str, boundary: Any) -> Any:
        """The row of one event (None when it does not exist or lies outside the boundary)."""
        if boundary is False:
            return None
        stmt = select(*SELECTED).where(_id_clause(res_id))
        if boundary is not None:
            stmt = stmt.where(boundary)
        row = conn.execute(stmt.limit(1)).first()
        return stored_of(row) if row is not None else None

    # -- the data boundary -------------------------------------------------------------------
    def reference_in(self, code: str, target_type: str, ids: Any) -> Any:
        """`code` points at a `target_type` whose id is in `ids` (a list or a SELECT of ids)."""
        if isinstance(ids, list):
            refs: Any = [f"{target_type}/{i}" for i in ids]
            side_ids: Any = ids
        else:
            sub = ids.subquery()
            only = next(iter(sub.c))
            refs = select(literal(f"{target_type}/").concat(only))
            side_ids = select(only)
        pairs = [(c, getattr(T, c.name).in_(refs)) for c in COLUMNS.get(code, ())
                 if c.name and c.kind == "ref" and c.only_type in (None, target_type)]
        side = and_(I.param == code, I.system == target_type, I.value.in_(side_ids))
        return self._columns(pairs, side)


def _keys_mark() -> Any:
    """The last row whose keys are in `audit_index` (0 before the first indexing)."""
    mark = select(cast(server_state.c.value, BigInteger)).where(server_state.c.name == KEYS_MARK)
    return func.coalesce(mark.scalar_subquery(), 0)


def _id_clause(res_id: str) -> Any:
    """A row number (a BIGINT: at most 18 digits here) or an id given before the row existed."""
    return T.pk == int(res_id) if res_id.isdigit() and len(res_id) < 19 else T.given_id == res_id


class _Unknown(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _no_modifier(name: str, modifier: str) -> None:
    if modifier:
        raise _unsupported_modifier(name)


def _unsupported_modifier(name: str) -> BadRequest:
    return BadRequest(f"The modifier of '{name}' is not supported for AuditEvent",
                      f"Bổ từ của '{name}' không được hỗ trợ cho AuditEvent", expression=name)


def _reference(raw: str, type_modifier: str | None, base_url: str) -> tuple[str | None, str, str | None] | None:
    """→ (type or None, id, absolute URL not of this server or None); None: matches nothing."""
    value = raw
    if base_url and value.startswith(base_url.rstrip("/") + "/"):
        value = value[len(base_url.rstrip("/")) + 1:]
    if "/" not in value:
        return type_modifier, value, None
    base, rtype, rid = parse_literal(value)
    if base is not None or rtype is None or rid is None:
        return None, value, value
    if type_modifier and rtype != type_modifier:
        return None
    return rtype, rid, None


def _ref_column(c: Col, targets: tuple[str, ...], ref_id: str, url: str | None) -> Any:
    assert c.name is not None
    col = getattr(T, c.name)
    if url is not None:
        return col == url
    wanted = [t for t in targets if c.only_type in (None, t)]
    if not wanted:
        return false()
    return col.in_([f"{t}/{ref_id}" for t in wanted])


def _token_col(c: Col, raw: str) -> Any:
    if c.name is None:  # the same on every captured row
        system, code = split_token(raw)
        ok = (not code or code == c.value) and (system is None or system == (c.system or ""))
        return T.content.is_(None) if ok else false()
    return _token_column(getattr(T, c.name), c.system, raw)


def _token_column(col: Any, col_system: str | None, raw: str) -> Any:
    system, code = split_token(raw)
    if system is not None and system != (col_system or ""):
        return false()
    return col == code if code else col.is_not(None)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _string_column(col: Any, modifier: str, raw: str) -> Any:
    if modifier == "exact":
        return col == raw
    pattern = _like_escape(raw.lower())
    pattern = f"%{pattern}%" if modifier == "contains" else f"{pattern}%"
    return func.lower(col).like(pattern, escape="\\")


def _count(params: list[tuple[str, str]], default: int, maximum: int) -> int:
    raw = next((v for k, v in params if k == "_count"), None)
    if raw is None:
        return default
    if not raw.isdigit():
        raise BadRequest(f"_count must be a non-negative integer, not '{raw}'",
                         f"_count phải là số nguyên không âm, không phải '{raw}'", expression="_count")
    return min(int(raw), maximum)


def _sort(params: list[tuple[str, str]]) -> tuple[Any, bool]:
    raw = [part.strip() for k, v in params if k == "_sort" for part in v.split(",") if part.strip()]
    if not raw:
        return T.pk, False
    if len(raw) > 1 or raw[0].lstrip("-") not in SORTS:
        raise BadRequest(f"AuditEvent can be sorted by one of {', '.join(SORTS)} only, not '{','.join(raw)}'",
                         f"AuditEvent chỉ sắp xếp được theo một trong {', '.join(SORTS)}, không theo "
                         f"'{','.join(raw)}'", expression="_sort")
    return SORTS[raw[0].lstrip("-")], raw[0].startswith("-")


def _keyset(col: Any, descending: bool, key: Any, pk: int, backwards: bool) -> Any:
    after = col < key if descending != backwards else col > key
    tie = T.pk < pk if backwards else T.pk > pk
    return or_(after, and_(col == key, tie))


def _counted(conn: Any, filters: list[Any]) -> int:
    return int(conn.execute(select(func.count()).select_from(audit_trail).where(*filters)).scalar() or 0)


def _link(params: list[tuple[str, str]]) -> str:
    return f"AuditEvent?{urlencode(params)}" if params else "AuditEvent"

