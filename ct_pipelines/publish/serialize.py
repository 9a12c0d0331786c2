"""Turn a DuckDB table into Socrata-ready JSON text inside DuckDB.

Building one Python dict per row was most of sodapy's cost, and ``json.dumps`` writes bare ``NaN``
(invalid JSON). Here DuckDB writes each row's JSON text itself, with every value already in the form
Socrata accepts, so Python only glues finished chunks together.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import duckdb

from ct_pipelines.core.sql import quote_ident, quote_literal

# Integers beyond 2**53 lose digits in JavaScript parsers, so they travel as strings (Socrata accepts
# numeric strings in number columns).
_SAFE_INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"}
_STRING_NUMBER_TYPES = {"HUGEINT", "UHUGEINT", "UBIGINT"}
_FLOAT_TYPES = {"FLOAT", "DOUBLE", "REAL"}
HASH_SLICE = 1000  # columns per hash(): 2,000 take 0.2 s per 10,000 rows, 3,000 ran out of 1 GB
SOCRATA_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%g"
SOCRATA_DATE_FORMAT = "%Y-%m-%dT00:00:00.000"


@dataclass(frozen=True)
class TableColumn:
    """One column of the table to publish, with its DuckDB and Socrata types."""

    name: str
    duckdb_type: str

    @property
    def socrata_type(self) -> str:
        base = self.duckdb_type.split("(")[0].upper()
        if base in _SAFE_INTEGER_TYPES | _STRING_NUMBER_TYPES | _FLOAT_TYPES or base == "DECIMAL":
            return "number"
        if base == "BOOLEAN":
            return "checkbox"
        if base == "DATE" or base.startswith("TIMESTAMP"):
            return "calendar_date"
        return "text"

    def json_value_sql(self) -> str:
        """SQL expression giving the value as Socrata wants it (NaN/inf/infinite dates become null)."""
        ident = quote_ident(self.name)
        base = self.duckdb_type.split("(")[0].upper()
        if base in _FLOAT_TYPES:
            return f"CASE WHEN isfinite({ident}) THEN {ident} END"
        if base in _STRING_NUMBER_TYPES:
            return f"CAST({ident} AS VARCHAR)"
        if base == "DECIMAL" or base in _SAFE_INTEGER_TYPES or base in ("BOOLEAN", "VARCHAR"):
            return ident
        if base == "DATE":
            return f"CASE WHEN isfinite({ident}) THEN strftime({ident}, '{SOCRATA_DATE_FORMAT}') END"
        if base.startswith("TIMESTAMP"):
            # Socrata stores floating timestamps: drop the zone after converting to local wall time.
            value = f"CAST({ident} AS TIMESTAMP)"
            return f"CASE WHEN isfinite({ident}) THEN strftime({value}, '{SOCRATA_TIMESTAMP_FORMAT}') END"
        return f"CAST({ident} AS VARCHAR)"


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[TableColumn]:
    """Columns of ``table`` in order (raises duckdb.CatalogException when it does not exist)."""
    rows = con.execute(f"DESCRIBE {quote_ident(table)}").fetchall()
    return [TableColumn(name=row[0], duckdb_type=row[1]) for row in rows]


def row_json_sql(columns: list[TableColumn]) -> str:
    """Expression producing one row's JSON object text, keys in table order."""
    members = ", ".join(f"{quote_ident(c.name)} := {c.json_value_sql()}" for c in columns)
    return f"CAST(to_json(struct_pack({members})) AS VARCHAR)"


def key_json_sql(column: TableColumn) -> str:
    """The row identifier's JSON text; used both as the diff key and inside ``:deleted`` bodies."""
    return f"CAST(to_json({column.json_value_sql()}) AS VARCHAR)"


def delete_body_sql(key_field: str, key_json_column: str) -> str:
    """``{"<key>": <value>, ":deleted": true}`` built from the stored key JSON."""
    key_name = quote_literal('{"' + key_field.replace('"', '\\"') + '":')
    deleted_suffix = quote_literal(',":deleted":true}')
    return f"{key_name} || {key_json_column} || {deleted_suffix}"


def row_hash_sql(columns: list[TableColumn]) -> str:
    """A 64-bit hash of the row's typed values, for the snapshot diff.

    Hashing the typed columns is ~8x cheaper than md5 of the JSON text. It still sees every change
    that alters what is sent: DuckDB hashes NULL apart from '' and values in column order, and the
    first argument (every column's name and type) changes every row's hash when a column is added,
    removed, renamed, reordered or retyped, so such a change resends all rows. Zoned timestamps are
    hashed as the wall time that is sent, so a session time zone change counts too. A table wider than
    ``HASH_SLICE`` columns hashes the hashes of its slices, each with its own signature.
    """
    if len(columns) > HASH_SLICE:  # one hash() of 3,000 arguments ran DuckDB out of memory at 10,000 rows
        slices = [columns[i : i + HASH_SLICE] for i in range(0, len(columns), HASH_SLICE)]
        return f"hash({', '.join(row_hash_sql(part) for part in slices)})"
    signature = json.dumps([[c.name, c.duckdb_type] for c in columns])
    values = [
        f"CAST({quote_ident(c.name)} AS TIMESTAMP)"
        if c.duckdb_type.upper().startswith("TIMESTAMP WITH TIME ZONE")
        else quote_ident(c.name)
        for c in columns
    ]
    return f"hash({', '.join([quote_literal(signature), *values])})"
