"""The standardize stage: race, ethnicity and language labels mapped to Connecticut's REL standards."""

from __future__ import annotations

from typing import Any

import duckdb

from ct_pipelines.catalog.blocks.standardize import (
    RACE_FIELDS,
    REPORTING_GROUP_COLUMN,
    ReportingRule,
    StandardizeConfig,
)
from ct_pipelines.catalog.models import Dataset
from ct_pipelines.core.results import Progress, RunOptions, StageError, StageResult, quiet
from ct_pipelines.core.settings import Settings
from ct_pipelines.core.sql import quote_ident, stage_table


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
    """Map each distinct label once; the standardized rows are a view joining the labels to the valid rows
    (no copy of the rows), with the raw labels kept beside the standard ones."""
    from ct_pipelines.standardize.standardize import (
        code_map_problems,
        drop_label_tables,
        rel_checks,
        replace_with_view,
        standardize_table,
    )

    source, target = stage_table("validate", dataset.id), stage_table("standardize", dataset.id)
    config = dataset.standardize
    if config is None or not config.columns:
        drop_label_tables(con, target)
        replace_with_view(con, target, f"SELECT * FROM {quote_ident(source)}")
        rows = con.execute(f"SELECT count(*) FROM {quote_ident(target)}").fetchone()[0]
        return StageResult(
            table=target,
            rows_in=rows,
            rows_out=rows,
            facts={"note": "No race, ethnicity or language columns declared (standardize:); rows passed on."},
        )
    if problems := code_map_problems(config):
        raise StageError("; ".join(problems))
    try:
        result = standardize_table(con, source, target, config)
    except ValueError as exc:
        raise StageError(str(exc)) from exc
    outcomes = rel_checks(con, target, config, pii_columns=dataset.pii_fields)
    pii = set(dataset.pii_fields)
    for outcome in outcomes:  # raw labels of a column marked pii must not reach the UI
        if any(
            c.column in pii for c in config.columns if outcome.name.endswith(f"_{c.column}_labels_recognized")
        ):
            outcome.metadata = {k: v for k, v in outcome.metadata.items() if isinstance(v, int | float)}
    groups = ", ".join(f"{group} {n:,}" for group, n in result.reporting_groups.items())
    mena = _mena_within_white(con, target, config)
    progress(
        f"{dataset.id}: standardized {result.row_count:,} rows"
        + (f"; reporting groups: {groups}" if groups else "")
        + (
            f"; {mena:,} rows answered Middle Eastern or North African, which the {config.reporting_rule.value} "
            "rule counts within White, as OMB 1997 did (reporting_rule: spd15_alone keeps them apart, for a "
            "source that asked the 2024 combined question)"
            if mena
            else ""
        )
    )
    status_md = "| column | status | rows |\n|---|---|---|\n" + "\n".join(
        f"| {c.column} | {status} | {count:,} |"
        for c in result.columns
        for status, count in c.status_counts.items()
    )
    return StageResult(
        table=target,
        rows_in=result.row_count,
        rows_out=result.row_count,
        outcomes=outcomes,
        facts={
            "reference_version": result.reference_version,
            "added_columns": result.added_columns,
            "reporting_groups": result.reporting_groups,
            "not_collected": result.not_collected,
            "mena_within_white": mena,
        },
        markdown={"status_counts": status_md},
    )


def _mena_within_white(con: duckdb.DuckDBPyConnection, table: str, config: StandardizeConfig) -> int:
    """Rows with a Middle Eastern or North African answer that the rule reports as White (CT DPH and OMB
    1997 have no such group): a helper's 2024-question extract published them as Non-Hispanic White with
    nothing said. Counted from the label table (one row per distinct answer), not the rows."""
    from ct_pipelines.standardize.standardize import ROWS_COLUMN, _label_groups, label_table

    if config.reporting_rule == ReportingRule.SPD15_ALONE:
        return 0
    for number, (columns, grouped) in enumerate(_label_groups(config)):
        spd15 = [f"{c.column}_spd15" for c in columns if c.field in RACE_FIELDS]
        if not grouped or not spd15:
            continue
        found = " OR ".join(f"contains({quote_ident(c)}, 'MENA')" for c in spd15)
        return con.execute(
            f"SELECT coalesce(sum({ROWS_COLUMN}), 0) FROM {quote_ident(label_table(table, number))} "
            f"WHERE {REPORTING_GROUP_COLUMN} <> 'Not standardized' AND ({found})"
        ).fetchall()[0][0]
    return 0
