"""Rules a ``protect:`` block must meet to be published and suppressed; each broken rule is one sentence.

Kept apart from the models so config.py stays a plain list of fields.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ct_pipelines.catalog.blocks.protect import AggregateConfig, ProtectConfig, SuppressionConfig

_STAGE_PREFIXES = ("ingest__", "validate__", "quarantine__", "standardize__", "protect__")


def check_privacy_config(config: ProtectConfig) -> list[str]:
    """Everything wrong with a publish block that would make the run fail or publish a wrong number."""
    from ct_pipelines.catalog.blocks.protect import ProtectMode

    problems: list[str] = []
    dims = [d.name for d in config.dimension_specs]
    duplicated = sorted({d for d in dims if dims.count(d) > 1})
    if duplicated:
        problems.append(f"dimension(s) {', '.join(duplicated)} are listed more than once")
    if config.mode == ProtectMode.ROWS:
        if config.suppression is not None:
            problems.append(
                "protect.suppression protects count tables, but mode is rows (one row per record); set "
                "mode to aggregate or sql, or remove suppression"
            )
        return problems
    if config.mode == ProtectMode.SQL:
        problems += _check_sql_mode(config, dims)
    elif config.aggregate is None:
        problems.append(
            "protect.mode is aggregate but protect.aggregate is empty; declare dimensions and measures"
        )
    else:
        problems += _check_aggregate(config.aggregate, config.suppression)
    if config.suppression is not None:
        problems += _check_suppression(config.suppression, dims)
    return problems


def _check_sql_mode(config: ProtectConfig, dims: list[str]) -> list[str]:
    problems = []
    if not config.sql_file:
        problems.append("protect.mode is sql but protect.sql_file is empty; name a file in sql/")
    if config.suppression is not None and not dims:
        problems.append(
            "protect.suppression in sql mode needs protect.dimensions (the columns the counts are broken down by)"
        )
    for spec in config.dimension_specs:
        if spec.time and spec.totals:
            problems.append(
                f"dimension '{spec.name}' is marked time and totals: true; a total over dates or snapshots "
                "of cumulative or point-in-time counts is wrong; remove one of the two"
            )
    for name in config.reference_tables:
        if name.lower().startswith(_STAGE_PREFIXES) or "." in name:
            problems.append(
                f"reference table '{name}' is a pipeline stage table or in another schema; publish SQL may "
                "read only the dataset's {{ source }} view and plain reference tables"
            )
    return problems


def _check_aggregate(aggregate: AggregateConfig, suppression: SuppressionConfig | None) -> list[str]:
    from ct_pipelines.catalog.blocks.protect import AGGS

    problems = []
    dims = [d.name for d in aggregate.dimension_specs]
    for measure in aggregate.measures:
        agg = measure.agg.lower()
        if agg not in AGGS or (agg != "count" and measure.column is None):
            problems.append(
                f"measure '{measure.name}': agg must be count, or sum/avg/min/max with a column "
                f"(got '{measure.agg}'{'' if measure.column else ' without a column'})"
            )
        if measure.name in dims:
            problems.append(f"measure '{measure.name}' has the same name as a dimension; rename one")
        unknown = [d for d in measure.adds_up_over or [] if d not in dims]
        if unknown:
            problems.append(
                f"measure '{measure.name}': adds_up_over names {', '.join(unknown)}, which are not "
                f"dimensions ({', '.join(dims)})"
            )
    for spec in aggregate.dimension_specs:
        if spec.totals:
            refusing = [m.name for m in aggregate.measures if not m.adds_up(spec)]
            if refusing:
                problems.append(
                    f"dimension '{spec.name}' asks for totals, but measure(s) {', '.join(refusing)} do not add "
                    f"up over it{' (it is a time dimension)' if spec.time else ''}; list it in the measure's "
                    "adds_up_over if a total is right, or set totals: false"
                )
    if suppression is not None:
        by_name = {m.name: m for m in aggregate.measures}
        for count in suppression.counts:
            measure = by_name.get(count)
            if measure is None or measure.agg.lower() not in ("count", "sum"):
                problems.append(
                    f"suppression count column '{count}' must be a count or sum measure of the aggregate "
                    f"(measures: {', '.join(by_name)})"
                )
        for rate in suppression.rate_columns:
            if rate not in by_name or rate in suppression.counts:
                problems.append(f"rate column '{rate}' must be one of the non-count measures")
    return problems


def _check_suppression(suppression: SuppressionConfig, dims: list[str]) -> list[str]:
    problems = []
    for column in [*suppression.counts, *suppression.rate_columns, suppression.flag_column]:
        if column in dims:
            problems.append(f"column '{column}' is both a dimension and a count, rate or flag column")
    for dimension in suppression.collapse:
        if dimension not in dims:
            problems.append(
                f"suppression.collapse names '{dimension}', which is not a dimension ({', '.join(dims)})"
            )
    if suppression.method not in ("auto", "heuristic", "optimal"):
        problems.append(f"suppression.method must be auto, heuristic or optimal (got '{suppression.method}')")
    return problems
