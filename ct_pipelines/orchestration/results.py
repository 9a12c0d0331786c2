"""Turn the core's plain results into Dagster metadata and asset check results."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import dagster as dg

from ct_pipelines.core.outcomes import CheckOutcome, CheckSpec, Severity
from ct_pipelines.core.results import StageResult


def stage_metadata(result: StageResult) -> dict[str, dg.MetadataValue]:
    """A stage's typed result as Dagster metadata: counts as integers (``dagster/row_count`` from the
    rows the stage wrote), markdown tables as markdown, links as paths or URLs, facts as they are."""
    values: dict[str, dg.MetadataValue] = {}
    if result.table:
        values["table"] = dg.MetadataValue.text(result.table)
    for name, count in (
        ("rows_in", result.rows_in),
        ("rows_out", result.rows_out),
        ("rows_set_aside", result.rows_set_aside),
    ):
        if count is not None:
            values[name] = dg.MetadataValue.int(int(count))
    if result.rows_out is not None and result.rows_out >= 0:
        values["dagster/row_count"] = dg.MetadataValue.int(int(result.rows_out))
    values.update(to_metadata(result.facts))
    values.update({name: dg.MetadataValue.md(text) for name, text in result.markdown.items()})
    for name, link in result.links.items():
        is_url = link.startswith(("http://", "https://"))
        values[f"{name}_url" if is_url else f"{name}_path"] = (
            dg.MetadataValue.url(link) if is_url else dg.MetadataValue.path(link)
        )
    return values


def to_metadata(values: Mapping[str, Any]) -> dict[str, dg.MetadataValue]:
    """Plain JSON-like facts as Dagster metadata: numbers, booleans, text, and JSON for lists and dicts."""
    out: dict[str, dg.MetadataValue] = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, Path):
            out[key] = dg.MetadataValue.path(str(value))
        elif isinstance(value, bool):
            out[key] = dg.MetadataValue.bool(value)
        elif isinstance(value, int):
            out[key] = dg.MetadataValue.int(value)
        elif isinstance(value, float):
            out[key] = (
                dg.MetadataValue.float(value) if math.isfinite(value) else dg.MetadataValue.text(str(value))
            )
        elif isinstance(value, list | dict | tuple):
            out[key] = dg.MetadataValue.json(_jsonable(value))
        else:
            out[key] = dg.MetadataValue.text(str(value))
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def check_specs(asset_key: dg.AssetKey, specs: Iterable[CheckSpec]) -> list[dg.AssetCheckSpec]:
    """Checks as Dagster sees them. They are not Dagster-blocking: the dataset's step itself stops at a
    failed ERROR check and records the later stages as not run with the reason, so a blocked dataset reads
    as blocked in the UI and the run log instead of as a failed step with a stack trace."""
    return [
        dg.AssetCheckSpec(name=s.name, asset=asset_key, description=s.description, blocking=False)
        for s in specs
    ]


def check_results(
    asset_key: dg.AssetKey, specs: Iterable[CheckSpec], outcomes: Iterable[CheckOutcome]
) -> list[dg.AssetCheckResult]:
    """One result per declared check; a declared check the stage had nothing to say about passes with
    that said, because Dagster expects a result for every spec the asset declares."""
    by_name = {o.name: o for o in outcomes}
    results = []
    for spec in specs:
        outcome = by_name.pop(spec.name, None) or CheckOutcome(
            spec.name, True, Severity.WARN, "Nothing to check for this dataset in this run."
        )
        results.append(_result(asset_key, outcome))
    if by_name:
        raise ValueError(f"stage reported undeclared checks {sorted(by_name)}; add them to its check specs")
    return results


def _result(asset_key: dg.AssetKey, outcome: CheckOutcome) -> dg.AssetCheckResult:
    severity = (
        dg.AssetCheckSeverity.ERROR if outcome.severity == Severity.ERROR else dg.AssetCheckSeverity.WARN
    )
    metadata = to_metadata({"summary": outcome.summary, **outcome.metadata})
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=outcome.name,
        passed=outcome.passed,
        severity=severity,
        metadata=metadata,
        description=outcome.summary,
    )
