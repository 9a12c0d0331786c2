"""Raw REL label -> standardized answer, for one distinct value at a time.

Rules (documented decisions):
- Nothing is guessed. A label, or any part of a multi-select label, that is not in the
  reference tables makes the whole value ``unmapped``; labels that fit several categories are
  ``ambiguous`` with candidates.
- Bare codes ("W", "1") are read only through a per-source code map: the same code means
  different things in different agencies, so no alias in the reference tables is a bare code.
- Blank, NULL, NA or punctuation-only cells are ``not_collected`` (no answer recorded);
  "Unknown", "Unable to obtain", "Not reported" are ``unknown`` (the source says it is unknown);
  "Declined", "Refused", "Prefer not to answer" are ``declined``.
- "Other"/"Some other race" is a ``reported`` answer with no race (``other_race`` flag, CDCREC
  2131-1); "Asian, Other" is Asian only (other Asian). Ticked as a separate box in a multi-select
  export ("Black;Other", "White;Some other race") it is a second race: two_or_more, as the Census
  counts Black and Some Other Race, never "Black alone". A pooled "Other/Unknown" or "Other/Multiracial" is
  ``ambiguous``: the group holds people of either answer. "Multiracial"/"Two or more races" sets two_or_more with
  no races.
- two_or_more means two or more OMB 1997 races (or a multiracial label); Hispanic plus one race
  is not two_or_more, though under SPD 15 it is two categories (spd15 holds both).
- In ``ethnicity`` and ``race_ethnicity`` columns a reported label without Hispanic origin means
  not Hispanic (the question offered Hispanic and it was not chosen); in ``race`` columns it
  says nothing (hispanic is null) and the ethnicity column decides. A combined label whose
  own words leave origin open ("Multiple race/ethnicity", "White, Unknown", "White (ethnicity
  unknown)") keeps its race and a null hispanic: origin is never inferred from silence there.
- Brazilian and Portuguese are not Hispanic (OMB: Spanish culture or origin). Portuguese rolls
  up to White; "Brazilian" alone rolls up to no race.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ct_pipelines.catalog.blocks.standardize import RACE_FIELDS, RelField
from ct_pipelines.standardize.language import read_language
from ct_pipelines.standardize.reference import (
    HISPANIC_UNKNOWN,
    NOT_HISPANIC_CODE,
    SEPARATOR_PATTERN,
    Part,
    PartKind,
    Status,
    language_reference,
    normalize_label,
    race_reference,
)

_STATUS_PRIORITY = (Status.DECLINED, Status.UNKNOWN, Status.NOT_COLLECTED)


@dataclass(frozen=True)
class RelResult:
    """The standardized reading of one raw value."""

    status: Status
    hispanic: bool | None = None
    omb1997: tuple[str, ...] = ()
    spd15: tuple[str, ...] = ()
    two_or_more: bool = False
    detailed: tuple[str, ...] = ()
    candidates: tuple[str, ...] = ()
    other_race: bool = False
    language: str | None = None
    language_collective: str | None = None
    value: str | None = None  # english proficiency level or interpreter need ("true"/"false")
    code_mapped_to: str | None = None

    def as_json(self, raw: str | None) -> dict[str, object]:
        """The `rel map` line shape (stable keys; lists sorted for the category sets)."""
        return {
            "raw": raw,
            "status": self.status.value,
            "hispanic": self.hispanic,
            "omb1997": list(self.omb1997),
            "spd15": list(self.spd15),
            "two_or_more": self.two_or_more,
            "detailed": list(self.detailed),
            "candidates": list(self.candidates),
            "language": self.language,
            "language_collective": self.language_collective,
            "other_race": self.other_race,
            "value": self.value,
            "code_mapped_to": self.code_mapped_to,
        }


UNMAPPED = RelResult(Status.UNMAPPED)
NOT_COLLECTED = RelResult(Status.NOT_COLLECTED)


@dataclass
class _Parsed:
    parts: list[Part] = field(default_factory=list)
    ok: bool = True
    selections: bool = False  # parts separated by "; ": boxes ticked apart, as multi-select exports write


def _apply_code_map(raw: str, code_map: dict[str, str] | None) -> str | None:
    """Label for a source code, matching exactly first and then ignoring case and spaces. A
    "TODO" target (as the gate's code_map snippet writes it) is not a mapping yet."""
    if code_map:
        code_map = {k: v for k, v in code_map.items() if not v.strip().upper().startswith("TODO")}
    if not code_map:
        return None
    stripped = raw.strip()
    if stripped in code_map:
        return code_map[stripped]
    folded = {k.strip().casefold(): v for k, v in code_map.items()}
    return folded.get(stripped.casefold())


def _lookup(key: str, field: RelField) -> Part | None:
    reference = race_reference()
    if field == RelField.ETHNICITY and key in reference.ethnicity_answers:
        return reference.ethnicity_answers[key]
    return reference.index.get(key)


def _parse_atom(text: str, field: RelField, depth: int = 0) -> list[Part] | None:
    """One piece without separators: an alias, or an alias wrapped in a Hispanic-origin modifier."""
    part = _lookup(text, field)
    if part is not None:
        return [part]
    if depth > 2:
        return None
    mods = race_reference().modifiers
    hispanic = _lookup("hispanic", RelField.RACE)
    not_hispanic = _lookup("not hispanic", RelField.RACE)
    rules: list[tuple[tuple[str, ...], bool, Part | None]] = [
        (mods.not_hispanic_prefixes, True, not_hispanic),
        (mods.not_hispanic_suffixes, False, not_hispanic),
        (mods.hispanic_prefixes, True, hispanic),
        (mods.hispanic_suffixes, False, hispanic),
        (mods.ignored_suffixes, False, None),
    ]
    for words, is_prefix, implied in rules:
        for word in words:
            if is_prefix and text.startswith(word + " "):
                rest = text[len(word) + 1 :]
            elif not is_prefix and text.endswith(" " + word):
                rest = text[: -len(word) - 1]
            else:
                continue
            inner = _parse_atom(rest, field, depth + 1)
            if inner is not None:
                return inner + ([implied] if implied else [])
    return None


def _parse_key(key: str, field: RelField) -> _Parsed:
    """Split a normalized label into known parts, longest known span first, so compound labels
    such as "Black/African American" or "American Indian and Alaska Native" stay whole."""
    whole = _parse_atom(key, field)
    if whole is not None:
        return _Parsed(whole)
    tokens = SEPARATOR_PATTERN.split(key)  # atoms at even positions, separators at odd
    atoms = len(tokens) // 2 + 1
    parsed = _Parsed(selections="; " in tokens[1::2])
    start = 0
    while start < atoms:
        for end in range(atoms, start, -1):
            span = "".join(tokens[2 * start : 2 * end - 1])
            found = _parse_atom(span, field) if span else []
            if found is not None:
                parsed.parts.extend(found)
                start = end
                break
        else:
            return _Parsed(ok=False)
    return parsed


def _pooled_candidates(parts: list[Part], answers: list[Part]) -> tuple[str, ...]:
    """The answers a pooled label such as "Other/Unknown" or "Other/Multiracial" stands for.

    "Other" names no category, so a status or a multiracial part beside it cannot qualify it
    (as "Unknown" beside "White" leaves only origin open): the source put people of either
    answer in one group, and calling them all Other, or all multiracial, would claim what it
    did not collect.
    """
    kinds = {p.kind for p in answers}
    if PartKind.OTHER not in kinds or any(p.omb1997 or p.spd15 or p.candidates for p in answers):
        return ()
    if any(isinstance(p.hispanic, bool) for p in answers):
        return ()
    pooled = {"OTHER"}
    if PartKind.MULTIRACIAL in kinds:
        pooled.add("MULTIRACIAL")
    pooled |= {p.status.value.upper() for p in parts if p.kind == PartKind.STATUS and p.status is not None}
    return tuple(sorted(pooled)) if len(pooled) > 1 else ()


def _combine(parts: list[Part], field: RelField) -> RelResult:
    """Merge the parts of one label into a single answer."""
    answers = [p for p in parts if p.kind != PartKind.STATUS]
    if not answers:
        statuses = {p.status for p in parts}
        return RelResult(next((s for s in _STATUS_PRIORITY if s in statuses), Status.NOT_COLLECTED))
    pooled = _pooled_candidates(parts, answers)
    if pooled:
        return RelResult(Status.AMBIGUOUS, candidates=pooled)
    omb = frozenset().union(*(p.omb1997 for p in answers))
    spd = set().union(*(p.spd15 for p in answers))
    stated = {p.hispanic for p in answers if isinstance(p.hispanic, bool)}
    candidates: set[str] = set().union(*(p.candidates for p in answers))
    status = Status.AMBIGUOUS if candidates else Status.REPORTED
    hispanic: bool | None
    if len(stated) == 2:
        hispanic, status = None, Status.AMBIGUOUS
        candidates |= {"HISPANIC", "NOT_HISPANIC"}
    elif stated:
        hispanic = stated.pop()
    elif (
        field != RelField.RACE
        and not any(p.hispanic == HISPANIC_UNKNOWN for p in answers)
        and len(answers) == len(parts)  # a status part beside a race leaves origin open
    ):
        hispanic = False
    else:
        hispanic = None
    if hispanic:
        spd.add("HISPANIC")
    else:
        spd.discard("HISPANIC")
    codes = [p.code for p in answers if p.code]
    if hispanic is None:
        codes = [c for c in codes if c != NOT_HISPANIC_CODE]
    return RelResult(
        status=status,
        hispanic=hispanic,
        omb1997=tuple(sorted(omb)),
        spd15=tuple(sorted(spd)),
        two_or_more=len(omb) >= 2 or any(p.kind == PartKind.MULTIRACIAL for p in answers),
        detailed=tuple(dict.fromkeys(codes)),
        candidates=tuple(sorted(candidates)),
        other_race=any(p.kind == PartKind.OTHER for p in answers),
    )


def _keys(label: str) -> list[str]:
    """Both parenthesis readings: "Asian (Chinese)" keeps its detail, while
    "White (Examples include German, Irish)" drops the example text."""
    return list(dict.fromkeys([normalize_label(label, split_parentheses=True), normalize_label(label)]))


def classify_race(raw: str | None, field: RelField, code_map: dict[str, str] | None = None) -> RelResult:
    """Standardize one race, ethnicity or combined race/ethnicity value."""
    if raw is None or not raw.strip():
        return NOT_COLLECTED
    mapped = _apply_code_map(raw, code_map)
    label = mapped if mapped is not None else raw
    for key in _keys(label):
        parsed = _parse_key(key, field)
        if parsed.ok:
            result = _combine(parsed.parts, field)
            if parsed.selections and result.other_race and result.omb1997 and not result.two_or_more:
                result = replace(result, two_or_more=True)  # see the module docstring: "Black; Other"
            return _with_mapping(result, mapped)
    return _with_mapping(UNMAPPED, mapped)


def _with_mapping(result: RelResult, mapped: str | None) -> RelResult:
    if mapped is None:
        return result
    return RelResult(**{**result.__dict__, "code_mapped_to": mapped})


def classify_language(raw: str | None, code_map: dict[str, str] | None = None) -> RelResult:
    """Standardize one spoken/written language value to ISO 639-3 (see rel/language.py)."""
    if raw is None or not raw.strip():
        return NOT_COLLECTED
    mapped = _apply_code_map(raw, code_map)
    label = mapped if mapped is not None else raw
    reading = read_language(label, normalize_label(label, split_parentheses=True))
    part = reading.part
    if reading.multiple:
        result = RelResult(Status.MULTIPLE, candidates=reading.multiple)
    elif part is None:
        result = UNMAPPED
    elif part.kind == PartKind.STATUS:
        result = RelResult(part.status or Status.UNKNOWN)
    elif part.kind == PartKind.AMBIGUOUS:
        result = RelResult(Status.AMBIGUOUS, candidates=part.candidates, language_collective=part.collective)
    elif part.kind == PartKind.MULTIRACIAL:
        result = RelResult(Status.MULTIPLE)
    elif part.kind == PartKind.OTHER:
        result = RelResult(Status.REPORTED, other_race=False, value="other")
    else:
        result = RelResult(Status.REPORTED, language=part.code)
    return _with_mapping(result, mapped)


def classify_answer(raw: str | None, field: RelField, code_map: dict[str, str] | None = None) -> RelResult:
    """English proficiency level or interpreter need, normalized to a small fixed vocabulary."""
    if raw is None or not raw.strip():
        return NOT_COLLECTED
    mapped = _apply_code_map(raw, code_map)
    reference = language_reference()
    table = (
        reference.english_proficiency
        if field == RelField.ENGLISH_PROFICIENCY
        else reference.interpreter_needed
    )
    for key in _keys(mapped if mapped is not None else raw):
        if key in table:
            return _with_mapping(RelResult(Status.REPORTED, value=table[key]), mapped)
        status = race_reference().index.get(key)
        if status is not None and status.kind == PartKind.STATUS and status.status:
            return _with_mapping(RelResult(status.status), mapped)
    return _with_mapping(UNMAPPED, mapped)


def classify(raw: str | None, field: RelField, code_map: dict[str, str] | None = None) -> RelResult:
    """Standardize one raw value of a column holding `field`."""
    if field in RACE_FIELDS:
        return classify_race(raw, field, code_map)
    if field == RelField.LANGUAGE:
        return classify_language(raw, code_map)
    return classify_answer(raw, field, code_map)
