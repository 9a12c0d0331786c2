"""YAML options for race, ethnicity and language standardization (the ``rel:`` block)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator


class RelField(StrEnum):
    """What a column holds, which decides how its labels are parsed."""

    RACE = "race"
    ETHNICITY = "ethnicity"
    RACE_ETHNICITY = "race_ethnicity"
    LANGUAGE = "language"
    ENGLISH_PROFICIENCY = "english_proficiency"
    INTERPRETER_NEEDED = "interpreter_needed"


RACE_FIELDS = (RelField.RACE, RelField.ETHNICITY, RelField.RACE_ETHNICITY)
#: The published reporting group of each row (see standardize/groups.py).
REPORTING_GROUP_COLUMN = "rel_reporting_group"
_STATUS = (
    "How the value of '{c}' was read: reported, declined, unknown, not_collected, ambiguous, unmapped or "
    "multiple (ambiguous and unmapped values are kept as sent, with no category)"
)
_RACE_COLUMNS = {
    "status": ("VARCHAR", _STATUS),
    "hispanic": ("BOOLEAN", "Hispanic or Latino origin as '{c}' states it; empty where it does not say"),
    "omb1997": ("VARCHAR", "The OMB 1997 race categories '{c}' names, separated by ';'"),
    "spd15": ("VARCHAR", "The OMB SPD 15 (2024) categories '{c}' names, separated by ';'"),
    "two_or_more": ("BOOLEAN", "True where '{c}' reports two or more races"),
    "other_race": ("BOOLEAN", "True where '{c}' reports another race that names no category"),
    "detailed": ("VARCHAR", "The detailed groups '{c}' names (CDC/HL7 race and ethnicity), separated by ';'"),
    "candidates": (
        "VARCHAR",
        "For an ambiguous value of '{c}', the categories it could mean, separated by ';'",
    ),
}
_LANGUAGE_COLUMNS = {
    "status": ("VARCHAR", _STATUS),
    "iso639_3": ("VARCHAR", "The ISO 639-3 code of the language '{c}' names"),
    "candidates": (
        "VARCHAR",
        "For an ambiguous value of '{c}', the ISO 639-3 codes it could mean, separated by ';'",
    ),
    "language_group": (
        "VARCHAR",
        "The language '{c}' names, for grouping: its ISO 639-3 name, 'Other language', 'Multiple languages', "
        "'Unknown', 'Declined' or 'Not standardized'",
    ),
}
_OTHER_COLUMNS = {
    "status": ("VARCHAR", _STATUS),
    "value": ("VARCHAR", "The standard value of '{c}'"),
}


class ReportingRule(StrEnum):
    """How standardized rows are grouped for published tables."""

    CT_DPH = "ct_dph"  # Hispanic of any race; non-Hispanic single race; non-Hispanic two or more races
    SPD15_ALONE = "spd15_alone"  # SPD 15 (2024) categories alone, plus Multiracial and/or Multiethnic
    OMB1997 = "omb1997"


class RelColumn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    column: str = Field(description="API field name of the column holding the raw labels")
    field: RelField


REL_ATTRIBUTES = ("race", "hispanic_origin", "language")


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

    @model_validator(mode="after")
    def _spd15_needs_one_question(self) -> StandardizeConfig:
        """SPD 15 (2024) tabulates a combined race/ethnicity question, where a Hispanic person may tick
        Hispanic alone. With separate race and ethnicity questions (OMB 1997), every Hispanic person also
        answered a race, so ``spd15_alone`` made a helper's DMHAS admissions 'Multiracial and/or
        Multiethnic' for 9,749 of 20,266 people who had ticked one box in each question."""
        fields = {c.field for c in self.columns}
        if self.reporting_rule == ReportingRule.SPD15_ALONE and {RelField.RACE, RelField.ETHNICITY} <= fields:
            raise ValueError(
                "reporting_rule spd15_alone tabulates one combined race/ethnicity question, but this source "
                "asked race and ethnicity apart (a 'race' and an 'ethnicity' column), where every Hispanic "
                "person also gave a race: most would be published as 'Multiracial and/or Multiethnic'; use "
                "reporting_rule: ct_dph (Hispanic of any race) or omb1997 (races, with origin apart)"
            )
        return self

    def not_collected(self) -> list[str]:
        """REL attributes no configured column asks about: race (a race or race_ethnicity column),
        hispanic_origin (an ethnicity or race_ethnicity column) and language. Groups never claim them."""
        fields = {c.field for c in self.columns}
        collected = set()
        if fields & {RelField.RACE, RelField.RACE_ETHNICITY}:
            collected.add("race")
        if fields & {RelField.ETHNICITY, RelField.RACE_ETHNICITY}:
            collected.add("hispanic_origin")
        if RelField.LANGUAGE in fields:
            collected.add("language")
        return [a for a in REL_ATTRIBUTES if a not in collected]

    def collection_note(self) -> str:
        """A sentence for the dataset's public description when race and Hispanic origin were not both
        collected, so no reader takes a race group for a non-Hispanic one (empty when nothing to say)."""
        missing = set(self.not_collected())
        if "hispanic_origin" in missing and "race" not in missing:
            return (
                "The source did not collect Hispanic origin: race groups include people of any ethnicity "
                "and are labelled 'Hispanic origin unknown'."
            )
        if "race" in missing and "hispanic_origin" not in missing:
            return "The source did not collect race: only Hispanic origin is reported."
        return ""


def standardized_columns(rel_column: RelColumn) -> dict[str, tuple[str, str]]:
    """The columns standardize adds for one REL column: name -> (DuckDB type, portal description)."""
    if rel_column.field in RACE_FIELDS:
        added = _RACE_COLUMNS
    elif rel_column.field == RelField.LANGUAGE:
        added = _LANGUAGE_COLUMNS
    else:
        added = _OTHER_COLUMNS
    c = rel_column.column
    return {f"{c}_{suffix}": (kind, text.format(c=c)) for suffix, (kind, text) in added.items()}
