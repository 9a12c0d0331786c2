"""Persist check outcomes in the warehouse (``meta.check_results``) so reports can show them later.

Checks are otherwise only Dagster events; a report read by agency staff must not need Dagster, so the
pipeline writes each stage's outcomes here (a re-run of the same run and stage replaces its rows).
Only the summary and numeric figures are kept: summaries are written for people and carry no raw
values, while sample values in check metadata may hold PII.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import duckdb

from ct_pipelines.core import warehouse
from ct_pipelines.core.outcomes import CheckOutcome
from ct_pipelines.core.settings import Settings

CHECK_RESULTS = "meta.check_results"
_COLUMNS = (
    "dataset_id VARCHAR, stage VARCHAR, run_id VARCHAR, check_name VARCHAR, passed BOOLEAN, "
    "severity VARCHAR, summary VARCHAR, failing_rows BIGINT, figures JSON, recorded_at TIMESTAMP"
)


def ensure_check_results(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``meta.check_results`` when missing (readers call it too, so an empty warehouse works)."""
    con.execute("CREATE SCHEMA IF NOT EXISTS meta")
    con.execute(f"CREATE TABLE IF NOT EXISTS {CHECK_RESULTS} ({_COLUMNS})")


def _figures(metadata: dict[str, Any]) -> dict[str, float | int]:
    """Numbers only: sample rows and value lists stay out of the warehouse copy (they may hold PII)."""
    out: dict[str, float | int] = {}
    for key, value in metadata.items():
        value = getattr(value, "value", value)
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            out[key] = value
    return out


def record_check_results(
    con: duckdb.DuckDBPyConnection,
    dataset_id: str,
    stage: str,
    run_id: str,
    outcomes: Iterable[CheckOutcome],
    recorded_at: datetime | None = None,
) -> int:
    """Store one stage's outcomes for a run (replacing that run and stage's earlier rows); returns the count.

    Call after each stage with ``StageResult.outcomes``, e.g.
    ``record_check_results(con, dataset.id, "validate", run_id, result.outcomes)``.
    """
    ensure_check_results(con)
    when = recorded_at or datetime.now(UTC).replace(tzinfo=None)
    rows = []
    for outcome in outcomes:
        figures = _figures(outcome.metadata)
        failing = figures.get("failing_rows")
        rows.append(
            [
                dataset_id,
                stage,
                run_id,
                outcome.name,
                bool(outcome.passed),
                str(outcome.severity),
                outcome.summary,
                int(failing) if failing is not None else None,
                json.dumps(figures),
                when,
            ]
        )
    con.execute(
        f"DELETE FROM {CHECK_RESULTS} WHERE dataset_id = ? AND stage = ? AND run_id = ?",
        [dataset_id, stage, run_id],
    )
    if rows:
        con.executemany(f"INSERT INTO {CHECK_RESULTS} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return len(rows)


def record_dagster_checks(settings: Settings, result: Any) -> int:
    """Store the check evaluations of a finished Dagster run (``ExecuteInProcessResult``).

    For runs made before the pipeline called :func:`record_check_results` itself, and for tests that
    run the real Dagster job in process."""
    from ct_pipelines.core.outcomes import Severity

    grouped: dict[tuple[str, str], list[CheckOutcome]] = {}
    for evaluation in result.get_asset_check_evaluations():
        path = evaluation.asset_key.path
        if len(path) != 2:
            continue
        metadata = {k: getattr(v, "value", v) for k, v in evaluation.metadata.items()}
        summary = str(metadata.pop("summary", "") or "")
        outcome = CheckOutcome(
            evaluation.check_name,
            bool(evaluation.passed),
            Severity(evaluation.severity.value),
            summary,
            metadata,
        )
        grouped.setdefault((path[0], path[1]), []).append(outcome)
    total = 0
    for (dataset_id, stage), outcomes in grouped.items():  # each in the dataset's own file
        with warehouse.open_dataset(settings, dataset_id) as con:
            total += record_check_results(con, dataset_id, stage, result.run_id, outcomes)
    return total
