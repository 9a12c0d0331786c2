"""Run-over-run checks: the row count and each column's share of empty values against the last run."""

from __future__ import annotations

import json
from datetime import datetime

import duckdb

from ct_pipelines.catalog.models import Dataset
from ct_pipelines.core.outcomes import CheckOutcome
from ct_pipelines.validate.specs import _severity

HISTORY_TABLE = "quality.history"


def null_shares(empty_cells: dict[str, int], rows: int) -> dict[str, float]:
    """Each column's share of empty cells (the scan counts them), rounded as the history stores it."""
    return {c: round(n / rows, 6) if rows else 0.0 for c, n in empty_cells.items()}


def _history_outcomes(
    con: duckdb.DuckDBPyConnection,
    dataset: Dataset,
    run_id: str,
    now: datetime,
    rows: int,
    shares: dict[str, float],
) -> list[CheckOutcome]:
    """Compare with the last run recorded in quality.history, then record this run unless its row count
    was refused: a refused run recorded became the base the next run compared with, so running the same
    short extract again passed."""
    previous = _previous(con, dataset, run_id)
    if previous is None:
        first = f"This is the first recorded run ({rows:,} rows); there is nothing to compare with yet."
        outcomes = [
            CheckOutcome(
                "row_count_change", True, _severity(dataset, "row_count_change"), first, {"rows": rows}
            ),
            CheckOutcome("null_share_change", True, _severity(dataset, "null_share_change"), first, {}),
        ]
    else:
        previous_run, previous_rows, previous_shares_json = previous
        previous_shares = json.loads(previous_shares_json) if previous_shares_json else {}
        outcomes = [
            _row_count_outcome(dataset, rows, previous_run, previous_rows),
            _null_share_outcome(dataset, shares, previous_run, previous_shares),
        ]
    if not outcomes[0].blocks:  # recorded, replacing a retry of this run
        con.execute(f"DELETE FROM {HISTORY_TABLE} WHERE dataset_id = ? AND run_id = ?", [dataset.id, run_id])
        con.execute(
            f"INSERT INTO {HISTORY_TABLE} VALUES (?, ?, ?, ?, ?)",
            [dataset.id, run_id, now, rows, json.dumps(shares)],
        )
    return outcomes


def _previous(con: duckdb.DuckDBPyConnection, dataset: Dataset, run_id: str) -> tuple | None:
    """The last recorded run before this one: (run id, rows, shares JSON)."""
    con.execute("CREATE SCHEMA IF NOT EXISTS quality")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {HISTORY_TABLE} "
        "(dataset_id VARCHAR, run_id VARCHAR, recorded_at TIMESTAMP, row_count BIGINT, null_shares JSON)"
    )
    return con.execute(
        f"SELECT run_id, row_count, null_shares FROM {HISTORY_TABLE} WHERE dataset_id = ? AND run_id <> ? "
        "ORDER BY recorded_at DESC, rowid DESC LIMIT 1",  # runs recorded at the same instant: the later one
        [dataset.id, run_id],
    ).fetchone()


def _row_count_outcome(dataset: Dataset, rows: int, previous_run: str, previous_rows: int) -> CheckOutcome:
    config = dataset.validate
    floor = previous_rows * (1 - config.max_row_count_drop)
    drop = (previous_rows - rows) / previous_rows if previous_rows else 0.0
    row_ok = rows >= floor
    row_summary = f"{rows:,} rows this run against {previous_rows:,} last run" + (
        "."
        if row_ok
        else f": a drop of {drop:.0%}, more than the {config.max_row_count_drop:.0%} allowed "
        "(validate.max_row_count_drop); check that the whole extract arrived, or raise the limit if the "
        "data really shrank."
    )
    return CheckOutcome(
        "row_count_change",
        row_ok,
        _severity(dataset, "row_count_change"),
        row_summary,
        {
            "rows": rows,
            "previous_rows": previous_rows,
            "previous_run_id": previous_run,
            "max_drop": config.max_row_count_drop,
        },
    )


def _null_share_outcome(
    dataset: Dataset, shares: dict[str, float], previous_run: str, previous_shares: dict[str, float]
) -> CheckOutcome:
    config = dataset.validate
    jumps = [
        {
            "column": c,
            "previous_share": previous_shares[c],
            "share": share,
            "increase": round(share - previous_shares[c], 6),
        }
        for c, share in shares.items()
        if c in previous_shares and share - previous_shares[c] > config.max_null_share_increase
    ]
    if jumps:
        null_summary = (
            "; ".join(
                f"{j['column']} is now empty in {j['share']:.0%} of rows (was {j['previous_share']:.0%})"
                for j in jumps
            )
            + "."
        )
    else:
        null_summary = "No column has many more empty values than last run."
    return CheckOutcome(
        "null_share_change",
        not jumps,
        _severity(dataset, "null_share_change"),
        null_summary,
        {"previous_run_id": previous_run, "max_increase": config.max_null_share_increase, "columns": jumps},
    )
