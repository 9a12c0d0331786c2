"""Language labels as agencies write them (issue 12.2): codes, qualifiers, abbreviations, sign
languages, and labels naming more than one language. Expected codes are from the ISO 639-3
tables (SIL), not from the implementation."""

from __future__ import annotations

import re

import pytest
from iso639 import Language, LanguageNotFoundError

from ct_pipelines.catalog.blocks.standardize import RelField
from ct_pipelines.standardize.language import iso_code
from ct_pipelines.standardize.normalize import classify
from ct_pipelines.standardize.reference import language_reference

L = RelField.LANGUAGE


def _read(raw: str) -> tuple[str, str | None, tuple[str, ...]]:
    result = classify(raw, L)
    return result.status.value, result.language, result.candidates


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        # ISO 639-1, any case
        ("es", "spa"), ("ES", "spa"), ("En", "eng"), ("zh", "zho"), ("pt", "por"), ("ht", "hat"),
        # ISO 639-2/B (bibliographic) and /T (terminology)
        ("chi", "zho"), ("CHI", "zho"), ("ger", "deu"), ("deu", "deu"), ("fre", "fra"), ("fra", "fra"),
        ("alb", "sqi"), ("sqi", "sqi"), ("per", None), ("arm", "hye"), ("bur", "mya"), ("gre", "ell"),
        # ISO 639-3 individual languages and macrolanguages
        ("spa", "spa"), ("SPA", "spa"), ("cmn", "cmn"), ("yue", "yue"), ("prs", "prs"), ("ase", "ase"),
        ("kea", "kea"), ("hbs", "hbs"),
        # retired code follows ISO's change-to (Moldavian -> Romanian)
        ("mol", "ron"),
        # BCP 47 tags: region and script subtags keep the language; an extlang names the variety
        ("pt-BR", "por"), ("en-US", "eng"), ("EN_us", "eng"), ("zh-Hant", "zho"), ("zh-Hant-TW", "zho"),
        ("zh-TW", "zho"), ("es-419", "spa"), ("zh-yue", "yue"), ("zh-cmn-Hans", "cmn"),
    ],
)  # fmt: skip
def test_iso_codes_in_any_case(raw, code):
    status, language, _ = _read(raw)
    if code is None:
        assert (status, language) == ("unmapped", None)
    else:
        assert (status, language) == ("reported", code)


@pytest.mark.parametrize(
    "raw", ["Yes", "YES", "All", "any", "New", "Old", "non", "per", "may", "See", "tbd", "sun"]
)
def test_english_words_that_are_rare_iso_codes_are_not_read_as_languages(raw):
    """ISO 639-3 gives 'yes' to Nyankpa and 'all' to Allar: in an agency file they are words."""
    assert _read(raw)[:2] == ("unmapped", None)


def test_no_is_flagged_not_read_as_norwegian():
    assert _read("No") == ("ambiguous", None, ("nor",))


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("Chinese (Mandarin)", "cmn"), ("Chinese - Mandarin", "cmn"), ("Mandarin Chinese", "cmn"),
        ("Chinese, Mandarin", "cmn"), ("Chinese-Mandarin", "cmn"), ("CHINESE (CANTONESE)", "yue"),
        ("Chinese - Cantonese", "yue"), ("Chinese (Hakka)", "hak"), ("Chinese (Taiwanese)", "nan"),
        ("Chinese Traditional", "zho"), ("Chinese Simplified", "zho"), ("Chinese (Traditional)", "zho"),
        ("Traditional Chinese", "zho"), ("Chinese - Simplified", "zho"), ("Cantonese (Hong Kong)", "yue"),
        ("Portuguese (Brazil)", "por"), ("Portuguese (Brazilian)", "por"), ("Portuguese - Brazil", "por"),
        ("Brazilian Portuguese", "por"), ("Portuguese (European)", "por"), ("Spanish (Mexico)", "spa"),
        ("Spanish - Latin America", "spa"), ("Spanish (Latin American)", "spa"), ("Spanish (Spain)", "spa"),
        ("English (UK)", "eng"), ("English - US", "eng"), ("French (Canada)", "fra"), ("French Canadian", "fra"),
        ("Arabic (MSA)", "ara"), ("Arabic - Egyptian", "ara"), ("Modern Standard Arabic", "arb"),
        ("Serbo-Croatian", "hbs"), ("Serbo Croatian", "hbs"), ("Bosnian/Croatian/Serbian", "hbs"),
        ("Serbian (Cyrillic)", "srp"), ("Serbian (Latin)", "srp"), ("Kurdish - Sorani", "ckb"),
        ("Kurdish (Kurmanji)", "kmr"), ("Persian (Farsi)", "fas"), ("Farsi (Dari)", "prs"),
        ("Spanish (preferred)", "spa"), ("Portuguese - written", "por"), ("English Braille", "eng"),
    ],
)  # fmt: skip
def test_names_with_script_region_or_variety_qualifiers(raw, code):
    assert _read(raw)[:2] == ("reported", code)


@pytest.mark.parametrize(
    ("raw", "code"),
    [("ASL", "ase"), ("asl", "ase"), ("Eng", "eng"), ("ENGL", "eng"), ("Span", "spa"), ("SPAN.", "spa"),
     ("Port", "por"), ("Portug", "por"), ("Viet", "vie"), ("Russ", "rus"), ("Ital", "ita"), ("Haitian Cr", "hat")],
)  # fmt: skip
def test_agency_abbreviations(raw, code):
    assert _read(raw)[:2] == ("reported", code)


@pytest.mark.parametrize("raw", ["Sp", "Chin", "Cant", "Mand", "Creo"])
def test_short_or_shared_stems_are_not_guessed(raw):
    assert _read(raw)[0] == "unmapped"


@pytest.mark.parametrize(
    ("raw", "code"),
    [("American Sign Language", "ase"), ("Sign Language - ASL", "ase"), ("Sign Language (ASL)", "ase"),
     ("ASL Interpreter", "ase"), ("British Sign Language", "bfi"), ("Quebec Sign Language", "fcs"),
     ("LSQ", None), ("Mexican Sign Language", "mfs"), ("French Sign Language", "fsl"),
     ("International Sign", "ils"), ("Libras", "bzs")],
)  # fmt: skip
def test_sign_languages(raw, code):
    assert _read(raw)[:2] == (("reported", code) if code else ("unmapped", None))


@pytest.mark.parametrize(
    "raw", ["Sign Language", "Signed Exact English", "Pidgin Signed English", "Protactile"]
)
def test_signing_without_a_639_3_code_is_flagged_with_the_collective(raw):
    result = classify(raw, L)
    assert result.status.value == "ambiguous" and result.language is None
    assert result.language_collective == "sgn"


@pytest.mark.parametrize(
    ("raw", "candidates"),
    [
        ("Spanish/English", ("spa", "eng")),
        ("English and Spanish", ("eng", "spa")),
        ("Spanish & English", ("spa", "eng")),
        ("SPANISH AND ENGLISH", ("spa", "eng")),
        ("Spanish, English", ("spa", "eng")),
        ("Spanish; English", ("spa", "eng")),
        ("English or Spanish", ("eng", "spa")),
        ("English and ASL", ("eng", "ase")),
        ("Portuguese/Cape Verdean Creole", ("por", "kea")),
        ("Chinese (Traditional)/English", ("zho", "eng")),
        ("es/en", ("spa", "eng")),
        ("Filipino/Tagalog", ("fil", "tgl")),
        ("Chinese/Mandarin", ("zho", "cmn")),
        ("Farsi/Dari", ("fas", "prs")),
        ("Creole/English", ("hat", "kea", "pov", "jam", "eng")),
    ],
)
def test_labels_naming_two_languages_keep_both_candidates(raw, candidates):
    assert _read(raw) == ("multiple", None, candidates)


@pytest.mark.parametrize(("raw", "code"), [("Persian/Farsi", "fas"), ("Spanish or Spanish Creole", "spa")])
def test_two_names_of_one_language_are_one_language(raw, code):
    assert _read(raw)[:2] == ("reported", code)


@pytest.mark.parametrize("raw", ["Multiple languages", "mul", "Bilingual"])
def test_unspecified_multiple_languages_are_flagged_without_candidates(raw):
    assert _read(raw) == ("multiple", None, ())


@pytest.mark.parametrize(
    ("raw", "status"),
    [("und", "unknown"), ("Unknown language", "unknown"), ("Klingon/English", "unmapped"),
     ("Spanish (Klingon)", "unmapped"), ("English Spanish", "unmapped"), ("NA", "not_collected"),
     ("nan", "not_collected")],
)  # fmt: skip
def test_unclear_labels_stay_flagged(raw, status):
    assert _read(raw)[:2] == (status, None)


def test_code_map_may_target_an_iso_code():
    result = classify("Lang 7", L, {"Lang 7": "pt-BR"})
    assert (result.language, result.code_mapped_to) == ("por", "pt-BR")


def test_every_bare_code_alias_collision_was_reviewed():
    """An alias of two or three letters that ISO 639 gives to another language is read as the
    alias (the alias table wins); each such collision must be a reviewed one."""
    reviewed = {"asl": "American Sign Language, not Asilulu"}
    collisions = set()
    for key, part in language_reference().index.items():
        if not re.fullmatch(r"[a-z]{2,3}", key) or part.code is None:
            continue
        for lookup in (Language.from_part1, Language.from_part3, Language.from_part2b):
            try:
                other = lookup(key).part3
            except LanguageNotFoundError:
                continue
            if other != part.code:
                collisions.add(key)
    assert collisions == set(reviewed)


def test_iso_code_helper_rejects_non_codes():
    assert iso_code("  SPA ") == "spa"
    assert iso_code("sp") is None and iso_code("spanish") is None and iso_code("e1") is None
