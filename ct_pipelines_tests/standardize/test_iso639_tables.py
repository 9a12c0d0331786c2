"""The quick ISO 639 lookups answer as python-iso639 does, for every code it knows."""

from __future__ import annotations

import subprocess
import sys

import pytest
from iso639 import ALL_LANGUAGES, Language, LanguageNotFoundError

from ct_pipelines.standardize import iso639_tables
from ct_pipelines.standardize.iso639_tables import from_part1, from_part2b, from_part2t, from_part3


def _theirs(lookup, code: str) -> Language | None:
    try:
        return lookup(code)
    except LanguageNotFoundError:
        return None


def _same(ours, theirs: Language | None) -> bool:
    if theirs is None:
        return ours is None
    change_to = theirs.retire_change_to if theirs.status == "R" else None
    return ours is not None and (
        ours.part3, ours.part1, ours.part2b, ours.part2t, ours.scope, ours.status, ours.name,
        ours.macrolanguage, ours.change_to,
    ) == (
        theirs.part3, theirs.part1, theirs.part2b, theirs.part2t, theirs.scope, theirs.status, theirs.name,
        theirs.macrolanguage, change_to,
    )  # fmt: skip


def test_every_code_reads_as_python_iso639_reads_it():
    codes = set()
    for language in ALL_LANGUAGES:
        codes.update(c for c in (language.part3, language.part1, language.part2b, language.part2t) if c)
    codes.update({"xx", "qqq", "kar", "sgn", "", "ENG"})  # unknown, collective, empty, wrong case
    assert len(codes) > 8000
    pairs = (
        (from_part3, Language.from_part3),
        (from_part1, Language.from_part1),
        (from_part2b, Language.from_part2b),
        (from_part2t, Language.from_part2t),
    )
    wrong = [
        (ours.__name__, code)
        for code in sorted(codes)
        for ours, theirs in pairs
        if not _same(ours(code), _theirs(theirs, code))
    ]
    assert wrong == []


def test_retired_codes_carry_their_replacement():
    moldavian = from_part3("mol")
    assert (moldavian.status, moldavian.change_to) == ("R", "ron")
    assert from_part3("cmn").macrolanguage == "zho"
    assert from_part1("zh").part3 == "zho"


def test_the_package_route_gives_the_same_table():
    """Used when a python-iso639 release moves its data files: same answers, only slower."""
    folder = iso639_tables._data_folder()
    assert folder is not None, "python-iso639 no longer ships its tables where this module reads them"
    assert iso639_tables._from_package() == iso639_tables._from_tables(folder)


@pytest.mark.parametrize("label", ["es", "zh-yue", "Chinese - Mandarin", "Spanish/English", "per"])
def test_reading_language_codes_does_not_import_python_iso639(label):
    """The point of the module: the 0.5 s import stays out of a run (checked in a fresh interpreter)."""
    script = (
        "import sys\n"
        "from ct_pipelines.catalog.blocks.standardize import RelField\n"
        "from ct_pipelines.standardize.normalize import classify\n"
        "from ct_pipelines.standardize.gate import ProblemLabel, code_map_snippet\n"
        f"classify({label!r}, RelField.LANGUAGE)\n"
        "print(code_map_snippet([ProblemLabel('x', 'ambiguous', ('cmn', 'yue'), 3)], RelField.LANGUAGE))\n"
        "print('iso639' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert '"cmn" (Mandarin Chinese), "yue" (Yue Chinese)' in out
    assert out.strip().endswith("False")
