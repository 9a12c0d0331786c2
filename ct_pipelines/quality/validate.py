"""The validate stage: raw VARCHAR table in, typed valid table and quarantine rows out, checks reported.

Plain Python over a DuckDB connection (no Dagster), so it is tested directly and the Dagster layer
only maps :class:`ValidationResult.outcomes` to asset check results.

Quarantine policy: a row breaking any row-level rule whose severity is ERROR is set aside (one
quarantine row per row, rule and column); rules with severity WARN are counted and sampled in the
check metadata but the row is passed on. This keeps WARN meaning "look at this" everywhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
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
from ct_pipelines.validate.gx_suite import MASK, run_gx_suite
from ct_pipelines.validate.rules import (
    SAMPLE_SIZE,
    TEXT_SUFFIX,
    DatasetRuleError,
    Rule,
    build_rules,
    pandera_schema,
    quote,
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

HISTORY_TABLE = "quality.history"
ROW_COLUMNS = ("_row", "_line")



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
    return f"{quote(schema)}.{quote(table)}" if schema else quote(table)


def _ensure_schema(con: duckdb.DuckDBPyConnection, schema: str | None) -> None:
    if schema:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(schema)}")


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


def _create_failures(
    con: duckdb.DuckDBPyConnection, typed: ibis.Table, rules: list[Rule], pii: set[str], failures: str
) -> None:
    """One row per (row, rule, column) failure, values of pii columns masked before they are stored."""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {failures} (_row BIGINT, _line BIGINT, rule_group VARCHAR, "
        "rule VARCHAR, column_name VARCHAR, value VARCHAR, reason VARCHAR, severity VARCHAR)"
    )
    if not rules:
        return
    parts = [
        typed.filter(rule.fails(typed)).select(
            _row=typed["_row"].cast("int64"),
            _line=typed["_line"].cast("int64"),
            rule_group=ibis.literal(rule.group),
            rule=ibis.literal(rule.rule),
            column_name=ibis.literal(rule.column),
            value=ibis.literal(MASK, "string")
            if rule.column in pii
            else typed[rule.column + TEXT_SUFFIX].cast("string"),
            reason=ibis.literal(rule.phrase),
            severity=ibis.literal(rule.severity.value),
        )
        for rule in rules
    ]
    union = parts[0] if len(parts) == 1 else ibis.union(*parts, distinct=False)
    con.execute(f"INSERT INTO {failures} {ibis.to_sql(union, dialect='duckdb')}")


def _pandera_failed_checks(dataset: Dataset, rules: list[Rule], typed: ibis.Table) -> set[str]:
    """Validate the typed view with the declared pandera schema (lazily, in DuckDB) and name what failed."""
    try:
        pandera_schema(dataset, rules).validate(typed, lazy=True)
    except pandera.errors.SchemaErrors as errors:
        broken = [
            e for e in errors.schema_errors if e.reason_code == pandera.errors.SchemaErrorReason.CHECK_ERROR
        ]
        if broken:  # a check that could not run is a bug in the rule, not a data failure
            raise RuntimeError(f"pandera could not run check {broken[0].check}: {broken[0]}") from None
        return {getattr(e.check, "name", None) or str(e.check) for e in errors.schema_errors}
    return set()


def _row_rule_outcomes(
    con: duckdb.DuckDBPyConnection, rules: list[Rule], failures: str, rows_ingested: int
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
        if not in_group:
            summary = f"No {label} rules are declared for this dataset."
        elif not failing:
            summary = f"All {rows_ingested:,} rows pass the {label} rules."
        else:
            parts = [_plural(c["failing_rows"], r.phrase) for r, c in failing]
            severities = {r.severity for r, _ in failing}
            one = sum(c["failing_rows"] for _, c in failing) == 1
            if severities == {Severity.ERROR}:
                ending = "it was set aside" if one else "they were set aside"
            elif severities == {Severity.WARN}:
                ending = ("it was" if one else "they were") + " kept because these rules only warn"
            else:
                ending = "rows breaking error-level rules were set aside, the others kept"
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
                severity=_group_severity([r for r, _ in failing] or in_group),
                summary=summary,
                metadata=metadata,
            )
        )
    return outcomes


def _null_shares(con: duckdb.DuckDBPyConnection, raw_table: str, columns: list[str]) -> dict[str, float]:
    if not columns:
        return {}
    selects = ", ".join(
        f"avg(CASE WHEN NULLIF(trim({quote(c)}), '') IS NULL THEN 1 ELSE 0 END)" for c in columns
    )
    values = con.execute(f"SELECT {selects} FROM {raw_table}").fetchone() or ()
    return {c: round(float(v or 0.0), 6) for c, v in zip(columns, values, strict=True)}


def _history_outcomes(
    con: duckdb.DuckDBPyConnection,
    dataset: Dataset,
    run_id: str,
    now: datetime,
    rows: int,
    null_shares: dict[str, float],
) -> list[CheckOutcome]:
    """Compare with the previous run recorded in quality.history, then record this run."""
    con.execute("CREATE SCHEMA IF NOT EXISTS quality")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {HISTORY_TABLE} "
        "(dataset_id VARCHAR, run_id VARCHAR, recorded_at TIMESTAMP, row_count BIGINT, null_shares JSON)"
    )
    previous = con.execute(
        f"SELECT run_id, row_count, null_shares FROM {HISTORY_TABLE} WHERE dataset_id = ? AND run_id <> ? "
        "ORDER BY recorded_at DESC LIMIT 1",
        [dataset.id, run_id],
    ).fetchone()
    con.execute(f"DELETE FROM {HISTORY_TABLE} WHERE dataset_id = ? AND run_id = ?", [dataset.id, run_id])
    con.execute(
        f"INSERT INTO {HISTORY_TABLE} VALUES (?, ?, ?, ?, ?)",
        [dataset.id, run_id, now, rows, json.dumps(null_shares)],
    )
    config = dataset.validate
    if previous is None:
        first = f"This is the first recorded run ({rows:,} rows); there is nothing to compare with yet."
        return [
            CheckOutcome(
                "row_count_change", True, _severity(dataset, "row_count_change"), first, {"rows": rows}
            ),
            CheckOutcome("null_share_change", True, _severity(dataset, "null_share_change"), first, {}),
        ]
    previous_run, previous_rows, previous_shares_json = previous
    floor = previous_rows * (1 - config.max_row_count_drop)
    drop = (previous_rows - rows) / previous_rows if previous_rows else 0.0
    row_ok = rows >= floor
    row_summary = f"{rows:,} rows this run against {previous_rows:,} last run" + (
        "." if row_ok else f": a drop of {drop:.0%}, more than the {config.max_row_count_drop:.0%} allowed."
    )
    previous_shares = json.loads(previous_shares_json) if previous_shares_json else {}
    jumps = [
        {
            "column": c,
            "previous_share": previous_shares[c],
            "share": share,
            "increase": round(share - previous_shares[c], 6),
        }
        for c, share in null_shares.items()
        if c in previous_shares and share - previous_shares[c] > config.max_null_share_increase
    ]
    if jumps:
        null_summary = (
            "; ".join(
                f"{j['column']} is now empty in {j['share']:.0%} of rows (was {j['previous_share']:.0%})"
                for j in jumps
            )
            + "."
        )
    else:
        null_summary = "No column has many more empty values than last run."
    return [
        CheckOutcome(
            "row_count_change",
            row_ok,
            _severity(dataset, "row_count_change"),
            row_summary,
            {
                "rows": rows,
                "previous_rows": previous_rows,
                "previous_run_id": previous_run,
                "max_drop": config.max_row_count_drop,
            },
        ),
        CheckOutcome(
            "null_share_change",
            not jumps,
            _severity(dataset, "null_share_change"),
            null_summary,
            {
                "previous_run_id": previous_run,
                "max_increase": config.max_null_share_increase,
                "columns": jumps,
            },
        ),
    ]


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
        f"FROM {failures} WHERE severity = 'ERROR' ORDER BY _row, rule_group, column_name",
        [run_id, dataset_id, now],
    )


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

    Writes ``valid_table`` (replaced; typed per the YAML, ``_row``/``_line`` kept), appends error-level
    failures to ``quarantine_table``, records the run in ``quality.history`` and writes GX Data Docs to
    ``reports_dir/gx_docs/<dataset id>/``. Nothing is loaded whole into pandas.
    """
    now = now or datetime.now()
    say = progress or (lambda message: None)
    rules = build_rules(dataset, now)
    raw_schema, raw_name = split_table_name(raw_table)
    raw_ref = _qualified(raw_schema, raw_name)
    raw_columns = [row[0] for row in con.execute(f"DESCRIBE {raw_ref}").fetchall()]
    missing = [c.field_name for c in dataset.columns if c.field_name not in raw_columns]
    if missing or not set(ROW_COLUMNS) <= set(raw_columns):
        raise DatasetRuleError(
            f"table {raw_table} lacks column(s) {', '.join(missing or ROW_COLUMNS)} declared for dataset "
            f"'{dataset.id}'; fix the column names in the dataset file or re-run ingest"
        )

    say("typing columns")
    con.execute("CREATE SCHEMA IF NOT EXISTS quality")
    # Parsing dates and numbers once into a temporary working table that every rule, pandera and the
    # valid table then read is far cheaper than re-parsing per query (DuckDB spills it if memory runs short).
    typed_name = f"_quality_typed_{dataset.id}"
    typed_ref = f"temp.main.{quote(typed_name)}"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {quote(typed_name)} AS {typed_select_sql(dataset, raw_columns, raw_ref)}"
    )
    typed = ibis.duckdb.from_connection(con).table(typed_name, database=("temp", "main"))

    say("checking row-level rules")
    failures = quote(f"_quality_failures_{dataset.id}")
    pii = set(dataset.pii_fields)
    _create_failures(con, typed, rules, pii, failures)
    failed_in_sql = {
        f"{g}:{c}:{r}"
        for g, c, r in con.execute(
            f"SELECT DISTINCT rule_group, column_name, rule FROM {failures}"
        ).fetchall()
    }
    failed_in_pandera = _pandera_failed_checks(dataset, rules, typed)
    if failed_in_sql != failed_in_pandera:  # both come from the same Rule; a mismatch is a bug, not bad data
        raise RuntimeError(
            f"pandera and SQL disagree on failing rules: {sorted(failed_in_pandera ^ failed_in_sql)}"
        )

    say("writing valid and quarantine tables")
    _write_quarantine(con, quarantine_table, failures, dataset.id, run_id, now)
    valid_schema, valid_name = split_table_name(valid_table)
    _ensure_schema(con, valid_schema)
    valid_ref = _qualified(valid_schema, valid_name)
    text_columns = [quote(c.field_name + TEXT_SUFFIX) for c in dataset.columns if c.field_name]
    exclude = f" EXCLUDE ({', '.join(text_columns)})" if text_columns else ""
    con.execute(
        f"CREATE OR REPLACE TABLE {valid_ref} AS SELECT *{exclude} FROM {typed_ref} AS v "
        f"WHERE NOT EXISTS (SELECT 1 FROM {failures} AS f WHERE f._row = v._row AND f.severity = 'ERROR') "
        "ORDER BY _row"
    )
    rows_ingested = con.execute(f"SELECT count(*) FROM {raw_ref}").fetchone()[0]
    rows_valid = con.execute(f"SELECT count(*) FROM {valid_ref}").fetchone()[0]
    rows_quarantined = con.execute(
        f"SELECT count(DISTINCT _row) FROM {failures} WHERE severity = 'ERROR'"
    ).fetchone()[0]
    outcomes = _row_rule_outcomes(con, rules, failures, rows_ingested)
    con.execute(f"DROP TABLE {failures}")
    con.execute(f"DROP TABLE {typed_ref}")

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
    share = rows_quarantined / rows_ingested if rows_ingested else 0.0
    limit = dataset.validate.max_quarantine_share
    outcomes.append(
        CheckOutcome(
            "quarantine_share",
            share <= limit,
            _severity(dataset, "quarantine_share"),
            f"{rows_quarantined:,} of {rows_ingested:,} rows ({share:.1%}) were set aside"
            + ("." if share <= limit else f", more than the {limit:.0%} allowed."),
            {
                "rows_quarantined": rows_quarantined,
                "rows_ingested": rows_ingested,
                "share": round(share, 6),
                "max_share": limit,
            },
        )
    )
    balanced = rows_ingested == rows_valid + rows_quarantined
    outcomes.append(
        CheckOutcome(
            "conservation",
            balanced,
            _severity(dataset, "conservation"),
            f"{rows_ingested:,} rows in = {rows_valid:,} passed on + {rows_quarantined:,} set aside."
            if balanced
            else f"{rows_ingested:,} rows came in but {rows_valid:,} were passed on and {rows_quarantined:,} set aside; "
            "rows were lost or duplicated, please report this.",
            {"rows_ingested": rows_ingested, "rows_valid": rows_valid, "rows_quarantined": rows_quarantined},
        )
    )
    return ValidationResult(
        dataset_id=dataset.id,
        run_id=run_id,
        rows_ingested=rows_ingested,
        rows_valid=rows_valid,
        rows_quarantined=rows_quarantined,
        outcomes=outcomes,
        data_docs_index=docs_index,
    )
