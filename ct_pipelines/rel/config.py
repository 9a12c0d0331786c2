"""YAML options for race, ethnicity and language standardization (the ``rel:`` block)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class RelField(StrEnum):
    """What a column holds, which decides how its labels are parsed."""

    RACE = "race"
    ETHNICITY = "ethnicity"
    RACE_ETHNICITY = "race_ethnicity"
    LANGUAGE = "language"
    ENGLISH_PROFICIENCY = "english_proficiency"
    INTERPRETER_NEEDED = "interpreter_needed"


class ReportingRule(StrEnum):
    """How standardized rows are grouped for published tables."""

    CT_DPH = "ct_dph"  # Hispanic of any race; non-Hispanic single race; non-Hispanic two or more races
    SPD15_ALONE = "spd15_alone"  # SPD 15 (2024) categories alone, plus Multiracial and/or Multiethnic
    OMB1997 = "omb1997"


class RelColumn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    column: str = Field(description="API field name of the column holding the raw labels")
    field: RelField


class StandardizeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    columns: list[RelColumn] = Field(default_factory=list)
    source: str | None = Field(None, description="Name of the source system, for code maps")
    code_map: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="Per field (race, ethnicity, ...), source codes to labels, e.g. {race: {'1': 'White'}}",
    )
    reporting_rule: ReportingRule = ReportingRule.CT_DPH
    max_unmapped_share: float = Field(
        0.05, ge=0, le=1, description="ERROR when more than this share of values is unmapped or ambiguous"
    )
