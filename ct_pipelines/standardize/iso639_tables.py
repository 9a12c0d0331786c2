"""ISO 639 code lookups from the SIL code tables that python-iso639 ships, read in about 10 ms.

Importing python-iso639 builds a ``Language`` object for each of its 8,300 codes, with the 200 KB name
index: 0.5 s of every run that meets a language code or names a candidate language. The standardizer
needs only codes, scope, status, reference name, macrolanguage and a retired code's replacement, so this
module reads the three tables that hold them (codes, retirements, macrolanguages) from the same files.
The lookups answer as python-iso639's ``from_part1/2b/2t/3`` do; the tests compare every code.
"""

from __future__ import annotations

import csv
import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path

_TABLES = ("iso-639-3.tab", "iso-639-3_Retirements.tab", "iso-639-3-macrolanguages.tab")


@dataclass(frozen=True)
class IsoLanguage:
    """One ISO 639-3 code: ``scope`` I(ndividual), M(acrolanguage) or S(pecial); ``status`` A(ctive) or
    R(etired), a retired code carrying the code ISO changed it to, if any."""

    part3: str
    part1: str | None
    part2b: str | None
    part2t: str | None
    scope: str
    status: str
    name: str
    macrolanguage: str | None
    change_to: str | None


@dataclass(frozen=True)
class _Index:
    part3: dict[str, IsoLanguage]
    part1: dict[str, str]
    part2b: dict[str, str]
    part2t: dict[str, str]


def _rows(folder: Path, name: str) -> list[dict[str, str]]:
    with (folder / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def _data_folder() -> Path | None:
    """python-iso639's copy of the SIL tables, found without importing the package (None if absent)."""
    spec = importlib.util.find_spec("iso639")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "_data"
    return folder if all((folder / name).is_file() for name in _TABLES) else None


def _from_tables(folder: Path) -> dict[str, IsoLanguage]:
    codes, retirements, macros = (_rows(folder, name) for name in _TABLES)
    macro = {row["I_Id"]: row["M_Id"] for row in macros}
    out: dict[str, IsoLanguage] = {}
    for row in retirements:  # an active row of the same code, if any, replaces it below
        out[row["Id"]] = IsoLanguage(
            part3=row["Id"],
            part1=None,
            part2b=None,
            part2t=None,
            scope="I",
            status="R",
            name=row["Ref_Name"],
            macrolanguage=macro.get(row["Id"]),
            change_to=row["Change_To"] or None,
        )
    for row in codes:
        out[row["Id"]] = IsoLanguage(
            part3=row["Id"],
            part1=row["Part1"] or None,
            part2b=row["Part2b"] or None,
            part2t=row["Part2t"] or None,
            scope=row["Scope"],
            status="A",
            name=row["Ref_Name"],
            macrolanguage=macro.get(row["Id"]),
            change_to=None,
        )
    return out


def _from_package() -> dict[str, IsoLanguage]:
    """The same table through python-iso639's public API (slow import): for a release that moves its files."""
    from iso639 import ALL_LANGUAGES

    return {
        found.part3: IsoLanguage(
            found.part3,
            found.part1,
            found.part2b,
            found.part2t,
            found.scope,
            found.status,
            found.name,
            found.macrolanguage,
            found.retire_change_to if found.status == "R" else None,
        )
        for found in ALL_LANGUAGES
    }


@cache
def _index() -> _Index:
    folder = _data_folder()
    by_part3 = _from_tables(folder) if folder is not None else _from_package()
    active = [found for found in by_part3.values() if found.status == "A"]
    return _Index(
        part3=by_part3,
        part1={found.part1: found.part3 for found in active if found.part1},
        part2b={found.part2b: found.part3 for found in active if found.part2b},
        part2t={found.part2t: found.part3 for found in active if found.part2t},
    )


def from_part3(code: str) -> IsoLanguage | None:
    """An ISO 639-3 code, active or retired (exact, lower case)."""
    return _index().part3.get(code.strip())


def from_part1(code: str) -> IsoLanguage | None:
    """An ISO 639-1 (two-letter) code."""
    return _active(_index().part1, code)


def from_part2b(code: str) -> IsoLanguage | None:
    """An ISO 639-2 bibliographic code ("chi", "ger")."""
    return _active(_index().part2b, code)


def from_part2t(code: str) -> IsoLanguage | None:
    """An ISO 639-2 terminological code ("zho", "deu")."""
    return _active(_index().part2t, code)


def _active(part3_by_code: dict[str, str], code: str) -> IsoLanguage | None:
    part3 = part3_by_code.get(code.strip())
    return _index().part3[part3] if part3 else None
