"""Application factory: wires settings, storage, search, validation and the HTTP edge."""

from __future__ import annotations

import importlib
import logging
from typing import Any

from flask import Flask
from sqlalchemy import Engine

from fhir_server.api.fhir_blueprint import make_blueprint, register_error_handlers
from fhir_server.operations.catalog import default_operations
from fhir_server.service import FhirService
from fhir_server.settings import Settings
from fhir_server.storage.engine import is_postgres, make_engine
from fhir_server.storage.sql import SqlRepository
from fhir_server.storage.tables import metadata

# Components that extend the service (profiles, terminology, signatures, reports): each
# module has `install(svc, settings, engine)`, called once at start-up.
COMPONENT_INSTALLERS: list[str] = [
    "fhir_server.profiles.component",
    "fhir_server.signatures.server",
    "fhir_server.reports",
    "auth",  # OAuth 2.0 / SMART authorization and the audit trail (installs only when auth_enabled)
]

# Browser pages outside the FHIR base path (CONTRACTS.md B): modules with `make_blueprint()`.
PAGE_BLUEPRINTS: list[str] = [
    "fhir_server.signatures.web",
    "fhir_server.reports.web",
]


def ensure_schema(engine: Engine) -> None:
    """Create missing tables; safe when several workers start at once."""
    with engine.connect().execution_options(fhir_write=True) as conn, conn.begin():
        if is_postgres(engine):
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(727274)")
        metadata.create_all(conn)


def build_service(settings: Settings, engine: Engine | None = None, **kwargs: Any) -> FhirService:
    """The framework-free service (used by the app, the CLI tools and tests)."""
    from fhir_server.search.engine import SearchEngine
    from fhir_server.validation.structure import validate_structure

    engine = engine or make_engine(settings.database_url)
    # Import components first: their tables join the shared metadata before the schema is made.
    components = [importlib.import_module(name) for name in COMPONENT_INSTALLERS]
    probe = SqlRepository(engine)
    ensure_schema(engine)
    secret = settings.secret_key or probe.shared_secret("paging-secret")
    search_engine = SearchEngine(engine=engine, settings=settings, secret=secret)
    with engine.connect() as conn:
        search_engine.load_stored_parameters(conn)  # SearchParameter resources in the store
    repo = SqlRepository(engine, index=search_engine.index_writer())

    def structure(resource: dict[str, Any], res_type: str, mode: str) -> None:
        validate_structure(resource, res_type)

    kwargs.setdefault("operations", default_operations())
    svc = FhirService(settings, repo, search_engine, validators=[structure], secret=secret, **kwargs)
    for component in components:
        component.install(svc, settings, engine)
    return svc


def create_app(settings: Settings | None = None, **service_kwargs: Any) -> Flask:
    settings = settings or Settings.from_env()
    logging.basicConfig(level=logging.INFO)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    svc = build_service(settings, **service_kwargs)
    app.extensions["fhir_service"] = svc
    app.register_blueprint(make_blueprint(), url_prefix=settings.base_path)
    for name in PAGE_BLUEPRINTS:
        app.register_blueprint(importlib.import_module(name).make_blueprint())
    for blueprint in svc.blueprints:  # OAuth endpoints and pages a component adds (auth)
        app.register_blueprint(blueprint)
    register_error_handlers(app)
    from fhir_server.api.fast_read import FastRead

    app.wsgi_app = FastRead(app, app.wsgi_app, svc)  # type: ignore[method-assign]
    return app
