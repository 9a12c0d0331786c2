"""The ingest stage: the newest landing file into ``ingest__<id>``, as text, with lineage."""

from __future__ import annotations

from typing import Any

import duckdb

from ct_pipelines.catalog.models import Dataset
from ct_pipelines.core.outcomes import CheckOutcome, Severity
from ct_pipelines.core.results import Progress, RunOptions, StageError, StageResult, quiet
from ct_pipelines.core.settings import Settings
from ct_pipelines.ingest.errors import IngestError
from ct_pipelines.ingest.ingest import IngestResult, ingest_dataset, raw_table
from ct_pipelines.ingest.landing import names_several_files
from ct_pipelines.ingest.specs import UNREAD_ARRIVALS


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
    """Load the extract (or keep the table when this exact file version was already loaded)."""
    try:
        result = ingest_dataset(
            con,
            dataset,
            settings,  # the local landing folder and any declared remote ones
            run_id=run_id,
            workdir=settings.home / "tmp",
            force=options.reingest,
        )
    except IngestError as exc:
        raise StageError(str(exc)) from exc
    if result.skipped:
        progress(f"{dataset.id}: kept the existing table for {result.path} ({result.reason})")
    else:
        progress(
            f"{dataset.id}: ingested {result.rows:,} rows x {result.columns} columns from {result.path} "
            f"({result.encoding or result.format}) in {result.duration_s:.2f}s; {result.reason}"
        )
    for note in result.notes:
        progress(f"{dataset.id}: {note}")
    left_out = sum(result.rows_left_out.values()) if result.rows_left_out else 0
    if left_out:
        progress(
            f"{dataset.id}: left out by rule: "
            + ", ".join(f"{name} {n:,}" for name, n in result.rows_left_out.items())
        )
    outcomes = [_unread_outcome(dataset, result)] if names_several_files(dataset.ingest.path) else []
    markdown = {}
    if result.field_map:
        markdown["field_names"] = "| source column | API field name |\n|---|---|\n" + "\n".join(
            f"| {src} | `{dst}` |" for src, dst in result.field_map.items()
        )
    return StageResult(
        table=raw_table(dataset.id),
        rows_in=result.source_rows or result.rows,
        rows_out=result.rows,
        rows_set_aside=left_out or None,
        facts=result.lineage(),
        markdown=markdown,
        outcomes=outcomes,
    )


def _unread_outcome(dataset: Dataset, result: IngestResult) -> CheckOutcome:
    """Whether a delivery that matches ingest.path arrived since the file read before and was passed over.

    A run reads only the newest file, as the whole dataset. If the files passed over held rows the newest
    lacks, those rows would leave the portal with nothing said, so this stops the run unless the YAML
    says every file is complete (``ingest.each_file_complete``)."""
    unread = result.unread_arrivals
    complete = dataset.ingest.each_file_complete
    severity = Severity.WARN if complete else Severity.ERROR
    if not unread:
        return CheckOutcome(UNREAD_ARRIVALS, True, severity, "no matching file was passed over")
    names = ", ".join(unread)
    read = f"{len(unread)} file(s) matching ingest.path were not read: {names}; a run reads only the newest"
    if complete:
        summary = (
            f"{read}, {result.path}, which holds the whole dataset (ingest.each_file_complete), so the "
            "older file(s) are out of date"
        )
    else:
        summary = (
            f"{read}, {result.path}, as the whole dataset, so rows that are only in the others would leave "
            "the portal, and nothing was published. If every file holds the whole dataset, set "
            "ingest.each_file_complete: true in the dataset YAML (or move the older files out of the "
            "landing folder) and run again; if each holds only new rows, ask the agency for one file with "
            "every row"
        )
    return CheckOutcome(UNREAD_ARRIVALS, False, severity, summary, {"unread_files": unread})
