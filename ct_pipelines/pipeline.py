"""The per-dataset stages as plain functions over one DuckDB connection.

Each stage reads the previous stage's table and writes its own, and returns a :class:`StageResult`:
metadata for the asset plus the checks it ran. The Dagster assets call these and nothing else, so the
whole pipeline can also be driven and tested without Dagster.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb

from ct_pipelines.catalog.models import Dataset
from ct_pipelines.ingest.ingest import ingest_dataset
from ct_pipelines.outcomes import CheckOutcome, CheckSpec
from ct_pipelines.settings import Settings

Progress = Callable[[str], None]
STAGES = ("raw", "validated", "standardized", "published_table", "portal")


def table(stage: str, dataset_id: str) -> str:
    """The DuckDB table a stage writes: one schema per stage, one table per dataset."""
    schema = {"raw": "raw", "validated": "valid", "quarantine": "quarantine", "standardized": "std",
              "published_table": "published"}[stage]
    return f'{schema}."{dataset_id}"'


@dataclass
class StageResult:
    metadata: dict[str, Any]
    outcomes: list[CheckOutcome] = field(default_factory=list)
    rows: int | None = None

    @property
    def blocked(self) -> bool:
        return any(o.blocks for o in self.outcomes)


def ensure_schemas(con: duckdb.DuckDBPyConnection) -> None:
    for schema in ("raw", "valid", "quarantine", "std", "published", "meta"):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")


def _quiet(_: str) -> None:
    return None


class StageError(Exception):
    """An expected stage failure with a message meant for people."""


def run_ingest_stage(con: duckdb.DuckDBPyConnection, dataset: Dataset, settings: Settings, run_id: str,
                     progress: Progress = _quiet) -> StageResult:
    ensure_schemas(con)
    result = ingest_dataset(con, dataset, settings.landing_dir, run_id=run_id, workdir=settings.home / "tmp")
    if result.skipped:
        progress(f"{dataset.id}: {result.path} was already ingested (same SHA-256); kept the existing table")
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
    return []


def timed(fn: Callable[[], StageResult]) -> StageResult:
    started = time.perf_counter()
    result = fn()
    result.metadata.setdefault("duration_s", round(time.perf_counter() - started, 3))
    return result


def run_validate(con: duckdb.DuckDBPyConnection, dataset: Dataset, settings: Settings, run_id: str,
                 progress: Progress = _quiet) -> StageResult:
    raise StageError("validation stage not wired yet")


def run_standardize(con: duckdb.DuckDBPyConnection, dataset: Dataset, settings: Settings, run_id: str,
                    progress: Progress = _quiet) -> StageResult:
    raise StageError("standardize stage not wired yet")


def run_protect(con: duckdb.DuckDBPyConnection, dataset: Dataset, settings: Settings, run_id: str,
                progress: Progress = _quiet) -> StageResult:
    raise StageError("protect stage not wired yet")


def run_publish(con: duckdb.DuckDBPyConnection, dataset: Dataset, settings: Settings, run_id: str,
                progress: Progress = _quiet, **options: Any) -> StageResult:
    raise StageError("publish stage not wired yet")
