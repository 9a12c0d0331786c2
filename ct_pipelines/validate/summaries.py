"""The check outcomes of the validate stage in plain words: one per row-rule group, and the row balance.

Everything here reads the failures table (one row per row, rule and column that failed) or counts the
stage already has; nothing reads the data again.
"""

from __future__ import annotations

from typing import Any

import duckdb

from ct_pipelines.catalog.blocks.validate import ROW_RULE_GROUPS
from ct_pipelines.catalog.models import Dataset
from ct_pipelines.core.outcomes import CheckOutcome, Severity
from ct_pipelines.validate.rules import SAMPLE_SIZE, Rule
from ct_pipelines.validate.specs import GROUP_LABELS, _group_severity, _severity

SAMPLE_COLUMNS = ("_line", "_row", "column", "rule", "value", "severity")


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


def _ending(failing: list[Rule], one: bool, dataset_id: str, every: bool = False) -> tuple[str, Severity]:
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
    rest = "no row is left to go on" if every else "the other rows go on"
    return f"{they} set aside and {rest} ({where})", Severity.WARN


def row_rule_outcomes(
    con: duckdb.DuckDBPyConnection, rules: list[Rule], failures: str, rows_ingested: int, dataset_id: str
) -> list[CheckOutcome]:
    """One outcome per row-rule group: failing rows per rule, samples, and a summary in plain words."""
    counts = {
        (group, column, rule): n
        for group, column, rule, n in con.execute(
            f"SELECT rule_group, column_name, rule, count(*) FROM {failures} GROUP BY ALL"
        ).fetchall()
    }
    outcomes: list[CheckOutcome] = []
    for group in ROW_RULE_GROUPS:
        in_group = [r for r in rules if r.group == group]
        per_rule = [
            {
                "column": r.column,
                "rule": r.rule,
                "severity": r.severity.value,
                "failing_rows": counts.get((r.group, r.column, r.rule), 0),
            }
            for r in in_group
        ]
        failing = [(r, c) for r, c in zip(in_group, per_rule, strict=True) if c["failing_rows"]]
        samples = [
            dict(zip(SAMPLE_COLUMNS, row, strict=True))
            for row in con.execute(
                f"SELECT _line, _row, column_name, rule, value, severity FROM {failures} "
                f"WHERE rule_group = ? ORDER BY _row, column_name LIMIT {SAMPLE_SIZE}",
                [group],
            ).fetchall()
        ]
        summary, severity = _group_summary(group, in_group, failing, rows_ingested, dataset_id)
        metadata: dict[str, Any] = {
            "rows_checked": rows_ingested,
            "failing_rows": sum(c["failing_rows"] for c in per_rule),
            "rules": per_rule,
            "samples": samples,
        }
        if failing:
            metadata["details"] = _markdown_table(samples, list(SAMPLE_COLUMNS))
        outcomes.append(CheckOutcome(group, not failing, severity, summary, metadata))
    return outcomes


def _group_summary(
    group: str, in_group: list[Rule], failing: list[tuple[Rule, dict]], rows_ingested: int, dataset_id: str
) -> tuple[str, Severity]:
    label = GROUP_LABELS[group]
    if not in_group:
        return f"No {label} rules are declared for this dataset.", Severity.WARN
    if not failing:
        return f"All {rows_ingested:,} rows pass the {label} rules.", _group_severity(in_group)
    parts = [_plural(c["failing_rows"], r.phrase) for r, c in failing]
    one = sum(c["failing_rows"] for _, c in failing) == 1
    every = any(c["failing_rows"] >= rows_ingested for _, c in failing)
    ending, severity = _ending([r for r, _ in failing], one, dataset_id, every)
    return "; ".join(parts) + f"; {ending}.", severity


def share_and_conservation(
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
