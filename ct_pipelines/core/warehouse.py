"""One DuckDB file per dataset: opening it for a run, and reading many of them briefly.

DuckDB lets one process write a file (or several read it). With one shared file, every run had to
wait for the one before; with ``<warehouse>/<dataset id>.duckdb`` runs of different datasets never
touch the same file. A dataset's file holds its stage tables and its own state (ingest log, publish
ledger, ``meta.stage_results``, ``meta.check_results``), so nothing is written across datasets;
readers that span datasets (summaries, reports, logs) open each file read-only, one at a time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from ct_pipelines.core.settings import Settings, check_warehouse_dir
from ct_pipelines.core.sql import quote_ident

#: Each stage's outcome per run (written by ``pipeline``); ingest reads which file version was last published.
STAGE_RESULTS = "meta.stage_results"

#: How long a run waits for another process (a second run of the same dataset, a report build) to
#: let go of the dataset's file before saying so; readers wait less.
WRITE_WAIT_SECONDS = 60.0
READ_WAIT_SECONDS = 10.0


def relation_exists(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    """Whether a table or a view (not temporary) of that name exists: a reader of a file written before the
    relation existed (a dataset that never ran that far, an older version) says "nothing recorded" instead
    of failing."""
    rows = con.execute(  # fetched to the end: a pending result stops a later register() on the connection
        "SELECT (SELECT count(*) FROM duckdb_tables() WHERE schema_name = $1 AND table_name = $2 AND NOT temporary)"
        " + (SELECT count(*) FROM duckdb_views() WHERE schema_name = $1 AND view_name = $2 AND NOT temporary)",
        [schema, name],
    ).fetchall()
    return bool(rows and rows[0][0])


def drop_relation(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> None:
    """Drop ``schema.name`` whether it is a table or a view: a stage that now writes a view (raw rows,
    standardized rows) finds the table an older version wrote."""
    kind = con.execute(
        "SELECT 'TABLE' FROM duckdb_tables() WHERE schema_name = $1 AND table_name = $2 AND NOT temporary "
        "UNION ALL SELECT 'VIEW' FROM duckdb_views() WHERE schema_name = $1 AND view_name = $2 AND NOT temporary",
        [schema, name],
    ).fetchone()
    if kind:
        con.execute(f"DROP {kind[0]} {quote_ident(schema)}.{quote_ident(name)}")


class WarehouseBusy(RuntimeError):
    """Another process held a dataset's file for longer than the caller would wait."""


def _is_lock_error(exc: duckdb.Error) -> bool:
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


def connect(
    path: Path, settings: Settings, *, read_only: bool = False, wait: float | None = None
) -> duckdb.DuckDBPyConnection:
    """Open ``path``, retrying while another process holds its lock (up to ``wait`` seconds). DuckDB's
    terminal progress bar is off: progress goes to the run log, and a report build's bar broke into the
    run summary."""
    wait = (READ_WAIT_SECONDS if read_only else WRITE_WAIT_SECONDS) if wait is None else wait
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    deadline, pause = time.monotonic() + wait, 0.05
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only, config=settings.duckdb_config)
            con.execute("SET enable_progress_bar = false")  # a session setting: config= refuses it
            return con
        except duckdb.Error as exc:
            if not _is_lock_error(exc):
                raise
            if time.monotonic() >= deadline:
                who = path.stem if not path.stem.startswith("_") else "the portal audit"
                raise WarehouseBusy(
                    f"{path} is held by another process (a run of {who} or a report build) for more than "
                    f"{wait:.0f} s; try again when it has finished."
                ) from None
        time.sleep(pause)
        pause = min(pause * 2, 1.0)


@contextmanager
def open_dataset(
    settings: Settings, dataset_id: str, *, read_only: bool = False, wait: float | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the dataset's own file, closed on exit even when the body raises."""
    con = connect(settings.warehouse_for(dataset_id), settings, read_only=read_only, wait=wait)
    try:
        yield con
    finally:
        con.close()


@contextmanager
def open_recorded(
    settings: Settings, dataset_id: str, *, wait: float | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Read-only access to what a dataset recorded; an empty in-memory database when it never ran, so
    readers (which tolerate missing tables) need no special case."""
    if settings.warehouse_for(dataset_id).is_file():
        with open_dataset(settings, dataset_id, read_only=True, wait=wait) as con:
            yield con
        return
    con = duckdb.connect(":memory:")
    try:
        yield con
    finally:
        con.close()


def recorded_dataset_ids(settings: Settings) -> list[str]:
    """The datasets that have a file in the warehouse folder (the audit's own file excluded)."""
    check_warehouse_dir(settings.warehouse_dir)
    if not settings.warehouse_dir.is_dir():
        return []
    return sorted(
        p.stem for p in settings.warehouse_dir.glob("*.duckdb") if p.is_file() and not p.stem.startswith("_")
    )
