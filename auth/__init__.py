"""Authorization component: OAuth 2.0 / SMART on FHIR, the policy table, the audit trail.

`install(svc, settings, engine)` (listed in fhir_server/app.py COMPONENT_INSTALLERS) sets
`svc.authorizer` (default deny), `svc.audit` and the OAuth/page blueprint when
`settings.auth_enabled`; the tables join the shared metadata on import.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson

from auth import audit_trail as _audit_trail  # noqa: F401  (tables join the shared metadata)
from auth import owner_facts as _owner_facts  # noqa: F401
from auth import tables as _tables  # noqa: F401
from auth.boundary import PROVINCE_EXTENSION, PROVINCE_SEARCH_PARAMETER
from terminology.loader import CODESYSTEM_BASE

TIER_SYSTEM = f"{CODESYSTEM_BASE}facility-tier"
_INDEX_MARK = "auth-province-index-v1"


def organization_facts(resource: dict[str, Any] | None) -> tuple[str | None, str | None]:
    """(tier, province code) of an Organization: facility-tier coding; address-province extension."""
    if not resource:
        return None, None
    tier = next((c.get("code") for t in resource.get("type") or [] for c in (t.get("coding") or [])
                 if c.get("system") == TIER_SYSTEM), None)
    province = next((x.get("valueCoding", {}).get("code") for a in resource.get("address") or []
                     for x in (a.get("extension") or []) if x.get("url") == PROVINCE_EXTENSION), None)
    return tier, province


class OrgFacts:
    """Organization → (tier, province), read from the store and cached briefly per process."""

    def __init__(self, repo: Any, ttl: float = 60.0) -> None:
        self.repo = repo
        self.ttl = ttl
        self._cache: dict[str, tuple[float, tuple[str | None, str | None]]] = {}
        self._lock = threading.Lock()

    def __call__(self, org: str | None) -> tuple[str | None, str | None]:
        if not org:
            return None, None
        org_id = org.removeprefix("Organization/")
        hit = self._cache.get(org_id)
        if hit and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        stored = self.repo.read("Organization", org_id)
        facts = organization_facts(orjson.loads(stored.content) if stored and stored.content else None)
        with self._lock:
            self._cache[org_id] = (time.monotonic(), facts)
        return facts


def _ensure_province_index(svc: Any) -> None:
    from sqlalchemy import insert, select
    from sqlalchemy.exc import IntegrityError

    from fhir_server.storage.tables import server_state

    engine = svc.repo.engine
    with engine.connect() as conn:
        done = conn.execute(select(server_state.c.value).where(server_state.c.name == _INDEX_MARK)).scalar()
    if done:
        return
    svc.search.reindex(svc.repo, "Organization")
    try:
        with svc.repo.unit_of_work() as uow:
            uow.conn.execute(insert(server_state).values(name=_INDEX_MARK, value="done"))
    except IntegrityError:
        pass


def install(svc: Any, settings: Any, engine: Any) -> None:
    # The province of an Organization is searchable whether or not authorization is on, so the
    # index stays complete when a database is used both ways.
    if svc.search.registry.get("Organization", PROVINCE_SEARCH_PARAMETER["code"]) is None:
        svc.search.add_parameters([PROVINCE_SEARCH_PARAMETER])
    _ensure_province_index(svc)
    # AuditEvent lives in the audit trail's own table, with authorization on or off.
    from auth.audit_interactions import install as install_trail
    from auth.audit_trail import move_from_resources

    install_trail(svc, settings.secret_key or svc.repo.shared_secret("paging-secret"))
    move_from_resources(svc.repo, svc.search.registry)
    # Which Organizations each resource belongs to, kept with every write (the bounded read's check).
    from auth.owner_facts import install as install_owner_facts
    from auth.policy import load_policy

    install_owner_facts(svc, load_policy())
    if not settings.auth_enabled:
        return
    from auth.audit import AuditSink
    from auth.authorizer import PolicyAuthorizer
    from auth.config import AuthConfig
    from auth.keys import KeyStore
    from auth.server import AuthService
    from auth.store import AuthStore
    from auth.tokens import TokenVerifier
    from auth.web import make_blueprint

    config = AuthConfig.from_settings(settings)
    policy = load_policy()
    store = AuthStore(engine)
    keys = KeyStore(engine, rotate_after=config.key_rotation,
                    max_token_lifetime=max(config.access_token_lifetime, config.cookie_token_lifetime))
    facts = OrgFacts(svc.repo)
    verifier = TokenVerifier(keys, config, store.is_revoked, facts)
    authorizer = PolicyAuthorizer(policy, verifier, svc, settings.public_directory)
    svc.authorizer = authorizer
    sink = None
    if settings.audit_enabled:
        sink = AuditSink(svc.repo, svc.search.registry)
        svc.audit = sink
        svc.commit_hooks.append(sink.in_transaction)
        authorizer.flush_audit = sink.flush
    service = AuthService(store, keys, policy, config, verifier, facts)
    service.on_revoke = authorizer.forget_revocation
    svc.auth = service
    secret = settings.secret_key or svc.repo.shared_secret("auth-session-secret")
    svc.blueprints.append(make_blueprint(service, secret, settings.base_path, sink))
