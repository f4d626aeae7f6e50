"""The server's own conformance resources, served read-only from memory.

StructureDefinitions, SearchParameters and OperationDefinitions of ``profiles/`` and the CodeSystems and
ValueSets of ``terminology/`` ship with the code, so every worker holds the same set: they are not copied
into the database. ``OverlayRepository`` answers read/vread of them; ``OverlaySearch`` puts those matching a
search in front of the stored ones (all of them on the first page; there are a few dozen). Stored conformance
resources written by operators stay searchable next to them; writing a resource with one of the server's
ids or canonical URLs is refused (``protect``).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import orjson

from fhir_server.errors import Issue, MethodNotAllowed, Unprocessable
from fhir_server.search.api import SearchRequest, SearchResult
from fhir_server.search.query import split_values
from fhir_server.storage.repository import StoredResource
from terminology import loader

#: The unit of work open in this context (a transaction Bundle, an update): rules that read referenced
#: resources read through it, so they see what the same transaction wrote before.
ACTIVE_UNIT_OF_WORK: ContextVar[Any] = ContextVar("active_unit_of_work", default=None)
DeleteCheck = Callable[[dict[str, Any], str], list[Issue]]

PROFILES_DIR = Path(__file__).resolve().parent.parent.parent / "profiles"
CONFORMANCE_TYPES = ("StructureDefinition", "SearchParameter", "OperationDefinition", "CodeSystem", "ValueSet")
LAST_UPDATED = "2026-12-01T00:00:00.000+00:00"
_RESULT = {"_count", "_sort", "_include", "_revinclude", "_total", "_summary", "_elements", "_page", "_type",
           "_contained", "_containedType", "_format", "_pretty"}


def own_resources() -> list[dict[str, Any]]:
    out = []
    for t in ("StructureDefinition", "SearchParameter", "OperationDefinition"):
        out += [json.loads(p.read_text(encoding="utf-8")) for p in sorted(PROFILES_DIR.glob(f"{t}-*.json"))]
    out += [r for r in loader.iter_resources() if r["resourceType"] in CONFORMANCE_TYPES]
    return out


def _fold(s: str) -> str:
    s = s.replace("đ", "d").replace("Đ", "D")
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c)).lower()


class ConformanceStore:
    def __init__(self, resources: Iterable[dict[str, Any]]) -> None:
        self.by_key: dict[tuple[str, str], StoredResource] = {}
        self.resources: dict[tuple[str, str], dict[str, Any]] = {}
        self.urls: set[str] = set()
        for r in resources:
            key = (r["resourceType"], r["id"])
            body = {**r, "meta": {**(r.get("meta") or {}), "versionId": "1", "lastUpdated": LAST_UPDATED}}
            self.resources[key] = body
            self.by_key[key] = StoredResource(res_type=key[0], res_id=key[1], version_id=1, last_updated=LAST_UPDATED,
                                              deleted=False, content=orjson.dumps(body).decode())
            if r.get("url"):
                self.urls.add(r["url"])

    def get(self, res_type: str, res_id: str) -> StoredResource | None:
        return self.by_key.get((res_type, res_id))

    def of_type(self, res_type: str) -> list[tuple[dict[str, Any], StoredResource]]:
        return [(r, self.by_key[k]) for k, r in self.resources.items() if k[0] == res_type]

    # -- a small in-memory matcher for searches on conformance types -----------------------
    def search(self, registry: Any, res_type: str, params: list[tuple[str, str]]) -> list[StoredResource] | None:
        """Matches among the own resources, or None when a parameter cannot be evaluated here."""
        out = []
        for resource, stored in self.of_type(res_type):
            ok = True
            for name, raw in params:
                if name.split(":")[0] in _RESULT:
                    continue
                verdict = self._match(registry, res_type, resource, name, raw)
                if verdict is None:
                    return None
                if not verdict:
                    ok = False
                    break
            if ok:
                out.append(stored)
        return out

    def _match(self, registry: Any, res_type: str, resource: dict[str, Any], name: str, raw: str) -> bool | None:
        code, _, mod = name.partition(":")
        modifier = mod or None
        values = split_values(raw)
        if code == "_id":
            hit = resource["id"] in values
            return not hit if modifier == "not" else hit
        param = registry.get(res_type, code) if registry is not None else None
        if param is None or "." in name:
            return None
        found = [v for v, _ in param.values(resource)]
        if modifier == "missing":
            return (not found) == (raw == "true")
        if param.type == "uri":
            return any(_uri(f, v, modifier) for f in found for v in values)
        if param.type == "string":
            return any(_string(f, v, modifier) for f in found for v in values)
        if param.type == "token":
            if modifier not in (None, "not"):
                return None
            hit = any(_token(f, v) for f in found for v in values)
            return not hit if modifier == "not" else hit
        if param.type == "reference":
            return any(isinstance(f, dict) and str(f.get("reference", "")).endswith(v) for f in found for v in values)
        return None


def _uri(found: Any, value: str, modifier: str | None) -> bool:
    if not isinstance(found, str):
        return False
    if modifier == "below":
        return found.startswith(value)
    if modifier == "above":
        return value.startswith(found)
    return found == value


def _string(found: Any, value: str, modifier: str | None) -> bool:
    texts = [found] if isinstance(found, str) else [str(v) for v in found.values() if isinstance(v, str)] \
        if isinstance(found, dict) else []
    for t in texts:
        if modifier == "exact" and t == value:
            return True
        if modifier == "contains" and _fold(value) in _fold(t):
            return True
        if modifier is None and _fold(t).startswith(_fold(value)):
            return True
    return False


def _token(found: Any, value: str) -> bool:
    system, sep, code = value.rpartition("|") if "|" in value else (None, "", value)
    candidates: list[tuple[str | None, str]] = []
    if isinstance(found, str | bool):
        candidates = [(None, str(found).lower() if isinstance(found, bool) else found)]
    elif isinstance(found, dict):
        if "coding" in found:
            candidates = [(c.get("system"), c.get("code", "")) for c in found["coding"]]
        elif "code" in found:
            candidates = [(found.get("system"), found["code"])]
        elif "value" in found:
            candidates = [(found.get("system"), found["value"])]
    return any((not sep or system == (s or "")) and (code == "" or c == code) for s, c in candidates)


class OverlayRepository:
    """The repository, with the server's own conformance resources readable by id (and not deletable), the open
    unit of work published in ``ACTIVE_UNIT_OF_WORK``, and deletes checked by the profiles (issued prescriptions)."""

    def __init__(self, inner: Any, store: ConformanceStore, delete_check: DeleteCheck | None = None) -> None:
        object.__setattr__(self, "_inner", inner)
        object.__setattr__(self, "_store", store)
        object.__setattr__(self, "_delete_check", delete_check)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._inner, name, value)  # e.g. a component wrapping `index` reaches the repository itself

    def read(self, res_type: str, res_id: str, *args: Any, **kwargs: Any) -> StoredResource | None:
        own = self._store.get(res_type, res_id)
        return own if own is not None else self._inner.read(res_type, res_id, *args, **kwargs)

    def read_with(self, res_type: str, res_id: str, *args: Any) -> tuple[StoredResource | None, list[Any] | None]:
        """As the store's `read_with`; the other statement's rows are None for one of our own definitions."""
        own = self._store.get(res_type, res_id)
        if own is not None:
            return own, None
        result: tuple[StoredResource | None, list[Any] | None] = self._inner.read_with(res_type, res_id, *args)
        return result

    def read_checked(self, res_type: str, res_id: str, *args: Any) -> tuple[StoredResource | None, bool | None]:
        """As the store's `read_checked`; undecided (None) for one of our own definitions."""
        own = self._store.get(res_type, res_id)
        if own is not None:
            return own, None
        result: tuple[StoredResource | None, bool | None] = self._inner.read_checked(res_type, res_id, *args)
        return result

    @contextmanager
    def unit_of_work(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        with self._inner.unit_of_work(*args, **kwargs) as uow:
            guarded = _GuardedUnitOfWork(uow, self._store, self._delete_check)
            token = ACTIVE_UNIT_OF_WORK.set(guarded)
            try:
                yield guarded
            finally:
                ACTIVE_UNIT_OF_WORK.reset(token)

    def vread(self, res_type: str, res_id: str, version: int, *args: Any, **kwargs: Any) -> StoredResource | None:
        own = self._store.get(res_type, res_id)
        if own is not None:
            return own if version == 1 else None
        return self._inner.vread(res_type, res_id, version, *args, **kwargs)


class _GuardedUnitOfWork:
    """A unit of work that refuses to delete one of the server's own definitions."""

    def __init__(self, inner: Any, store: ConformanceStore, delete_check: DeleteCheck | None = None) -> None:
        self._inner = inner
        self._store = store
        self._delete_check = delete_check

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def delete(self, res_type: str, res_id: str, *args: Any, **kwargs: Any) -> Any:
        if self._store.get(res_type, res_id) is not None:
            raise MethodNotAllowed(f"{res_type}/{res_id} is one of the server's own definitions and is read-only",
                                   f"{res_type}/{res_id} là định nghĩa của máy chủ, chỉ được đọc")
        if self._delete_check is not None:
            current = self._inner.read(res_type, res_id)
            if current is not None and not current.deleted and current.content:
                errors = [i for i in self._delete_check(orjson.loads(current.content), res_type)
                          if i.severity in ("error", "fatal")]
                if errors:
                    raise Unprocessable(errors[0].en, errors[0].vi, issues=errors)
        return self._inner.delete(res_type, res_id, *args, **kwargs)


class OverlaySearch:
    """The search engine, with the server's own conformance resources in front of conformance searches."""

    def __init__(self, inner: Any, store: ConformanceStore) -> None:
        object.__setattr__(self, "_inner", inner)
        object.__setattr__(self, "_store", store)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._inner, name, value)  # e.g. `expander` reaches the engine itself

    def search(self, conn: Any, request: SearchRequest) -> SearchResult:
        result: SearchResult = self._inner.search(conn, request)
        if request.res_type not in CONFORMANCE_TYPES or any(k == "_page" for k, _ in request.params):
            return result
        own = self._store.search(getattr(self._inner, "registry", None), request.res_type, list(request.params))
        if not own:
            return result
        if result.total is not None:
            result.total += len(own)
        if not result.summary_count_only:
            result.matches = [*own, *result.matches]
        return result


def protect(store: ConformanceStore) -> Any:
    """A validator refusing writes that would replace or shadow one of the server's own definitions."""

    def check(resource: dict[str, Any], res_type: str, mode: str) -> None:
        if res_type not in CONFORMANCE_TYPES:
            return
        if (res_type, str(resource.get("id", ""))) in store.resources or resource.get("url") in store.urls:
            raise MethodNotAllowed(
                f"{res_type}/{resource.get('id') or resource.get('url')} is one of the server's own definitions and "
                "is read-only", f"{res_type}/{resource.get('id') or resource.get('url')} là định nghĩa của máy chủ, "
                "chỉ được đọc", expression=f"{res_type}.url")

    return check
