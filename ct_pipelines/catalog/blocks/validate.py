"""YAML options for data-quality gates (the ``validate:`` block of a dataset file)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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


DEFAULT_DATE_FLOOR = dt.date(1800, 1, 1)


class ValueFormat(BaseModel):
    """How the agency writes a column's numbers or dates; values not written this way are set aside.

    Numbers: ``decimal`` and ``thousands`` marks (``1.234,56`` is ``decimal: ","``, ``thousands: "."``),
    currency signs that may stand before or after the number, and whether a trailing ``%`` may appear
    (the number is kept as written: ``12.5%`` is 12.5). Dates: strptime formats (``%d/%m/%y``) and,
    for two-digit years, the pivot: years below it are 20xx, the others 19xx.
    """

    model_config = ConfigDict(extra="forbid")

    decimal: Literal[".", ","] = Field(".", description="Decimal mark")
    thousands: Literal[",", ".", " ", "'", ""] | None = Field(
        None, description="Thousands separator; ',' when the decimal mark is '.', none otherwise"
    )
    currency: list[str] = Field(
        default_factory=lambda: ["$"], description="Currency signs allowed before or after a number"
    )
    percent: bool = Field(False, description="Allow a trailing % (the number is kept as written)")
    date: list[str] | None = Field(
        None, description="strptime formats for dates, e.g. ['%d/%m/%Y']; replaces the defaults"
    )
    pivot_year: int | None = Field(
        None, ge=0, le=99, description="Two-digit years below this are 20xx, the others 19xx (needed with %y)"
    )
    floor: dt.date | None = Field(
        None, description="Dates before this are set aside (default quality.date_floor)"
    )

    @field_validator("date", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> ValueFormat:
        if self.thousands is None:
            self.thousands = "," if self.decimal == "." else ""
        if self.thousands == self.decimal:
            raise ValueError(f"decimal and thousands marks are both '{self.decimal}'; they must differ")
        for fmt in self.date or []:
            if "%" not in fmt:
                raise ValueError(f"date format '{fmt}' has no % directive; write it like '%d/%m/%Y'")
            if "%y" in fmt and self.pivot_year is None:
                raise ValueError(
                    f"date format '{fmt}' has two-digit years (%y); add pivot_year (e.g. 50: 00-49 are "
                    "2000-2049, 50-99 are 1950-1999)"
                )
        return self


class BudgetConfig(BaseModel):
    """A dataset's limits for its whole step (all five stages); unset values use the settings defaults."""

    model_config = ConfigDict(extra="forbid")

    seconds: float | None = Field(
        None, gt=0, description="Wall-clock seconds for the dataset's step; past it the step is stopped"
    )
    memory: str | None = Field(
        None,
        pattern=r"^\s*[0-9]+(\.[0-9]+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$",
        description="DuckDB memory limit while the dataset runs, e.g. '2GB' (DuckDB spills to disk below it)",
    )


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
    null_values: list[str] = Field(
        default_factory=list,
        description="Cells meaning 'no value' in every column, e.g. ['NULL', 'n/a', '-'] (empty always is)",
    )
    suppressed_values: list[str] = Field(
        default_factory=list,
        description="Markers of values suppressed at the source, e.g. ['*', '<5'], in integer and number "
        "columns: the value becomes empty and <field>_suppressed is true",
    )
    date_floor: dt.date = Field(DEFAULT_DATE_FLOOR, description="Dates before this are set aside")
    budget: BudgetConfig = Field(default_factory=BudgetConfig)

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
