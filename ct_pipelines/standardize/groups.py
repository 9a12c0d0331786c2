"""Published reporting groups, built only from what the source collected.

A row whose Hispanic origin is unknown (the source has no ethnicity question, the cell is blank
or unknown, or the label leaves origin open) is never put in a "Non-Hispanic" group, and a
source without a race question never gets race groups. The wording follows CT DPH's groups
("Non-Hispanic White", "Hispanic") and the 1977 directive's "White, not of Hispanic origin": an
unknown origin is said in the group name itself, "White (Hispanic origin unknown)", so that no
reader can take it for "Non-Hispanic White". (DPH's own tables count a missing ethnicity as
non-Hispanic; we do not, because a wrong group on the portal is worse than an honest unknown.)
"""

from __future__ import annotations

from dataclasses import dataclass

from ct_pipelines.catalog.blocks.standardize import RelField, ReportingRule
from ct_pipelines.standardize.normalize import RelResult
from ct_pipelines.standardize.reference import Status

ORIGIN_UNKNOWN = "Hispanic origin unknown"
RACE_NOT_COLLECTED = "race not collected"
UNKNOWN_GROUP = "Unknown"
#: A row with a label the reference could not read: not "Unknown", which says the source did not know.
NOT_STANDARDIZED_GROUP = "Not standardized"

OMB_NAMES = {
    "AIAN": "American Indian or Alaska Native",
    "ASIAN": "Asian",
    "BLACK": "Black",
    "NHPI": "Native Hawaiian or Other Pacific Islander",
    "WHITE": "White",
}
SPD15_NAMES = {
    **OMB_NAMES,
    "BLACK": "Black or African American",
    "HISPANIC": "Hispanic or Latino",
    "MENA": "Middle Eastern or North African",
    "NHPI": "Native Hawaiian or Pacific Islander",
}


@dataclass(frozen=True)
class _Answer:
    """A row's race/ethnicity answers merged across its columns."""

    hispanic: bool | None
    races: frozenset[str]
    spd15: frozenset[str]
    multiracial: bool
    candidates: frozenset[str]
    other: bool
    race_collected: bool


def _merge(results: list[tuple[RelField, RelResult]]) -> _Answer:
    ethnicity = [r for f, r in results if f == RelField.ETHNICITY]
    race_like = [r for f, r in results if f != RelField.ETHNICITY]
    ordered = ethnicity + [r for f, r in results if f == RelField.RACE_ETHNICITY]
    ordered += [r for f, r in results if f == RelField.RACE]
    hispanic = next((r.hispanic for r in ordered if r.hispanic is not None), None)
    answers = race_like or ethnicity  # an ethnicity-only source still carries e.g. MENA
    races = frozenset().union(*(r.omb1997 for r in race_like))
    return _Answer(
        hispanic=hispanic,
        races=races,
        spd15=frozenset().union(*(r.spd15 for r in answers)),
        multiracial=any(r.two_or_more for r in race_like) or len(races) >= 2,
        candidates=frozenset().union(*(r.candidates for r in race_like)),
        other=any(r.other_race for r in race_like),
        race_collected=bool(race_like),
    )


def _noted(name: str, note: str) -> str:
    """ "White" -> "White (note)"; "X (not separable)" -> "X (not separable; note)"."""
    return f"{name[:-1]}; {note})" if name.endswith(")") else f"{name} ({note})"


def _race_name(answer: _Answer, other_name: str) -> str | None:
    if answer.multiracial:
        return "Two or More Races"
    if len(answer.races) == 1:
        return OMB_NAMES[next(iter(answer.races))]
    if answer.candidates == {"ASIAN", "NHPI"}:
        return "Asian or Pacific Islander (not separable)"
    return other_name if answer.other else None


def _ct_dph(answer: _Answer) -> str:
    if answer.hispanic:
        return "Hispanic"
    if not answer.race_collected:
        return _noted("Non-Hispanic", RACE_NOT_COLLECTED) if answer.hispanic is False else UNKNOWN_GROUP
    race = _race_name(answer, "Other Race")
    if race is None:
        return UNKNOWN_GROUP
    return f"Non-Hispanic {race}" if answer.hispanic is False else _noted(race, ORIGIN_UNKNOWN)


def _spd15(answer: _Answer) -> str:
    categories = set(answer.spd15) - {"HISPANIC"}
    if answer.hispanic:
        categories.add("HISPANIC")
    if answer.multiracial or len(categories) >= 2:
        return "Multiracial and/or Multiethnic"
    if not answer.race_collected:
        if categories:
            return _noted(SPD15_NAMES[categories.pop()], RACE_NOT_COLLECTED)
        return (
            _noted("Not Hispanic or Latino", RACE_NOT_COLLECTED)
            if answer.hispanic is False
            else UNKNOWN_GROUP
        )
    if len(categories) == 1:
        category = categories.pop()
        if answer.hispanic is None and category != "HISPANIC":
            return _noted(SPD15_NAMES[category], ORIGIN_UNKNOWN)
        return f"{SPD15_NAMES[category]} alone"
    if answer.other:
        return (
            "Another race or ethnicity"
            if answer.hispanic is False
            else _noted("Another race", ORIGIN_UNKNOWN)
        )
    return UNKNOWN_GROUP


def _omb1997(answer: _Answer) -> str:
    """Races tabulated apart from Hispanic origin, so an unknown origin changes nothing here."""
    if not answer.race_collected:
        return "Race not collected"
    race = _race_name(answer, "Some Other Race")
    if race is None:
        return UNKNOWN_GROUP
    return race if answer.multiracial or race.endswith(")") or race == "Some Other Race" else f"{race} alone"


def _unread(result: RelResult) -> bool:
    """A label left unmapped, or ambiguous between groups the rules cannot hold together (a 1977-style
    Asian or Pacific Islander answer has a group of its own). A state total such as "ALL RACES/ETHNICITIES"
    published as "Unknown" made the portal's Unknown group larger than the state."""
    if result.status == Status.UNMAPPED:
        return True
    return result.status == Status.AMBIGUOUS and set(result.candidates) != {"ASIAN", "NHPI"}


def reporting_group(results: list[tuple[RelField, RelResult]], rule: ReportingRule) -> str:
    """One row's published group from all its race/ethnicity columns.

    CT_DPH (DPH "Single and Two-or-More race-ethnicity"): Hispanic of any race; non-Hispanic
    single race; non-Hispanic two or more races; "<race> (Hispanic origin unknown)" when origin
    is not known. SPD15_ALONE: each SPD 15 (2024) category alone, or "Multiracial and/or
    Multiethnic". OMB1997: races alone or two or more races; Hispanic origin is tabulated
    separately. A 1977-style "Asian or Pacific Islander" answer keeps its own group; a row with a
    label that was not standardized is "Not standardized" under every rule.
    """
    if any(_unread(result) for _, result in results):
        return NOT_STANDARDIZED_GROUP
    answer = _merge(results)
    if rule == ReportingRule.SPD15_ALONE:
        return _spd15(answer)
    if rule == ReportingRule.OMB1997:
        return _omb1997(answer)
    return _ct_dph(answer)
