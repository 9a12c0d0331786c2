"""The cells of a table published whole (an aggregate: one row per combination of its dimensions), kept
after each publish so the next replace can say which ones it would remove from the portal.

Why: a replace sends every row and counted no deletes, so a delivery holding one snapshot date where the
last held another replaced the portal's table with nothing said (a new-user pass: 40 of 40 cells gone,
"0 to delete"). Cells are compared by their dimension values, as text, so a changed count is an update
of its cell, not a removal.
"""

from __future__ import annotations

import duckdb

from ct_pipelines.catalog.models import Dataset
from ct_pipelines.core.sql import quote_ident, release_table, released_table
from ct_pipelines.core.warehouse import relation_exists


def cells_table(dataset_id: str) -> str:
    return f"publish_cells__{dataset_id}"


def dimensions(dataset: Dataset, columns: list[str]) -> list[str]:
    """The published table's dimension columns (aggregate or SQL mode), when every one is in it."""
    names = [d.name for d in dataset.protect.dimension_specs]
    return names if names and all(n in columns for n in names) else []


def _distinct_cells(table: str, dims: list[str]) -> str:
    keys = ", ".join(f"CAST({quote_ident(d)} AS VARCHAR) AS {quote_ident(d)}" for d in dims)
    return f"SELECT DISTINCT {keys} FROM {quote_ident(table)}"


def cells_removed(con: duckdb.DuckDBPyConnection, dataset_id: str, table: str, dims: list[str]) -> int:
    """Cells published last time that ``table`` no longer has (0 when none were kept)."""
    kept = cells_table(dataset_id)
    if not dims or not relation_exists(con, "main", kept):
        return 0
    held = [r[0] for r in con.execute(f"DESCRIBE {quote_ident(kept)}").fetchall()]
    if held != dims:  # the dimensions changed: the shrink guard and a schema check judge that run
        return 0
    return con.execute(
        f"SELECT count(*) FROM (SELECT * FROM {quote_ident(kept)} EXCEPT {_distinct_cells(table, dims)})"
    ).fetchone()[0]


def keep_cells(con: duckdb.DuckDBPyConnection, dataset_id: str, table: str, dims: list[str]) -> None:
    """After a publish: the cells the portal now holds, and the suppression pattern they were released
    with, which the next run keeps for every unchanged cell (see core.sql.released_table)."""
    if relation_exists(con, "main", release_table(table)):
        con.execute(
            f"CREATE OR REPLACE TABLE {quote_ident(released_table(table))} AS "
            f"SELECT * FROM {quote_ident(release_table(table))}"
        )
    if dims:
        con.execute(
            f"CREATE OR REPLACE TABLE {quote_ident(cells_table(dataset_id))} AS {_distinct_cells(table, dims)}"
        )
