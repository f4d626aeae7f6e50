"""Turns search parameters into SQL predicates over the `resources` table.

Each parameter occurrence becomes one predicate (`res_pk IN (index subquery)`, EXISTS for
`_has`, joins for chains); repeated parameters AND, comma-separated values OR. The
authorization boundary is ANDed into every nested resource a chain or `_has` touches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, false, not_, or_, select, true

from fhir_server.errors import BadRequest
from fhir_server.search import composite, date, quantity, reference, string, token, uri
from fhir_server.search.registry import SearchParam, SearchRegistry
from fhir_server.search.tables import INDEX_TABLES, alias, search_reference
from fhir_server.storage.tables import resources

Expander = Callable[[str], list[tuple[str, str]]]


class UnknownParameter(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def split_values(raw: str) -> list[str]:
    """Comma-separated OR values; `\\,` is a literal comma."""
    out, current, i = [], "", 0
    while i < len(raw):
        if raw[i] == "\\" and i + 1 < len(raw) and raw[i + 1] in ",$|\\":
            current += "\\" + raw[i + 1] if raw[i + 1] in "$|" else raw[i + 1]
            i += 2
            continue
        if raw[i] == ",":
            out.append(current)
            current = ""
        else:
            current += raw[i]
        i += 1
    out.append(current)
    return out


@dataclass
class QueryContext:
    registry: SearchRegistry
    base_url: str
    boundary: Any
    expander: Expander | None
    aliases: int = 0

    def alias(self, source: Any) -> Any:
        """A cached alias with a name unique within this search's statements (stable SQL text too)."""
        self.aliases += 1
        if self.aliases > 64:  # a pathological query: do not grow the cache
            return alias(source)
        return alias(source, f"{source.name.removeprefix('search_')}_{self.aliases}")

    def boundary_for(self, table: Any, res_type: str | None) -> Any:
        if self.boundary is None:
            return true()
        pred = self.boundary.predicate(table, res_type)
        return true() if pred is None else pred


def _missing(ctx: QueryContext, res: Any, param: SearchParam, raw: str, name: str) -> Any:
    if raw not in ("true", "false"):
        raise BadRequest(f"{name} takes true or false", f"{name} chỉ nhận true hoặc false", expression=name)
    table = ctx.alias(INDEX_TABLES["token" if param.type == "composite" else param.type])
    has_value = exists(select(table.c.res_pk).where(table.c.res_pk == res.c.res_pk, table.c.param == param.key))
    return not_(has_value) if raw == "true" else has_value


def _value_clause(ctx: QueryContext, table: Any, param: SearchParam, raw: str, modifier: str | None,
                  name: str) -> Any:
    if param.type == "token":
        if modifier in ("in", "not-in"):
            if ctx.expander is None:
                raise BadRequest(f"{name}: ValueSet modifiers are not available", f"{name}: chưa hỗ trợ ValueSet",
                                 expression=name)
            return token.codes_clause(table, param, ctx.expander(raw))
        return token.clause(table, param, raw, modifier, name)
    if param.type == "string":
        return string.clause(table, raw, modifier)
    if param.type == "date":
        return date.clause(table, raw, name)
    if param.type in ("number", "quantity"):
        return quantity.clause(table, raw, name, param.type == "quantity")
    if param.type == "reference":
        return reference.clause(table, param, raw, modifier, ctx.base_url)
    if param.type == "uri":
        return uri.clause(table, raw, modifier)
    if param.type == "composite":
        return composite.clause(table, param, raw)
    raise BadRequest(f"Unsupported parameter type for {name}", f"Không hỗ trợ loại tham số của {name}")


_ALLOWED_MODIFIERS = {
    "string": {"exact", "contains", "missing"},
    "token": {"not", "text", "of-type", "in", "not-in", "missing"},
    "reference": {"identifier", "missing"},
    "date": {"missing"}, "number": {"missing"}, "quantity": {"missing"},
    "uri": {"below", "above", "missing"}, "composite": {"missing"},
}


def _split_name(name: str) -> tuple[str, str | None, str | None]:
    """`actor:Practitioner.name:exact` → ("actor", "Practitioner", "name:exact")."""
    head, _, chain = name.partition(".")
    code, _, modifier = head.partition(":")
    return code, modifier or None, chain or None


def driver_rank(ctx: QueryContext, res_type: str, name: str, raw: str) -> int:
    """How well a predicate drives a query (lower = fewer rows expected); static, so the same SQL
    shape on SQLite (whose planner takes the rowid `IN` list as given) and PostgreSQL."""
    if name.startswith("_has:"):
        return 9
    code, modifier, chain = _split_name(name)
    if code == "_id" and not chain:
        return 9 if modifier == "not" else 0
    if code == "_lastUpdated":
        return 8
    param = ctx.registry.get(res_type, code)
    if param is None or modifier in ("missing", "not", "not-in"):
        return 9
    if chain:
        return 2
    kind = param.type
    if kind == "reference" or (kind == "token" and ("identifier" in code or modifier == "of-type")):
        return 1
    if kind == "uri" or (kind == "string" and modifier == "exact"):
        return 2
    if kind == "string":
        return 7 if modifier == "contains" else 3
    if kind in ("token", "composite"):
        return 4 if "|" in raw or modifier == "text" else 5
    return 6  # date, number, quantity: usually wide ranges


def index_subquery(ctx: QueryContext, res_type: str, name: str, raw: str) -> Any:
    """`SELECT res_pk FROM <index> WHERE param = … AND (values)` for a plain positive parameter, else None."""
    if name.startswith("_has:"):
        return None
    code, modifier, chain = _split_name(name)
    param = ctx.registry.get(res_type, code)
    if (param is None or chain or code in ("_id", "_lastUpdated") or modifier in ("missing", "not", "not-in")
            or (modifier and not (param.type == "reference" and modifier[0].isupper())
                and modifier not in _ALLOWED_MODIFIERS.get(param.type, set()))):
        return None
    table = ctx.alias(INDEX_TABLES["token" if param.type == "composite" else param.type])
    matches = or_(*[_value_clause(ctx, table, param, v, modifier, name) for v in split_values(raw)])
    return select(table.c.res_pk).where(table.c.param == param.key, matches)


def param_clause(ctx: QueryContext, res: Any, res_type: str, name: str, raw: str, correlated: bool = False) -> Any:
    """Predicate for one `name=raw` occurrence on the resources alias `res` of type `res_type`.

    The driving predicate of a query is `res_pk IN (index rows)`; the others are `correlated`:
    EXISTS probes of the index on (res_pk, param) for each candidate row, so a wide predicate
    (`status=free`, a date range) never materialises its whole match list.
    """
    if name.startswith("_has:"):
        return _has_clause(ctx, res, res_type, name, raw)
    code, modifier, chain = _split_name(name)
    values = split_values(raw)
    if code == "_id" and not chain:
        if modifier not in (None, "not"):
            raise BadRequest(f"Modifier :{modifier} is not supported on _id", f"Không hỗ trợ :{modifier} với _id",
                             expression=name)
        cond = res.c.res_id.in_(values)
        return not_(cond) if modifier == "not" else cond
    if code == "_lastUpdated" and not chain:
        return or_(*[date.compare(res.c.updated_us, res.c.updated_us, *date.parse_search_value(v, name))
                     for v in values])
    param = ctx.registry.get(res_type, code)
    if param is None:
        raise UnknownParameter(name)
    if chain:
        if param.type != "reference":
            raise BadRequest(f"{code} is not a reference parameter and cannot be chained",
                             f"{code} không phải tham số tham chiếu nên không thể nối chuỗi", expression=name)
        return _chain_clause(ctx, res, param, modifier, chain, raw, name, correlated)
    if modifier == "missing":
        return _missing(ctx, res, param, raw, name)
    if modifier and not (param.type == "reference" and modifier[0].isupper()) and \
            modifier not in _ALLOWED_MODIFIERS.get(param.type, set()):
        raise BadRequest(f"Modifier :{modifier} is not supported for {code} ({param.type})",
                         f"Không hỗ trợ bổ ngữ :{modifier} cho {code} ({param.type})", expression=name)
    table = ctx.alias(INDEX_TABLES["token" if param.type == "composite" else param.type])
    negate = modifier in ("not", "not-in")
    inner_mod = "in" if modifier == "not-in" else (None if modifier == "not" else modifier)
    matches = or_(*[_value_clause(ctx, table, param, v, inner_mod, name) for v in values])
    sub = select(table.c.res_pk).where(table.c.param == param.key, matches)
    if correlated:
        probe = exists(sub.where(table.c.res_pk == res.c.res_pk))
        return not_(probe) if negate else probe
    return res.c.res_pk.not_in(sub) if negate else res.c.res_pk.in_(sub)


def _chain_clause(ctx: QueryContext, res: Any, param: SearchParam, type_modifier: str | None, chain: str,
                  raw: str, name: str, correlated: bool = False) -> Any:
    served = ctx.registry.served
    targets = [type_modifier] if type_modifier else [t for t in param.targets if t in served]
    alternatives = []
    for target in targets:
        tgt = ctx.alias(resources)
        ref = ctx.alias(search_reference)
        try:
            inner = param_clause(ctx, tgt, target, chain, raw)
        except UnknownParameter:
            if len(targets) == 1:
                raise UnknownParameter(name) from None
            continue
        sub = (
            select(ref.c.res_pk)
            .select_from(ref.join(tgt, and_(tgt.c.res_type == ref.c.target_type, tgt.c.res_id == ref.c.target_id)))
            .where(ref.c.param == param.key, ref.c.target_type == target, tgt.c.deleted.is_(False), inner,
                   ctx.boundary_for(tgt, target))
        )
        alternatives.append(exists(sub.where(ref.c.res_pk == res.c.res_pk)) if correlated
                            else res.c.res_pk.in_(sub))
    if not alternatives:
        raise UnknownParameter(name)
    return or_(*alternatives)


def _has_clause(ctx: QueryContext, res: Any, res_type: str, name: str, raw: str) -> Any:
    parts = name.split(":", 3)
    if len(parts) != 4 or not parts[3]:
        raise BadRequest(f"Malformed _has parameter '{name}'", f"Tham số _has không hợp lệ '{name}'", expression=name)
    _, src_type, ref_code, rest = parts
    ref_param = ctx.registry.get(src_type, ref_code)
    if ref_param is None or ref_param.type != "reference":
        raise UnknownParameter(name)
    src = ctx.alias(resources)
    ref = ctx.alias(search_reference)
    try:
        inner = param_clause(ctx, src, src_type, rest, raw)
    except UnknownParameter:
        raise UnknownParameter(name) from None
    return exists(
        select(ref.c.res_pk)
        .select_from(ref.join(src, src.c.res_pk == ref.c.res_pk))
        .where(ref.c.param == ref_param.key, ref.c.target_id == res.c.res_id, ref.c.target_type == res_type,
               src.c.deleted.is_(False), inner, ctx.boundary_for(src, src_type))
    )


def sort_expression(ctx: QueryContext, res: Any, res_type: str | None, code: str, descending: bool) -> Any:
    from sqlalchemy import func

    if code == "_id":
        return res.c.res_id
    if code == "_lastUpdated":
        return res.c.updated_us
    param = ctx.registry.get(res_type, code) if res_type else None
    if param is None:
        raise UnknownParameter(f"_sort={code}")
    table = ctx.alias(INDEX_TABLES["token" if param.type == "composite" else param.type])
    if param.type in ("date", "number", "quantity"):
        column = table.c.high if descending else table.c.low
    else:
        name = {"string": "value", "token": "code", "composite": "code", "reference": "target_id",
                "uri": "uri"}[param.type]
        column = table.c[name]
    agg = func.max(column) if descending else func.min(column)
    return select(agg).where(table.c.res_pk == res.c.res_pk, table.c.param == param.key).scalar_subquery()


def never() -> Any:
    return false()
