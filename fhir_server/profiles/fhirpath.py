"""A compiled fast path for the FHIRPath subset our invariants use (fhirpathpy evaluates everything else).

fhirpathpy interprets its parse tree on every call (~0.5–4 ms for a ``where()`` over a few sections), which
would dominate the write path. Invariants are therefore compiled once into Python closures when they stay
inside this subset: paths (choice types by prefix, as FHIRPath over JSON), ``where``, ``all``, ``exists``,
``empty``, ``count``, ``first``, ``not``, ``matches``, ``startsWith``, ``substring``, ``toString``,
``hasValue``; ``=``, ``!=``, ``<``, ``<=``, ``>``, ``>=`` (dateTimes compared as instants), ``|``,
``and``/``or``/``xor``/``implies`` with FHIRPath's three-valued logic; string, number and boolean literals;
``%resource``, ``%rootResource``, ``$this``. ``compile_fast`` returns None for anything else, and
tests/test_fhirpath_fastpath.py checks that both engines agree on every invariant and example.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

Fn = Callable[[list[Any], dict[str, Any]], list[Any]]

_TOKEN = re.compile(r"""\s*(?:
    (?P<str>'(?:[^'\\]|\\.)*')
  | (?P<num>\d+(?:\.\d+)?)
  | (?P<var>%[A-Za-z_][A-Za-z0-9_]*)
  | (?P<this>\$this)
  | (?P<id>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><=|>=|!=|=|<|>|\||\(|\)|\.|,|\{\})
)""", re.VERBOSE)
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")


class Unsupported(Exception):
    pass


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise Unsupported(text[pos:pos + 10])
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


# -------------------------------------------------------------------------- evaluation helpers
def _navigate(items: list[Any], name: str) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        if name in item:
            values = [item[name]]
        else:
            n = len(name)
            values = [v for k, v in item.items() if k.startswith(name) and len(k) > n and k[n].isupper()]
        for v in values:
            if isinstance(v, list):
                out.extend(x for x in v if x is not None)
            elif v is not None:
                out.append(v)
    return out


def _truth(items: list[Any]) -> bool | None:
    if not items:
        return None
    if len(items) == 1 and isinstance(items[0], bool):
        return items[0]
    if len(items) == 1:
        return True  # a single non-boolean item is true in a boolean context
    raise Unsupported("boolean of a collection")


def _comparable(a: Any, b: Any) -> tuple[Any, Any]:
    if isinstance(a, str) and isinstance(b, str) and _DATETIME.match(a) and _DATETIME.match(b):
        return datetime.fromisoformat(a.replace("Z", "+00:00")), datetime.fromisoformat(b.replace("Z", "+00:00"))
    if isinstance(a, bool) or isinstance(b, bool) or type(a) is not type(b):
        if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool) \
                and not isinstance(b, bool):
            return a, b
        raise Unsupported("comparison of different types")
    return a, b


def _equal(left: list[Any], right: list[Any]) -> list[Any]:
    if not left or not right:
        return []
    if len(left) != len(right):
        return [False]
    return [all(a == b for a, b in zip(left, right, strict=True))]


def _compare(op: str, left: list[Any], right: list[Any]) -> list[Any]:
    if not left or not right:
        return []
    if len(left) > 1 or len(right) > 1:
        raise Unsupported("comparison of collections")
    a, b = _comparable(left[0], right[0])
    return [{"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]]


def _logic(op: str, left: list[Any], right: list[Any]) -> list[Any]:
    a, b = _truth(left), _truth(right)
    if op == "and":
        if a is False or b is False:
            return [False]
        return [True] if a is True and b is True else []
    if op == "or":
        if a is True or b is True:
            return [True]
        return [False] if a is False and b is False else []
    if op == "xor":
        return [] if a is None or b is None else [a != b]
    # implies
    if a is False:
        return [True]
    if a is True:
        return [] if b is None else [b]
    return [True] if b is True else []


def _string(items: list[Any], what: str) -> str | None:
    if not items:
        return None
    if len(items) > 1 or not isinstance(items[0], str):
        raise Unsupported(f"{what} on a non-string")
    return str(items[0])


# -------------------------------------------------------------------------- parser → closures
class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def peek(self, value: str | None = None, kind: str | None = None) -> bool:
        if self.i >= len(self.toks):
            return False
        k, v = self.toks[self.i]
        return (value is None or v == value) and (kind is None or k == kind)

    def take(self, value: str | None = None) -> tuple[str, str]:
        if self.i >= len(self.toks) or (value is not None and self.toks[self.i][1] != value):
            raise Unsupported(f"expected {value}")
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def parse(self) -> Fn:
        fn = self.expr()
        if self.i != len(self.toks):
            raise Unsupported("trailing input")
        return fn

    def expr(self) -> Fn:
        return self._binary(0)

    _LEVELS: tuple[tuple[str, ...], ...] = (("implies",), ("or", "xor"), ("and",), ("=", "!="),
                                            ("<", "<=", ">", ">="), ("|",))

    def _binary(self, level: int) -> Fn:
        if level == len(self._LEVELS):
            return self.term()
        left = self._binary(level + 1)
        ops = self._LEVELS[level]
        while self.i < len(self.toks) and self.toks[self.i][1] in ops and self.toks[self.i][0] in ("op", "id"):
            op = self.take()[1]
            right = self._binary(level + 1)
            left = self._combine(op, left, right)
        return left

    @staticmethod
    def _combine(op: str, left: Fn, right: Fn) -> Fn:
        if op in ("and", "or", "xor", "implies"):
            return lambda items, env: _logic(op, left(items, env), right(items, env))
        if op == "=":
            return lambda items, env: _equal(left(items, env), right(items, env))
        if op == "!=":
            def neq(items: list[Any], env: dict[str, Any]) -> list[Any]:
                eq = _equal(left(items, env), right(items, env))
                return [not eq[0]] if eq else []
            return neq
        if op == "|":
            def union(items: list[Any], env: dict[str, Any]) -> list[Any]:
                out: list[Any] = []
                for x in left(items, env) + right(items, env):
                    if x not in out:
                        out.append(x)
                return out
            return union
        return lambda items, env: _compare(op, left(items, env), right(items, env))

    def term(self) -> Fn:
        fn = self.primary()
        while self.peek("."):
            self.take(".")
            fn = self.invocation(fn)
        return fn

    def primary(self) -> Fn:
        kind, value = self.take()
        if kind == "str":
            text = re.sub(r"\\(.)", r"\1", value[1:-1])
            return lambda items, env: [text]
        if kind == "num":
            number: int | float = float(value) if "." in value else int(value)
            return lambda items, env: [number]
        if kind == "var":
            name = value[1:]
            if name not in ("resource", "rootResource", "context"):
                raise Unsupported(value)
            return lambda items, env: [env[name]] if env.get(name) is not None else []
        if kind == "this":
            return lambda items, env: items
        if value == "{}":
            return lambda items, env: []
        if value == "(":
            inner = self.expr()
            self.take(")")
            return inner
        if kind == "id":
            if value in ("true", "false"):
                flag = value == "true"
                return lambda items, env: [flag]
            if value[0].isupper():
                raise Unsupported("type names")
            self.i -= 1
            return self.invocation(lambda items, env: items)
        raise Unsupported(value)

    def _args(self) -> list[Fn]:
        args: list[Fn] = []
        self.take("(")
        if not self.peek(")"):
            args.append(self.expr())
            while self.peek(","):
                self.take(",")
                args.append(self.expr())
        self.take(")")
        return args

    def invocation(self, base: Fn) -> Fn:
        kind, name = self.take()
        if kind != "id":
            raise Unsupported(name)
        if not self.peek("("):
            return lambda items, env: _navigate(base(items, env), name)
        args = self._args()
        return _function(name, base, args)


def _each(base: Fn, crit: Fn, items: list[Any], env: dict[str, Any]) -> list[tuple[Any, bool | None]]:
    return [(x, _truth(crit([x], env))) for x in base(items, env)]


def _function(name: str, base: Fn, args: list[Fn]) -> Fn:
    n = len(args)
    if name == "where" and n == 1:
        return lambda items, env: [x for x, ok in _each(base, args[0], items, env) if ok is True]
    if name == "all" and n == 1:
        return lambda items, env: [all(ok is True for _, ok in _each(base, args[0], items, env))]
    if name == "exists" and n <= 1:
        if n == 0:
            return lambda items, env: [bool(base(items, env))]
        return lambda items, env: [any(ok is True for _, ok in _each(base, args[0], items, env))]
    if name == "empty" and n == 0:
        return lambda items, env: [not base(items, env)]
    if name == "count" and n == 0:
        return lambda items, env: [len(base(items, env))]
    if name == "first" and n == 0:
        return lambda items, env: base(items, env)[:1]
    if name == "hasValue" and n == 0:
        return lambda items, env: [len(v := base(items, env)) == 1 and not isinstance(v[0], dict | list)]
    if name == "not" and n == 0:
        def negate(items: list[Any], env: dict[str, Any]) -> list[Any]:
            t = _truth(base(items, env))
            return [] if t is None else [not t]
        return negate
    if name in ("matches", "startsWith") and n == 1:
        def text_test(items: list[Any], env: dict[str, Any]) -> list[Any]:
            s = _string(base(items, env), name)
            arg = _string(args[0](items, env), name)
            if s is None or arg is None:
                return []
            return [bool(re.search(arg, s))] if name == "matches" else [s.startswith(arg)]
        return text_test
    if name == "substring" and n in (1, 2):
        def substring(items: list[Any], env: dict[str, Any]) -> list[Any]:
            s = _string(base(items, env), name)
            start = args[0](items, env)
            length = args[1](items, env) if n == 2 else None
            if s is None or not start or not isinstance(start[0], int) or start[0] >= len(s) or start[0] < 0:
                return []
            if length is not None:
                return [s[start[0]:start[0] + length[0]]] if length and isinstance(length[0], int) else []
            return [s[start[0]:]]
        return substring
    if name == "toString" and n == 0:
        def to_string(items: list[Any], env: dict[str, Any]) -> list[Any]:
            v = base(items, env)
            if len(v) != 1 or isinstance(v[0], dict | list):
                return [] if not v else _raise("toString of a collection")
            return ["true" if v[0] is True else "false" if v[0] is False else str(v[0])]
        return to_string
    raise Unsupported(f"{name}/{n}")


def _raise(what: str) -> list[Any]:
    raise Unsupported(what)


def compile_fast(expression: str) -> Callable[[Any, dict[str, Any]], list[Any]] | None:
    """A closure `fn(node, env)` for an expression of the subset, or None."""
    try:
        fn = _Parser(expression).parse()
    except Unsupported:
        return None

    def run(node: Any, env: dict[str, Any]) -> list[Any]:
        return fn([node], env)

    return run
