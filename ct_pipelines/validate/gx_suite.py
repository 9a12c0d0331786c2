"""Run a dataset's Great Expectations suite (from ``validate.expectations`` in its YAML) inside DuckDB.

One CheckOutcome per expectation, so a program manager sees "gx_column_values_to_be_between_age failed:
4 of 1,000 rows" rather than a single opaque suite result. Data Docs HTML is written to a local folder
so the full GX report can be opened from the check's metadata.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path
from typing import Any

import duckdb

from ct_pipelines.catalog.blocks.validate import Expectation
from ct_pipelines.catalog.models import Dataset
from ct_pipelines.core.imports import import_great_expectations
from ct_pipelines.core.outcomes import CheckOutcome, Severity

log = logging.getLogger(__name__)

MASK = "***"
SAMPLE_SIZE = 20
_RESULT_KEYS = (
    "element_count",
    "unexpected_count",
    "unexpected_percent",
    "missing_count",
    "observed_value",
    "partial_unexpected_list",
)


def gx_check_names(dataset: Dataset) -> list[tuple[str, Expectation]]:
    """Stable check names from the YAML alone: ``gx_<expectation without expect_>[_<column>]``, de-duplicated."""
    names: list[tuple[str, Expectation]] = []
    taken: set[str] = set()
    for expectation in dataset.validate.expectations:
        base = "gx_" + expectation.expectation.removeprefix("expect_")
        column = expectation.kwargs.get("column")
        if isinstance(column, str):
            base += "_" + column
        base = re.sub(r"[^A-Za-z0-9_]", "_", base)
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}_{n}"
        taken.add(name)
        names.append((name, expectation))
    return names


def _expectation_class(snake_name: str) -> type | None:
    """GX's class for a snake_case name, matched without case (GX spells some acronyms in capitals:
    ``expect_column_kl_divergence_to_be_less_than`` is ``ExpectColumnKLDivergenceToBeLessThan``)."""
    gx = import_great_expectations()
    wanted = snake_name.replace("_", "").lower()
    for name in dir(gx.expectations):
        if name.lower() == wanted and isinstance(getattr(gx.expectations, name), type):
            return getattr(gx.expectations, name)
    return None


def _touches(expectation: Expectation, columns: set[str]) -> bool:
    """Whether any argument names one of ``columns`` (column, column_A, column_list, ...)."""
    for key, value in expectation.kwargs.items():
        if not key.startswith("column"):
            continue
        values = value if isinstance(value, list) else [value]
        if any(v in columns for v in values if isinstance(v, str)):
            return True
    return False


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _summary(expectation: Expectation, success: bool, result: dict[str, Any]) -> str:
    what = expectation.expectation.removeprefix("expect_").replace("_", " ")
    column = expectation.kwargs.get("column")
    subject = f"{column}: " if column else ""
    if success:
        return f"Passed: {subject}{what}."
    unexpected, total = result.get("unexpected_count"), result.get("element_count")
    if unexpected is not None and total is not None:
        return f"{unexpected:,} of {total:,} rows break the rule '{subject}{what}'."
    if unexpected:  # the distinct-values expectations count values, not rows
        sample = ", ".join(str(v) for v in (result.get("partial_unexpected_list") or [])[:5])
        return f"{unexpected:,} value(s) found break the rule '{subject}{what}'" + (
            f": {sample}." if sample else "."
        )
    observed = result.get("observed_value")
    if observed is not None:
        return f"The rule '{subject}{what}' failed; the value found was {observed}."
    return f"The rule '{subject}{what}' failed."


def run_gx_suite(
    con: duckdb.DuckDBPyConnection,
    dataset: Dataset,
    schema: str,
    table: str,
    docs_dir: Path,
    run_id: str,
) -> tuple[list[CheckOutcome], Path | None]:
    """Validate ``schema.table`` against the dataset's expectations; returns outcomes and the Data Docs index.

    GX and its DuckDB adapter are imported here, not at module level: importing GX takes seconds, and
    loading Dagster definitions only needs the check names.

    Expectations whose name GX does not know become failed outcomes that say how to fix the YAML, so one
    typo does not hide the results of the others.
    """
    named = gx_check_names(dataset)
    if not named:
        return [], None
    gx = import_great_expectations()  # without scipy.stats and altair until an expectation uses them
    from great_expectations.data_context.types.base import ProgressBarsConfig

    from ct_pipelines.validate.gx_duckdb import (
        cached_templates,
        counted_render_failures,
        duckdb_patches,
        engine_kwargs,
    )

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_sql(
        name="warehouse", connection_string="duckdb:///:memory:", kwargs=engine_kwargs(con, schema)
    )
    batch = source.add_table_asset(name=table, table_name=table).add_batch_definition_whole_table(
        "whole_table"
    )
    suite = context.suites.add(gx.ExpectationSuite(name=dataset.id))
    by_id, outcomes = _add_expectations(suite, named)
    docs_dir = Path(docs_dir)
    checkpoint = _checkpoint(context, dataset, suite, batch, table, docs_dir, named)
    with duckdb_patches(), cached_templates(), counted_render_failures() as render_failures:
        run = checkpoint.run(run_id=gx.core.run_identifier.RunIdentifier(run_name=run_id))
    if render_failures.count:
        log.warning(
            "Great Expectations could not draw %d part(s) of its Data Docs for %s; the check results "
            "are not affected.",
            render_failures.count,
            dataset.id,
        )
    index = docs_dir / "index.html"
    docs_path = index if index.exists() else None
    pii = set(dataset.pii_fields)
    for validation in run.run_results.values():
        for result in validation.results:
            name, expectation = by_id[str(result.expectation_config.id)]
            outcomes[name] = _outcome(name, expectation, result, pii, docs_path)
    return [outcomes[name] for name, _ in named if name in outcomes], docs_path


def _add_expectations(
    suite: Any, named: list[tuple[str, Expectation]]
) -> tuple[dict[str, tuple[str, Expectation]], dict[str, CheckOutcome]]:
    """Add each expectation to the suite; one GX cannot build becomes a failed outcome saying so."""
    outcomes: dict[str, CheckOutcome] = {}
    by_id: dict[str, tuple[str, Expectation]] = {}
    for name, expectation in named:
        cls = _expectation_class(expectation.expectation)
        try:
            if cls is None:
                raise ValueError("Great Expectations has no expectation with that name")
            added = suite.add_expectation(cls(**expectation.kwargs, meta={"check": name}))
        except Exception as exc:  # a bad YAML entry is reported, not raised
            outcomes[name] = CheckOutcome(
                name=name,
                passed=False,
                severity=Severity.ERROR if expectation.severity == Severity.BLOCK else expectation.severity,
                summary=f"The expectation '{expectation.expectation}' in the quality section could not be used; "
                "check its name and arguments against the Great Expectations gallery.",
                metadata={"expectation": expectation.expectation, "error": str(exc).splitlines()[0][:300]},
            )
            continue
        by_id[str(added.id)] = (name, expectation)
    return by_id, outcomes


def _checkpoint(
    context: Any,
    dataset: Dataset,
    suite: Any,
    batch: Any,
    table: str,
    docs_dir: Path,
    named: list[tuple[str, Expectation]],
) -> Any:
    """A checkpoint that validates the table and writes this run's Data Docs to ``docs_dir``."""
    import great_expectations as gx

    shutil.rmtree(docs_dir, ignore_errors=True)  # one report per run; history lives in the DuckDB tables
    docs_dir.mkdir(parents=True, exist_ok=True)
    context.add_data_docs_site(
        site_name="ct_pipelines",
        site_config={
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{dataset.id}_{table}", data=batch, suite=suite)
    )
    pii = set(dataset.pii_fields)
    return context.checkpoints.add(
        gx.Checkpoint(
            name=f"{dataset.id}_checkpoint",
            validation_definitions=[definition],
            actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=["ct_pipelines"])],
            # GX applies the checkpoint's result format to every expectation, so when any expectation
            # looks at a pii column, unexpected values are left out of the whole report (Data Docs included).
            result_format={
                "result_format": "SUMMARY",
                "partial_unexpected_count": SAMPLE_SIZE,
                "exclude_unexpected_values": any(_touches(e, pii) for _, e in named),
            },
        )
    )


def _outcome(
    name: str, expectation: Expectation, result: Any, pii: set[str], docs_path: Path | None
) -> CheckOutcome:
    """One expectation's result as a check outcome; unexpected values of pii columns are masked."""
    details = {k: result.result[k] for k in _RESULT_KEYS if k in result.result}
    if _touches(expectation, pii) and "partial_unexpected_list" in details:
        details["partial_unexpected_list"] = [MASK for _ in details["partial_unexpected_list"]]
    metadata: dict[str, Any] = {
        "expectation": expectation.expectation,
        "kwargs": _json_safe(expectation.kwargs),
        **_json_safe(details),
        "data_docs_index": str(docs_path) if docs_path else None,
    }
    error = (result.exception_info or {}).get("exception_message")
    if error is None and isinstance(result.exception_info, dict):
        nested = [v for v in result.exception_info.values() if isinstance(v, dict)]
        error = next((v.get("exception_message") for v in nested if v.get("raised_exception")), None)
    if error:
        metadata["error"] = str(error).splitlines()[0][:300]
    summary = (
        f"Great Expectations could not evaluate '{expectation.expectation}': {metadata['error']}"
        if error
        else _summary(expectation, bool(result.success), details)
    )
    return CheckOutcome(
        name=name,
        passed=bool(result.success),
        severity=Severity.ERROR if expectation.severity == Severity.BLOCK else expectation.severity,
        summary=summary,
        metadata=metadata,
    )
