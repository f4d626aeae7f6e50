"""Search index tables: one per parameter type, current versions only.

Rows point at `resources.res_pk`. Every row carries `param` = hash(type, code); tokens
also carry hashes of (type, code, value), (type, code, system, value) and
(type, code, system) so a token match is one integer equality. Dates and numbers are
stored as [low, high] ranges (inclusive) so prefixes become range comparisons; the sort
key of a parameter is MIN(low) / MAX(high) over its rows.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, Float, Index, Integer, String, Table, Text, column, table, text

from fhir_server.storage.tables import metadata

# PostgreSQL compares folded strings bytewise so prefix ranges use the index.
CString = String(255).with_variant(String(255, collation="C"), "postgresql")
PK = BigInteger().with_variant(Integer(), "sqlite")

search_token = Table(
    "search_token", metadata,
    Column("res_pk", PK, nullable=False),
    Column("param", BigInteger, nullable=False),
    Column("hash_code", BigInteger, nullable=False),
    Column("hash_sys_code", BigInteger, nullable=False),
    Column("hash_sys", BigInteger, nullable=False),
    Column("hash_type_value", BigInteger, nullable=True),  # identifier :of-type
    Column("system", Text, nullable=True),
    Column("code", Text, nullable=True),
    Column("text", CString, nullable=True),  # folded display/text for :text
    Index("ix_token_code", "hash_code", "res_pk"),
    Index("ix_token_sys_code", "hash_sys_code", "res_pk"),
    Index("ix_token_sys", "hash_sys", "res_pk"),
    # Only identifiers have a type-value hash, only references with an identifier have one: the other rows
    # (most of them) stay out of these indexes; an equality on the column implies IS NOT NULL, so queries use them.
    Index("ix_token_type_value", "hash_type_value", "res_pk", sqlite_where=text("hash_type_value IS NOT NULL"),
          postgresql_where=text("hash_type_value IS NOT NULL")),
    Index("ix_token_res", "res_pk", "param"),
)

search_string = Table(
    "search_string", metadata,
    Column("res_pk", PK, nullable=False),
    Column("param", BigInteger, nullable=False),
    Column("value", CString, nullable=False),  # folded
    Column("exact", Text, nullable=False),
    Index("ix_string_value", "param", "value", "res_pk"),
    Index("ix_string_res", "res_pk", "param"),
)

search_date = Table(
    "search_date", metadata,
    Column("res_pk", PK, nullable=False),
    Column("param", BigInteger, nullable=False),
    Column("low", BigInteger, nullable=False),  # microseconds since epoch, UTC
    Column("high", BigInteger, nullable=False),
    Index("ix_date_low", "param", "low", "high", "res_pk"),
    Index("ix_date_high", "param", "high", "res_pk"),
    Index("ix_date_res", "res_pk", "param"),
)

search_number = Table(
    "search_number", metadata,
    Column("res_pk", PK, nullable=False),
    Column("param", BigInteger, nullable=False),
    Column("low", Float, nullable=False),
    Column("high", Float, nullable=False),
    Column("system", Text, nullable=True),  # quantities only
    Column("code", Text, nullable=True),
    Index("ix_number_low", "param", "low", "high", "res_pk"),
    Index("ix_number_res", "res_pk", "param"),
)

search_reference = Table(
    "search_reference", metadata,
    Column("res_pk", PK, nullable=False),
    Column("param", BigInteger, nullable=False),
    Column("target_type", String(64), nullable=True),
    Column("target_id", String(64), nullable=True),
    Column("url", Text, nullable=True),  # absolute or canonical references
    Column("hash_identifier", BigInteger, nullable=True),  # Reference.identifier system|value
    Column("hash_identifier_value", BigInteger, nullable=True),
    Index("ix_ref_target", "param", "target_id", "target_type", "res_pk"),
    Index("ix_ref_reverse", "target_type", "target_id", "param"),
    Index("ix_ref_res", "res_pk", "param"),
    Index("ix_ref_identifier", "hash_identifier", "res_pk", sqlite_where=text("hash_identifier IS NOT NULL"),
          postgresql_where=text("hash_identifier IS NOT NULL")),
)

search_uri = Table(
    "search_uri", metadata,
    Column("res_pk", PK, nullable=False),
    Column("param", BigInteger, nullable=False),
    Column("uri", CString, nullable=False),
    Index("ix_uri_value", "param", "uri", "res_pk"),
    Index("ix_uri_res", "res_pk", "param"),
)

INDEX_TABLES = {
    "token": search_token,
    "string": search_string,
    "date": search_date,
    "number": search_number,
    "quantity": search_number,
    "reference": search_reference,
    "uri": search_uri,
}
ALL_INDEX_TABLES = (search_token, search_string, search_date, search_number, search_reference, search_uri)


# Query-side aliases. Aliasing a schema `Table` copies every `Column` (a heavy object), and a
# search builds a dozen aliases; an alias of a lightweight `TableClause` with the same name,
# columns and types renders the same SQL at a fraction of the cost.
_LIGHT: dict[str, Any] = {}


_NAMED: dict[tuple[str, str], Any] = {}


def alias(source: Table, name: str | None = None) -> Any:
    """An alias of `source` for queries. Named aliases are immutable and cached (the caller makes
    the names unique within a statement); unnamed ones are fresh anonymous aliases."""
    if name is not None:
        cached = _NAMED.get((source.name, name))
        if cached is not None:
            return cached
    light = _LIGHT.get(source.name)
    if light is None:
        light = table(source.name, *[column(c.name, c.type) for c in source.columns])
        _LIGHT[source.name] = light
    made = light.alias(name)
    if name is not None:
        _NAMED[(source.name, name)] = made
    return made
