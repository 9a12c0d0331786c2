"""Build the one table that goes to the portal, with PII excluded by construction and small cells hidden.

Every mode starts from a view of the standardized table that lacks the `pii: true` columns, so SQL
files and aggregates cannot even name them; a final assertion refuses the output if a PII (or
PII-derived) column name still appears.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from ct_pipelines.catalog.blocks.protect import AggregateConfig, Measure, ProtectMode, SuppressionConfig
from ct_pipelines.catalog.models import Dataset
from ct_pipelines.core.outcomes import CheckOutcome, Severity
from ct_pipelines.protect.pii import (
    assert_no_pii_columns,
    derived_from_pii,
    pii_scan_outcome,
    quote_identifier,
)
from ct_pipelines.protect.specs import (  # noqa: F401 - privacy_check_specs re-exported
    SUPPRESSION_AUDIT_CHECK,
    privacy_check_specs,
    suppression_applies,
)
from ct_pipelines.protect.suppression import SuppressionResult, collapse_categories, suppress

NOT_REPORTED = "Not reported"
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_TEMPLATE_SYNTAX = re.compile(r"\{\{|\}\}|\{%|%\}")


class PublishConfigError(ValueError):
    """The publish block or its SQL file cannot produce a table; the message says what to fix."""


@dataclass
class PublishedTableResult:
    """What was built: the table name, its shape, what was kept out and the suppression figures."""

    target_table: str
    mode: ProtectMode
    row_count: int
    columns: list[str]
    excluded_pii_columns: list[str] = field(default_factory=list)
    suppression: SuppressionResult | None = None


def build_published_table(
    con: duckdb.DuckDBPyConnection,
    dataset: Dataset,
    source_table: str,
    target_table: str,
    sql_dir: Path,
    tables: Mapping[str, str] | None = None,
) -> PublishedTableResult:
    """Create ``target_table`` from the standardized ``source_table`` as the dataset's publish block says.

    ``tables`` adds other table names a SQL file may use as ``{{ name }}`` besides ``{{ source }}``.
    """
    config = dataset.protect
    pii_fields = dataset.pii_fields
    source_columns = [row[0] for row in con.execute(f"DESCRIBE {quote_identifier(source_table)}").fetchall()]
    excluded = [c for c in source_columns if derived_from_pii(c, pii_fields)]
    public_view = f"{target_table}__public_source"
    kept = ", ".join(quote_identifier(c) for c in source_columns if c not in excluded)
    if not kept:
        raise PublishConfigError(f"every column of {source_table} is marked pii; nothing can be published")
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {quote_identifier(public_view)} AS "
        f"SELECT {kept} FROM {quote_identifier(source_table)}"
    )
    target = quote_identifier(target_table)
    suppression: SuppressionResult | None = None
    try:
        if config.mode == ProtectMode.ROWS:
            con.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM {quote_identifier(public_view)}")
        elif config.mode == ProtectMode.SQL:
            query = render_sql_file(sql_dir, config.sql_file, {"source": public_view, **(tables or {})})
            _require_one_select(con, query, config.sql_file or "")
            if config.suppression:
                frame = _run_query(con, query, config.sql_file or "", pii_fields)
                suppression, frame = _suppress_frame(
                    frame, config.dimensions, config.suppression, True, "Total"
                )
                _write_frame(con, frame, target_table)
            else:
                _run_query(
                    con, f"CREATE OR REPLACE TABLE {target} AS {query}", config.sql_file or "", pii_fields
                )
        else:
            if config.aggregate is None:
                raise PublishConfigError(
                    f"dataset {dataset.id}: publish.mode is aggregate but publish.aggregate is empty"
                )
            suppression = _build_aggregate(
                con, public_view, target_table, config.aggregate, config.suppression
            )
        columns = [row[0] for row in con.execute(f"DESCRIBE {target}").fetchall()]
        assert_no_pii_columns(columns, pii_fields, target_table)
    except Exception:
        con.execute(f"DROP TABLE IF EXISTS {target}")
        raise
    finally:
        con.execute(f"DROP VIEW IF EXISTS {quote_identifier(public_view)}")
    row_count = con.execute(f"SELECT count(*) FROM {target}").fetchone()[0]
    return PublishedTableResult(target_table, config.mode, int(row_count), columns, excluded, suppression)


def render_sql_file(sql_dir: Path, sql_file: str | None, names: Mapping[str, str]) -> str:
    """Fill ``{{ name }}`` placeholders with quoted table names; anything else in braces is refused."""
    if not sql_file:
        raise PublishConfigError("publish.mode is sql but publish.sql_file is empty; name a file in sql/")
    root = sql_dir.resolve()
    path = (root / sql_file).resolve()
    if root not in path.parents or not path.is_file():
        raise PublishConfigError(f"publish.sql_file '{sql_file}' must be an existing file inside {root}")
    lines = path.read_text(encoding="utf-8").splitlines()
    rendered = []
    for number, line in enumerate(lines, start=1):
        code, dashes, comment = line.partition("--")  # comments are kept verbatim, never templated
        for name in _PLACEHOLDER.findall(code):
            if name not in names:
                raise PublishConfigError(
                    f"{path}, line {number}: unknown placeholder '{{{{ {name} }}}}'; "
                    f"allowed: {', '.join('{{ ' + n + ' }}' for n in sorted(names))}"
                )
        filled = _PLACEHOLDER.sub(lambda match: _quote_table(names[match.group(1)]), code)
        if _TEMPLATE_SYNTAX.search(filled):
            raise PublishConfigError(
                f"{path}, line {number}: only '{{{{ name }}}}' placeholders are supported (no template logic)"
            )
        filled += dashes + comment
        rendered.append(filled)
    query = "\n".join(rendered).strip().rstrip(";").strip()
    if not query:
        raise PublishConfigError(f"{path} is empty; write one SELECT statement")
    return query


def _require_one_select(con: duckdb.DuckDBPyConnection, query: str, label: str) -> None:
    """A publish SQL file describes a table; it must not change the database."""
    try:
        statements = con.extract_statements(query)
    except duckdb.Error as exc:
        raise PublishConfigError(f"{label}: the SQL does not parse: {str(exc).splitlines()[0]}") from exc
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise PublishConfigError(
            f"{label}: write exactly one SELECT statement (found {len(statements)} statements)"
        )


def _quote_table(name: str) -> str:
    return ".".join(quote_identifier(part) for part in name.split("."))


def _run_query(con: duckdb.DuckDBPyConnection, query: str, label: str, pii_fields: list[str]) -> pd.DataFrame:
    """Run an analyst's SQL; a failure names the file and, when it touched a PII column, says why."""
    try:
        return con.execute(query).df()
    except duckdb.Error as exc:
        named = [name for name in pii_fields if f'"{name}"' in str(exc)]
        hint = (
            f" Column(s) {', '.join(named)} are marked pii and are not available to published tables."
            if named
            else ""
        )
        raise PublishConfigError(f"{label}: the query failed: {str(exc).splitlines()[0]}.{hint}") from exc


def _suppress_frame(
    frame: pd.DataFrame,
    dims: list[str],
    config: SuppressionConfig,
    margins: bool,
    total_label: str,
    hidden_with_count: list[str] | None = None,
) -> tuple[SuppressionResult, pd.DataFrame]:
    """Suppress the count column of an aggregate and hide every measure that would reveal a hidden count."""
    if not dims:
        raise PublishConfigError("suppression needs the table's dimension columns (publish.dimensions)")
    count = config.count_column
    missing = [c for c in [*dims, count, *config.rate_columns] if c not in frame.columns]
    if missing:
        raise PublishConfigError(
            f"column(s) {', '.join(missing)} are not in the published aggregate; it has {', '.join(frame.columns)}"
        )
    frame = frame.copy()
    for d in dims:
        frame[d] = frame[d].astype(object).where(frame[d].notna(), NOT_REPORTED).astype(str)
    if config.collapse:
        frame = collapse_categories(frame, dims, count, config.collapse, config.collapse_label)
    result = suppress(
        frame, dims, count, config.threshold, config.protect_zeros, total_label, margins, config.flag_column
    )
    extra = [c for c in frame.columns if c not in (*dims, count)]
    published = result.table.merge(frame[[*dims, *extra]], on=dims, how="left")
    hidden = published[config.flag_column].to_numpy(bool)
    for column in {*config.rate_columns, *(hidden_with_count or [])}:
        if column in published and column != count:
            published[column] = published[column].astype(object)
            published.loc[hidden, column] = None
    return result, published.drop(columns=["is_margin"])


def _write_frame(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, target_table: str) -> None:
    view = f"_{target_table}_frame"
    con.register(view, frame)
    try:
        con.execute(
            f"CREATE OR REPLACE TABLE {quote_identifier(target_table)} AS SELECT * FROM {quote_identifier(view)}"
        )
    finally:
        con.unregister(view)


def _measure_sql(measure: Measure) -> str:
    agg = measure.agg.lower()
    if agg == "count" and measure.column is None:
        return f"count(*) AS {quote_identifier(measure.name)}"
    if agg not in {"count", "sum", "avg", "min", "max"} or measure.column is None:
        raise PublishConfigError(
            f"measure '{measure.name}': agg must be count, or sum/avg/min/max with a column (got '{measure.agg}')"
        )
    return f"{agg}({quote_identifier(measure.column)}) AS {quote_identifier(measure.name)}"


def _build_aggregate(
    con: duckdb.DuckDBPyConnection,
    public_view: str,
    target_table: str,
    aggregate: AggregateConfig,
    suppression: SuppressionConfig | None,
) -> SuppressionResult | None:
    """Group the PII-free rows by the dimensions; margins and suppression follow the YAML."""
    dims = aggregate.dimensions
    dim_sql = ", ".join(
        f"COALESCE(CAST({quote_identifier(d)} AS VARCHAR), '{NOT_REPORTED}') AS {quote_identifier(d)}"
        for d in dims
    )
    measures = ", ".join(_measure_sql(m) for m in aggregate.measures)
    grouped = ", ".join(str(i + 1) for i in range(len(dims)))
    query = f"SELECT {dim_sql}, {measures} FROM {quote_identifier(public_view)} GROUP BY {grouped}"
    try:
        if suppression is None:
            if aggregate.totals:
                query = _with_margins(public_view, dims, measures, aggregate.total_label)
            con.execute(f"CREATE OR REPLACE TABLE {quote_identifier(target_table)} AS {query} ORDER BY ALL")
            return None
        frame = con.execute(query).df()
    except duckdb.Error as exc:
        raise PublishConfigError(f"publish.aggregate: the aggregate failed: {exc}") from exc
    additive = {m.name for m in aggregate.measures if m.agg.lower() == "count"}
    if suppression.count_column not in additive:
        raise PublishConfigError(
            f"suppression.count_column '{suppression.count_column}' must be a count measure of the aggregate"
        )
    others = [m.name for m in aggregate.measures if m.name != suppression.count_column]
    if suppression.collapse:  # averages and sums of merged categories cannot be rebuilt from the cells
        frame, others = frame.drop(columns=others), []
    margin_frame = None
    if aggregate.totals and others:
        margin_frame = con.execute(_with_margins(public_view, dims, measures, aggregate.total_label)).df()
    result, published = _suppress_frame(
        frame, dims, suppression, aggregate.totals, aggregate.total_label, hidden_with_count=others
    )
    if margin_frame is not None:
        published = _fill_margin_measures(published, margin_frame, dims, others, suppression.flag_column)
    _write_frame(con, published, target_table)
    return result


def _with_margins(public_view: str, dims: list[str], measures: str, total_label: str) -> str:
    """GROUP BY CUBE so every dimension total and the grand total are rows labelled with the total label."""
    dim_sql = ", ".join(
        f"CASE WHEN grouping({quote_identifier(d)}) = 1 THEN '{total_label}' "
        f"ELSE COALESCE(CAST({quote_identifier(d)} AS VARCHAR), '{NOT_REPORTED}') END AS {quote_identifier(d)}"
        for d in dims
    )
    cube = ", ".join(quote_identifier(d) for d in dims)
    return f"SELECT {dim_sql}, {measures} FROM {quote_identifier(public_view)} GROUP BY CUBE ({cube})"


def _fill_margin_measures(
    published: pd.DataFrame, margins: pd.DataFrame, dims: list[str], measures: list[str], flag: str
) -> pd.DataFrame:
    """Margin rows get the non-count measures from the cube query, hidden where the margin count is."""
    lookup = margins.set_index(dims)[measures]
    for row in published.index[published[measures].isna().all(axis=1) & ~published[flag]]:
        key = tuple(published.loc[row, d] for d in dims)
        key = key if len(dims) > 1 else key[0]
        if key in lookup.index:
            for measure in measures:
                published.at[row, measure] = lookup.loc[key, measure]
    return published


def suppression_audit_outcome(result: SuppressionResult | None) -> CheckOutcome:
    """ERROR when any small count could still be worked out; otherwise the primary/complementary figures."""
    if result is None:
        return CheckOutcome(
            SUPPRESSION_AUDIT_CHECK,
            True,
            Severity.ERROR,
            "No count table is published, so nothing needed hiding.",
            {},
        )
    metadata = {
        "threshold": result.threshold,
        "protect_zeros": result.protect_zeros,
        "cells": len(result.table),
        "primary_suppressed": result.primary_count,
        "complementary_suppressed": result.complementary_count,
        "attacker_lps_solved": result.lp_solves,
        "still_disclosed": result.failures,
    }
    if result.audit_passed:
        summary = (
            f"{result.primary_count} small counts (1 to {result.threshold}) were hidden, plus "
            f"{result.complementary_count} other cells so they cannot be worked out from the totals."
        )
    else:
        summary = (
            f"{len(result.failures)} hidden small counts could still be worked out from the published totals; "
            "publishing is stopped."
        )
    return CheckOutcome(SUPPRESSION_AUDIT_CHECK, result.audit_passed, Severity.ERROR, summary, metadata)


def privacy_outcomes(
    con: duckdb.DuckDBPyConnection, dataset: Dataset, result: PublishedTableResult
) -> list[CheckOutcome]:
    """All privacy checks for a built table, in the order of ``privacy_check_specs``."""
    outcomes = [pii_scan_outcome(con, result.target_table, dataset.protect.pii_exemptions)]
    if suppression_applies(dataset):
        outcomes.append(suppression_audit_outcome(result.suppression))
    return outcomes
