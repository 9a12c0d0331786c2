"""Socrata-style API field names: lowercase snake case, unique, at most 63 characters."""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable

MAX_FIELD_NAME = 63

#: Labels of a row that totals the others (DPH's "ALL RACES/ETHNICITIES" and "BOTH SEXES", a "Total"
#: line, "Statewide", "State Total", "Hartford County Subtotal"), in RE2 syntax so DuckDB can search with
#: it; "All other ..." is a category.
TOTAL_LABEL_RE2 = (
    r"(?i)^\W*(all|total|totals|grand total|overall|statewide|state total|both sexes|both genders|sub-?totals?)\b"
    r"|\b(sub-?)?totals?\W*$"
)
#: The state's own name, which totals the towns or counties beside it in the same column ("Connecticut"
#: below 169 towns): read as a total only where the column holds other values too.
STATE_LABEL_RE2 = r"(?i)^\W*(state of connecticut|connecticut|ct|ct statewide)\W*$"


def is_total_label(value: str) -> bool:
    """Whether a value reads as a total of the other values of its column."""
    return bool(re.search(TOTAL_LABEL_RE2[4:], value, re.IGNORECASE)) and not re.match(
        r"\W*all\s+other\b", value, re.IGNORECASE
    )


def is_state_label(value: str) -> bool:
    """Whether a value names the state itself (a total where the column also names its towns)."""
    return bool(re.match(STATE_LABEL_RE2[4:], value, re.IGNORECASE))


#: A field named for a ZIP code (zip, zipcode, client_zip, mailing_zip_code, postal_code). Excel and
#: number-typed exports store 06810 as 6810, and the portal got 6810 for every Connecticut ZIP.
ZIP_WIDTH = 5
_ZIP_NAME = re.compile(r"(^|_)(zip|zipcode|zip_code|zip5|postal_code|postcode)$")


def is_zip_name(field: str) -> bool:
    """Whether a field name says the column holds ZIP codes (five digits, leading zeros kept)."""
    return bool(_ZIP_NAME.search(field))


def field_name(source_name: str) -> str:
    """Turn a source column name into an API field name (``"Date of Death"`` -> ``date_of_death``)."""
    text = unicodedata.normalize("NFKD", str(source_name)).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)  # camelCase -> camel_case
    text = re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower()
    if not text:
        text = "column"
    if text[0].isdigit():
        text = f"_{text}"
    return text[:MAX_FIELD_NAME].rstrip("_") or "column"


def field_names_for(source_names: list[str], explicit: list[str | None] | None = None) -> list[str]:
    """Field names for a whole header, made unique with ``_2``, ``_3`` suffixes within 63 characters."""
    explicit = explicit or [None] * len(source_names)
    taken: set[str] = {name for name in explicit if name}
    result: list[str] = []
    for source, chosen in zip(source_names, explicit, strict=True):
        if chosen:
            result.append(chosen)
            continue
        base = field_name(source)
        name, n = base, 1
        while name in taken:
            n += 1
            suffix = f"_{n}"
            name = base[: MAX_FIELD_NAME - len(suffix)] + suffix
        taken.add(name)
        result.append(name)
    return result


def normalized(name: str) -> str:
    """A source name with case and runs of whitespace ignored (``"Other "`` and ``"other"`` agree)."""
    return " ".join(str(name).split()).casefold()


def match_declared(declared: list[str], header: list[str]) -> tuple[list[int | None], list[str]]:
    """Which header position each declared source name reads, and the declared names not found.

    Exact names are matched first, so ``Other `` and ``Other`` in one header can each be declared;
    then names equal ignoring case and whitespace. A name declared twice takes the next unclaimed
    column with that name, in file order, so exact duplicates can be declared too."""
    positions: list[int | None] = [None] * len(declared)
    claimed: set[int] = set()
    for same in (lambda a, b: a == b, lambda a, b: normalized(a) == normalized(b)):
        for k, source in enumerate(declared):
            if positions[k] is not None:
                continue
            found = next((i for i, h in enumerate(header) if i not in claimed and same(source, h)), None)
            if found is not None:
                positions[k] = found
                claimed.add(found)
    missing = [source for source, at in zip(declared, positions, strict=True) if at is None]
    return positions, missing


def source_labels(header: list[str]) -> list[str]:
    """Distinct labels for a header's columns (lineage keys): a repeated name gets its position."""
    seen = [h.strip() or h for h in header]
    return [f"{s} (column {i + 1})" if seen.count(s) > 1 else s for i, s in enumerate(seen)]


def closest(name: str, names: Iterable[str]) -> str | None:
    """The name a misspelling most likely meant (``racee`` -> ``race``, ``ID`` -> ``id``), or None."""
    candidates = list(names)
    folded = {n.casefold(): n for n in candidates}
    if name.casefold() in folded:
        return folded[name.casefold()]
    found = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return found[0] if found else None
