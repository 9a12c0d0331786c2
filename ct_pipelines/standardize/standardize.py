"""Standardize REL columns of a DuckDB table, set-based.

Each distinct raw value (or, for race/ethnicity, each distinct combination of a row's
race/ethnicity columns) is classified once in Python; the results are stored as a small DuckDB
label table (``<target>_labels_<n>``, with the rows each label has) and the standardized rows are a
view joining them to the source. No per-row Python and no copy of the rows: a 5M-row table costs one
GROUP BY per label table, and whoever reads the view pays a join against a few hundred labels.

A label the source gains after standardize ran (validate re-run alone) has no row in the label
tables; reading its standard columns then fails with a message saying to run standardize again,
instead of publishing it without a category.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from functools import cache

import duckdb
import pyarrow as pa

from ct_pipelines.catalog.blocks.standardize import (
    RACE_FIELDS,
    REPORTING_GROUP_COLUMN,
    RelColumn,
    RelField,
    StandardizeConfig,
    standardized_columns,
)
from ct_pipelines.catalog.naming import closest, is_total_label
from ct_pipelines.core.outcomes import CheckOutcome, Severity
from ct_pipelines.core.sql import STALE_LABELS, quote_ident, quote_literal
from ct_pipelines.core.warehouse import drop_relation
from ct_pipelines.standardize.gate import (
    TOP_LABELS,
    ProblemLabel,
    code_map_snippet,
    problem_summary,
)
from ct_pipelines.standardize.groups import (  # noqa: F401 - UNKNOWN_GROUP re-exported
    NOT_STANDARDIZED_GROUP,
    UNKNOWN_GROUP,
    reporting_group,
)
from ct_pipelines.standardize.iso639_tables import from_part3
from ct_pipelines.standardize.normalize import RelResult, classify
from ct_pipelines.standardize.reference import Status, code_map_for, race_reference
from ct_pipelines.standardize.specs import check_name, rel_check_specs  # noqa: F401 - rel_check_specs re-exported

PROBLEM_STATUSES = (Status.UNMAPPED, Status.AMBIGUOUS, Status.MULTIPLE)
MAX_LISTED_VALUES = 100
LABELS_INFIX = "_labels_"  # <target>_labels_<n>: the label tables of a standardized view
ROWS_COLUMN = "_rows"  # in a label table: the source rows with that label (or combination)


@dataclass
class ColumnSummary:
    """Per REL column: how many rows got each status (for logs and asset metadata)."""

    column: str
    field: RelField
    status_counts: dict[str, int] = field(default_factory=dict)


@dataclass
class StandardizeResult:
    target_table: str
    row_count: int
    reference_version: str
    columns: list[ColumnSummary]
    added_columns: list[str]
    reporting_groups: dict[str, int] = field(default_factory=dict)
    # REL attributes the source did not collect (e.g. ["hispanic_origin"] for a race-only
    # source), so the dataset's metadata can say so; see rel/groups.py.
    not_collected: list[str] = field(default_factory=list)


def _as_text(expression: str, duckdb_type: str) -> str:
    """Raw tables are all VARCHAR; a typed column is compared as text so labels match the map."""
    return expression if duckdb_type == "VARCHAR" else f"CAST({expression} AS VARCHAR)"


def _join_text(values: Iterable[str]) -> str | None:
    """Sets as text ("ASIAN;WHITE"), since Socrata has no array type; empty set -> NULL."""
    joined = ";".join(values)
    return joined or None


def output_columns(rel_column: RelColumn) -> dict[str, str]:
    """Standardized column names and DuckDB types added for one REL column."""
    return {name: kind for name, (kind, _) in standardized_columns(rel_column).items()}


def _output_values(rel_column: RelColumn, result: RelResult) -> list[object]:
    if rel_column.field in RACE_FIELDS:
        return [
            result.status.value,
            result.hispanic,
            _join_text(result.omb1997),
            _join_text(result.spd15),
            result.two_or_more,
            result.other_race,
            _join_text(result.detailed),
            _join_text(result.candidates),
        ]
    if rel_column.field == RelField.LANGUAGE:
        return [result.status.value, result.language, _join_text(result.candidates), language_group(result)]
    return [result.status.value, result.value]


def language_group(result: RelResult) -> str:
    """The published group of a language answer. A helper's aggregate by ISO code put 103 clients who
    answered "Other" in "Not reported" with the blanks; an answer that names no listed language is
    "Other language", and a code is published by its name."""
    if result.status == Status.REPORTED:
        found = from_part3(result.language) if result.language else None
        return found.name if found is not None else "Other language"
    if result.status == Status.MULTIPLE:
        return "Multiple languages"
    if result.status == Status.DECLINED:
        return "Declined"
    if result.status in (Status.UNKNOWN, Status.NOT_COLLECTED):
        return UNKNOWN_GROUP
    return NOT_STANDARDIZED_GROUP


def code_map_problems(config: StandardizeConfig) -> list[str]:
    """Targets in ``code_map`` the reference does not read: a helper mapped DPH's "ALL RACES/ETHNICITIES"
    to "Total", `catalog validate` said valid, and the run stopped again asking for the same TODO."""
    problems = []
    fields = {f.value for f in RelField}
    for field_name, entries in config.code_map.items():
        if field_name not in fields:
            continue
        for raw, target in entries.items():
            if classify(str(target), RelField(field_name)).status != Status.UNMAPPED:
                continue
            where = f"standardize.code_map.{field_name}: {json.dumps(str(raw))} is mapped to {json.dumps(str(target))}"
            if str(target).strip().upper() == "TODO":
                problems.append(
                    f"{where}; replace TODO with the standard label it stands for, or remove the line"
                )
            elif is_total_label(str(raw)) or is_total_label(str(target)):
                problems.append(
                    f"{where}, which no standard label stands for; a row that totals the others is left out at "
                    f"ingest instead (ingest.leave_out: [{{name: total, column: {_column_of(config, field_name)}, equals: {json.dumps(str(raw))}}}])"
                )
            else:
                problems.append(
                    f"{where}, which is not a label the REL reference reads, so those rows would stay "
                    "unmapped; write a standard label (e.g. White, Hispanic, Unknown, Declined)"
                )
    return problems


def _column_of(config: StandardizeConfig, field_name: str) -> str:
    named = [c.column for c in config.columns if c.field.value == field_name]
    return named[0] if len(named) == 1 else "<its column>"


@cache
def _classify_cached(raw: str | None, field: RelField, code_map: tuple[tuple[str, str], ...]) -> RelResult:
    return classify(raw, field, dict(code_map))


def _code_map(config: StandardizeConfig, rel_column: RelColumn) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(code_map_for(rel_column.field.value, config.source, config.code_map).items()))


def _check_columns(
    con: duckdb.DuckDBPyConnection, source_table: str, config: StandardizeConfig
) -> tuple[list[str], dict[str, str]]:
    """Names the standardized columns will take, and the source column types; fails with the fix
    when a configured column is missing or an output name is taken."""
    described = {row[0]: row[1] for row in con.execute(f"DESCRIBE {quote_ident(source_table)}").fetchall()}
    existing = list(described)
    missing = [c.column for c in config.columns if c.column not in existing]
    if missing:
        named = [c for c in existing if not c.startswith("_")]
        meant = {m: closest(m, named) for m in missing}
        hints = "".join(f" (did you mean '{c}' for '{m}'?)" for m, c in meant.items() if c)
        raise ValueError(
            f"standardize: column(s) {', '.join(missing)} not found in table '{source_table}'{hints}. "
            f"Fix the standardize.columns entries; the table has: {', '.join(named)}"
        )
    added = [name for c in config.columns for name in output_columns(c)]
    if config.columns and any(c.field in RACE_FIELDS for c in config.columns):
        added.append(REPORTING_GROUP_COLUMN)
    clashes = sorted(set(added) & set(existing))
    if clashes:
        raise ValueError(
            f"rel: table '{source_table}' already has column(s) {', '.join(clashes)}, which REL "
            "standardization adds; rename them in the dataset's columns"
        )
    return added, described


def label_table(target_table: str, number: int) -> str:
    """The stored labels of one group of REL columns (race columns together, others one each)."""
    return f"{target_table}{LABELS_INFIX}{number}"


def _label_groups(config: StandardizeConfig) -> list[tuple[list[RelColumn], bool]]:
    """REL columns in label tables: the race/ethnicity columns together (with the reporting group), then
    each other column alone; the order numbers the label tables."""
    race_columns = [c for c in config.columns if c.field in RACE_FIELDS]
    groups: list[tuple[list[RelColumn], bool]] = [
        ([c], False) for c in config.columns if c.field not in RACE_FIELDS
    ]
    if race_columns:
        groups.insert(0, (race_columns, True))
    return groups


def _load_mapping(
    con: duckdb.DuckDBPyConnection, name: str, columns: dict[str, str], rows: list[list]
) -> None:
    arrow_types = {"VARCHAR": pa.string(), "BOOLEAN": pa.bool_(), "BIGINT": pa.int64()}
    arrays = {
        col: pa.array([row[i] for row in rows], type=arrow_types[typ])
        for i, (col, typ) in enumerate(columns.items())
    }
    con.register(f"{name}_arrow", pa.table(arrays))
    con.execute(
        f"CREATE OR REPLACE TABLE {quote_ident(name)} AS SELECT * FROM {quote_ident(name + '_arrow')}"
    )
    con.unregister(f"{name}_arrow")


def replace_with_view(con: duckdb.DuckDBPyConnection, name: str, select: str) -> None:
    """``name`` becomes a view of ``select``, whether it was a table, a view or nothing."""
    drop_relation(con, "main", name)
    con.execute(f"CREATE VIEW {quote_ident(name)} AS {select}")


def drop_label_tables(con: duckdb.DuckDBPyConnection, target_table: str) -> None:
    """Label tables of an earlier run: the number of groups may have changed, or REL may be gone."""
    names = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' AND NOT temporary "
        "AND regexp_full_match(table_name, ?)",
        [re.escape(target_table + LABELS_INFIX) + "[0-9]+"],
    ).fetchall()
    for (name,) in names:
        con.execute(f"DROP TABLE {quote_ident(name)}")


def _mapping_row(
    combo: tuple,
    columns: list[RelColumn],
    with_group: bool,
    config: StandardizeConfig,
    summaries: dict[str, ColumnSummary],
    group_counts: Counter[str],
) -> list[object]:
    """One distinct combination of raw labels and its standard values (and reporting group), counted."""
    raws, count = combo[:-1], combo[-1]
    results = [
        _classify_cached(None if raw is None else str(raw), c.field, _code_map(config, c))
        for raw, c in zip(raws, columns, strict=True)
    ]
    row: list[object] = [None if raw is None else str(raw) for raw in raws]
    for c, result in zip(columns, results, strict=True):
        row.extend(_output_values(c, result))
        counts = summaries[c.column].status_counts
        counts[result.status.value] = counts.get(result.status.value, 0) + count
    if with_group:
        group = reporting_group(
            [(c.field, r) for c, r in zip(columns, results, strict=True)], config.reporting_rule
        )
        row.append(group)
        group_counts[group] += count
    return row


def standardize_table(
    con: duckdb.DuckDBPyConnection, source_table: str, target_table: str, config: StandardizeConfig
) -> StandardizeResult:
    """Make `target_table` a view: every source column (raw kept for audit) + standardized columns
    per REL column (see `output_columns`) + `rel_reporting_group` per the reporting rule."""
    added, types = _check_columns(con, source_table, config)
    summaries = {c.column: ColumnSummary(c.column, c.field) for c in config.columns}
    group_counts: Counter[str] = Counter()
    joins: list[str] = []
    selects: list[str] = []
    row_count: int | None = None
    drop_label_tables(con, target_table)
    stale = (
        f"the standardized rows of '{source_table}' have a race, ethnicity or language label that was not "
        f"there when standardize ran; {STALE_LABELS} '{target_table}'"
    )
    for number, (columns, with_group) in enumerate(_label_groups(config)):
        keys = ", ".join(_as_text(quote_ident(c.column), types[c.column]) for c in columns)
        combos = con.execute(
            f"SELECT {keys}, count(*) FROM {quote_ident(source_table)} GROUP BY ALL"
        ).fetchall()
        row_count = sum(combo[-1] for combo in combos)
        map_columns = {f"_raw_{i}": "VARCHAR" for i in range(len(columns))}
        for c in columns:
            map_columns.update(output_columns(c))
        if with_group:
            map_columns[REPORTING_GROUP_COLUMN] = "VARCHAR"
        rows = [
            [*_mapping_row(combo, columns, with_group, config, summaries, group_counts), combo[-1]]
            for combo in combos
        ]
        labels = label_table(target_table, number)
        _load_mapping(con, labels, {**map_columns, ROWS_COLUMN: "BIGINT"}, rows)
        alias = f"m{number}"
        condition = " AND ".join(
            f"{_as_text('s.' + quote_ident(c.column), types[c.column])} IS NOT DISTINCT FROM {alias}._raw_{i}"
            for i, c in enumerate(columns)
        )
        joins.append(f"LEFT JOIN {quote_ident(labels)} {alias} ON {condition}")
        selects.extend(
            f"CASE WHEN {alias}.{ROWS_COLUMN} IS NOT NULL THEN {alias}.{quote_ident(name)} "
            f"ELSE error({quote_literal(stale)}) END AS {quote_ident(name)}"
            for name in map_columns
            if not name.startswith("_raw_")
        )
    replace_with_view(
        con,
        target_table,
        f"SELECT {', '.join(['s.*', *selects])} FROM {quote_ident(source_table)} s {' '.join(joins)}",
    )
    if row_count is None:  # no REL columns: the view is the source as it is
        row_count = con.execute(f"SELECT count(*) FROM {quote_ident(source_table)}").fetchone()[0]
    return StandardizeResult(
        target_table=target_table,
        row_count=row_count,
        reference_version=race_reference().version,
        columns=list(summaries.values()),
        added_columns=added,
        reporting_groups=dict(group_counts),
        not_collected=config.not_collected(),
    )


def _markdown(rows: list[dict[str, object]]) -> str:
    lines = ["| raw value | status | candidates | rows |", "|---|---|---|---|"]
    for row in rows:
        raw = "(blank)" if row["raw"] is None else str(row["raw"]).replace("|", "\\|")
        lines.append(f"| {raw} | {row['status']} | {row['candidates'] or ''} | {row['count']} |")
    return "\n".join(lines)


def _check_metadata(
    c: RelColumn,
    config: StandardizeConfig,
    labels: list[ProblemLabel],
    counts: tuple[int, int, int],
    *,
    pii: bool,
) -> dict[str, object]:
    """Figures for engineers; the labels themselves only for a column not marked PII."""
    total, bad_rows, distinct = counts
    metadata: dict[str, object] = {
        "column": c.column,
        "field": c.field.value,
        "rows": total,
        "problem_rows": bad_rows,
        "problem_share": round(bad_rows / total, 6) if total else 0.0,
        "max_unmapped_share": config.max_unmapped_share,
        "distinct_problem_values": distinct,
        "reference_version": race_reference().version,
    }
    if not pii:
        listed = [
            {"raw": v.raw, "status": v.status, "candidates": ";".join(v.candidates) or None, "count": v.count}
            for v in labels
        ]
        metadata.update(values=listed, values_table=_markdown(listed))
        if bad_rows:
            metadata["code_map_yaml"] = code_map_snippet(labels[:TOP_LABELS], c.field)
    return metadata


def rel_checks(
    con: duckdb.DuckDBPyConnection,
    standardized_table: str,
    config: StandardizeConfig,
    pii_columns: Collection[str] = (),
) -> list[CheckOutcome]:
    """One outcome per REL column naming its most frequent unmapped, ambiguous or multi-language
    labels with row counts and the `code_map:` YAML that would map them: WARN when there are any,
    ERROR when their share exceeds max_unmapped_share. Labels of `pii_columns` are never shown."""
    outcomes = []
    problem = ", ".join(f"'{s.value}'" for s in PROBLEM_STATUSES)
    groups = _label_groups(config)
    total = 0
    if groups:  # every label table covers every row
        total = con.execute(
            f"SELECT coalesce(sum({ROWS_COLUMN}), 0) FROM {quote_ident(label_table(standardized_table, 0))}"
        ).fetchone()[0]
    for number, (columns, _) in enumerate(groups):
        labels = label_table(standardized_table, number)
        for position, c in enumerate(columns):
            outcomes.append(_rel_check(con, labels, position, c, config, (problem, total), pii_columns))
    order = {c.column: k for k, c in enumerate(config.columns)}
    return sorted(outcomes, key=lambda outcome: order[outcome.metadata["column"]])


def _rel_check(
    con: duckdb.DuckDBPyConnection,
    labels_table: str,
    position: int,
    c: RelColumn,
    config: StandardizeConfig,
    statuses_and_total: tuple[str, int],
    pii_columns: Collection[str],
) -> CheckOutcome:
    """One REL column's outcome, counted from its label table (one row per label, with its rows)."""
    problem, total = statuses_and_total
    table, raw = quote_ident(labels_table), f"_raw_{position}"
    status_col = quote_ident(f"{c.column}_status")
    cand_col = f"{c.column}_candidates"
    candidates = quote_ident(cand_col) if cand_col in output_columns(c) else "NULL"
    # A 1977-style "Asian/Pacific Islander" answer is published in a group of its own, "Asian or Pacific
    # Islander (not separable)": counted here, it blocked a DMHAS extract and asked for a map to Asian
    # or to NHPI, either of which claims what the source did not collect.
    unread = f"{status_col} IN ({problem}) AND coalesce({candidates}, '') <> 'ASIAN;NHPI'"
    found = con.execute(
        f"SELECT {raw}, {status_col}, {candidates}, sum({ROWS_COLUMN})::BIGINT AS n FROM {table} "
        f"WHERE {unread} GROUP BY ALL ORDER BY n DESC, 1 LIMIT {MAX_LISTED_VALUES + 1}"
    ).fetchall()
    bad_rows, distinct = con.execute(
        f"SELECT coalesce(sum({ROWS_COLUMN}), 0)::BIGINT, count(DISTINCT {raw}) FROM {table} WHERE {unread}"
    ).fetchone()
    share = bad_rows / total if total else 0.0
    labels = [
        ProblemLabel(None if raw is None else str(raw), status, tuple(cands.split(";")) if cands else (), n)
        for raw, status, cands, n in found
    ][:MAX_LISTED_VALUES]
    too_many = share > config.max_unmapped_share
    pii = c.column in set(pii_columns)
    if not bad_rows:
        summary = (
            f"All {total:,} rows have a recognized {c.field.value.replace('_', ' ')} label in '{c.column}'."
        )
    else:
        summary = problem_summary(c, labels, bad_rows, total, distinct, pii=pii) + (
            f"\nThat is above the allowed share ({config.max_unmapped_share:.0%}), so publishing is stopped "
            "until they are mapped (or, for totals, left out)."
            if too_many
            else "\nThey stay in the data as raw values with the reporting group 'Not standardized' until they "
            "are mapped."
        )
    metadata = _check_metadata(c, config, labels, (total, bad_rows, distinct), pii=pii)
    contradiction = _origin_in_race_column(con, labels_table, position, c, config, total, pii=pii)
    if contradiction:
        return CheckOutcome(
            name=check_name(c),
            passed=False,
            severity=Severity.ERROR,
            summary=contradiction,
            metadata=metadata,
        )
    return CheckOutcome(
        name=check_name(c),
        passed=not bad_rows,
        severity=Severity.ERROR if too_many else Severity.WARN,
        summary=summary,
        metadata=metadata,
    )


def _origin_in_race_column(
    con: duckdb.DuckDBPyConnection,
    labels_table: str,
    position: int,
    c: RelColumn,
    config: StandardizeConfig,
    total: int,
    *,
    pii: bool,
) -> str:
    """Why a column declared ``field: race`` cannot be published as race only, or "" when it can.

    With no ethnicity column, the dataset's description says the source did not collect Hispanic origin.
    OCME's Race column holds 'Hispanic, White': the question was asked, and the portal said it was not
    while publishing a Hispanic group of 585. Deciding which question the agency asked is the engineer's
    call, so the run stops and names the labels."""
    if c.field != RelField.RACE or "hispanic_origin" not in config.not_collected():
        return ""
    found = con.execute(
        f"SELECT _raw_{position}, sum({ROWS_COLUMN})::BIGINT AS n FROM {quote_ident(labels_table)} "
        f"WHERE {quote_ident(c.column + '_hispanic')} IS NOT NULL GROUP BY 1 ORDER BY n DESC, 1"
    ).fetchall()
    if not found:
        return ""
    rows = sum(n for _, n in found)
    shown = "" if pii else " (" + ", ".join(f'"{raw}" ({n:,} rows)' for raw, n in found[:TOP_LABELS]) + ")"
    return (
        f"'{c.column}' is declared as field: race, but {rows:,} of {total:,} rows have a label that also "
        f"answers Hispanic origin{shown}, so the source did ask it; declare the column as field: "
        "race_ethnicity in the dataset's standardize block, so the published groups and description say "
        "what was collected."
    )
