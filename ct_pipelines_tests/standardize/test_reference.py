"""The reference tables themselves: valid codes, cited versions, no bare codes as aliases."""

from __future__ import annotations

import re
from importlib import resources

import pytest
from iso639 import Language, LanguageNotFoundError

from ct_pipelines.standardize.reference import (
    OMB1997_RACES,
    SPD15_CATEGORIES,
    language_reference,
    named_code_maps,
    normalize_label,
    race_reference,
)

CDC_CODE = re.compile(r"^\d{4}-\d$")


def _cdc_check_digit_ok(code: str) -> bool:
    """CDCREC codes carry a mod-10 check digit like LOINC: catches typos in hand-typed codes."""
    body, check = code.split("-")
    digits = [int(d) for d in body]
    total = 0
    for position, digit in enumerate(reversed(digits)):
        if position % 2 == 0:
            digit *= 2
            digit = digit - 9 if digit > 9 else digit
        total += digit
    return (10 - total % 10) % 10 == int(check)


def test_every_language_code_is_valid_iso639_3():
    for code in language_reference().codes:
        try:
            Language.from_part3(code)
        except LanguageNotFoundError:
            pytest.fail(f"{code} is not an ISO 639-3 code")


def test_collective_codes_are_not_claimed_as_iso639_3():
    for code in ("kar", "sgn"):
        with pytest.raises(LanguageNotFoundError):
            Language.from_part3(code)


def test_cdcrec_codes_have_valid_check_digits_and_local_codes_are_marked():
    for group in race_reference().groups:
        code = str(group["code"])
        assert CDC_CODE.match(code) or code.startswith("LOCAL-"), code
        if CDC_CODE.match(code):
            assert _cdc_check_digit_ok(code), code


def test_rollups_use_only_standard_categories():
    for group in race_reference().groups:
        assert set(group.get("omb1997", [])) <= set(OMB1997_RACES), group["name"]
        assert set(group.get("spd15", [])) <= set(SPD15_CATEGORIES), group["name"]


def test_mena_groups_are_white_in_1997_and_mena_in_2024():
    mena = [g for g in race_reference().groups if "MENA" in g.get("spd15", [])]
    assert {"Lebanese", "Iranian", "Egyptian", "Syrian", "Iraqi", "Israeli"} <= {g["name"] for g in mena}
    assert all(g["omb1997"] == ["WHITE"] for g in mena)


def test_spd15_example_groups_are_covered():
    names = {normalize_label(a) for g in race_reference().groups for a in g.get("aliases", [])}
    examples = (
        "chinese asian indian filipino vietnamese korean japanese mexican puerto rican salvadoran cuban "
        "dominican guatemalan lebanese iranian egyptian syrian iraqi israeli native hawaiian samoan chamorro "
        "tongan fijian marshallese english german irish italian polish scottish african american jamaican "
        "haitian nigerian ethiopian somali navajo brazilian portuguese cape verdean"
    )
    for example in re.findall(
        r"asian indian|puerto rican|native hawaiian|african american|cape verdean|\w+", examples
    ):
        assert example in names, example


def test_no_alias_is_a_bare_code():
    """Letters and digits mean different things per agency: they go through code maps only."""
    for key in list(race_reference().index) + list(language_reference().index):
        assert not re.fullmatch(r"[a-z]|\d+", key), key


def test_reference_files_carry_version_and_sources():
    for name in ("race_ethnicity.yaml", "languages.yaml", "code_maps.yaml"):
        text = resources.files("ct_pipelines.standardize").joinpath("data", name).read_text(encoding="utf-8")
        assert re.search(r"^# version: \S+", text, re.MULTILINE), name
        assert "Sources:" in text, name


def test_named_code_maps_include_ct_traffic_stops():
    ctrp3 = named_code_maps()["ct_racial_profiling"]
    assert ctrp3["race"]["W"] == "White" and ctrp3["ethnicity"]["M"] == "Middle Eastern"


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("BLACK_AFRICAN_AMERICAN", "black african american"),
        ("  Hispanic ,White ", "hispanic, white"),
        ("<b>Asian</b>", "asian"),
        ("Black/ African-American", "black/african american"),
        ("WHITE - BRAZILIAN", "white - brazilian"),
        ("Español", "espanol"),
    ],
)
def test_normalize_label(raw, key):
    assert normalize_label(raw) == key
