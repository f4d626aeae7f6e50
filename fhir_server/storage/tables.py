"""Relational schema of the resource store (SQLite and PostgreSQL).

`resources` holds the current version of every resource (one row per type/id, deleted
ones kept as tombstones); `resource_history` holds every version ever written, keyed by
(type, id, version). `res_pk` is the surrogate key the search index tables point to.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets BIGINT identity.
SurrogateKey = BigInteger().with_variant(Integer(), "sqlite")

resources = Table(
    "resources",
    metadata,
    Column("res_pk", SurrogateKey, primary_key=True, autoincrement=True),
    Column("res_type", String(64), nullable=False),
    Column("res_id", String(64), nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("last_updated", String(40), nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("content", Text, nullable=True),
    UniqueConstraint("res_type", "res_id", name="uq_resources_type_id"),
    Index("ix_resources_type_updated", "res_type", "updated_us"),
)

resource_history = Table(
    "resource_history",
    metadata,
    Column("hist_pk", SurrogateKey, primary_key=True, autoincrement=True),
    Column("res_type", String(64), nullable=False),
    Column("res_id", String(64), nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("last_updated", String(40), nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Column("method", String(8), nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("content", Text, nullable=True),
    UniqueConstraint("res_type", "res_id", "version_id", name="uq_history_type_id_version"),
    Index("ix_history_type_pk", "res_type", "hist_pk"),
    Index("ix_history_updated", "updated_us"),
)

# Process-independent server state (e.g. the paging-cursor secret), shared by every worker.
server_state = Table(
    "server_state",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
