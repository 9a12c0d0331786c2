"""The per-dataset stages as plain functions over one DuckDB connection.

Each stage reads the previous stage's table and writes its own, and returns a :class:`StageResult`:
metadata for the asset plus the checks it ran. The Dagster assets call these and nothing else, so the
whole pipeline can also be driven and tested without Dagster.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb

from ct_pipelines.catalog.models import Dataset
from ct_pipelines.core.outcomes import CheckOutcome, CheckSpec
from ct_pipelines.core.settings import Settings
from ct_pipelines.ingest.ingest import ingest_dataset

Progress = Callable[[str], None]
STAGES = ("raw", "validated", "standardized", "published_table", "portal")


def table(stage: str, dataset_id: str) -> str:
    """The DuckDB table a stage writes, ``<stage>__<dataset id>`` (one plain identifier, quoted by callers)."""
    prefix = {"raw": "raw", "validated": "valid", "quarantine": "quarantine", "standardized": "std",
              "published_table": "published"}[stage]
    return f"{prefix}__{dataset_id}"


@dataclass
class StageResult:
    metadata: dict[str, Any]
    outcomes: list[CheckOutcome] = field(default_factory=list)
    rows: int | None = None


def _quiet(_: str) -> None:
    return None


class StageError(Exception):
    """An expected stage failure with a message meant for people."""


def run_ingest_stage(con: duckdb.DuckDBPyConnection, dataset: Dataset, settings: Settings, run_id: str,
                     progress: Progress = _quiet, *, reingest: bool = False) -> StageResult:
    result = ingest_dataset(con, dataset, settings.landing_dir, run_id=run_id, workdir=settings.home / "tmp",
                            force=reingest)
    if result.skipped:
        progress(f"{dataset.id}: kept the existing table for {result.path} ({result.reason})")
    else:
        progress(f"{dataset.id}: ingested {result.rows:,} rows x {result.columns} columns from {result.path} "
                 f"({result.encoding or result.format}) in {result.duration_s:.2f}s")
    metadata: dict[str, Any] = {**result.lineage(), "table": table("raw", dataset.id)}
    metadata["dagster/row_count"] = result.rows
    if result.field_map:
        metadata["field_names_md"] = "| source column | API field name |\n|---|---|\n" + "\n".join(
            f"| {src} | `{dst}` |" for src, dst in result.field_map.items())
    return StageResult(metadata=metadata, rows=result.rows)


def stage_check_specs(dataset: Dataset, stage: str) -> list[CheckSpec]:
    """Every check a stage may report for this dataset, known from the YAML alone."""
    if stage == "validated":
        from ct_pipelines.validate.specs import quality_check_specs

        return quality_check_specs(dataset)
    if stage == "standardized":
        from ct_pipelines.standardize.specs import rel_check_specs

        return rel_check_specs(dataset.standardize) if dataset.standardize else []
    if stage == "published_table":
        from ct_pipelines.protect.specs import privacy_check_specs

        return privacy_check_specs(dataset)
    if stage == "portal":
        from ct_pipelines.publish.specs import publish_check_specs

        return publish_check_specs(dataset)
    return []


def run_validate(con: duckdb.DuckDBPyConnection, dataset: Dataset, settings: Settings, run_id: str,
                 progress: Progress = _quiet) -> StageResult:
    """Column rules (pandera, in SQL) and GX expectations; failing rows go to quarantine with a reason."""
    from ct_pipelines.validate.rules import DatasetRuleError
    from ct_pipelines.validate.validate import validate_dataset

    try:
        result = validate_dataset(con, dataset, table("raw", dataset.id), table("validated", dataset.id),
                                  table("quarantine", dataset.id), run_id=run_id, reports_dir=settings.reports_dir,
                                  progress=progress)
    except DatasetRuleError as exc:
        raise StageError(str(exc)) from exc
    metadata: dict[str, Any] = {
        "table": table("validated", dataset.id), "quarantine_table": table("quarantine", dataset.id),
        "rows_ingested": result.rows_ingested, "rows_valid": result.rows_valid,
        "rows_quarantined": result.rows_quarantined, "dagster/row_count": result.rows_valid,
        "checks_failed": [o.name for o in result.outcomes if not o.passed],
    }
    if result.data_docs_index:
        metadata["data_docs_path"] = str(result.data_docs_index)
    progress(f"{dataset.id}: {result.rows_valid:,} rows valid, {result.rows_quarantined:,} quarantined")
    return StageResult(metadata, result.outcomes, rows=result.rows_valid)


def run_standardize(con: duckdb.DuckDBPyConnection, dataset: Dataset, settings: Settings, run_id: str,
                    progress: Progress = _quiet) -> StageResult:
    """Map race, ethnicity and language labels (distinct labels once, then a join in DuckDB)."""
    from ct_pipelines.standardize.standardize import rel_checks, standardize_table

    source, target = table("validated", dataset.id), table("standardized", dataset.id)
    if dataset.standardize is None or not dataset.standardize.columns:
        con.execute(f'CREATE OR REPLACE TABLE "{target}" AS SELECT * FROM "{source}"')
        rows = con.execute(f'SELECT count(*) FROM "{target}"').fetchone()[0]
        return StageResult({"table": target, "rows": rows, "dagster/row_count": rows,
                            "note": "No race, ethnicity or language columns declared (rel:); rows passed on."},
                           rows=rows)
    try:
        result = standardize_table(con, source, target, dataset.standardize)
    except ValueError as exc:
        raise StageError(str(exc)) from exc
    outcomes = rel_checks(con, target, dataset.standardize)
    pii = set(dataset.pii_fields)
    for outcome in outcomes:  # raw labels of a column marked pii must not reach the UI
        if any(c.column in pii for c in dataset.standardize.columns if outcome.name.endswith(f"_{c.column}_labels_recognized")):
            outcome.metadata = {k: v for k, v in outcome.metadata.items() if isinstance(v, int | float)}
    progress(f"{dataset.id}: standardized {result.row_count:,} rows; reporting groups {result.reporting_groups}")
    columns_md = "| column | " + " | ".join(["status", "rows"]) + " |\n|---|---|---|\n" + "\n".join(
        f"| {c.column} | {status} | {count:,} |" for c in result.columns for status, count in c.status_counts.items())
    return StageResult({
        "table": target, "rows": result.row_count, "dagster/row_count": result.row_count,
        "reference_version": result.reference_version, "added_columns": result.added_columns,
        "reporting_groups": result.reporting_groups, "status_counts_md": columns_md,
    }, outcomes, rows=result.row_count)


def run_protect(con: duckdb.DuckDBPyConnection, dataset: Dataset, settings: Settings, run_id: str,
                progress: Progress = _quiet) -> StageResult:
    """Build the table the portal receives: no PII columns, aggregated and suppressed as configured."""
    from ct_pipelines.protect.pii import PiiLeakError
    from ct_pipelines.protect.published import PublishConfigError, build_published_table, privacy_outcomes

    source, target = table("standardized", dataset.id), table("published_table", dataset.id)
    public = f"{source}__without_internal"
    internal = {"_row", "_line"}
    kept = [r[0] for r in con.execute(f'DESCRIBE "{source}"').fetchall() if r[0] not in internal]
    con.execute(f'CREATE OR REPLACE TEMP VIEW "{public}" AS SELECT '
                + ", ".join(f'"{c}"' for c in kept) + f' FROM "{source}"')
    try:
        result = build_published_table(con, dataset, public, target, settings.sql_dir,
                                       tables={"standardized": public})
    except (PublishConfigError, PiiLeakError) as exc:
        raise StageError(str(exc)) from exc
    finally:
        con.execute(f'DROP VIEW IF EXISTS "{public}"')
    outcomes = privacy_outcomes(con, dataset, result)
    metadata: dict[str, Any] = {
        "table": target, "mode": str(result.mode), "rows": result.row_count, "dagster/row_count": result.row_count,
        "columns": result.columns, "pii_columns_left_out": result.excluded_pii_columns,
    }
    if result.suppression is not None:
        metadata["cells_suppressed_primary"] = result.suppression.primary_count
        metadata["cells_suppressed_complementary"] = result.suppression.complementary_count
    progress(f"{dataset.id}: published table has {result.row_count:,} rows ({result.mode}); "
             f"left out PII columns {result.excluded_pii_columns}")
    return StageResult(metadata, outcomes, rows=result.row_count)


def run_publish(con: duckdb.DuckDBPyConnection, dataset: Dataset, settings: Settings, run_id: str,
                progress: Progress = _quiet, *, portal: Any, dry_run: bool = False, full_replace: bool = False,
                allow_shrink: bool = False) -> StageResult:
    """Send the published table to the portal: incremental, chunked, retried, resumable, verified."""
    from ct_pipelines.publish.connection import PublishError
    from ct_pipelines.publish.publisher import publish_table

    try:
        result = publish_table(con, dataset, table("published_table", dataset.id), portal, run_id=run_id,
                               dry_run=dry_run, force_full_replace=full_replace, allow_shrink=allow_shrink,
                               progress=progress)
    except PublishError as exc:
        raise StageError(str(exc)) from exc
    metadata = result.metadata()
    metadata["rows_published"] = result.portal_row_count if result.portal_row_count is not None else 0
    return StageResult(metadata, result.outcomes, rows=result.portal_row_count)
