"""Every check of a dataset as one plain sentence, for staff who never read the YAML.

Row rules come from the same :func:`build_rules` that validation uses (so the words match what ran),
Great Expectations expectations are phrased from their name and arguments, and the checks of the later
stages use their declared descriptions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ct_pipelines.catalog.blocks.validate import Expectation
from ct_pipelines.catalog.models import Dataset
from ct_pipelines.core.outcomes import Severity

STAGE_LABELS = {
    "validate": "Validate",
    "standardize": "Standardize race, ethnicity and language",
    "protect": "Protect (privacy)",
    "publish": "Publish",
}
_GX_WORDS = {
    "expect_column_values_to_not_be_null": "{column} is never empty",
    "expect_column_values_to_be_unique": "no two rows share the same {column}",
    "expect_column_values_to_be_between": "{column} is between {min_value} and {max_value}",
    "expect_column_values_to_be_in_set": "{column} is one of {value_set}",
    "expect_column_values_to_match_regex": "{column} matches the pattern {regex}",
    "expect_table_row_count_to_be_between": "the table has between {min_value} and {max_value} rows",
    "expect_column_to_exist": "the column {column} is present",
    "expect_column_mean_to_be_between": "the average {column} is between {min_value} and {max_value}",
    "expect_compound_columns_to_be_unique": "no two rows share the same {column_list}",
}


@dataclass(frozen=True)
class RuleText:
    """One check: its name as Dagster shows it, the stage, the column if any, and the sentence."""

    stage: str
    check: str
    column: str | None
    words: str
    severity: str
    engine: str  # "pandera", "Great Expectations", "pipeline"
    rule: str | None = None  # a pandera row rule's own name within its check (its group)


def _consequence(severity: Severity) -> str:
    return "set aside and not published" if severity == Severity.ERROR else "kept, and counted as a warning"


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return "no limit" if value is None else str(value)


def expectation_words(expectation: Expectation) -> str:
    """``expect_column_values_to_be_between(column=age, min_value=0, max_value=120)`` -> words."""
    kwargs = {k: _show(v) for k, v in expectation.kwargs.items()}
    template = _GX_WORDS.get(expectation.expectation)
    if template:
        try:
            return template.format(**{"min_value": "no limit", "max_value": "no limit", **kwargs})
        except KeyError:
            pass
    what = expectation.expectation.removeprefix("expect_").replace("_", " ")
    args = ", ".join(f"{k} = {v}" for k, v in kwargs.items())
    return f"{what} ({args})" if args else what


def _dataset_check_words(dataset: Dataset, name: str) -> str:
    q = dataset.validate
    return {
        "row_count_change": f"The number of rows read from the file may not fall by more than {q.max_row_count_drop:.0%} since the last run.",
        "null_share_change": "No column's share of empty values may grow by more than "
        f"{q.max_null_share_increase:.0%} since the last run.",
        "quarantine_share": f"No more than {q.max_quarantine_share:.0%} of rows may be set aside.",
        "conservation": "Every row read from the file is either passed on or set aside: none lost, none doubled.",
    }.get(name, name)


def rules_in_words(dataset: Dataset, now: datetime | None = None) -> list[RuleText]:
    """All checks the dataset gets, in the order the stages run them."""
    from ct_pipelines.catalog.blocks.validate import DATASET_CHECKS
    from ct_pipelines.pipeline import STAGES
    from ct_pipelines.validate.gx_suite import gx_check_names
    from ct_pipelines.validate.rules import build_rules
    from ct_pipelines.validate.specs import _severity

    out: list[RuleText] = []
    for rule in build_rules(dataset, now or datetime.now()):
        what, _, advice = rule.phrase.partition("; ")  # "have x written so; declare ...": advice after
        words = f"Rows that {what} are {_consequence(rule.severity)}" + (f"; {advice}." if advice else ".")
        out.append(
            RuleText("validate", rule.group, rule.column, words, str(rule.severity), "pandera", rule.rule)
        )
    for name, expectation in gx_check_names(dataset):
        column = expectation.kwargs.get("column")
        words = f"Check that {expectation_words(expectation)}."
        if expectation.severity == Severity.ERROR:
            words += " If not, nothing is published."
        out.append(
            RuleText(
                "validate",
                name,
                column if isinstance(column, str) else None,
                words,
                str(expectation.severity),
                "Great Expectations",
            )
        )
    for name in DATASET_CHECKS:
        severity = _severity(dataset, name)
        words = _dataset_check_words(dataset, name)
        if severity == Severity.ERROR:
            words += " If not, nothing is published."
        out.append(RuleText("validate", name, None, words, str(severity), "pipeline"))
    for stage in STAGES[2:]:  # the checks of the stages after validate
        for spec in stage.check_specs(dataset):
            severity = "ERROR" if spec.blocking else "WARN"
            out.append(RuleText(stage.name, spec.name, None, spec.description, severity, "pipeline"))
    return out
