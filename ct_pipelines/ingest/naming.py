"""Socrata-style API field names: lowercase snake case, unique, at most 63 characters."""

from __future__ import annotations

import re
import unicodedata

MAX_FIELD_NAME = 63


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
