"""Raw REL labels seen in real files (reference notes, section 3) -> what the standards say.

Expected values are written from OMB 1997 / SPD 15 (2024) and the documented decisions in
ct_pipelines/standardize/normalize.py, not copied from the implementation's output.
"""

from __future__ import annotations

import pytest

from ct_pipelines.catalog.blocks.standardize import RelField
from ct_pipelines.standardize.normalize import classify

R, D, U, NC, A, X = "reported", "declined", "unknown", "not_collected", "ambiguous", "unmapped"
RE = RelField.RACE_ETHNICITY

# raw, status, hispanic, omb1997, spd15, two_or_more  (combined race/ethnicity column)
COMBINED = [
    # CT OCME
    ("White", R, False, "WHITE", "WHITE", False),
    ("Black", R, False, "BLACK", "BLACK", False),
    ("Hispanic, White", R, True, "WHITE", "HISPANIC WHITE", False),
    ("Hispanic, Black", R, True, "BLACK", "BLACK HISPANIC", False),
    ("Asian, Other", R, False, "ASIAN", "ASIAN", False),
    ("Asian Indian", R, False, "ASIAN", "ASIAN", False),
    ("Chinese", R, False, "ASIAN", "ASIAN", False),
    ("Native American, Other", R, False, "AIAN", "AIAN", False),
    ("Hawaiian", R, False, "NHPI", "NHPI", False),
    ("Other", R, False, "", "", False),
    ("Unknown", U, None, "", "", False),
    ("", NC, None, "", "", False),
    # CTEDSS
    ("WHITE", R, False, "WHITE", "WHITE", False),
    ("BLACK_AFRICAN_AMERICAN", R, False, "BLACK", "BLACK", False),
    ("AMERICAN_INDIAN_ALASKAN_NATIVE", R, False, "AIAN", "AIAN", False),
    ("ASIAN", R, False, "ASIAN", "ASIAN", False),
    ("NATIVE_HAWAIIAN_PACIFIC_ISLANDER", R, False, "NHPI", "NHPI", False),
    ("ASIAN,NATIVE_HAWAIIAN_PACIFIC_ISLANDER", R, False, "ASIAN NHPI", "ASIAN NHPI", True),
    ("NATIVE_HAWAIIAN_PACIFIC_ISLANDER,ASIAN", R, False, "ASIAN NHPI", "ASIAN NHPI", True),
    ("OTHER", R, False, "", "", False),
    ("REFUSED", D, None, "", "", False),
    ("NA", NC, None, "", "", False),
    ("Multirace", R, False, "", "", True),
    # CT DCF (labels drift between snapshots)
    ("HISPANIC", R, True, "", "HISPANIC", False),
    ("Non-Hispanic Black", R, False, "BLACK", "BLACK", False),
    ("Non-Hispanic White", R, False, "WHITE", "WHITE", False),
    ("Non-Hispanic Other", R, False, "", "", False),
    ("NULL", NC, None, "", "", False),
    # DPH mortality / 1977 directive
    ("WHITE, NON-HISPANIC", R, False, "WHITE", "WHITE", False),
    ("BLACK, NON-HISPANIC", R, False, "BLACK", "BLACK", False),
    ("Other non-Hispanic", R, False, "", "", False),
    ("Hispanic-any race", R, True, "", "HISPANIC", False),
    ("White, not of Hispanic origin", R, False, "WHITE", "WHITE", False),
    ("Black, not of Hispanic Origin", R, False, "BLACK", "BLACK", False),
    ("American Indian or Alaskan Native", R, False, "AIAN", "AIAN", False),
    ("Asian or Pacific Islander", A, False, "", "", False),
    ("Asian/Pacific Islander", A, False, "", "", False),
    # SDE / EdSight and other report cards
    ("American Indian or Alaska Native", R, False, "AIAN", "AIAN", False),
    ("Black or African American", R, False, "BLACK", "BLACK", False),
    ("Hispanic/Latino of any race", R, True, "", "HISPANIC", False),
    ("Native Hawaiian or Other Pacific Islander", R, False, "NHPI", "NHPI", False),
    ("Two or More Races", R, False, "", "", True),
    ("Asian American", R, False, "ASIAN", "ASIAN", False),
    ("Pacific Islander", R, False, "NHPI", "NHPI", False),
    ("HispanicLatino of any race", R, True, "", "HISPANIC", False),
    ("Hispanic Latino of any Race", R, True, "", "HISPANIC", False),
    ("Black/African American", R, False, "BLACK", "BLACK", False),
    ("Black/African-American", R, False, "BLACK", "BLACK", False),
    ("American Indian/Alaskan Native", R, False, "AIAN", "AIAN", False),
    ("Native Hawaiian/Other Pacific Islander", R, False, "NHPI", "NHPI", False),
    ("Hispanic/Latino of any race(s)", R, True, "", "HISPANIC", False),
    # MIMIC-IV (Boston hospital EHR)
    ("WHITE - BRAZILIAN", R, False, "WHITE", "WHITE", False),
    ("WHITE - OTHER EUROPEAN", R, False, "WHITE", "WHITE", False),
    ("WHITE - RUSSIAN", R, False, "WHITE", "WHITE", False),
    ("WHITE - EASTERN EUROPEAN", R, False, "WHITE", "WHITE", False),
    ("PORTUGUESE", R, False, "WHITE", "WHITE", False),
    ("BLACK/AFRICAN AMERICAN", R, False, "BLACK", "BLACK", False),
    ("BLACK/CAPE VERDEAN", R, False, "BLACK", "BLACK", False),
    ("BLACK/CARIBBEAN ISLAND", R, False, "BLACK", "BLACK", False),
    ("BLACK/HAITIAN", R, False, "BLACK", "BLACK", False),
    ("BLACK/AFRICAN", R, False, "BLACK", "BLACK", False),
    ("CARIBBEAN ISLAND", A, False, "", "", False),
    ("HISPANIC OR LATINO", R, True, "", "HISPANIC", False),
    ("HISPANIC/LATINO - PUERTO RICAN", R, True, "", "HISPANIC", False),
    ("HISPANIC/LATINO - DOMINICAN", R, True, "", "HISPANIC", False),
    ("HISPANIC/LATINO - GUATEMALAN", R, True, "", "HISPANIC", False),
    ("HISPANIC/LATINO - SALVADORAN", R, True, "", "HISPANIC", False),
    ("HISPANIC/LATINO - COLUMBIAN", R, True, "", "HISPANIC", False),
    ("HISPANIC/LATINO - COLOMBIAN", R, True, "", "HISPANIC", False),
    ("HISPANIC/LATINO - HONDURAN", R, True, "", "HISPANIC", False),
    ("HISPANIC/LATINO - CUBAN", R, True, "", "HISPANIC", False),
    ("HISPANIC/LATINO - MEXICAN", R, True, "", "HISPANIC", False),
    ("HISPANIC/LATINO - CENTRAL AMERICAN (OTHER)", R, True, "", "HISPANIC", False),
    ("SOUTH AMERICAN", R, True, "", "HISPANIC", False),
    ("ASIAN - CHINESE", R, False, "ASIAN", "ASIAN", False),
    ("ASIAN - ASIAN INDIAN", R, False, "ASIAN", "ASIAN", False),
    ("ASIAN - VIETNAMESE", R, False, "ASIAN", "ASIAN", False),
    ("ASIAN - FILIPINO", R, False, "ASIAN", "ASIAN", False),
    ("ASIAN - CAMBODIAN", R, False, "ASIAN", "ASIAN", False),
    ("ASIAN - KOREAN", R, False, "ASIAN", "ASIAN", False),
    ("ASIAN - JAPANESE", R, False, "ASIAN", "ASIAN", False),
    ("ASIAN - THAI", R, False, "ASIAN", "ASIAN", False),
    ("ASIAN - SOUTH EAST ASIAN", R, False, "ASIAN", "ASIAN", False),
    ("ASIAN - OTHER", R, False, "ASIAN", "ASIAN", False),
    ("MIDDLE EASTERN", R, False, "WHITE", "MENA", False),
    ("AMERICAN INDIAN/ALASKA NATIVE FEDERALLY RECOGNIZED TRIBE", R, False, "AIAN", "AIAN", False),
    ("NATIVE HAWAIIAN OR OTHER PACIFIC ISLANDER", R, False, "NHPI", "NHPI", False),
    ("MULTI RACE ETHNICITY", R, None, "", "", True),
    ("MULTIPLE RACE/ETHNICITY", R, None, "", "", True),
    ("UNKNOWN", U, None, "", "", False),
    ("UNKNOWN/NOT SPECIFIED", U, None, "", "", False),
    ("UNABLE TO OBTAIN", U, None, "", "", False),
    ("PATIENT DECLINED TO ANSWER", D, None, "", "", False),
    # SPD-15-2024 style web forms
    ("Hispanic, Latino, or Spanish Origin", R, True, "", "HISPANIC", False),
    ("Hispanic, Latino or Spanish Origin", R, True, "", "HISPANIC", False),
    ("Latinx", R, True, "", "HISPANIC", False),
    ("Latin", R, True, "", "HISPANIC", False),
    ("Middle Eastern or North African", R, False, "WHITE", "MENA", False),
    ("Some other race, ethnicity, or origin, please specify:", R, False, "", "", False),
    ("I prefer not to answer", D, None, "", "", False),
    ("Prefer not to say", D, None, "", "", False),
    ("Prefer to self-describe", R, False, "", "", False),
    ("Prefer Not To Respond", D, None, "", "", False),
    ("Biracial or Multiracial", R, False, "", "", True),
    ("<strong>White</strong> (Examples include German, Irish, \u2026)", R, False, "WHITE", "WHITE", False),
    # Other observed
    ("Mixed Heritage", R, False, "", "", True),
    ("Mixed heritage", R, False, "", "", True),
    ("Decline to answer", D, None, "", "", False),
    ("No Response", U, None, "", "", False),
    ("Filipino", R, False, "ASIAN", "ASIAN", False),
    ("Multiracial", R, False, "", "", True),
    ("BLACK ONLY", R, False, "BLACK", "BLACK", False),
    ("WHITE ONLY", R, False, "WHITE", "WHITE", False),
    ("NO, NOT HISPANIC/LATINO", R, False, "", "", False),
    # Synthetic cases named in the brief
    ("Afr Amer", R, False, "BLACK", "BLACK", False),
    ("Asian/Pacific Islander", A, False, "", "", False),
    ("Brazilian", R, False, "", "", False),
    ("Lebanese", R, False, "WHITE", "MENA", False),
    ("Iranian", R, False, "WHITE", "MENA", False),
    ("Lebanese, Irish", R, False, "WHITE", "MENA WHITE", False),
    ("White and Black", R, False, "BLACK WHITE", "BLACK WHITE", True),
    ("White; Asian", R, False, "ASIAN WHITE", "ASIAN WHITE", True),
    ("Puerto Rican", R, True, "", "HISPANIC", False),
    ("Cape Verdean", R, False, "BLACK", "BLACK", False),
    ("NH White", R, False, "WHITE", "WHITE", False),
    # Never guessed
    ("W", X, None, "", "", False),
    ("1", X, None, "", "", False),
    ("Martian", X, None, "", "", False),
    ("White, Martian", X, None, "", "", False),
    ("ALL RACES/ETHNICITIES", X, None, "", "", False),
]


def _split(text: str) -> list[str]:
    return sorted(text.split())


@pytest.mark.parametrize(("raw", "status", "hispanic", "omb", "spd", "two"), COMBINED)
def test_combined_labels_map_as_the_standards_say(raw, status, hispanic, omb, spd, two):
    result = classify(raw, RE)
    assert (result.status.value, result.hispanic) == (status, hispanic)
    assert list(result.omb1997) == _split(omb)
    assert list(result.spd15) == _split(spd)
    assert result.two_or_more is two


@pytest.mark.parametrize(
    "raw", ["Other", "OTHER", "Some other race", "Non-Hispanic Other", "", None, "Unknown", "NA"]
)
def test_no_race_is_invented_for_other_blank_or_unknown(raw):
    for field in (RelField.RACE, RE):
        result = classify(raw, field)
        assert result.omb1997 == () and result.two_or_more is False


def test_asian_other_is_asian_only_and_flags_other():
    result = classify("Asian, Other", RE)
    assert result.omb1997 == ("ASIAN",) and result.other_race and not result.two_or_more


@pytest.mark.parametrize(
    ("raw", "candidates"),
    [
        ("Other/Unknown", ("OTHER", "UNKNOWN")),
        ("Unknown/Other", ("OTHER", "UNKNOWN")),
        ("OTHER, UNKNOWN", ("OTHER", "UNKNOWN")),
        ("Other/Declined", ("DECLINED", "OTHER")),
        ("Other/Multi-racial", ("MULTIRACIAL", "OTHER")),
    ],
)
def test_a_pooled_other_group_is_ambiguous_not_other_race(raw, candidates):
    """People whose race is unknown, or who are multiracial, are not claimed as Other."""
    for field in (RelField.RACE, RE):
        result = classify(raw, field)
        assert result.status.value == A and result.candidates == candidates
        assert not result.other_race and not result.two_or_more and result.omb1997 == ()


def test_a_status_beside_a_race_still_leaves_only_origin_open():
    result = classify("White, Unknown", RE)
    assert result.status.value == R and result.omb1997 == ("WHITE",) and result.hispanic is None


def test_legacy_asian_pacific_islander_is_ambiguous_with_both_candidates():
    for raw in ["Asian/Pacific Islander", "Asian or Pacific Islander", "ASIAN PACIFIC ISLANDER"]:
        result = classify(raw, RE)
        assert result.status.value == A and result.candidates == ("ASIAN", "NHPI")


def test_race_column_says_nothing_about_hispanic_origin():
    assert classify("White", RelField.RACE).hispanic is None
    assert classify("White", RE).hispanic is False
    assert classify("Hispanic", RelField.RACE).hispanic is True


@pytest.mark.parametrize(
    ("raw", "hispanic", "status"),
    [
        ("Hispanic", True, R),
        ("Yes", True, R),
        ("Not Hispanic", False, R),
        ("No", False, R),
        ("Unknown", None, U),
    ],
)
def test_ethnicity_column_answers(raw, hispanic, status):
    result = classify(raw, RelField.ETHNICITY)
    assert (result.hispanic, result.status.value) == (hispanic, status)


def test_yes_and_no_are_not_race_labels():
    assert classify("Yes", RE).status.value == X
    assert classify("No", RelField.RACE).status.value == X


def test_bare_codes_only_through_a_code_map():
    codes = {"W": "White", "1": "Black"}
    assert classify("W", RelField.RACE).status.value == X
    assert classify("W", RelField.RACE, codes).omb1997 == ("WHITE",)
    assert classify("1", RelField.RACE, codes).omb1997 == ("BLACK",)
    assert classify(" w ", RelField.RACE, codes).omb1997 == ("WHITE",)


def test_detailed_codes_roll_up_and_keep_cdcrec_codes():
    assert classify("Hispanic, White", RE).detailed == ("2135-2", "2106-3")
    assert classify("ASIAN - CHINESE", RE).detailed == ("2028-9", "2034-7")
    assert "2123-8" in classify("Lebanese", RE).detailed
    assert classify("Brazilian", RE).detailed == ("LOCAL-BRAZILIAN",)


def test_contradictory_hispanic_origin_is_ambiguous():
    result = classify("Hispanic, Non-Hispanic", RE)
    assert result.status.value == A and result.hispanic is None


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("Chinese", "zho"),
        ("Mandarin", "cmn"),
        ("Cantonese", "yue"),
        ("American Sign Language", "ase"),
        ("ASL", "ase"),
        ("Farsi", "fas"),
        ("Dari", "prs"),
        ("Pashto", "pus"),
        ("Haitian Creole", "hat"),
        ("Haitian", "hat"),
        ("French Creole", "hat"),
        ("Spanish or Spanish Creole", "spa"),
        ("Portuguese or Portuguese Creole", "por"),
        ("Cape Verdean Creole", "kea"),
        ("Bangla", "ben"),
        ("Bengali", "ben"),
        ("French (incl. Patois, Cajun)", "fra"),
        ("English", "eng"),
        ("Ukrainian", "ukr"),
        ("Italian", "ita"),
        ("Polish", "pol"),
        ("ESPAÑOL", "spa"),
    ],
)
def test_language_labels_map_to_iso639_3(raw, code):
    result = classify(raw, RelField.LANGUAGE)
    assert (result.status.value, result.language) == (R, code)


@pytest.mark.parametrize(
    ("raw", "candidates"),
    [("Creole", {"hat", "kea"}), ("Portuguese Creole", {"kea", "pov"}), ("Chinese dialect", {"cmn", "yue"})],
)
def test_ambiguous_language_names_keep_candidates(raw, candidates):
    result = classify(raw, RelField.LANGUAGE)
    assert result.status.value == A and result.language is None and candidates <= set(result.candidates)


def test_karen_is_a_collective_code_not_iso639_3():
    result = classify("Karen", RelField.LANGUAGE)
    assert result.language is None and result.language_collective == "kar" and result.status.value == A


@pytest.mark.parametrize(("raw", "status"), [("Unknown", U), ("Declined", D), ("", NC), ("Klingon", X)])
def test_language_statuses(raw, status):
    result = classify(raw, RelField.LANGUAGE)
    assert result.status.value == status and result.language is None


def test_english_proficiency_and_interpreter_need():
    assert classify("Not well", RelField.ENGLISH_PROFICIENCY).value == "not_well"
    assert classify("Less than very well", RelField.ENGLISH_PROFICIENCY).value == "less_than_very_well"
    assert classify("Y", RelField.INTERPRETER_NEEDED).value == "true"
    assert classify("Refused", RelField.INTERPRETER_NEEDED).status.value == D
