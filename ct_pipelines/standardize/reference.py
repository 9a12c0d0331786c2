"""The REL reference tables (ct_pipelines/standardize/data/*.yaml) loaded into lookup indices.

The tables are data, not code, so reviewers can check codes and roll-ups against the standards
without reading Python, and a new spelling is a one-line YAML change.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ct_pipelines.catalog.loader import FastLoader

OMB1997_RACES = ("AIAN", "ASIAN", "BLACK", "NHPI", "WHITE")
SPD15_CATEGORIES = ("AIAN", "ASIAN", "BLACK", "HISPANIC", "MENA", "NHPI", "WHITE")
NOT_HISPANIC_CODE = "2186-5"
OTHER_RACE_CODE = "2131-1"


class Status(StrEnum):
    """What kind of answer a raw label is; only REPORTED carries categories for certain."""

    REPORTED = "reported"
    DECLINED = "declined"
    UNKNOWN = "unknown"
    NOT_COLLECTED = "not_collected"
    AMBIGUOUS = "ambiguous"
    UNMAPPED = "unmapped"
    MULTIPLE = "multiple"  # languages: the label names more than one language


class PartKind(StrEnum):
    GROUP = "group"  # a race, ethnicity or detailed group
    STATUS = "status"  # declined / unknown / not collected
    OTHER = "other"  # "Other", "Some other race": a real answer that names no category
    MULTIRACIAL = "multiracial"  # "Two or more races" / "Multiple languages": more than one, which unknown
    AMBIGUOUS = "ambiguous"  # fits several categories


# Marks a label that mixes race and ethnicity ("Multiple race/ethnicity"): Hispanic origin
# must then not be inferred from the absence of a Hispanic part.
HISPANIC_UNKNOWN = "unknown"


@dataclass(frozen=True)
class Part:
    """One recognized piece of a label, e.g. "Hispanic" or "White" in "Hispanic, White"."""

    kind: PartKind
    code: str | None = None
    omb1997: frozenset[str] = frozenset()
    spd15: frozenset[str] = frozenset()
    hispanic: bool | str | None = None
    status: Status | None = None
    candidates: tuple[str, ...] = ()
    collective: str | None = None


@dataclass(frozen=True)
class Modifiers:
    not_hispanic_prefixes: tuple[str, ...]
    not_hispanic_suffixes: tuple[str, ...]
    hispanic_prefixes: tuple[str, ...]
    hispanic_suffixes: tuple[str, ...]
    ignored_suffixes: tuple[str, ...]


@dataclass(frozen=True)
class RaceReference:
    version: str
    index: dict[str, Part]
    ethnicity_answers: dict[str, Part]
    modifiers: Modifiers
    groups: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class LanguageReference:
    version: str
    index: dict[str, Part]
    codes: frozenset[str]
    english_proficiency: dict[str, str]
    interpreter_needed: dict[str, str]
    qualifiers: frozenset[str] = frozenset()  # script/region/form words that keep the language
    not_codes: frozenset[str] = frozenset()  # words never read as bare ISO codes


_TAGS = re.compile(r"<[^>]*>")
_PARENS = re.compile(r"[(\[][^)\]]*[)\]]?")
_PAREN_NOISE = re.compile(r"\((?:other|others|s|specify|please specify|not specified)\)")
_SPACED_DASH = re.compile(r"\s+[-\u2013\u2014]+\s+|^\s*[-\u2013\u2014]+\s*")
_NOT_ALLOWED = re.compile(r"[^a-z0-9 ,;/\x1f]")
SEPARATOR_PATTERN = re.compile(r"(, |; |/| - | and )")


def normalize_label(text: str, split_parentheses: bool = False) -> str:
    """Canonical lookup key: case, accents, HTML, underscores, punctuation and spacing removed.

    Separators are kept in one canonical spelling (", ", "; ", "/", " - ", " and ") because
    they decide how multi-select labels split. Parenthesized text is either dropped
    ("(Examples include German, Irish)") or, with split_parentheses, kept as another part
    ("Asian (Chinese)").
    """
    text = _TAGS.sub(" ", html.unescape(text))
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = text.replace("_", " ").replace("\u00a0", " ").replace("\u2026", " ")
    text = re.sub(r"['\u2018\u2019`]", "", text)
    text = _PAREN_NOISE.sub(" ", text)
    text = re.sub(r"[()\[\]]", ",", text) if split_parentheses else _PARENS.sub(" ", text)
    text = _SPACED_DASH.sub("\x1f", text)  # a spaced dash separates "WHITE - BRAZILIAN"
    text = text.replace("&", " and ").replace("+", ",").replace("|", ",").replace("-", " ")
    text = _NOT_ALLOWED.sub(" ", text)
    text = re.sub(r"\s*,\s*", ", ", text)
    text = re.sub(r"\s*;\s*", "; ", text)
    text = re.sub(r"\s*/\s*", "/", text)
    text = re.sub(r"\s*\x1f\s*", " - ", text)
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"(?:(?:, |; |/| - )\s*)+(?=, |; |/| - )", "", text)  # ", , " -> ", "
    return re.sub(r"^(?:[ ,;/-])+|(?:[ ,;/-])+$", "", text)


def label_keys(alias: str) -> set[str]:
    """Index key of an alias; parentheses in an alias are meaningful ("Chinese (Mandarin)")."""
    return {normalize_label(alias, split_parentheses=True)}


def _load(name: str) -> dict[str, Any]:
    text = resources.files("ct_pipelines.standardize").joinpath("data", name).read_text(encoding="utf-8")
    return yaml.load(text, Loader=FastLoader)  # noqa: S506 - a safe loader (libyaml's when installed: 8x faster)


def _version(name: str) -> str:
    text = resources.files("ct_pipelines.standardize").joinpath("data", name).read_text(encoding="utf-8")
    match = re.search(r"^# version: (\S+)", text, re.MULTILINE)
    return match.group(1) if match else "unversioned"


def _add(index: dict[str, Part], alias: str, part: Part, table: str) -> None:
    for key in label_keys(str(alias)):
        existing = index.get(key)
        if existing is not None and existing != part:
            raise ValueError(f"{table}: alias '{alias}' is defined twice with different meanings")
        index[key] = part


def _group_part(group: dict[str, Any]) -> Part:
    hispanic = group.get("hispanic")
    omb = frozenset(group.get("omb1997", []))
    spd = frozenset(group.get("spd15", omb))
    if hispanic is True:
        spd |= {"HISPANIC"}
    kind = PartKind.OTHER if group.get("other") else PartKind.GROUP
    return Part(kind=kind, code=str(group["code"]), omb1997=omb, spd15=spd, hispanic=hispanic)


@cache
def race_reference() -> RaceReference:
    """Alias index for race and ethnicity labels, built once per process."""
    data = _load("race_ethnicity.yaml")
    table = "race_ethnicity.yaml"
    index: dict[str, Part] = {}
    for group in data["groups"]:
        part = _group_part(group)
        for alias in group.get("aliases", []):
            _add(index, alias, part, table)
    for status, aliases in data["status_labels"].items():
        for alias in aliases:
            _add(index, alias, Part(kind=PartKind.STATUS, status=Status(status)), table)
    other = Part(kind=PartKind.OTHER, code=OTHER_RACE_CODE)
    for alias in data["other_labels"]:
        _add(index, alias, other, table)
    for entry in data["multiracial_labels"]:
        _add(index, entry["alias"], Part(kind=PartKind.MULTIRACIAL, hispanic=entry.get("hispanic")), table)
    for entry in data["ambiguous_labels"]:
        part = Part(kind=PartKind.AMBIGUOUS, candidates=tuple(entry["candidates"]))
        _add(index, entry["alias"], part, table)
    hispanic = index[normalize_label("hispanic")]
    not_hispanic = index[normalize_label("not hispanic")]
    answers: dict[str, Part] = {}
    for alias in data["ethnicity_answers"]["hispanic"]:
        _add(answers, alias, hispanic, table)
    for alias in data["ethnicity_answers"]["not_hispanic"]:
        _add(answers, alias, not_hispanic, table)
    mods = data["modifiers"]
    modifiers = Modifiers(
        **{
            name: tuple(sorted((normalize_label(a) for a in mods[name]), key=len, reverse=True))
            for name in mods
        }
    )
    return RaceReference(_version(table), index, answers, modifiers, data["groups"])


@cache
def language_reference() -> LanguageReference:
    """Alias index for language labels, built once per process."""
    data = _load("languages.yaml")
    table = "languages.yaml"
    index: dict[str, Part] = {}
    for entry in data["languages"]:
        part = Part(kind=PartKind.GROUP, code=entry["code"])
        for alias in entry["aliases"]:
            _add(index, alias, part, table)
    for entry in data["ambiguous"]:
        part = Part(
            kind=PartKind.AMBIGUOUS, candidates=tuple(entry["candidates"]), collective=entry.get("collective")
        )
        _add(index, entry["alias"], part, table)
    for alias in data["other_labels"]:
        _add(index, alias, Part(kind=PartKind.OTHER), table)
    for alias in data["multiple_labels"]:
        _add(index, alias, Part(kind=PartKind.MULTIRACIAL), table)
    race_data = _load("race_ethnicity.yaml")
    statuses = [*race_data["status_labels"].items(), *data["status_labels"].items()]
    for status, aliases in statuses:
        for alias in aliases:
            _add(index, alias, Part(kind=PartKind.STATUS, status=Status(status)), table)
    codes = frozenset(e["code"] for e in data["languages"]) | frozenset(
        c for e in data["ambiguous"] for c in e["candidates"]
    )

    def flatten(section: dict[str, list[str]]) -> dict[str, str]:
        return {normalize_label(str(alias)): value for value, aliases in section.items() for alias in aliases}

    return LanguageReference(
        _version(table),
        index,
        codes,
        flatten(data["english_proficiency"]),
        flatten(data["interpreter_needed"]),
        frozenset(normalize_label(str(q)) for group in data["qualifiers"].values() for q in group),
        frozenset(str(w) for w in data["not_codes"]),
    )


@cache
def named_code_maps() -> dict[str, dict[str, Any]]:
    """Registry of code maps for known source systems (data/code_maps.yaml)."""
    return _load("code_maps.yaml")


def load_code_map_file(path: Path, field: str) -> dict[str, str]:
    """Read a user code map: either {field: {code: label}} or a flat {code: label}."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of codes to labels, e.g. W: White")
    if field in data and isinstance(data[field], dict):
        data = data[field]
    elif any(isinstance(v, dict) for v in data.values()):
        raise ValueError(f"{path}: has no '{field}:' section; sections found: {', '.join(map(str, data))}")
    return {str(k): str(v) for k, v in data.items()}


def code_map_for(
    field: str, source: str | None, overrides: dict[str, dict[str, str]] | None
) -> dict[str, str]:
    """The codes a column of `field` may carry: the named source's map, then the dataset's own
    entries on top. A combined race/ethnicity column falls back to the race map."""
    named = named_code_maps().get(source or "", {})
    overrides = overrides or {}
    merged: dict[str, str] = {}
    fallbacks = [field] if field != "race_ethnicity" else ["race", "race_ethnicity"]
    for name in fallbacks:
        merged.update({str(k): str(v) for k, v in (named.get(name) or {}).items()})
        merged.update({str(k): str(v) for k, v in (overrides.get(name) or {}).items()})
    return merged
