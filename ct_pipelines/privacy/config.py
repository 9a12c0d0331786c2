"""YAML options for what gets published and how it is protected (the ``publish:`` table options)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class ProtectMode(StrEnum):
    ROWS = "rows"  # standardized rows minus PII columns
    SQL = "sql"  # an aggregate defined by a SQL file in sql/
    AGGREGATE = "aggregate"  # a declarative aggregate


class Measure(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    agg: str = Field("count", description="count, or sum/avg of a column")
    column: str | None = None


class AggregateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dimensions: list[str]
    measures: list[Measure] = Field(default_factory=lambda: [Measure(name="count")])
    totals: bool = Field(True, description="Publish margins (each dimension's totals and the grand total)")
    total_label: str = "Total"


class SuppressionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count_column: str = "count"
    threshold: int = Field(5, ge=1, description="Counts 1..threshold are sensitive")
    protect_zeros: bool = False
    flag_column: str = "suppressed"
    rate_columns: list[str] = Field(
        default_factory=list, description="Rates/percentages suppressed when their count is"
    )
    collapse: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Per dimension, categories merged into one 'Another ...' category before suppressing",
    )
    collapse_label: str = "Another race/ethnicity"


class PiiExemption(BaseModel):
    model_config = ConfigDict(extra="forbid")

    column: str
    patterns: list[str] = Field(default_factory=list, description="Pattern names exempted; empty = all")
    reason: str = Field(min_length=10, description="Why this is not PII, for the audit trail")


class ProtectConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: ProtectMode = ProtectMode.ROWS
    sql_file: str | None = Field(None, description="File in sql/ when mode is sql")
    aggregate: AggregateConfig | None = None
    dimensions: list[str] = Field(
        default_factory=list, description="For mode sql: the dimension columns of the result (for suppression)"
    )
    suppression: SuppressionConfig | None = None
    pii_exemptions: list[PiiExemption] = Field(default_factory=list)
