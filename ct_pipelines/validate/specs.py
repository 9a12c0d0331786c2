"""The quality stage's check names, descriptions and severities, from the YAML alone.

Kept apart from validation so that loading Dagster definitions imports neither pandera nor GX.
"""

from __future__ import annotations

import json
from datetime import datetime

from ct_pipelines.catalog.blocks.validate import DATASET_CHECKS, ROW_RULE_GROUPS
from ct_pipelines.catalog.models import Dataset
from ct_pipelines.core.outcomes import CheckSpec, Severity
from ct_pipelines.validate.gx_suite import gx_check_names
from ct_pipelines.validate.rules import Rule, build_rules

GROUP_LABELS = {
    "required": "required-value",
    "unique": "uniqueness",
    "types": "data type",
    "ranges": "range",
    "allowed_values": "allowed-value",
    "patterns": "pattern",
    "not_in_future": "no-future-date",
    "custom_checks": "named custom",
}
DATASET_CHECK_DESCRIPTIONS = {
    "row_count_change": "The number of rows did not fall by more than the allowed share since the last run.",
    "null_share_change": "No column's share of empty values grew by more than the allowed amount since the last run.",
    "quarantine_share": "No more than the allowed share of rows was set aside.",
    "conservation": "Every ingested row was either passed on or set aside: none lost, none duplicated.",
}
DATASET_CHECK_DEFAULT_SEVERITY = {
    "row_count_change": Severity.ERROR,
    "null_share_change": Severity.WARN,
    "quarantine_share": Severity.ERROR,
    "conservation": Severity.ERROR,
}


def outcome_severity(severity: Severity) -> Severity:
    """Outcomes carry ERROR or WARN only: a dataset-level BLOCK is an ERROR (both stop publishing)."""
    return Severity.ERROR if severity == Severity.BLOCK else severity


def _severity(dataset: Dataset, check: str) -> Severity:
    return outcome_severity(dataset.validate.severities.get(check, DATASET_CHECK_DEFAULT_SEVERITY[check]))


def _group_severity(rules: list[Rule]) -> Severity:
    """ERROR when any rule sets rows aside or blocks (a passing check is reported at this severity)."""
    return (
        Severity.ERROR
        if any(r.severity in (Severity.ERROR, Severity.BLOCK) for r in rules)
        else Severity.WARN
    )


def quality_check_specs(dataset: Dataset) -> list[CheckSpec]:
    """Every check name the stage emits for this dataset, from its YAML alone (Dagster needs them up front).

    Raises :class:`DatasetRuleError` for rules that cannot work (unknown custom check, min on text...),
    so a bad YAML is caught when definitions load rather than mid-run.
    """
    rules = build_rules(dataset, datetime.now())
    specs: list[CheckSpec] = []
    for group in ROW_RULE_GROUPS:
        in_group = [r for r in rules if r.group == group]
        columns = sorted({r.column for r in in_group})
        scope = f" Columns: {', '.join(columns)}." if columns else " No column declares this rule."
        specs.append(
            CheckSpec(
                name=group,
                description=f"Rows pass the {GROUP_LABELS[group]} rules from the dataset file.{scope}",
                blocking=_group_severity(in_group) == Severity.ERROR if in_group else False,
            )
        )
    for name, expectation in gx_check_names(dataset):
        specs.append(
            CheckSpec(
                name=name,
                description=f"Great Expectations: {expectation.expectation} {json.dumps(expectation.kwargs, default=str)}",
                blocking=outcome_severity(expectation.severity) == Severity.ERROR,
            )
        )
    for check in DATASET_CHECKS:
        specs.append(
            CheckSpec(
                name=check,
                description=DATASET_CHECK_DESCRIPTIONS[check],
                blocking=_severity(dataset, check) == Severity.ERROR,
            )
        )
    return specs
