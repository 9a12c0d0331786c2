"""The publish stage: the protected table to the portal, incremental, chunked, retried, resumable, verified."""

from __future__ import annotations

from typing import Any

import duckdb

from ct_pipelines.catalog.models import Dataset
from ct_pipelines.core.results import Progress, RunOptions, StageError, StageResult, quiet
from ct_pipelines.core.settings import Settings
from ct_pipelines.core.sql import stage_table


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
    """Send what changed since the last publish; a refused publish or a dry run leaves the portal as it was."""
    from ct_pipelines.publish.connection import PublishError
    from ct_pipelines.publish.publisher import publish_table

    if portal is None:
        raise StageError(f"{dataset.id}: no portal connection was given to the publish stage")
    try:
        result = publish_table(
            con,
            dataset,
            stage_table("protect", dataset.id),
            portal,
            run_id=run_id,
            dry_run=options.dry_run,
            force_full_replace=options.full_replace,
            allow_shrink=options.allow_shrink,
            allow_deletes=options.allow_deletes,
            new_portal_dataset=options.new_portal_dataset,
            progress=progress,
        )
    except PublishError as exc:
        raise StageError(str(exc)) from exc
    facts = result.metadata()
    refused = bool(result.dry_run or any(o.blocks for o in result.outcomes))
    return StageResult(
        table=None,
        rows_in=result.rows_sent,
        rows_out=result.portal_row_count,
        outcomes=result.outcomes,
        facts=facts,
        refused=refused,
    )
