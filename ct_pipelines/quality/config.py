"""YAML options for data-quality gates (the ``validate:`` block of a dataset file)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ct_pipelines.core.outcomes import Severity

# Row-level rule groups (one check each), in the order they are reported.
ROW_RULE_GROUPS: tuple[str, ...] = (
    "required",
    "unique",
    "types",
    "ranges",
    "allowed_values",
    "patterns",
    "not_in_future",
    "custom_checks",
)
# Dataset-level checks computed after the row-level rules.
DATASET_CHECKS: tuple[str, ...] = (
    "row_count_change",
    "null_share_change",
    "quarantine_share",
    "conservation",
)
# Singular or short spellings people write in YAML, mapped to the check names above.
SEVERITY_KEY_ALIASES: dict[str, str] = {
    "type": "types",
    "range": "ranges",
    "allowed": "allowed_values",
    "allowed_value": "allowed_values",
    "pattern": "patterns",
    "custom": "custom_checks",
    "custom_check": "custom_checks",
    "future": "not_in_future",
    "row_count": "row_count_change",
    "null_share": "null_share_change",
    "quarantine": "quarantine_share",
}


class Expectation(BaseModel):
    """One Great Expectations 1.x expectation, named as in GX (snake case) with its arguments."""

    model_config = ConfigDict(extra="forbid")

    expectation: str = Field(description="GX expectation name, e.g. expect_column_values_to_not_be_null")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Arguments passed to the expectation")
    severity: Severity = Severity.WARN


class ValidateConfig(BaseModel):
    """Dataset-level rules and severities; row-level rules live on the columns."""

    model_config = ConfigDict(extra="forbid")

    max_quarantine_share: float = Field(
        0.05, ge=0, le=1, description="ERROR when more than this share of rows is quarantined"
    )
    max_row_count_drop: float = Field(
        0.5,
        ge=0,
        le=1,
        description="ERROR when the row count fell by more than this share since the last run",
    )
    max_null_share_increase: float = Field(
        0.2,
        ge=0,
        le=1,
        description="WARN when a column's share of nulls grows by more than this since the last run",
    )
    severities: dict[str, Severity] = Field(
        default_factory=dict,
        description="Override the severity of a named rule group, e.g. {'range': 'WARN'}",
    )
    expectations: list[Expectation] = Field(default_factory=list)

    @field_validator("severities")
    @classmethod
    def _known_rule_groups(cls, value: dict[str, Severity]) -> dict[str, Severity]:
        """Normalise aliases so a typo cannot silently leave a rule at its default severity."""
        known = set(ROW_RULE_GROUPS) | set(DATASET_CHECKS)
        normalised: dict[str, Severity] = {}
        for key, severity in value.items():
            name = SEVERITY_KEY_ALIASES.get(key, key)
            if name not in known:
                raise ValueError(f"unknown rule group '{key}'; use one of: {', '.join(sorted(known))}")
            normalised[name] = severity
        return normalised
