"""Shared fixtures: the app on SQLite (always) and on PostgreSQL (when FHIR_TEST_POSTGRES_URL is set).

Each PostgreSQL test session gets its own schema, so parallel runs never collide.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from fhir_server.settings import Settings
from fhir_server.storage.engine import normalise_url

PG_URL = os.environ.get("FHIR_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


def pg_schema_url(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{normalise_url(base)}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(scope="session")
def pg_schema() -> Iterator[str | None]:
    if not PG_URL:
        yield None
        return
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield schema
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def database_url(backend: str, tmp_path: Path, pg_schema: str | None) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'fhir.sqlite3'}"
    assert PG_URL and pg_schema
    return pg_schema_url(PG_URL, pg_schema)


def reset_postgres(url: str) -> None:
    """Empty every table of the test schema (between tests; the schema stays)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        tables = [r[0] for r in conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"))]
        if tables:
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def settings(request: Any, tmp_path: Path, pg_schema: str | None) -> Settings:
    url = database_url(request.param, tmp_path, pg_schema)
    if request.param == "postgresql":
        with contextlib.suppress(Exception):  # tables not created yet on the first test
            reset_postgres(url)
    # The REST-core tests exercise FHIR semantics; authorization has its own tests.
    return Settings(database_url=url, secret_key="test-secret", max_body_bytes=256 * 1024, auth_enabled=False,
                    audit_enabled=False)


@pytest.fixture
def app(settings: Settings) -> Any:
    from fhir_server.app import create_app

    application = create_app(settings)
    application.config["TESTING"] = True
    yield application
    application.extensions["fhir_service"].repo.engine.dispose()


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture(scope="session")
def signing_pki(tmp_path_factory: Any) -> Iterator[Any]:
    """A test PKI (root, intermediate, signer certificates, CRL, OCSP responder on 127.0.0.1)."""
    from tests.signature_pki import build_standard_leaves, start_pki

    pki, server = start_pki()
    build_standard_leaves(pki)
    pki.anchor_file = pki.write_anchor(tmp_path_factory.mktemp("pki") / "root.pem")
    yield pki
    server.shutdown()
