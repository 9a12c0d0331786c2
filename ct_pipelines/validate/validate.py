"""The validate stage: raw VARCHAR table in, typed valid table and quarantine rows out, checks reported.

Plain Python over a DuckDB connection (no Dagster), so it is tested directly and the Dagster layer
only maps :class:`ValidationResult.outcomes` to asset check results.

Quarantine policy: a row breaking any row-level rule whose severity is ERROR is set aside (one
quarantine row per row, rule and column); rules with severity WARN are counted and sampled in the
check metadata but the row is passed on. This keeps WARN meaning "look at this" everywhere.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import ibis
import pandera.errors

from ct_pipelines.catalog.blocks.validate import ROW_RULE_GROUPS
from ct_pipelines.catalog.models import Dataset
from ct_pipelines.core.outcomes import CheckOutcome, Severity
from ct_pipelines.core.sql import quote_ident
from ct_pipelines.validate.gx_suite import MASK, run_gx_suite
from ct_pipelines.validate.history import HISTORY_TABLE, _history_outcomes, _null_shares  # noqa: F401
from ct_pipelines.validate.parsing import column_quirks, suppressed_field
from ct_pipelines.validate.rules import (
    SAMPLE_SIZE,
    TEXT_SUFFIX,
    DatasetRuleError,
    Rule,
    build_rules,
    pandera_schema,
    quirk_counts_sql,
    typed_select_sql,
)
from ct_pipelines.validate.specs import (  # noqa: F401 - quality_check_specs re-exported
    DATASET_CHECK_DEFAULT_SEVERITY,
    DATASET_CHECK_DESCRIPTIONS,
    GROUP_LABELS,
    _group_severity,
    _severity,
    quality_check_specs,
)

ROW_COLUMNS = ("_row", "_line")
SET_ASIDE = "('ERROR', 'BLOCK')"  # rows failing these rules go to quarantine
RULES_PER_SCAN = 256  # rules whose failures one scan lists; bounds memory on very wide extracts
WIDE = 200  # from this many columns, DuckDB's common-subexpression pass costs more than it saves


@dataclass
class ValidationResult:
    """What the stage produced; ``outcomes`` holds every check named by :func:`quality_check_specs`."""

    dataset_id: str
    run_id: str
    rows_ingested: int
    rows_valid: int
    rows_quarantined: int
    outcomes: list[CheckOutcome] = field(default_factory=list)
    data_docs_index: Path | None = None
    null_tokens: dict[str, int] = field(default_factory=dict)  # per column: cells that were null tokens
    suppressed: dict[str, int] = field(default_factory=dict)  # per column: cells suppressed at the source

    @property
    def blocked(self) -> bool:
        """True when a failed ERROR check must stop standardize/publish."""
        return any(outcome.blocks for outcome in self.outcomes)


def split_table_name(name: str) -> tuple[str | None, str]:
    """``raw."my ds"`` -> (``raw``, ``my ds``); accepts quoted or bare identifiers."""
    parts = re.findall(r'"((?:[^"]|"")*)"|([^."]+)', name)
    names = [quoted.replace('""', '"') if quoted else bare.strip() for quoted, bare in parts]
    if len(names) == 1:
        return None, names[0]
    if len(names) == 2:
        return names[0], names[1]
    raise ValueError(f"table name '{name}' should be 'table' or 'schema.table'")


def _qualified(schema: str | None, table: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(table)}" if schema else quote_ident(table)


def _ensure_schema(con: duckdb.DuckDBPyConnection, schema: str | None) -> None:
    if schema:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")


def _plural(count: int, phrase: str) -> str:
    """'1 row has ...' / '3 rows have ...': phrases are written for the plural."""
    if count == 1:
        verb, _, rest = phrase.partition(" ")
        verb = {"have": "has", "repeat": "repeats"}.get(verb, verb)
        return f"1 row {verb} {rest}"
    return f"{count:,} rows {phrase}"


def _markdown_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(str(row.get(c, "")).replace("|", "\\|") for c in columns) + " |")
    return "\n".join(lines)


def _flag_scan_sql(typed: ibis.Table, rules: list[Rule], pii: set[str]) -> str:
    """One SELECT over the typed table giving, per row, the (rule index, value) of every rule it breaks.

    Every rule's failure flag is computed once in the same pass (ibis compiles them into one projection);
    rows breaking nothing give an empty list and vanish at the unnest, so only failures are stored.
    """
    text_of: dict[str, str] = {}
    values: dict[str, ibis.Value] = {}
    for rule in rules:
        if rule.column not in pii and rule.column not in text_of:
            text_of[rule.column] = f"_v{len(text_of)}"
            values[text_of[rule.column]] = typed[rule.column + TEXT_SUFFIX].cast("string")
    flags = {f"_f{i}": rule.fails(typed) for i, rule in enumerate(rules)}
    scan = typed.select(
        _row=typed["_row"].cast("int64"), _line=typed["_line"].cast("int64"), **values, **flags
    )
    items = ", ".join(
        f"CASE WHEN _f{i} THEN {{'i': {i}, 'v': "
        + (f"'{MASK}'" if rule.column in pii else text_of[rule.column])
        + "} END"
        for i, rule in enumerate(rules)
    )
    return (
        f"SELECT _row, _line, unnest(list_filter([{items}], lambda x: x IS NOT NULL), recursive := true) "
        f"FROM ({ibis.to_sql(scan, dialect='duckdb')})"
    )


def _create_failures(
    con: duckdb.DuckDBPyConnection, typed: ibis.Table, rules: list[Rule], pii: set[str], failures: str
) -> None:
    """One row per (row, rule, column) failure from a single scan, pii values masked before they are stored."""
    columns = (
        "_row BIGINT, _line BIGINT, rule_group VARCHAR, rule VARCHAR, column_name VARCHAR, value VARCHAR, "
        "reason VARCHAR, severity VARCHAR"
    )
    if not rules:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {failures} ({columns})")
        return
    catalog = quote_ident(f"{failures.strip(chr(34))}_rules")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {catalog} AS SELECT unnest(range(?)) AS i, unnest(?::VARCHAR[]) AS "
        "rule_group, unnest(?::VARCHAR[]) AS rule, unnest(?::VARCHAR[]) AS column_name, "
        "unnest(?::VARCHAR[]) AS reason, unnest(?::VARCHAR[]) AS severity",
        [
            len(rules),
            [r.group for r in rules],
            [r.rule for r in rules],
            [r.column for r in rules],
            [r.phrase for r in rules],
            [r.severity.value for r in rules],
        ],
    )
    # Batches bound the per-row list of failures DuckDB builds; a narrow dataset has a single batch, one scan.
    con.execute(f"CREATE OR REPLACE TEMP TABLE {failures} ({columns})")
    for first in range(0, len(rules), RULES_PER_SCAN):
        batch = rules[first : first + RULES_PER_SCAN]
        con.execute(
            f"INSERT INTO {failures} SELECT f._row, f._line, r.rule_group, r.rule, r.column_name, "
            f"CAST(f.v AS VARCHAR), r.reason, r.severity FROM ({_flag_scan_sql(typed, batch, pii)}) AS f "
            f"JOIN {catalog} AS r ON r.i = f.i + {first}"
        )
    con.execute(f"DROP TABLE {catalog}")


def _pandera_failed_checks(
    con: duckdb.DuckDBPyConnection, dataset: Dataset, rules: list[Rule], typed: ibis.Table, failures: str
) -> set[str]:
    """pandera checks the declared dtypes on the typed table and the one pass's failing counts per rule.

    The rules are not evaluated again: the counts come from the failures table, one row per rule, and a
    single vectorised pandera check says which rules have failing rows.
    """
    import pandas as pd
    import pandera.pandas as pdp

    try:
        pandera_schema(dataset, []).validate(typed, lazy=True)
    except pandera.errors.SchemaErrors as errors:
        raise RuntimeError(f"the typed table does not have the declared types: {errors}") from None
    failing = dict(
        con.execute(
            f"SELECT rule_group || ':' || column_name || ':' || rule, count(*) FROM {failures} GROUP BY ALL"
        ).fetchall()
    )
    names = list(dict.fromkeys(rule.check_name for rule in rules))
    counts = pd.DataFrame(
        {"failing": [failing.get(n, 0) for n in names]}, index=pd.Index(names, name="check")
    )
    schema = pdp.DataFrameSchema({"failing": pdp.Column(int, pdp.Check.equal_to(0))})
    try:
        schema.validate(counts, lazy=True)
    except pandera.errors.SchemaErrors as errors:
        return set(errors.failure_cases["index"].dropna().astype(str))
    return set()


def _ending(failing: list[Rule], one: bool, dataset_id: str) -> tuple[str, Severity]:
    """How a failing row-rule group ends its summary, and the outcome's severity (BLOCK stops the dataset)."""
    severities = {r.severity for r in failing}
    they = "it was" if one else "they were"
    where = f"`ct-pipelines validate quarantine {dataset_id}` lists them"
    if Severity.BLOCK in severities:
        return f"{they} set aside and, as these rules block, nothing is published until they are fixed", (
            Severity.ERROR
        )
    if severities == {Severity.WARN}:
        return f"{they} kept because these rules only warn", Severity.WARN
    if Severity.WARN in severities:
        return f"rows breaking error-level rules were set aside ({where}), the others kept", Severity.WARN
    return f"{they} set aside and the other rows go on ({where})", Severity.WARN


def _row_rule_outcomes(
    con: duckdb.DuckDBPyConnection, rules: list[Rule], failures: str, rows_ingested: int, dataset_id: str
) -> list[CheckOutcome]:
    counts = {
        (group, column, rule): (n, rows)
        for group, column, rule, n, rows in con.execute(
            f"SELECT rule_group, column_name, rule, count(*), count(DISTINCT _row) FROM {failures} GROUP BY ALL"
        ).fetchall()
    }
    outcomes: list[CheckOutcome] = []
    for group in ROW_RULE_GROUPS:
        in_group = [r for r in rules if r.group == group]
        label = GROUP_LABELS[group]
        per_rule = [
            {
                "column": r.column,
                "rule": r.rule,
                "severity": r.severity.value,
                "failing_rows": counts.get((r.group, r.column, r.rule), (0, 0))[0],
            }
            for r in in_group
        ]
        failing = [(r, c) for r, c in zip(in_group, per_rule, strict=True) if c["failing_rows"]]
        samples = [
            dict(zip(("_line", "_row", "column", "rule", "value", "severity"), row, strict=True))
            for row in con.execute(
                f"SELECT _line, _row, column_name, rule, value, severity FROM {failures} "
                f"WHERE rule_group = ? ORDER BY _row, column_name LIMIT {SAMPLE_SIZE}",
                [group],
            ).fetchall()
        ]
        severity = _group_severity(in_group) if in_group else Severity.WARN
        if not in_group:
            summary = f"No {label} rules are declared for this dataset."
        elif not failing:
            summary = f"All {rows_ingested:,} rows pass the {label} rules."
        else:
            parts = [_plural(c["failing_rows"], r.phrase) for r, c in failing]
            one = sum(c["failing_rows"] for _, c in failing) == 1
            ending, severity = _ending([r for r, _ in failing], one, dataset_id)
            summary = "; ".join(parts) + f"; {ending}."
        metadata: dict[str, Any] = {
            "rows_checked": rows_ingested,
            "failing_rows": sum(c["failing_rows"] for c in per_rule),
            "rules": per_rule,
            "samples": samples,
        }
        if failing:
            metadata["details"] = _markdown_table(
                samples, ["_line", "_row", "column", "rule", "value", "severity"]
            )
        outcomes.append(
            CheckOutcome(
                name=group,
                passed=not failing,
                severity=severity,
                summary=summary,
                metadata=metadata,
            )
        )
    return outcomes


def _write_quarantine(
    con: duckdb.DuckDBPyConnection,
    quarantine_table: str,
    failures: str,
    dataset_id: str,
    run_id: str,
    now: datetime,
) -> None:
    """Append this run's error-level failures; rows from earlier runs stay as history (a re-run replaces its own)."""
    schema, table = split_table_name(quarantine_table)
    _ensure_schema(con, schema)
    target = _qualified(schema, table)
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {target} (run_id VARCHAR, dataset_id VARCHAR, quarantined_at TIMESTAMP, "
        "_row BIGINT, source_line BIGINT, rule_group VARCHAR, rule VARCHAR, column_name VARCHAR, value VARCHAR, "
        "reason VARCHAR)"
    )
    con.execute(f"DELETE FROM {target} WHERE run_id = ? AND dataset_id = ?", [run_id, dataset_id])
    con.execute(
        f"INSERT INTO {target} SELECT ?, ?, ?, _row, _line, rule_group, rule, column_name, value, reason "
        f"FROM {failures} WHERE severity IN {SET_ASIDE} ORDER BY _row, rule_group, column_name",
        [run_id, dataset_id, now],
    )


def _source_path(con: duckdb.DuckDBPyConnection, dataset: Dataset) -> str:
    """The file the raw table came from (ingest's ledger), else the dataset's source path."""
    try:
        row = con.execute(
            "SELECT path FROM meta.ingest_log WHERE dataset_id = ? ORDER BY ingested_at DESC LIMIT 1",
            [dataset.id],
        ).fetchone()
    except duckdb.Error:
        row = None
    return str(row[0]) if row else dataset.ingest.path


def _check_structure(
    con: duckdb.DuckDBPyConnection, dataset: Dataset, raw_table: str, raw_ref: str
) -> tuple[list[str], int]:
    """Structural failures stop the dataset whatever the rules say: missing columns, no rows, clashing flags."""
    raw_columns = [row[0] for row in con.execute(f"DESCRIBE {raw_ref}").fetchall()]
    missing = [c.field_name for c in dataset.columns if c.field_name not in raw_columns]
    if missing or not set(ROW_COLUMNS) <= set(raw_columns):
        raise DatasetRuleError(
            f"table {raw_table} lacks column(s) {', '.join(missing or ROW_COLUMNS)} declared for dataset "
            f"'{dataset.id}'; fix the column names in the dataset file or re-run ingest"
        )
    for column in dataset.columns:
        flag = suppressed_field(column)
        if column_quirks(dataset, column).suppressed_values and flag in raw_columns:
            raise DatasetRuleError(
                f"dataset '{dataset.id}', column '{column.field_name}': the flag column '{flag}' for values "
                "suppressed at the source clashes with a column of the extract; rename that column "
                "(field_name) or set suppressed_values: [] on this one"
            )
    rows = con.execute(f"SELECT count(*) FROM {raw_ref}").fetchone()[0]
    if rows == 0:
        data_columns = [c for c in raw_columns if c not in ROW_COLUMNS]
        raise DatasetRuleError(
            f"{_source_path(con, dataset)} has a header line ({len(data_columns)} columns) but no data rows, "
            f"so dataset '{dataset.id}' was not validated or published; check that the agency's export "
            "finished and ask for the file again"
        )
    return raw_columns, rows


def _quirk_counts(
    con: duckdb.DuckDBPyConnection, dataset: Dataset, raw_ref: str
) -> dict[str, dict[str, int]]:
    """Per column, how many cells were null tokens and how many were suppressed at the source."""
    counts: dict[str, dict[str, int]] = {"null_tokens": {}, "suppressed": {}}
    query = quirk_counts_sql(dataset, raw_ref)
    if query is None:
        return counts
    sql, keys = query
    values = con.execute(sql).fetchone() or ()
    for (kind, column), value in zip(keys, values, strict=True):
        counts[kind][column] = int(value or 0)
    return counts


def _share_and_conservation(
    dataset: Dataset, rows_ingested: int, rows_valid: int, rows_quarantined: int
) -> list[CheckOutcome]:
    """The good rows go on while the set-aside share stays within the limit; nothing may be lost."""
    share = rows_quarantined / rows_ingested if rows_ingested else 0.0
    limit = dataset.validate.max_quarantine_share
    where = f" Read them with `ct-pipelines validate quarantine {dataset.id}`." if rows_quarantined else ""
    verdict = (
        f"; the other {rows_valid:,} go on."
        if share <= limit
        else f", more than the {limit:.0%} allowed (validate.max_quarantine_share), so nothing is published."
    )
    balanced = rows_ingested == rows_valid + rows_quarantined
    return [
        CheckOutcome(
            "quarantine_share",
            share <= limit,
            _severity(dataset, "quarantine_share"),
            f"{rows_quarantined:,} of {rows_ingested:,} rows ({share:.1%}) were set aside"
            + (verdict if rows_quarantined else ".")
            + where,
            {
                "rows_quarantined": rows_quarantined,
                "rows_ingested": rows_ingested,
                "share": round(share, 6),
                "max_share": limit,
                "quarantine_command": f"ct-pipelines validate quarantine {dataset.id}",
            },
        ),
        CheckOutcome(
            "conservation",
            balanced,
            _severity(dataset, "conservation"),
            f"{rows_ingested:,} rows in = {rows_valid:,} passed on + {rows_quarantined:,} set aside."
            if balanced
            else f"{rows_ingested:,} rows came in but {rows_valid:,} were passed on and {rows_quarantined:,} "
            "set aside; rows were lost or duplicated, please report this.",
            {"rows_ingested": rows_ingested, "rows_valid": rows_valid, "rows_quarantined": rows_quarantined},
        ),
    ]


def _typed_and_failures(
    con: duckdb.DuckDBPyConnection, dataset: Dataset, rules: list[Rule], raw_columns: list[str], raw_ref: str
) -> tuple[str, str]:
    """Build the typed working table and the failures table; pandera must agree with the SQL on what failed."""
    # Parsing dates and numbers once into a temporary working table that every rule, pandera and the
    # valid table then read is far cheaper than re-parsing per query (DuckDB spills it if memory runs short).
    # A wide extract gets a view instead: DuckDB writes a table with a 256 KB block per column, so 6,000
    # typed and text columns would need 1.5 GB before the first row; each rule batch parses only its columns.
    typed_name = f"_quality_typed_{dataset.id}"
    typed_ref = f"temp.main.{quote_ident(typed_name)}"
    kind = "VIEW" if len(dataset.columns) >= WIDE else "TABLE"
    con.execute(
        f"CREATE OR REPLACE TEMP {kind} {quote_ident(typed_name)} AS {typed_select_sql(dataset, raw_columns, raw_ref)}"
    )
    typed = ibis.duckdb.from_connection(con).table(typed_name, database=("temp", "main"))
    failures = quote_ident(f"_quality_failures_{dataset.id}")
    _create_failures(con, typed, rules, set(dataset.pii_fields), failures)
    failed_in_sql = {
        f"{g}:{c}:{r}"
        for g, c, r in con.execute(
            f"SELECT DISTINCT rule_group, column_name, rule FROM {failures}"
        ).fetchall()
    }
    failed_in_pandera = _pandera_failed_checks(con, dataset, rules, typed, failures)
    if failed_in_sql != failed_in_pandera:  # both come from the same Rule; a mismatch is a bug, not bad data
        raise RuntimeError(
            f"pandera and SQL disagree on failing rules: {sorted(failed_in_pandera ^ failed_in_sql)}"
        )
    return typed_ref, failures


@contextlib.contextmanager
def _wide_plans(con: duckdb.DuckDBPyConnection, columns: int) -> Iterator[None]:
    """On wide tables, skip DuckDB's common-subexpression pass: it is quadratic (~8 s at 1,000 columns)."""
    if columns < WIDE:
        yield
        return
    before = con.execute("SELECT current_setting('disabled_optimizers')").fetchone()[0]
    disabled = ",".join(name for name in (before, "common_subexpressions") if name)
    con.execute(f"SET disabled_optimizers = '{disabled}'")
    try:
        yield
    finally:
        con.execute(f"SET disabled_optimizers = '{before}'")


def validate_dataset(
    con: duckdb.DuckDBPyConnection,
    dataset: Dataset,
    raw_table: str,
    valid_table: str,
    quarantine_table: str,
    *,
    run_id: str,
    reports_dir: Path,
    now: datetime | None = None,
    progress: Callable[[str], None] | None = None,
) -> ValidationResult:
    """Validate ``raw_table`` (all VARCHAR plus ``_row``/``_line``) against the dataset's rules.

    Writes ``valid_table`` (replaced; typed per the YAML, ``_row``/``_line`` kept, plus a
    ``<field>_suppressed`` flag per column with suppression markers), appends failures of ERROR and
    BLOCK rules to ``quarantine_table``, records the run in ``quality.history`` and writes GX Data Docs
    to ``reports_dir/gx_docs/<dataset id>/``. Nothing is loaded whole into pandas.
    """
    with _wide_plans(con, len(dataset.columns)):
        return _validate(
            con, dataset, raw_table, valid_table, quarantine_table, run_id, reports_dir, now, progress
        )


def _validate(
    con: duckdb.DuckDBPyConnection,
    dataset: Dataset,
    raw_table: str,
    valid_table: str,
    quarantine_table: str,
    run_id: str,
    reports_dir: Path,
    now: datetime | None,
    progress: Callable[[str], None] | None,
) -> ValidationResult:
    now = now or datetime.now()
    say = progress or (lambda message: None)
    rules = build_rules(dataset, now)
    raw_schema, raw_name = split_table_name(raw_table)
    raw_ref = _qualified(raw_schema, raw_name)
    raw_columns, rows_ingested = _check_structure(con, dataset, raw_table, raw_ref)

    say("typing columns and checking row-level rules")
    con.execute("CREATE SCHEMA IF NOT EXISTS quality")
    typed_ref, failures = _typed_and_failures(con, dataset, rules, raw_columns, raw_ref)

    say("writing valid and quarantine tables")
    _write_quarantine(con, quarantine_table, failures, dataset.id, run_id, now)
    valid_schema, valid_name = split_table_name(valid_table)
    _ensure_schema(con, valid_schema)
    valid_ref = _qualified(valid_schema, valid_name)
    text_columns = [quote_ident(c.field_name + TEXT_SUFFIX) for c in dataset.columns if c.field_name]
    exclude = f" EXCLUDE ({', '.join(text_columns)})" if text_columns else ""
    con.execute(
        f"CREATE OR REPLACE TABLE {valid_ref} AS SELECT *{exclude} FROM {typed_ref} AS v "
        f"WHERE NOT EXISTS (SELECT 1 FROM {failures} AS f WHERE f._row = v._row AND f.severity IN {SET_ASIDE}) "
        "ORDER BY _row"
    )
    rows_valid = con.execute(f"SELECT count(*) FROM {valid_ref}").fetchone()[0]
    rows_quarantined = con.execute(
        f"SELECT count(DISTINCT _row) FROM {failures} WHERE severity IN {SET_ASIDE}"
    ).fetchone()[0]
    outcomes = _row_rule_outcomes(con, rules, failures, rows_ingested, dataset.id)
    con.execute(f"DROP TABLE {failures}")
    con.execute(f"DROP {'VIEW' if len(dataset.columns) >= WIDE else 'TABLE'} {typed_ref}")

    say("running Great Expectations suite")
    gx_outcomes, docs_index = run_gx_suite(
        con, dataset, valid_schema or "main", valid_name, Path(reports_dir) / "gx_docs" / dataset.id, run_id
    )
    outcomes.extend(gx_outcomes)

    say("comparing with the previous run")
    data_columns = [c for c in raw_columns if c not in ROW_COLUMNS]
    outcomes.extend(
        _history_outcomes(con, dataset, run_id, now, rows_ingested, _null_shares(con, raw_ref, data_columns))
    )
    outcomes.extend(_share_and_conservation(dataset, rows_ingested, rows_valid, rows_quarantined))
    quirks = _quirk_counts(con, dataset, raw_ref)
    return ValidationResult(
        dataset_id=dataset.id,
        run_id=run_id,
        rows_ingested=rows_ingested,
        rows_valid=rows_valid,
        rows_quarantined=rows_quarantined,
        outcomes=outcomes,
        data_docs_index=docs_index,
        null_tokens=quirks["null_tokens"],
        suppressed=quirks["suppressed"],
    )
