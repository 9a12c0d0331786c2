"""YAML options for data-quality gates (the ``quality:`` block of a dataset file)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Severity(StrEnum):
    """ERROR blocks publishing; WARN is shown in the UI and the run goes on."""

    ERROR = "ERROR"
    WARN = "WARN"


class Expectation(BaseModel):
    """One Great Expectations 1.x expectation, named as in GX (snake case) with its arguments."""

    model_config = ConfigDict(extra="forbid")

    expectation: str = Field(description="GX expectation name, e.g. expect_column_values_to_not_be_null")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Arguments passed to the expectation")
    severity: Severity = Severity.WARN


class QualityConfig(BaseModel):
    """Dataset-level rules and severities; row-level rules live on the columns."""

    model_config = ConfigDict(extra="forbid")

    max_quarantine_share: float = Field(
        0.05, ge=0, le=1, description="ERROR when more than this share of rows is quarantined"
    )
    max_row_count_drop: float = Field(
        0.5, ge=0, le=1, description="ERROR when the row count fell by more than this share since the last run"
    )
    max_null_share_increase: float = Field(
        0.2, ge=0, le=1, description="WARN when a column's share of nulls grows by more than this since the last run"
    )
    severities: dict[str, Severity] = Field(
        default_factory=dict, description="Override the severity of a named rule group, e.g. {'range': 'WARN'}"
    )
    expectations: list[Expectation] = Field(default_factory=list)
