"""Split the old single ``warehouse.duckdb`` into one file per dataset, once, keeping every ledger.

Until the warehouse became a folder of per-dataset files, everything lived in one file beside it. Its
publish ledger holds each dataset's portal 4x4 and the snapshot the next incremental publish diffs
against; starting from an empty folder would forget them, and a dataset without ``publish.id`` in its
YAML would then be created on the portal a second time. So the first command that finds the old file
(and no folder yet) copies each table to where it belongs now:

- a table or view named ``<name>__<dataset id>`` goes to that dataset's file;
- a table with a ``dataset_id`` column is split by its value (ingest log, publish runs and ledger, …);
- ``publish_chunks`` follows its ``publish_runs`` row;
- anything else (the portal audit's snapshots) goes to the audit's own file.

Tables are recreated from their own DDL, so keys and constraints survive. The work happens in a
sibling folder renamed into place at the end: a crash leaves no half-split warehouse, and of two
processes starting at once only one rename wins. The old file is left where it was, untouched.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ct_pipelines.core.sql import quote_ident, quote_literal

AUDIT_FILE = "_portal_audit.duckdb"


@dataclass
class _Table:
    schema: str
    name: str
    ddl: str
    columns: list[str]
    is_view: bool = False

    @property
    def qualified(self) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(self.name)}"

    @property
    def suffix(self) -> str | None:
        return self.name.split("__", 1)[1] if "__" in self.name else None


@dataclass
class SplitResult:
    """What the split wrote: rows copied per file, for the one line the command prints."""

    legacy: Path
    folder: Path
    rows_per_file: dict[str, int] = field(default_factory=dict)


def legacy_file(warehouse_dir: Path) -> Path:
    """Where the old single file sat: ``<home>/warehouse.duckdb`` beside the default folder."""
    return warehouse_dir.with_suffix(".duckdb")


def needs_split(warehouse_dir: Path) -> bool:
    return legacy_file(warehouse_dir).is_file() and not warehouse_dir.exists()


def _tables(con: duckdb.DuckDBPyConnection) -> list[_Table]:
    tables = [
        _Table(
            schema,
            name,
            ddl,
            [
                c
                for c in con.execute(f"DESCRIBE {quote_ident(schema)}.{quote_ident(name)}").fetchnumpy()[
                    "column_name"
                ]
            ],
        )
        for schema, name, ddl in con.execute(
            "SELECT schema_name, table_name, sql FROM duckdb_tables() WHERE database_name = current_database()"
        ).fetchall()
    ]
    views = [
        _Table(schema, name, ddl, [], is_view=True)
        for schema, name, ddl in con.execute(
            "SELECT schema_name, view_name, sql FROM duckdb_views() "
            "WHERE NOT internal AND database_name = current_database()"
        ).fetchall()
    ]
    return tables + views


def _dataset_ids(con: duckdb.DuckDBPyConnection, tables: list[_Table]) -> set[str]:
    ids = {t.suffix for t in tables if t.suffix}
    for t in tables:
        if "dataset_id" in t.columns:
            ids.update(
                r[0] for r in con.execute(f"SELECT DISTINCT dataset_id FROM {t.qualified}").fetchall() if r[0]
            )
    return {i for i in ids if i and not i.startswith((".", "_")) and not any(c in i for c in "/\\:")}


def _filter(table: _Table, dataset_id: str | None) -> str | None:
    """The WHERE clause that picks this file's rows from ``old``, or None when the table goes elsewhere."""
    literal = "NULL" if dataset_id is None else quote_literal(dataset_id)
    if table.suffix:
        return "TRUE" if table.suffix == dataset_id else None
    if "dataset_id" in table.columns:
        return None if dataset_id is None else f"dataset_id = {literal}"
    if table.name == "publish_chunks":
        return (
            None
            if dataset_id is None
            else (
                f"publish_id IN (SELECT publish_id FROM old.main.publish_runs WHERE dataset_id = {literal})"
            )
        )
    return "TRUE" if dataset_id is None else None


def _copy(legacy: Path, target: Path, tables: list[_Table], dataset_id: str | None) -> int:
    """Recreate the tables that belong in ``target`` and copy their rows; returns rows copied."""
    copied = 0
    with duckdb.connect(str(target)) as con:
        con.execute(f"ATTACH '{str(legacy).replace(chr(39), chr(39) * 2)}' AS old (READ_ONLY)")
        for table in sorted(tables, key=lambda t: t.is_view):  # views after the tables they read
            where = _filter(table, dataset_id)
            if where is None:
                continue
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(table.schema)}")
            con.execute(f"SET schema = {quote_ident(table.schema)}")
            con.execute(table.ddl)
            con.execute("SET schema = 'main'")
            if not table.is_view:
                copied += con.execute(
                    f"INSERT INTO {table.qualified} SELECT * FROM old.{table.qualified} WHERE {where}"
                ).fetchone()[0]
        con.execute("DETACH old")
    return copied


def split_legacy_warehouse(warehouse_dir: Path) -> SplitResult | None:
    """Split the old file into ``warehouse_dir`` if it is there and the folder is not; else None."""
    legacy = legacy_file(warehouse_dir)
    if not needs_split(warehouse_dir):
        return None
    staging = warehouse_dir.with_name(f".{warehouse_dir.name}.splitting-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    result = SplitResult(legacy=legacy, folder=warehouse_dir)
    try:
        with duckdb.connect(str(legacy), read_only=True) as con:
            tables = _tables(con)
            ids = _dataset_ids(con, tables)
        for dataset_id in sorted(ids):
            result.rows_per_file[f"{dataset_id}.duckdb"] = _copy(
                legacy, staging / f"{dataset_id}.duckdb", tables, dataset_id
            )
        if any(_filter(t, None) for t in tables):
            result.rows_per_file[AUDIT_FILE] = _copy(legacy, staging / AUDIT_FILE, tables, None)
        os.rename(staging, warehouse_dir)
    except OSError:
        if warehouse_dir.is_dir():  # another process split it first
            return None
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return result
