"""Turn the core's plain results into Dagster metadata and asset check results."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import dagster as dg

from ct_pipelines.outcomes import CheckOutcome, CheckSpec
from ct_pipelines.quality.config import Severity


def to_metadata(values: Mapping[str, Any]) -> dict[str, dg.MetadataValue]:
    """JSON-like values to Dagster metadata: markdown for ``*_md`` keys, paths for ``*_path``, JSON for
    lists and dicts, so the UI renders tables and links instead of raw strings."""
    out: dict[str, dg.MetadataValue] = {}
    for key, value in values.items():
        if value is None:
            continue
        if key.endswith("_md"):
            out[key.removesuffix("_md")] = dg.MetadataValue.md(str(value))
        elif isinstance(value, str) and "\n|" in value and "|---" in value:  # a markdown table
            out[key] = dg.MetadataValue.md(value)
        elif key.endswith("_path") or isinstance(value, Path):
            out[key] = dg.MetadataValue.path(str(value))
        elif key.endswith("_url"):
            out[key] = dg.MetadataValue.url(str(value))
        elif isinstance(value, bool):
            out[key] = dg.MetadataValue.bool(value)
        elif isinstance(value, int):
            out[key] = dg.MetadataValue.int(value)
        elif isinstance(value, float):
            out[key] = dg.MetadataValue.float(value) if math.isfinite(value) else dg.MetadataValue.text(str(value))
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
    return [dg.AssetCheckSpec(name=s.name, asset=asset_key, description=s.description, blocking=s.blocking)
            for s in specs]


def check_results(asset_key: dg.AssetKey, specs: Iterable[CheckSpec], outcomes: Iterable[CheckOutcome]
                  ) -> list[dg.AssetCheckResult]:
    """One result per declared check; a declared check the stage had nothing to say about passes with
    that said, because Dagster expects a result for every spec the asset declares."""
    by_name = {o.name: o for o in outcomes}
    results = []
    for spec in specs:
        outcome = by_name.pop(spec.name, None) or CheckOutcome(
            spec.name, True, Severity.WARN, "Nothing to check for this dataset in this run.")
        results.append(_result(asset_key, outcome))
    if by_name:
        raise ValueError(f"stage reported undeclared checks {sorted(by_name)}; add them to its check specs")
    return results


def _result(asset_key: dg.AssetKey, outcome: CheckOutcome) -> dg.AssetCheckResult:
    severity = dg.AssetCheckSeverity.ERROR if outcome.severity == Severity.ERROR else dg.AssetCheckSeverity.WARN
    metadata = to_metadata({"summary": outcome.summary, **outcome.metadata})
    return dg.AssetCheckResult(asset_key=asset_key, check_name=outcome.name, passed=outcome.passed,
                               severity=severity, metadata=metadata, description=outcome.summary)
