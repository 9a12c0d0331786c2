"""The five stages, in order: the one registry that the assets, the runner, the check specs and the docs
iterate.

Each stage is a package with the same small shape: ``run.py`` (its run function: the previous stage's
table in, its own table out, a :class:`StageResult` back), ``specs.py`` (the checks it may report, known
from the YAML alone) and its own internals. Its YAML block model lives in ``catalog/blocks/<stage>.py``,
since the catalog parses every block and the stages read the catalog. The whole pipeline runs without
Dagster: call :func:`run_stages` with a DuckDB connection.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import duckdb

from ct_pipelines.catalog.models import Dataset
from ct_pipelines.core.outcomes import CheckSpec
from ct_pipelines.core.results import Progress, RunOptions, StageResult, quiet
from ct_pipelines.core.settings import Settings
from ct_pipelines.core.warehouse import STAGE_RESULTS


@dataclass(frozen=True)
class Stage:
    """One stage: its name (package, YAML block, table prefix, asset key and check prefix) and its parts."""

    name: str
    description: str
    specs: str  # "module:function" giving the stage's check specs for a dataset (import-light modules)

    def run(
        self,
        con: duckdb.DuckDBPyConnection,
        dataset: Dataset,
        settings: Settings,
        *,
        run_id: str,
        options: RunOptions = RunOptions(),
        progress: Progress = quiet,
        portal: Any = None,
    ) -> StageResult:
        """Run the stage; its module is imported on first use so loading definitions stays cheap."""
        module = importlib.import_module(f"ct_pipelines.{self.name}.run")
        return module.run(
            con, dataset, settings, run_id=run_id, options=options, progress=progress, portal=portal
        )

    def check_specs(self, dataset: Dataset) -> list[CheckSpec]:
        module_name, function = self.specs.split(":")
        return getattr(importlib.import_module(module_name), function)(dataset)


STAGES: tuple[Stage, ...] = (
    Stage(
        "ingest",
        "The newest landing file, loaded as text with lineage (file, SHA-256, rows).",
        "ct_pipelines.ingest.specs:ingest_check_specs",
    ),
    Stage(
        "validate",
        "Rows that passed the column rules, typed; failing rows are set aside in quarantine.",
        "ct_pipelines.validate.specs:quality_check_specs",
    ),
    Stage(
        "standardize",
        "Race, ethnicity and language mapped to Connecticut's REL standards; raw labels kept.",
        "ct_pipelines.standardize.specs:standardize_check_specs",
    ),
    Stage(
        "protect",
        "The table the portal will receive: no PII, aggregated and suppressed as configured.",
        "ct_pipelines.protect.specs:privacy_check_specs",
    ),
    Stage(
        "publish",
        "The dataset on the open data portal, updated incrementally with metadata in sync.",
        "ct_pipelines.publish.specs:publish_check_specs",
    ),
)
STAGE_NAMES: tuple[str, ...] = tuple(s.name for s in STAGES)


def stage(name: str) -> Stage:
    for candidate in STAGES:
        if candidate.name == name:
            return candidate
    raise KeyError(f"no stage '{name}'; the stages are {', '.join(STAGE_NAMES)}")


def stages_until(last: str | None) -> tuple[Stage, ...]:
    """The stages from ingest up to and including ``last`` (all of them when None)."""
    if last is None:
        return STAGES
    return STAGES[: STAGE_NAMES.index(stage(last).name) + 1]


def record(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    dataset_id: str,
    stage_name: str,
    status: str,
    result: StageResult | None = None,
    message: str | None = None,
    seconds: float | None = None,
    declared_checks: int = 0,
) -> None:
    """Keep what a stage did in the warehouse: the runner's summary and the reports read it from here."""
    con.execute("CREATE SCHEMA IF NOT EXISTS meta")
    con.execute(f"""CREATE TABLE IF NOT EXISTS {STAGE_RESULTS} (
        run_id VARCHAR, dataset_id VARCHAR, stage VARCHAR, status VARCHAR, message VARCHAR,
        rows_in BIGINT, rows_out BIGINT, rows_set_aside BIGINT, checks_passed INTEGER, checks_failed JSON,
        facts JSON, seconds DOUBLE, recorded_at TIMESTAMP DEFAULT current_timestamp)""")
    failed = [
        f"{o.name} ({o.severity.value}): {o.summary}"
        for o in (result.outcomes if result else [])
        if not o.passed
    ]
    # Declared checks the stage had nothing to say about pass (Dagster reports them as passed too).
    passed = max(declared_checks, len(result.outcomes) if result else 0) - len(failed)
    con.execute(
        f"INSERT INTO {STAGE_RESULTS} (run_id, dataset_id, stage, status, message, rows_in, rows_out, "
        "rows_set_aside, checks_passed, checks_failed, facts, seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            run_id,
            dataset_id,
            stage_name,
            status,
            message,
            result.rows_in if result else None,
            result.rows_out if result else None,
            result.rows_set_aside if result else None,
            passed,
            json.dumps(failed),
            json.dumps(result.facts if result else {}, default=str),
            seconds,
        ],
    )


def run_stages(
    con: duckdb.DuckDBPyConnection,
    dataset: Dataset,
    settings: Settings,
    *,
    run_id: str,
    options: RunOptions = RunOptions(),
    progress: Progress = quiet,
    portal: Any = None,
    until: str | None = None,
) -> Iterator[tuple[Stage, StageResult]]:
    """Run the stages in order without Dagster, stopping after the first stage whose ERROR checks failed."""
    for current in stages_until(until):
        result = current.run(
            con, dataset, settings, run_id=run_id, options=options, progress=progress, portal=portal
        )
        yield current, result
        if result.blocking_failures:
            return
