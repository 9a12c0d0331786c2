"""The validate stage: column rules (pandera, in SQL) and GX expectations; failing rows go to quarantine."""

from __future__ import annotations

from typing import Any

import duckdb

from ct_pipelines.catalog.models import Dataset
from ct_pipelines.core.results import Progress, RunOptions, StageError, StageResult, quiet
from ct_pipelines.core.settings import Settings
from ct_pipelines.core.sql import ordered_rows_view, quarantine_table, quote_ident, stage_table


def run(
    con: duckdb.DuckDBPyConnection,
    dataset: Dataset,
    settings: Settings,
    *,
    run_id: str,
    options: RunOptions = RunOptions(),
    progress: Progress = quiet,
    portal: Any = None,
) -> StageResult:
    """Type the ingested rows, run every rule once, and set failing rows aside with the reason."""
    from ct_pipelines.validate.rules import DatasetRuleError
    from ct_pipelines.validate.validate import validate_dataset

    target = stage_table("validate", dataset.id)
    try:
        result = validate_dataset(
            con,
            dataset,
            stage_table("ingest", dataset.id),
            target,
            quarantine_table(dataset.id),
            run_id=run_id,
            reports_dir=settings.reports_dir,
            progress=progress,
            ordered_rows=ordered_rows_view(dataset.id),
        )
    except DatasetRuleError as exc:
        raise StageError(str(exc)) from exc
    left_out = _leave_out_personal_columns(con, dataset, target)
    progress(f"{dataset.id}: {result.rows_valid:,} rows valid, {result.rows_quarantined:,} quarantined")
    links = {"data_docs": str(result.data_docs_index)} if result.data_docs_index else {}
    return StageResult(
        table=target,
        rows_in=result.rows_ingested,
        rows_out=result.rows_valid,
        rows_set_aside=result.rows_quarantined,
        outcomes=result.outcomes,
        links=links,
        facts={
            "quarantine_table": quarantine_table(dataset.id),
            "checks_failed": [o.name for o in result.outcomes if not o.passed],
            "null_tokens_by_column": result.null_tokens,
            "suppressed_at_source_by_column": result.suppressed,
            "pii_columns_left_out": left_out,
        },
    )


def _leave_out_personal_columns(con: duckdb.DuckDBPyConnection, dataset: Dataset, table: str) -> list[str]:
    """Columns marked ``pii`` are checked here and then dropped, so personal values stay in the ingest
    table alone; a PII column the standardize stage reads (a race or language column marked pii) stays
    until protect leaves it out."""
    needed = {c.column for c in dataset.standardize.columns} if dataset.standardize else set()
    present = {row[0] for row in con.execute(f"DESCRIBE {quote_ident(table)}").fetchall()}
    drop = [
        name
        for field in dataset.pii_fields
        if field not in needed
        for name in present
        if name == field or name.startswith(f"{field}__")
    ]
    for name in drop:
        con.execute(f"ALTER TABLE {quote_ident(table)} DROP COLUMN {quote_ident(name)}")
    return sorted(drop)
