"""Shared set-up of the report tests: the generated data set loaded once per backend."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import create_engine, text

from fhir_server.reports.definitions import load_population
from fhir_server.reports.synthetic import Generated, Generator, transaction
from fhir_server.settings import Settings
from fhir_server.storage.engine import normalise_url
from tests.conftest import PG_URL, pg_schema_url
from tests.reports_oracle import Hand

QUARTERS = ((2024, 1), (2024, 2), (2024, 3))


@dataclass
class Loaded:
    app: Any
    client: Any
    data: Generated
    hand: Hand


def generated() -> Generated:
    return Generator(seed=2024, quarters=QUARTERS, per_quarter=4).generate()


@contextlib.contextmanager
def loaded_app(backend: str, tmp: Path, **settings: Any) -> Iterator[Loaded]:
    """A fresh database (own PostgreSQL schema) holding the generated data set."""
    from fhir_server.app import create_app

    schema = None
    if backend == "sqlite":
        url = f"sqlite:///{tmp / 'reports.sqlite3'}"
    else:
        assert PG_URL
        schema = f"rep_{uuid.uuid4().hex[:10]}"
        admin = create_engine(normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = pg_schema_url(PG_URL, schema)
    opts = {"secret_key": "test-secret", "max_body_bytes": 64 * 1024 * 1024, "auth_enabled": False,
            "audit_enabled": False, **settings}
    app = create_app(Settings(database_url=url, **opts))
    app.config["TESTING"] = True
    client = app.test_client()
    data = generated()
    resp = client.post("/fhir", data=orjson.dumps(transaction(data.resources)),
                       content_type="application/fhir+json")
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    try:
        yield Loaded(app, client, data, Hand(data.resources, load_population()))
    finally:
        app.extensions["fhir_service"].repo.engine.dispose()
        if schema:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


def values(bundle: dict[str, Any]) -> dict[tuple[str, str], float | int | None]:
    out: dict[tuple[str, str], float | int | None] = {}
    for entry in bundle["entry"]:
        rep = entry["resource"]
        mid = rep["measure"].rsplit("/", 1)[1]
        for g in rep["group"]:
            out[(mid, g["code"]["coding"][0]["code"])] = group_value(g)
    return out


def group_value(g: dict[str, Any]) -> float | int | None:
    if "measureScore" in g:
        v = g["measureScore"]["value"]
        return int(v) if float(v).is_integer() and g["code"]["coding"][0]["code"] == "cost" else v
    if g.get("code", {}).get("coding", [{}])[0].get("code") in ("cost", "rate"):
        return None
    return int(g["population"][0]["count"])


def strata(bundle: dict[str, Any], mid: str, group: str) -> dict[str, float | int | None]:
    for entry in bundle["entry"]:
        rep = entry["resource"]
        if rep["measure"].endswith("/" + mid):
            g = next(g for g in rep["group"] if g["code"]["coding"][0]["code"] == group)
            out = {}
            for s in g["stratifier"][0]["stratum"]:
                key = s["value"]["coding"][0]["code"] if "coding" in s["value"] else s["value"]["text"]
                out[key] = group_value({**s, "code": g["code"]})
            return out
    raise KeyError(mid)
