"""Connections for auth state writes (SQLite: BEGIN IMMEDIATE, like the resource store)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine


@contextmanager
def write_conn(engine: Engine) -> Iterator[Any]:
    with engine.connect().execution_options(fhir_write=True) as conn, conn.begin():
        yield conn
