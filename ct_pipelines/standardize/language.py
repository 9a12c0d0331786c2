"""Language labels as agencies write them -> ISO 639-3, without guessing.

Order of readings for one label (the first that fits wins):
1. the alias table (names, abbreviations, sign languages, status words; languages.yaml);
2. a BCP 47-style tag or bare ISO 639 code ("pt-BR", "zh-Hant", "ES", "chi", "cmn");
3. a language with a qualifier: a script/region/written form that does not change the language
   ("Portuguese (Brazil)", "Chinese Traditional") or a variety inside a macrolanguage
   ("Chinese - Mandarin", "Mandarin Chinese" -> cmn);
4. several languages ("Spanish/English", "English and ASL"): status ``multiple`` with every
   language as a candidate, never reduced to one.
Anything else stays ``unmapped``.

Bare three-letter codes are read only for languages that also have an ISO 639-1 code or appear
in the alias table: ISO 639-3 spends most English three-letter words on small languages ("yes"
is Nyankpa, "all" is Allar, "new" is Nepal Bhasa), so a rarer code in an agency file is more
likely a word than a language. Agencies that record rare languages by code map them explicitly
(``code_map: {language: {kxx: ...}}``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from ct_pipelines.standardize.iso639_tables import (
    IsoLanguage,
    from_part1,
    from_part2b,
    from_part2t,
    from_part3,
)
from ct_pipelines.standardize.reference import Part, PartKind, language_reference

_TAG = re.compile(
    r"^([A-Za-z]{2,3})(?:[-_]([A-Za-z]{3}))?(?:[-_]([A-Za-z]{4}))?(?:[-_]([A-Za-z]{2}|\d{3}))?$"
)
_QUALIFIER_SEPARATORS = (", ", " - ")
_MULTIPLE_SEPARATOR = re.compile(r"/|; | and | or | plus | with ")
_WEAK_SEPARATOR = re.compile(r", | - ")


@dataclass(frozen=True)
class LanguageReading:
    """What a language label says: one code, several candidates, a status, or nothing known."""

    part: Part | None = None
    multiple: tuple[str, ...] = ()


@cache
def _iso(code: str) -> IsoLanguage | None:
    lookups = (from_part1,) if len(code) == 2 else (from_part3, from_part2b, from_part2t)
    for lookup in lookups:
        found = lookup(code)
        if found is None:
            continue
        if found.status == "R":  # retired: follow ISO's change-to, else nothing
            return _iso(found.change_to) if found.change_to else None
        return found
    return None


@cache
def iso_code(token: str) -> str | None:
    """ISO 639-3 code for a bare ISO 639-1, 639-2/B, 639-2/T or 639-3 code in any case, within
    the codes read without a code map (see the module docstring)."""
    code = token.strip().lower()
    if not code.isascii() or not code.isalpha() or len(code) not in (2, 3):
        return None
    if code in language_reference().not_codes:
        return None
    found = _iso(code)
    if found is None or found.scope == "S":  # und/mis/mul/zxx are status words in the alias table
        return None
    if len(code) == 3 and not found.part1 and found.part3 not in language_reference().codes:
        return None
    return found.part3


@cache
def macrolanguage(code: str) -> str | None:
    found = _iso(code)
    return found.macrolanguage if found is not None else None


def _from_tag(raw: str) -> Part | None:
    """ "pt-BR", "zh-Hant-TW", "zh-yue", "EN_us": the language subtag, or a member language
    named by an extended subtag; script and region subtags do not change the language."""
    match = _TAG.match(raw.strip())
    if match is None:
        return None
    primary, extended = iso_code(match.group(1)), match.group(2)
    if primary is None:
        return None
    if extended:
        member = iso_code(extended)
        if member is None or macrolanguage(member) != primary:
            return None
        primary = member
    return Part(kind=PartKind.GROUP, code=primary)


def _single(key: str) -> Part | None:
    """A label naming one language: alias, bare code, or language plus qualifier."""
    reference = language_reference()
    part = reference.index.get(key)
    if part is not None:
        return part
    code = iso_code(key)
    if code is not None:
        return Part(kind=PartKind.GROUP, code=code)
    for first, second in _splits(key):
        found = _qualified(first, second) or _qualified(second, first)
        if found is not None:
            return found
    return None


def _splits(key: str) -> list[tuple[str, str]]:
    """Two-piece readings: around one qualifier separator, or at each space when there is none."""
    for separator in _QUALIFIER_SEPARATORS:
        pieces = key.split(separator)
        if len(pieces) == 2:
            return [(pieces[0], pieces[1])]
    if any(s in key for s in (*_QUALIFIER_SEPARATORS, "/", ";")):
        return []
    words = key.split(" ")
    return [(" ".join(words[:i]), " ".join(words[i:])) for i in range(1, len(words))]


def _qualified(base_label: str, qualifier: str) -> Part | None:
    """`base_label` is a language and `qualifier` a script/region/form of it or a variety in it."""
    base = _language(base_label)
    if base is None:
        return None
    if qualifier in language_reference().qualifiers:
        return base
    variety = _language(qualifier)
    if variety is None:
        return None
    if variety.code == base.code or macrolanguage(variety.code) == base.code:
        return variety
    return None


def _language(label: str) -> Part | None:
    """A label that is one language by itself: an alias of a language, or a bare code."""
    part = language_reference().index.get(label)
    if part is not None:
        return part if part.kind == PartKind.GROUP and part.code else None
    code = iso_code(label)
    return Part(kind=PartKind.GROUP, code=code) if code else None


def _pieces(key: str) -> list[str]:
    """Parts of a label naming several languages: "/", ";", "and", "or" split first; a comma
    or spaced dash splits only when nothing stronger is there ("Spanish, English")."""
    strong = [p.strip(" ,;") for p in _MULTIPLE_SEPARATOR.split(key) if p.strip(" ,;")]
    if len(strong) > 1:
        return strong
    return [p.strip(" ,;") for p in _WEAK_SEPARATOR.split(key) if p.strip(" ,;")]


def read_language(raw: str, key: str) -> LanguageReading:
    """Read one raw label; `key` is its normalized lookup key (parentheses kept as parts)."""
    part = _single(key) or _from_tag(raw)
    if part is not None:
        return LanguageReading(part)
    pieces = _pieces(key)
    if len(pieces) < 2:
        return LanguageReading()
    codes: list[str] = []
    for piece in pieces:
        found = _single(piece) or _from_tag(piece)
        if found is None or found.kind not in (PartKind.GROUP, PartKind.AMBIGUOUS):
            return LanguageReading()
        codes.extend([found.code] if found.kind == PartKind.GROUP and found.code else found.candidates)
    distinct = tuple(dict.fromkeys(codes))
    if len(distinct) == 1:
        return LanguageReading(Part(kind=PartKind.GROUP, code=distinct[0]))
    return LanguageReading(multiple=distinct)
