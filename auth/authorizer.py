"""The Authorizer behind `FhirService` (fhir_server/authorization.py): authenticate, check, bound.

`authorize` runs for every request and every Bundle entry (the dispatcher calls it): it
verifies the bearer token, sets `req.principal`, and checks the interaction against the
granted scopes ∩ the policy ceiling. `boundary` gives search the SQL predicate; `visible`
uses the same predicate for one row (read, vread, history: outside → 404); `check_write`
keeps written resources inside the boundary.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import and_, false, literal_column, or_, select, true

from auth.boundary import Anchor, LinkCompiler, RowChecker, SqlBoundary, organizations_of_province
from auth.owner_facts import READ_CONDITION, OwnerGraph, facts_inside
from auth.policy import Policy, Profile
from auth.scopes import Grants, grants_for
from auth.tokens import InvalidToken, TokenVerifier
from fhir_server.errors import Forbidden, NotAuthenticated, NotFound
from fhir_server.interactions.common import ID_RE
from fhir_server.interactions.model import FhirRequest
from fhir_server.principal import Principal
from fhir_server.registry import RESOURCE_TYPES
from fhir_server.search.query import QueryContext, param_clause
from fhir_server.search.reference import parse_literal
from fhir_server.storage.repository import StoredResource
from fhir_server.storage.tables import resources

ACTION = {"read": "r", "vread": "r", "history-instance": "r", "search-type": "s", "history-type": "s",
          "create": "c", "update": "u", "patch": "u", "delete": "d"}
PUBLIC_INTERACTIONS = {"read", "vread", "search-type"}
REVOCATION_TTL = 1.0
SYSTEM_INTERACTIONS = {"search-system", "history-system", "transaction"}


class Access:
    """Everything derived from one principal: profile, effective actions, boundary rules."""

    def __init__(self, policy: Policy, principal: Principal | None, registry: Any, base_url: str,
                 dialect: Any = None, facts: bool = False) -> None:
        self.principal = principal
        self.profile: Profile | None = policy.profile(principal.role, principal.tier) if principal else None
        grants = grants_for(principal.scopes) if principal else Grants({}, {}, frozenset())
        self.grants = grants
        self.actions: dict[str, frozenset[str]] = {}
        if principal is None:
            for t in policy.public:
                self.actions[t] = frozenset("rs")
        elif self.profile is not None and grants.contexts & self.profile.contexts:
            for t, acts in _ceiling(self.profile).items():
                allowed = grants.actions.get(t, frozenset()) & acts
                if allowed:
                    self.actions[t] = allowed
        self.registry = registry
        self.base_url = base_url
        self.policy = policy
        # A facility's organization boundary is answered by the ownership facts (auth/owner_facts.py)
        # when they are kept for this policy's links: one probe per row instead of the link walk.
        org = (principal.organization or "").removeprefix("Organization/") if principal else ""
        self._facts_org = org if (facts and self.profile is not None and self.profile.boundary == "organization"
                                  and ID_RE.match(org)) else None
        read_links, owner_links, anchor = self._anchor()
        self.read_compiler = LinkCompiler(read_links, owner_links, anchor, dialect) if anchor else None
        self.write_compiler = LinkCompiler(owner_links, owner_links, anchor, dialect) if anchor else None
        self.boundary = SqlBoundary({t: self._rule(t) for t in RESOURCE_TYPES})
        # No predicate at all only when every type is readable without restriction (admin, all scopes).
        self.no_boundary = all(self.boundary.unrestricted(t) for t in RESOURCE_TYPES)
        self.visible_sql: dict[str, str] = {}  # type → compiled "is this row inside" statement
        self.paramstyle = getattr(dialect, "paramstyle", "qmark")
        self._row_checkers: dict[str, RowChecker | None] = {}
        self._shared_checker: RowChecker | None = None

    def _anchor(self) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]], Anchor | None]:
        p, prof, pol = self.principal, self.profile, self.policy
        if p is None or prof is None or prof.boundary == "none":
            return {}, {}, None
        if prof.boundary == "patient":
            pid = (p.patient or p.user or "").removeprefix("Patient/")
            return pol.patient, pol.patient, Anchor("Patient", [pid] if ID_RE.match(pid) else [])
        if prof.boundary == "jurisdiction":
            if not p.jurisdiction:
                return {}, {}, None  # national
            if not p.jurisdiction.isdigit():
                return pol.owner, pol.owner, Anchor("Organization", [])
            read_links = {t: pol.read_links(t) for t in RESOURCE_TYPES}
            return read_links, pol.owner, Anchor("Organization", organizations_of_province(p.jurisdiction))
        org = (p.organization or "").removeprefix("Organization/")
        read_links = {t: pol.read_links(t) for t in RESOURCE_TYPES}
        return read_links, pol.owner, Anchor("Organization", [org] if ID_RE.match(org) else [])

    def can(self, res_type: str, action: str) -> bool:
        return action in self.actions.get(res_type, frozenset())

    @property
    def unbounded(self) -> bool:
        return self.principal is not None and self.profile is not None and self.profile.boundary == "none"

    def _rule(self, t: str) -> Any:
        if not (self.can(t, "r") or self.can(t, "s")):
            return False
        queries = self.grants.restrictions(t, "s") or self.grants.restrictions(t, "r")
        open_type = self.principal is None or self.profile is None or t in self.profile.open
        compiler = self.read_compiler
        if (open_type or compiler is None) and not queries:
            if self.principal is not None and not open_type and compiler is None and not self._national():
                return False
            return None

        facts_org = self._facts_org

        def rule(table: Any) -> Any:
            parts = []
            if not open_type and facts_org is not None:
                parts.append(facts_inside(table, facts_org))
            elif not open_type and compiler is not None:
                parts.append(compiler.inside(table, t))
            if queries:
                parts.append(self._query_clause(table, t, queries))
            return and_(*parts)
        return rule

    def row_predicate(self, table: Any, t: str) -> Any:
        """The boundary rule for one row (correlated form; see LinkCompiler.inside_row)."""
        rule = self.boundary.per_type.get(t, False)
        if rule is None:
            return true()
        if rule is False:
            return false()
        queries = self.grants.restrictions(t, "s") or self.grants.restrictions(t, "r")
        open_type = self.principal is None or self.profile is None or t in self.profile.open
        parts = []
        if not open_type and self.read_compiler is not None:
            parts.append(self.read_compiler.inside_row(table, t))
        if queries:
            parts.append(self._query_clause(table, t, queries))
        return and_(*parts) if parts else true()

    def row_checker(self, t: str) -> RowChecker | None:
        """The Python walk of the boundary for one row, where it is exactly the rule (no scope query
        restriction, an anchor given as ids); None → use the correlated SQL statement."""
        if t in self._row_checkers:
            return self._row_checkers[t]
        checker = None
        open_type = self.principal is None or self.profile is None or t in self.profile.open
        queries = self.grants.restrictions(t, "s") or self.grants.restrictions(t, "r")
        comp = self.read_compiler
        if (not open_type and not queries and comp is not None and isinstance(comp.anchor.ids, list)
                and callable(self.boundary.per_type.get(t))):
            checker = self._shared_checker
            if checker is None:
                checker = self._shared_checker = RowChecker(comp, self.paramstyle)
        self._row_checkers[t] = checker
        return checker

    def facts_org(self, t: str) -> str | None:
        """The Organization whose ownership facts decide a read of `t` (auth/owner_facts.py): a facility's,
        where the boundary is exactly the organization rule (no scope query restriction)."""
        org = self._facts_org
        if org is None or self.row_checker(t) is None:
            return None
        return org

    @property
    def national(self) -> bool:
        """No boundary of place: the admin, or a jurisdiction role without a province."""
        return self._national()

    def _national(self) -> bool:
        prof = self.profile
        return prof is not None and (prof.boundary == "none" or
                                     (prof.boundary == "jurisdiction" and not (self.principal and
                                                                                self.principal.jurisdiction)))

    def _query_clause(self, table: Any, t: str, queries: tuple[tuple[tuple[str, str], ...], ...]) -> Any:
        ctx = QueryContext(self.registry, self.base_url, None, None)
        alternatives = []
        for query in queries:
            try:
                alternatives.append(and_(*[param_clause(ctx, table, t, k, v) for k, v in query]))
            except Exception:
                alternatives.append(false())
        return or_(*alternatives)


@dataclass(frozen=True)
class Decided:
    """The outcome of `read_joined`: the stored resource, or None (absent or outside: 404)."""

    stored: StoredResource | None


class PolicyAuthorizer:
    def __init__(self, policy: Policy, verifier: TokenVerifier, svc: Any, public_directory: bool,
                 on_authenticated: Callable[[FhirRequest], None] | None = None) -> None:
        self.policy = policy
        self.verifier = verifier
        self.svc = svc
        self.public_directory = public_directory
        self.on_authenticated = on_authenticated
        self.flush_audit: Callable[[], None] | None = None
        self._access_cache: dict[tuple[Principal | None, str], Access] = {}
        self._not_revoked: dict[str, float] = {}
        # The ownership facts answer the organization boundary when they were built from these links.
        facts = getattr(svc, "owner_facts", None)
        self.facts = facts if facts is not None and facts.graph.mark == OwnerGraph(
            {t: policy.read_links(t) for t in RESOURCE_TYPES}, policy.owner).mark else None
        mark = "%s" if svc.repo.engine.dialect.paramstyle in ("format", "pyformat") else "?"
        self._read_condition = READ_CONDITION.format(mark=mark)
        self._facts_sql = ("SELECT 1 FROM resources r JOIN auth_owner_facts o ON o.res_pk = r.res_pk "
                           f"WHERE r.res_type = {mark} AND r.res_id = {mark} AND o.org_id = {mark}")

    # -- authentication --------------------------------------------------------------------
    def issuer_for(self, base_url: str) -> str:
        cfg = self.verifier.config
        if cfg.issuer:
            return cfg.issuer
        base_path = self.svc.settings.base_path
        origin = base_url[: -len(base_path)] if base_path and base_url.endswith(base_path) else base_url
        return f"{origin}/auth"

    def authenticate(self, req: FhirRequest) -> Principal | None:
        header = req.header("authorization")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthenticated("invalid_request", "The Authorization header must be 'Bearer <token>'",
                                   "Tiêu đề Authorization phải có dạng 'Bearer <mã>'")
        try:
            principal = _verify_cached(self.verifier, token.strip(), self.issuer_for(req.base_url), req.base_url,
                                       int(time.time()) // 5)
        except InvalidToken as exc:
            raise _unauthenticated("invalid_token", exc.en, exc.vi) from None
        if principal.token_id and self._revoked(principal.token_id):
            raise _unauthenticated("invalid_token", "The token has been revoked", "Mã đã bị thu hồi")
        return principal

    def _revoked(self, jti: str) -> bool:
        """Revocation lookups are remembered for REVOCATION_TTL seconds per process (a revocation made
        through this process is seen at once, one made elsewhere within that time)."""
        now = time.monotonic()
        hit = self._not_revoked.get(jti)
        if hit is not None and now - hit < REVOCATION_TTL:
            return False
        if self.verifier.is_revoked(jti):
            return True
        if len(self._not_revoked) > 10_000:
            self._not_revoked.clear()
        self._not_revoked[jti] = now
        return False

    def forget_revocation(self, jti: str) -> None:
        self._not_revoked.pop(jti, None)

    def access(self, req: FhirRequest) -> Access:
        cached = getattr(req, "_auth_access", None)
        if cached is not None and cached.principal is req.principal:
            return cached
        key = (req.principal, req.base_url)
        acc = self._access_cache.get(key)
        if acc is None:
            acc = Access(self.policy, req.principal, self.svc.search.registry, req.base_url,
                         self.svc.repo.engine.dialect, facts=self.facts is not None)
            if len(self._access_cache) > 2048:
                self._access_cache.clear()
            self._access_cache[key] = acc
        req._auth_access = acc  # type: ignore[attr-defined]
        return acc

    # -- the Authorizer protocol ---------------------------------------------------------
    def authorize(self, req: FhirRequest, interaction: str, operation: Any = None) -> None:
        if (req.res_type == "AuditEvent" and self.flush_audit is not None and req.uow is None
                and req.method in ("GET", "HEAD")):
            # this process's queued events become readable first (not inside a transaction Bundle: its
            # write lock is held, and the flush's own transaction would wait for it — on SQLite, 30 s)
            self.flush_audit()
        if req.principal is None:
            principal = self.authenticate(req)
            if principal is None:
                if not (self.public_directory and interaction in PUBLIC_INTERACTIONS
                        and req.res_type in self.policy.public and operation is None):
                    raise _unauthenticated(None, "Authentication required: send 'Authorization: Bearer <token>'",
                                           "Cần xác thực: gửi 'Authorization: Bearer <mã>'")
                return
            req.principal = principal
            if self.on_authenticated is not None:
                self.on_authenticated(req)
        acc = self.access(req)
        if acc.profile is None:
            raise Forbidden(f"No policy for role '{req.principal.role}'", f"Không có chính sách cho vai trò "
                            f"'{req.principal.role}'")
        if operation is not None:
            self._authorize_operation(req, acc, operation)
            return
        if interaction in SYSTEM_INTERACTIONS:
            if not acc.actions:
                raise _forbidden(interaction, "*")
            return
        action = ACTION.get(interaction)
        res_type = req.res_type or ""
        if action is None or res_type not in RESOURCE_TYPES:
            return  # the interaction answers 404/405 itself
        if not acc.can(res_type, action):
            raise _forbidden(interaction, res_type)

    def _authorize_operation(self, req: FhirRequest, acc: Access, op: Any) -> None:
        right = getattr(op, "access", "read")
        res_type = req.res_type
        profile = acc.profile
        assert profile is not None
        if right in ("read", "write"):
            need = ("r",) if right == "read" else ("c", "u")
            types = [res_type] if res_type else list(op.resource_types or ())
            if types and not any(acc.can(t, a) for t in types for a in need):
                raise _forbidden(f"${op.code}", res_type or "*")
            if not types and not acc.actions:
                raise _forbidden(f"${op.code}", "*")
        elif right not in profile.rights:
            raise Forbidden(f"${op.code} needs the right '{right}', which role '{profile.role}' does not have",
                            f"${op.code} cần quyền '{right}' mà vai trò '{profile.role}' không có")
        if res_type and req.res_id:
            stored = self.svc.repo.read(res_type, req.res_id)
            if stored is None or not self.visible(req, stored):
                raise NotFound(f"{res_type}/{req.res_id} not found", f"Không tìm thấy {res_type}/{req.res_id}")

    def visible(self, req: FhirRequest, stored: StoredResource) -> bool:
        acc = self.access(req)
        t = stored.res_type
        if acc.boundary.unrestricted(t):
            return True
        if acc.boundary.nothing(t):
            return False
        if stored.deleted:
            return self._visible_when_deleted(req, acc, stored)
        org = acc.facts_org(t)
        if org is not None:
            params = (t, stored.res_id, org)
            if req.uow is not None:  # (the facts of this transaction's own writes)
                return req.uow.conn.exec_driver_sql(self._facts_sql, params).first() is not None
            return self._fetch_one(self._facts_sql, params) is not None
        checker = acc.row_checker(t)
        if checker is not None:
            if req.uow is not None:
                conn = req.uow.conn
                return checker.visible(lambda sql, params: conn.exec_driver_sql(sql, params).all(), t, stored.res_id)
            return checker.visible(self._fetch_all, t, stored.res_id)
        sql = acc.visible_sql.get(t) or self._compile_visible(acc, t)
        if req.uow is not None:
            return req.uow.conn.exec_driver_sql(sql, (stored.res_id,)).first() is not None
        return self._fetch_one(sql, (stored.res_id,)) is not None

    def read_joined(self, req: FhirRequest, res_type: str, res_id: str) -> Decided | None:
        """A bounded read in one statement: the resource and its boundary lookups together (the read
        hot path under authorization). None when the plain read + `visible` must run instead."""
        acc = self.access(req)
        if acc.boundary.unrestricted(res_type) or acc.boundary.nothing(res_type) or not ID_RE.match(res_id):
            return None
        org = acc.facts_org(res_type)
        read_checked = getattr(self.svc.repo, "read_checked", None)
        if org is not None and read_checked is not None:
            stored, inside = read_checked(res_type, res_id, self._read_condition, (org,))
            if stored is None:
                return Decided(None)
            if inside is None or stored.deleted:  # one of the server's own definitions; a tombstone
                return Decided(stored if self.visible(req, stored) else None)
            return Decided(stored if inside else None)
        checker = acc.row_checker(res_type)
        read_with = getattr(self.svc.repo, "read_with", None)
        if checker is None or read_with is None:
            return None
        stored, rows = read_with(res_type, res_id, checker.two_levels_sql(res_type), (res_type, res_id),
                                 checker.TWO_LEVELS_WIDTH)
        if stored is None:
            return Decided(None)
        if rows is None or stored.deleted:  # one of the server's own definitions; a tombstone
            return Decided(stored if self.visible(req, stored) else None)
        return Decided(stored if checker.decide(self._fetch_all, res_type, res_id, rows) else None)

    def _fetch_one(self, sql: str, params: tuple[Any, ...]) -> Any:
        fetch_one = getattr(self.svc.repo, "fetch_one", None)
        if fetch_one is not None:  # the read hot path: one prepared statement, no SQLAlchemy
            return fetch_one(sql, params)
        with self.svc.repo.engine.connect() as conn:
            return conn.exec_driver_sql(sql, params).first()

    def _fetch_all(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        fetch_all = getattr(self.svc.repo, "fetch_all", None)
        if fetch_all is not None:  # the read hot path: prepared statements, no SQLAlchemy
            return list(fetch_all(sql, params))
        with self.svc.repo.engine.connect() as conn:
            return list(conn.exec_driver_sql(sql, params).all())

    def _visible_when_deleted(self, req: FhirRequest, acc: Access, stored: StoredResource) -> bool:
        """A deleted resource has no index rows, so the SQL boundary cannot see it: decide on the own (forward)
        references of its last live version, as for a write. The facility that deleted it then still gets
        410 Gone and its history; others still get 404."""
        if acc.write_compiler is None:
            return False
        version = stored.version_id - 1
        while version >= 1:
            previous = self.svc.repo.vread(stored.res_type, stored.res_id, version)
            if previous is not None and not previous.deleted and previous.content:
                conn = req.uow.conn if req.uow is not None else None
                return self._owns(acc, stored.res_type, orjson.loads(previous.content), None, conn)
            version -= 1
        return False

    def _compile_visible(self, acc: Access, res_type: str) -> str:
        """Compiled once per principal and type; values are literals (ids are checked against ID_RE)."""
        engine = self.svc.repo.engine
        stmt = select(resources.c.res_pk).where(
            resources.c.res_type == res_type, resources.c.res_id == literal_column("__RID__"),
            acc.row_predicate(resources, res_type)).limit(1)
        text = str(stmt.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
        mark = "%s" if engine.dialect.paramstyle in ("format", "pyformat") else "?"
        sql = text.replace("__RID__", mark)
        acc.visible_sql[res_type] = sql
        return sql

    def boundary(self, req: FhirRequest) -> Any:
        acc = self.access(req)
        return None if acc.no_boundary else acc.boundary

    def check_write(self, req: FhirRequest, resource: dict[str, Any], current: StoredResource | None) -> None:
        acc = self.access(req)
        res_type = str(resource.get("resourceType") or req.res_type or "")
        action = "u" if current is not None and not current.deleted else "c"
        if req.principal is None or not (acc.can(res_type, action) or acc.can(res_type, "u")):
            raise _forbidden("write", res_type)
        restrictions = acc.grants.restrictions(res_type, action)
        if restrictions and not any(self._matches(res_type, resource, q) for q in restrictions):
            raise Forbidden(f"The {res_type} does not match the granted scope's query restriction",
                            f"{res_type} không khớp giới hạn truy vấn của phạm vi được cấp")
        if acc.unbounded or acc.write_compiler is None:
            if acc._national() and not acc.unbounded:
                raise _forbidden("write", res_type)
            return
        conn = req.uow.conn if req.uow is not None else None
        if current is not None and not current.deleted and not self._inside_sql(acc, res_type, current.res_id, conn):
            raise Forbidden(f"{res_type}/{current.res_id} lies outside your organization's data",
                            f"{res_type}/{current.res_id} nằm ngoài dữ liệu của cơ sở bạn")
        if not self._owns(acc, res_type, resource, current, conn):
            raise Forbidden(f"The {res_type} would lie outside your data boundary: it must reference your "
                            "organization (or your patient)",
                            f"{res_type} sẽ nằm ngoài phạm vi dữ liệu của bạn: phải tham chiếu tới cơ sở "
                            "(hoặc bệnh nhân) của bạn")

    def security_statement(self, base_url: str) -> dict[str, Any] | None:
        issuer = self.issuer_for(base_url)
        return {
            "cors": True,
            "service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                     "code": "SMART-on-FHIR"}], "text": "OAuth2 using SMART-on-FHIR profile"}],
            "description": "SMART App Launch / Backend Services (OAuth 2.0, JWT access tokens). "
                           "Xác thực OAuth 2.0 theo SMART on FHIR.",
            "extension": [{
                "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                "extension": [{"url": "token", "valueUri": f"{issuer}/token"},
                              {"url": "authorize", "valueUri": f"{issuer}/authorize"},
                              {"url": "introspect", "valueUri": f"{issuer}/introspect"},
                              {"url": "revoke", "valueUri": f"{issuer}/revoke"}],
            }],
        }

    # -- helpers ------------------------------------------------------------------------------
    def _inside_sql(self, acc: Access, res_type: str, res_id: str, conn: Any) -> bool:
        assert acc.write_compiler is not None
        stmt = select(resources.c.res_pk).where(resources.c.res_type == res_type, resources.c.res_id == res_id,
                                                acc.write_compiler.inside(resources, res_type, top=False)).limit(1)
        if conn is not None:
            return conn.execute(stmt).first() is not None
        with self.svc.repo.engine.connect() as own:
            return own.execute(stmt).first() is not None

    def _owns(self, acc: Access, res_type: str, resource: dict[str, Any], current: StoredResource | None,
              conn: Any) -> bool:
        compiler = acc.write_compiler
        assert compiler is not None
        anchor = compiler.anchor
        anchor_ids = anchor.ids if isinstance(anchor.ids, list) else None
        for link in compiler.owner.get(res_type, ()):
            if link == "_create":
                if current is None or current.deleted:
                    return True
                continue
            if link == "_self":
                if res_type == anchor.res_type and resource.get("id") and (
                        anchor_ids is None or resource.get("id") in anchor_ids) and (
                        anchor_ids is not None or self._inside_sql(acc, res_type, str(resource["id"]), conn)):
                    return True
                continue
            if link.startswith("<"):
                if current is not None and not current.deleted:
                    return True  # already checked inside (reverse links only hold for stored resources)
                continue
            code, _, target = link.partition(">")
            param = self.svc.search.registry.get(res_type, code)
            if param is None:
                continue
            for value, _hint in param.values(resource):
                ref = value.get("reference") if isinstance(value, dict) else None
                if not isinstance(ref, str):
                    continue
                base, rtype, rid = parse_literal(ref)
                if rtype is None or rid is None or (base is not None and base != req_base(self, acc)):
                    continue
                if not target and rtype == anchor.res_type and anchor_ids is not None and rid in anchor_ids:
                    return True
                if target and rtype == target and self._inside_sql(acc, target, rid, conn):
                    return True
        return False

    def _matches(self, res_type: str, resource: dict[str, Any], query: tuple[tuple[str, str], ...]) -> bool:
        from fhir_server.search.token import _codings

        for name, raw in query:
            param = self.svc.search.registry.get(res_type, name.split(":")[0])
            if param is None or param.type != "token":
                return False
            wanted = [v.split("|") for v in raw.split(",")]
            found = [(s or "", c or "") for value, _ in param.values(resource) for s, c, _t, _i in _codings(value)]
            ok = any((len(w) == 1 and w[0] == c) or (len(w) == 2 and w[1] == c and (w[0] == s or not w[0]))
                     for w in wanted for s, c in found)
            if not ok:
                return False
        return True


@lru_cache(maxsize=64)
def _ceiling(profile: Profile) -> dict[str, frozenset[str]]:
    return profile.ceiling()


def req_base(authz: PolicyAuthorizer, acc: Access) -> str:
    return acc.base_url


@lru_cache(maxsize=2048)
def _verify_cached(verifier: TokenVerifier, token: str, issuer: str, audience: str, _slot: int) -> Principal:
    """Signature and claim checks are cached for a few seconds per token (revocation is checked each time)."""
    return verifier.verify(token, issuer, audience, check_revoked=False)


def _unauthenticated(error: str | None, en: str, vi: str) -> NotAuthenticated:
    value = 'Bearer realm="fhir"'
    if error:
        value += f', error="{error}", error_description="{en.replace(chr(34), chr(39))}"'
    return NotAuthenticated(en, vi, headers={"WWW-Authenticate": value})


def _forbidden(interaction: str, res_type: str) -> Forbidden:
    return Forbidden(f"Your granted scopes and role do not allow '{interaction}' on {res_type}",
                     f"Phạm vi được cấp và vai trò của bạn không cho phép '{interaction}' trên {res_type}")
