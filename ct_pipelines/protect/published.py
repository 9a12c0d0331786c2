"""Build the one table that goes to the portal, with PII excluded by construction and small cells hidden.

Every mode starts from a view of the standardized table that lacks the `pii: true` columns, so SQL
files and aggregates cannot even name them; SQL files run confined to that view (see ``sandbox``); a
final assertion refuses the output if a PII (or PII-derived) column name still appears, and the PII
scan then reads every value, whatever the mode.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ct_pipelines.catalog.blocks.protect import ProtectConfig, ProtectMode, SuppressionConfig
from ct_pipelines.catalog.models import Dataset
from ct_pipelines.catalog.naming import is_state_label, is_total_label
from ct_pipelines.core.outcomes import CheckOutcome, Severity
from ct_pipelines.core.sql import quarantine_table, quote_ident, quote_qualified, stage_table
from ct_pipelines.core.warehouse import relation_exists
from ct_pipelines.protect.aggregate import (
    NOT_REPORTED,
    build_aggregate,
    column_types,
    is_text_column,
    refuse_figures_over_source_suppression,
    suppress_table,
)
from ct_pipelines.protect.errors import PublishConfigError
from ct_pipelines.protect.pii import (
    assert_no_pii_columns,
    derived_from_pii,
    pii_scan_outcome,
)
from ct_pipelines.protect.sandbox import SqlShape, check_sql, run_confined
from ct_pipelines.protect.specs import (  # noqa: F401 - privacy_check_specs re-exported
    AGGREGATE_ROWS_CHECK,
    SMALL_COUNTS_CHECK,
    SOURCE_SUPPRESSION_CHECK,
    SUPPRESSION_AUDIT_CHECK,
    has_source_suppression,
    privacy_check_specs,
    suppression_applies,
)
from ct_pipelines.protect.suppression import SuppressionResult

__all__ = ["NOT_REPORTED", "PublishConfigError", "PublishedTableResult", "build_published_table"]
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_TEMPLATE_SYNTAX = re.compile(r"\{\{|\}\}|\{%|%\}")


@dataclass
class PublishedTableResult:
    """What was built: the table name, its shape, what was kept out and the suppression figures."""

    target_table: str
    mode: ProtectMode
    row_count: int
    columns: list[str]
    excluded_pii_columns: list[str] = field(default_factory=list)
    suppression: SuppressionResult | None = None  # the first count column's
    suppressions: list[SuppressionResult] = field(default_factory=list)  # one per count column
    notes: list[str] = field(default_factory=list)  # deprecations to show the dataset owner
    # An aggregate's summed or counted columns (None: the table holds rows, not sums of them)
    summed_columns: list[str] | None = None


def build_published_table(
    con: duckdb.DuckDBPyConnection,
    dataset: Dataset,
    source_table: str,
    target_table: str,
    sql_dir: Path,
    tables: Mapping[str, str] | None = None,
) -> PublishedTableResult:
    """Create ``target_table`` from the standardized ``source_table`` as the dataset's publish block says.

    ``tables`` adds other table names a SQL file may use as ``{{ name }}`` besides ``{{ source }}``; a
    name for ``source_table`` itself gets the PII-free view instead.
    """
    config = dataset.protect
    pii_fields = dataset.pii_fields
    source_columns = list(column_types(con, source_table))
    excluded = [c for c in source_columns if derived_from_pii(c, pii_fields)]
    public_view = f"{target_table}__public_source"
    kept = ", ".join(quote_ident(c) for c in source_columns if c not in excluded)
    if not kept:
        raise PublishConfigError(f"every column of {source_table} is marked pii; nothing can be published")
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {quote_ident(public_view)} AS "
        f"SELECT {kept} FROM {quote_ident(source_table)}"
    )
    target = quote_ident(target_table)
    results: list[SuppressionResult] = []
    summed: list[str] | None = None
    try:
        if config.mode == ProtectMode.ROWS:
            con.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM {quote_ident(public_view)}")
        elif config.mode == ProtectMode.SQL:
            names = {n: public_view if t == source_table else t for n, t in (tables or {}).items()}
            names.update({name: name for name in config.reference_tables})
            names["source"] = public_view
            results, shape = _build_from_sql(con, config, names, target_table, sql_dir, pii_fields)
            if shape.aggregates:
                summed = sorted(c for c in source_columns if c.lower() in shape.aggregated)
        else:
            assert config.aggregate is not None  # the config model refuses aggregate mode without it
            summed = sorted(
                {m.column for m in config.aggregate.measures if m.agg.lower() == "sum" and m.column}
            )
            results = build_aggregate(
                con, public_view, target_table, config.aggregate, config.suppression, pii_fields
            )
        columns = list(column_types(con, target_table))
        assert_no_pii_columns(columns, pii_fields, target_table)
    except Exception:
        con.execute(f"DROP TABLE IF EXISTS {target}")
        raise
    finally:
        con.execute(f"DROP VIEW IF EXISTS {quote_ident(public_view)}")
    row_count = con.execute(f"SELECT count(*) FROM {target}").fetchall()[0][0]
    return PublishedTableResult(
        target_table,
        config.mode,
        int(row_count),
        columns,
        excluded,
        results[0] if results else None,
        results,
        config.deprecations(),
        summed,
    )


def _build_from_sql(
    con: duckdb.DuckDBPyConnection,
    config: ProtectConfig,
    names: Mapping[str, str],
    target_table: str,
    sql_dir: Path,
    pii_fields: list[str],
) -> tuple[list[SuppressionResult], SqlShape]:
    """Check the SQL file, run it confined, then suppress its counts when the YAML asks; returns the
    suppression figures and what the query reads and sums."""
    label = f"sql/{config.sql_file}"
    query = render_sql_file(sql_dir, config.sql_file, names)
    shape = check_sql(query, set(names.values()), label)
    if shape.aggregates:  # as for a declarative measure: the hidden values would be left out of the sums
        types = column_types(con, names["source"])
        refuse_figures_over_source_suppression(
            con,
            names["source"],
            types,
            [(c, f"{label} sums or counts '{c}'") for c in sorted(types) if c.lower() in shape.aggregated],
            "publish the rows as they are (protect.mode: rows, where each suppressed value stays empty with "
            "its flag), or aggregate a column the source did not suppress",
        )
    if config.suppression is None:
        run_confined(con, query, shape, target_table, label, pii_fields)
        return [], shape
    staging = f"{target_table}__sql_result"
    run_confined(con, query, shape, staging, label, pii_fields)
    try:
        assert_no_pii_columns(list(column_types(con, staging)), pii_fields, target_table)
        dims = [d.name for d in config.dimension_specs]
        margin_dims = config.margin_dimensions()
        if config.legacy_sql_totals:
            _refuse_legacy_date_totals(con, staging, margin_dims)
        return suppress_table(
            con, staging, target_table, dims, margin_dims, config.suppression, "Total"
        ), shape
    finally:
        con.execute(f"DROP TABLE IF EXISTS {quote_ident(staging)}")


def _refuse_legacy_date_totals(con: duckdb.DuckDBPyConnection, staging: str, margin_dims: list[str]) -> None:
    """Old YAML totals every dimension; a date column among them is a snapshot, and its total is wrong."""
    types = column_types(con, staging)
    for name in margin_dims:
        if types.get(name, "").upper().startswith(("DATE", "TIMESTAMP", "TIME")):
            raise PublishConfigError(
                f"dimension '{name}' holds dates ({types[name]}); a total over dates is refused because "
                "cumulative or point-in-time counts do not add up over time; write protect.dimensions as "
                f"{{name: {name}, time: true}} and {{name: ..., totals: true}} for the others"
            )


def render_sql_file(sql_dir: Path, sql_file: str | None, names: Mapping[str, str]) -> str:
    """Fill ``{{ name }}`` placeholders with quoted table names; anything else in braces is refused."""
    if not sql_file:
        raise PublishConfigError("protect.mode is sql but protect.sql_file is empty; name a file in sql/")
    root = sql_dir.resolve()
    path = (root / sql_file).resolve()
    if root not in path.parents or not path.is_file():
        raise PublishConfigError(f"protect.sql_file '{sql_file}' must be an existing file inside {root}")
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
        filled = _PLACEHOLDER.sub(lambda match: quote_qualified(names[match.group(1)]), code)
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


def suppression_audit_outcome(
    result: SuppressionResult | list[SuppressionResult] | None, notes: list[str] | None = None
) -> CheckOutcome:
    """ERROR when any small count could still be worked out; otherwise the suppression and loss figures."""
    results = [result] if isinstance(result, SuppressionResult) else list(result or [])
    if not results:
        return CheckOutcome(
            SUPPRESSION_AUDIT_CHECK,
            True,
            Severity.ERROR,
            "No count table is published, so nothing needed hiding.",
            {},
        )
    first = results[0]
    failures = [f for r in results for f in r.failures]
    primary = sum(r.primary_count for r in results)
    complementary = sum(r.complementary_count for r in results)
    metadata = {
        "threshold": first.threshold,
        "protect_zeros": first.protect_zeros,
        "cells": len(first.table),
        "primary_suppressed": primary,
        "complementary_suppressed": complementary,
        "attacker_lps_solved": sum(r.lp_solves for r in results),
        "still_disclosed": failures,
        "loss": [r.loss_metadata() for r in results],
    }
    if first.loss is not None:
        metadata["hidden_share_of_total"] = round(first.loss.hidden_share, 6)
        metadata["largest_hidden_margin"] = first.loss.largest_hidden_margin
    if notes:
        metadata["deprecations"] = notes
    if not failures:
        loss = first.loss
        summary = (
            f"{primary} small counts (1 to {first.threshold}) were hidden, plus {complementary} other cells so "
            "they cannot be worked out from the totals"
            + (
                f"; {loss.hidden_share:.1%} of the total count of '{first.count}' is hidden, the largest hidden "
                f"total is {loss.largest_hidden_margin:,}."
                if loss is not None
                else "."
            )
        )
    else:
        summary = (
            f"{len(failures)} hidden small counts could still be worked out from the published totals; "
            "publishing is stopped."
        )
    return CheckOutcome(SUPPRESSION_AUDIT_CHECK, not failures, Severity.ERROR, summary, metadata)


def privacy_outcomes(
    con: duckdb.DuckDBPyConnection, dataset: Dataset, result: PublishedTableResult
) -> list[CheckOutcome]:
    """All privacy checks for a built table, in the order of ``privacy_check_specs``."""
    outcomes = [pii_scan_outcome(con, result.target_table, dataset.protect.pii_exemptions)]
    if suppression_applies(dataset):
        outcomes.append(suppression_audit_outcome(result.suppressions, result.notes))
    else:
        outcomes.append(small_counts_outcome(con, dataset, result.target_table))
    if dataset.protect.mode == ProtectMode.ROWS and has_source_suppression(dataset):
        outcomes.append(source_suppression_outcome(con, result.target_table))
    if dataset.protect.mode != ProtectMode.ROWS:
        outcomes.append(aggregate_rows_outcome(con, dataset, result.summed_columns))
    return outcomes


def source_suppression_outcome(con: duckdb.DuckDBPyConnection, table: str) -> CheckOutcome:
    """The source hid small counts ('*'), but the table it published would give some back: a helper's
    births by town and race carried a Total column, and Canaan's 2,368 less its three shown groups gave
    3 Black mothers; a Statewide row less the towns gave another. A count is recoverable when it is the
    only hidden one in a row beside a column that totals the row's counts (on every row with none
    hidden), or the only hidden one in its column below a row labelled as a total."""
    types = column_types(con, table)
    counts = [c for c in types if f"{c}_suppressed" in types and not is_text_column(types[c])]
    found: list[str] = []
    if counts:
        hidden_in_row = " + ".join(
            f"coalesce({quote_ident(c + '_suppressed')}, false)::INTEGER" for c in counts
        )
        shown_sum = " + ".join(f"coalesce({quote_ident(c)}, 0)" for c in counts)
        for total in (c for c, t in types.items() if c not in counts and _is_number_type(t)):
            t = quote_ident(total)
            checked, agreeing, recoverable = con.execute(
                f"SELECT count_if({hidden_in_row} = 0 AND {t} IS NOT NULL), "
                f"count_if({hidden_in_row} = 0 AND {t} = {shown_sum}), "
                f"count_if({hidden_in_row} = 1 AND {t} IS NOT NULL) FROM {quote_ident(table)}"
            ).fetchone()
            # a total by its values (on rows with nothing hidden), or by its name where every row hides some
            named = re.search(r"(^|_)(total|totals|all|overall)(_|$)", total) is not None
            if agreeing == checked and (checked >= 2 or named) and recoverable:
                found.append(f"{recoverable:,} from column '{total}', which totals {', '.join(counts)}")
        labels = [c for c, t in types.items() if is_text_column(t)]
        # the rows a total row adds up: those sharing its other categories (year, race in a long table)
        periods = [
            c
            for c, t in types.items()
            if c not in counts and re.search(r"(^|_)(year|month|fy|period)(_|$)", c)
        ]
        periods += [c for c, t in types.items() if t.upper().startswith(("DATE", "TIMESTAMP"))]
        for label in labels:
            values = con.execute(
                f"SELECT DISTINCT {quote_ident(label)} FROM {quote_ident(table)} WHERE {quote_ident(label)} IS NOT NULL"
            ).fetchall()
            totals = [
                v for (v,) in values if is_total_label(str(v)) or (is_state_label(str(v)) and len(values) > 1)
            ]
            if len(totals) != 1:
                continue
            groups = [quote_ident(c) for c in [*labels, *periods] if c != label]
            by = f" GROUP BY {', '.join(groups)}" if groups else ""
            lab = quote_ident(label)
            for count in counts:
                flag, value = quote_ident(count + "_suppressed"), quote_ident(count)
                recoverable = con.execute(
                    f"SELECT count(*) FROM (SELECT count_if(coalesce({flag}, false) AND {lab} IS DISTINCT FROM ?) AS hidden, "
                    f"count_if({lab} = ? AND {value} IS NOT NULL) AS shown FROM {quote_ident(table)}{by}) "
                    "WHERE hidden = 1 AND shown = 1",
                    [totals[0], totals[0]],
                ).fetchone()[0]
                if recoverable:
                    found.append(
                        f"{recoverable:,} in column '{count}', from the '{totals[0]}' rows of {label}"
                    )
    if not found:
        return CheckOutcome(
            SOURCE_SUPPRESSION_CHECK,
            True,
            Severity.ERROR,
            "No count the source suppressed can be worked out from a published total.",
        )
    summary = (
        f"counts the source suppressed could be worked out from the published totals ({'; '.join(found)}), "
        "so nothing was published; leave the total column out of the dataset's columns (or leave the total "
        "row out with ingest.leave_out), or ask the agency to suppress a second cell in each such row or "
        "column"
    )
    return CheckOutcome(SOURCE_SUPPRESSION_CHECK, False, Severity.ERROR, summary, {"recoverable": found})


def _is_number_type(kind: str) -> bool:
    base = kind.upper().split("(")[0]
    return base in _INTEGER_TYPES or base in ("DOUBLE", "FLOAT", "REAL", "DECIMAL")


def aggregate_rows_outcome(
    con: duckdb.DuckDBPyConnection, dataset: Dataset, summed: list[str] | None
) -> CheckOutcome:
    """Rows set aside by validation are missing from every cell of an aggregate. When a summed column's
    own value broke a rule (a typo in a count), the sum is published too low as if complete, so the run
    stops (a helper's DCF delivery published 6,569 children for a July 1 the file counts as 6,595). Rows
    set aside by rules on other columns are left out by the dataset's own rules: the run says how many.
    ``summed``: the columns the aggregate sums or counts (for a SQL file, those inside its sum(), avg() or
    count()); None when the SQL file publishes rows rather than sums of them."""
    if summed is None:
        return CheckOutcome(
            AGGREGATE_ROWS_CHECK,
            True,
            Severity.ERROR,
            "The SQL file publishes rows, not sums or counts of them.",
        )
    ingested, valid = stage_table("ingest", dataset.id), stage_table("validate", dataset.id)
    if not (relation_exists(con, "main", ingested) and relation_exists(con, "main", valid)):
        return CheckOutcome(AGGREGATE_ROWS_CHECK, True, Severity.ERROR, "No validated rows to compare.")
    total = con.execute(f"SELECT count(*) FROM {quote_ident(ingested)}").fetchone()[0]
    kept = con.execute(f"SELECT count(*) FROM {quote_ident(valid)}").fetchone()[0]
    missing = total - kept
    if missing <= 0:
        return CheckOutcome(
            AGGREGATE_ROWS_CHECK, True, Severity.ERROR, f"All {total:,} rows are counted in the aggregate."
        )
    reasons, in_sums = _set_aside_reasons(con, dataset.id, summed)
    listing = f"`ct-pipelines validate quarantine {dataset.id}` lists each row and its reason"
    metadata = {
        "rows_set_aside": missing,
        "rows_ingested": total,
        "rows_set_aside_for_summed_values": in_sums,
    }
    if in_sums:
        summary = (
            f"{in_sums:,} of {total:,} rows were set aside because their {' or '.join(summed)} broke a rule "
            f"({reasons}), so every sum they belong to would be published too low; correct those values in "
            f"the extract ({listing})"
        )
        return CheckOutcome(AGGREGATE_ROWS_CHECK, False, Severity.ERROR, summary, metadata)
    summary = (
        f"{missing:,} of {total:,} rows were set aside by validation ({reasons}) and are not counted in the "
        f"aggregate: its figures leave out the rows the dataset's rules call wrong; correct them in the "
        f"extract to count them ({listing})"
    )
    return CheckOutcome(AGGREGATE_ROWS_CHECK, False, Severity.WARN, summary, metadata)


def _set_aside_reasons(con: duckdb.DuckDBPyConnection, dataset_id: str, summed: list[str]) -> tuple[str, int]:
    """The last validation's rules that set rows aside, with row counts, most rows first; and how many
    rows were set aside for a value of a summed column."""
    table = quarantine_table(dataset_id)
    if not relation_exists(con, "main", table):
        return "", 0
    last = f"run_id = (SELECT arg_max(run_id, quarantined_at) FROM {quote_ident(table)})"
    rows = con.execute(
        f"SELECT rule, column_name, count(DISTINCT _row) AS n FROM {quote_ident(table)} WHERE {last} "
        "GROUP BY ALL ORDER BY n DESC, rule, column_name LIMIT 3"
    ).fetchall()
    in_sums = con.execute(
        f"SELECT count(DISTINCT _row) FROM {quote_ident(table)} WHERE {last} AND list_contains(?, column_name)",
        [summed],
    ).fetchone()[0]
    return "; ".join(f"{rule}{f' on {column}' if column else ''}: {n:,}" for rule, column, n in rows), in_sums


# Words in a column name that say it counts people (or events of people), not measures a record.
COUNT_WORDS = frozenset(
    [
        "count",
        "counts",
        "total",
        "totals",
        "number",
        "num",
        "n",
        "cases",
        "children",
        "students",
        "persons",
        "people",
        "clients",
        "deaths",
        "births",
        "enrollment",
        "enrolled",
        "individuals",
        "patients",
        "residents",
        "population",
        "enrollees",
        "members",
        "admissions",
        "discharges",
        "participants",
        "recipients",
        "beneficiaries",
        "households",
        "placements",
        "referrals",
        "arrests",
        "incidents",
        # events counted per person or case: a helper's ED "Visits" table got a suggested count of rows
        "visits",
        "encounters",
        "requests",
        "applications",
        "claims",
        "calls",
        "complaints",
        "inspections",
        "violations",
        "hospitalizations",
        "overdoses",
        "injuries",
        "victims",
        "crashes",
        "graduates",
        "employees",
        "veterans",
        "youth",
    ]
)
_INTEGER_TYPES = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
)


#: The last word of an identifier's name ("Case Number", "License No", "Permit #" read as permit).
_NUMBER_WORDS = frozenset(["number", "num", "no", "nbr", "n", "id"])


def named_like_count(column: str) -> bool:
    """Whether a column's name says it counts people or events (``TOTAL_CIP``, ``Students``, "Number of
    Deaths"). "Case Number" names a case: a helper's suggested sum published 5,050, the sum of 1 to 100."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", column).lower()
    words = [w for w in re.split(r"[^a-z0-9]+", spaced) if w]
    if (
        len(words) > 1
        and words[-1] in _NUMBER_WORDS
        and not (set(words[:-1]) & (COUNT_WORDS - _NUMBER_WORDS))
    ):
        return False
    return bool(COUNT_WORDS & set(words))


def small_counts_outcome(con: duckdb.DuckDBPyConnection, dataset: Dataset, table: str) -> CheckOutcome:
    """A table published row by row may itself be a table of counts (an agency's own summary): its small
    counts of people would then reach the portal unsuppressed. Whole-number columns named like counts are
    searched for values from 1 to the threshold; a name can mislead, so this only warns."""
    threshold = (dataset.protect.suppression or SuppressionConfig()).threshold  # the YAML's, else its default
    skip = {dataset.row_identifier, *dataset.pii_fields}
    candidates = [
        name
        for name, column_type in column_types(con, table).items()
        if name not in skip and column_type.upper() in _INTEGER_TYPES and named_like_count(name)
    ]
    found: dict[str, int] = {}
    if candidates:
        counts = con.execute(
            "SELECT "
            + ", ".join(
                f"count(*) FILTER (WHERE {quote_ident(c)} BETWEEN 1 AND {threshold})" for c in candidates
            )
            + f" FROM {quote_ident(table)}"
        ).fetchone()
        found = {c: int(n) for c, n in zip(candidates, counts or (), strict=True) if n}
    if not found:
        return CheckOutcome(
            SMALL_COUNTS_CHECK, True, Severity.WARN, "no column named like a count holds small counts"
        )
    listed = "; ".join(f"{column}: {n:,} row(s)" for column, n in found.items())
    first = next(iter(found))
    return CheckOutcome(
        SMALL_COUNTS_CHECK,
        False,
        Severity.WARN,
        f"column(s) named like counts hold values from 1 to {threshold}, published as they are ({listed}). "
        "If each row counts people (a table the agency already summed), publish it as an aggregate with "
        f"small-cell suppression (protect.mode: aggregate, a measure with agg: sum and column: {first}, every "
        "date column among the dimensions with time: true, since counts taken on different dates do not add "
        "up, and a suppression block naming that measure); if each row is one record, this warning can be "
        "ignored",
        {"columns": found, "threshold": threshold},
    )
