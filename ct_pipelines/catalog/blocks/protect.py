"""YAML options for what gets published and how it is protected (the ``protect:`` table options).

Why margins are declared, not assumed: a total is only right when the measure adds up over the
dimension. Counts of people add up over towns, but cumulative or point-in-time counts do not add up
over their snapshot dates (a "Total" over 210 daily cumulative snapshots once reported 1,045,736
deaths). So a dimension marked ``time: true`` never gets a total unless a measure says it adds up over
it, and in ``sql`` mode totals are opt-in per dimension. A configuration that cannot be suppressed is
refused here, so ``ct-pipelines catalog validate`` reports it before any run.
"""

from __future__ import annotations

import warnings
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

ADDITIVE_AGGS = frozenset({"count", "sum"})
AGGS = frozenset({"count", "sum", "avg", "min", "max"})
LEGACY_SQL_TOTALS = (
    "protect.dimensions are plain names in sql mode, so totals are added over every one of them as "
    "before; this default is deprecated: write each dimension as {name: ..., totals: true} where the "
    "counts add up over it (e.g. towns) and {name: ..., time: true} for dates or snapshots, which never "
    "get a total"
)


class ProtectMode(StrEnum):
    ROWS = "rows"  # standardized rows minus PII columns
    SQL = "sql"  # an aggregate defined by a SQL file in sql/
    AGGREGATE = "aggregate"  # a declarative aggregate


class Dimension(BaseModel):
    """A column the published table is broken down by, and whether it gets a total row."""

    model_config = ConfigDict(extra="forbid")

    name: str
    totals: bool | None = Field(
        None,
        description="Publish totals over this dimension. Empty: in aggregate mode, yes when every measure "
        "adds up over it; in sql mode, no (totals are opt-in)",
    )
    time: bool = Field(
        False,
        description="A date, period or snapshot dimension: never totalled unless a measure lists it in "
        "adds_up_over (cumulative and point-in-time counts do not add up over time); keeps its type",
    )
    description: str = Field("", description="Portal description of this column")


class Measure(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    agg: str = Field("count", description="count, or sum/avg/min/max of a column")
    column: str | None = None
    adds_up_over: list[str] | None = Field(
        None,
        description="Dimensions over which a total of this measure is meaningful; empty: every dimension "
        "not marked time",
    )
    sum_over: list[str] = Field(
        default_factory=list,
        description="Date columns left out of the dimensions whose values this sum adds together: say so "
        "only when each row counts separate events (deaths in a month); counts taken on a date (children "
        "in care on June 1) add up the same people again, so without this a sum over several dates is "
        "refused, and with it a sum of counts that only ever grow (running totals) is refused too",
    )
    description: str = Field("", description="Portal description of this column")

    def adds_up(self, dimension: Dimension) -> bool:
        """Whether a total of this measure over ``dimension`` is a true figure."""
        if self.adds_up_over is not None:
            return dimension.name in self.adds_up_over
        return not dimension.time


def dimension_specs(entries: list[str | Dimension]) -> list[Dimension]:
    return [Dimension(name=e) if isinstance(e, str) else e for e in entries]


class AggregateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dimensions: list[str | Dimension]
    measures: list[Measure] = Field(default_factory=lambda: [Measure(name="count")])
    totals: bool = Field(
        True, description="Publish margins over every dimension the measures add up over (see Dimension)"
    )
    total_label: str = "Total"

    @property
    def dimension_specs(self) -> list[Dimension]:
        return dimension_specs(self.dimensions)

    def margin_dimensions(self) -> list[str]:
        """Dimensions that get totals: declared or defaulted, and only where every measure adds up."""
        kept = []
        for dim in self.dimension_specs:
            wanted = self.totals if dim.totals is None else dim.totals
            if wanted and all(m.adds_up(dim) for m in self.measures):
                kept.append(dim.name)
        return kept


class SuppressionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count_column: str = "count"
    count_columns: list[str] = Field(
        default_factory=list, description="More count columns to protect besides count_column"
    )
    threshold: int = Field(5, ge=1, description="Counts 1..threshold are sensitive")
    protect_zeros: bool = False
    flag_column: str = "suppressed"
    rate_columns: list[str] = Field(
        default_factory=list, description="Rates/percentages hidden wherever a count of their row is hidden"
    )
    collapse: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Per dimension, categories merged into one 'Another ...' category before suppressing",
    )
    collapse_label: str = "Another race/ethnicity"
    method: str = Field(
        "auto",
        description="auto: the exact minimum (HiGHS MILP) when it is proven within node_limit nodes, "
        "else the heuristic; heuristic; optimal",
    )
    node_limit: int = Field(
        2000,
        ge=1,
        le=1_000_000,
        description="Branch-and-bound nodes the exact minimum may use for each table of linked cells: a count, "
        "not seconds, so the same counts always hide the same cells, release after release",
    )
    time_limit: float = Field(
        60.0,
        gt=0,
        le=600,
        description="Seconds the search may take in all before the run stops (a safety stop; the pattern "
        "never depends on time)",
    )

    @property
    def counts(self) -> list[str]:
        return list(dict.fromkeys([self.count_column, *self.count_columns]))


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
    dimensions: list[str | Dimension] = Field(
        default_factory=list,
        description="For mode sql: the dimension columns of the result (for suppression); "
        "totals only where a dimension says totals: true",
    )
    reference_tables: list[str] = Field(
        default_factory=list,
        description="For mode sql: warehouse tables the SQL may read besides the dataset, as {{ name }}",
    )
    column_descriptions: dict[str, str] = Field(
        default_factory=dict, description="Portal descriptions of published columns, by column name"
    )
    suppression: SuppressionConfig | None = None
    pii_exemptions: list[PiiExemption] = Field(default_factory=list)

    @property
    def dimension_specs(self) -> list[Dimension]:
        if self.mode == ProtectMode.AGGREGATE and self.aggregate is not None:
            return self.aggregate.dimension_specs
        return dimension_specs(self.dimensions)

    @property
    def legacy_sql_totals(self) -> bool:
        """Old sql-mode YAML (plain dimension names) keeps totals over every dimension, with a note."""
        return (
            self.mode == ProtectMode.SQL
            and self.suppression is not None
            and bool(self.dimensions)
            and all(isinstance(d, str) for d in self.dimensions)
        )

    def margin_dimensions(self) -> list[str]:
        if self.mode == ProtectMode.AGGREGATE:
            return self.aggregate.margin_dimensions() if self.aggregate else []
        if self.legacy_sql_totals:
            return [d.name for d in self.dimension_specs]
        return [d.name for d in self.dimension_specs if d.totals]

    def deprecations(self) -> list[str]:
        return [LEGACY_SQL_TOTALS] if self.legacy_sql_totals else []

    @model_validator(mode="after")
    def _publishable(self) -> ProtectConfig:
        from ct_pipelines.catalog.blocks.protect_rules import check_privacy_config

        problems = check_privacy_config(self)
        if problems:
            raise ValueError("; ".join(problems))
        for note in self.deprecations():
            warnings.warn(note, FutureWarning, stacklevel=2)
        return self
