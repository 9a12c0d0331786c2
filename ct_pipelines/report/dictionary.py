"""Data dictionaries: one row per field, as CSV, XLSX and HTML, for staff and the public.

The rows say where each field comes from (the agency's column name), what it may hold, how race,
ethnicity and language are mapped, what suppression applies, and which personal columns were left out.
Fields the publish step computes (aggregates from a SQL file) are listed from the published table.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from ct_pipelines.catalog.models import Column, Dataset, published_column_description

HEADERS = {
    "field_name": "Field name",
    "source_name": "Source column",
    "type": "Type",
    "description": "Description",
    "allowed": "Allowed values or range",
    "rel_mapping": "Race, ethnicity and language mapping",
    "suppression": "Suppression rule",
    "published": "Published",
}
_REL_WORDS = {
    "race": "race labels mapped to OMB 1997 and SPD 15 (2024) categories and CDC codes",
    "ethnicity": "ethnicity labels mapped to Hispanic or Latino / not Hispanic or Latino",
    "race_ethnicity": "combined race and ethnicity labels mapped to OMB 1997 and SPD 15 (2024) categories",
    "language": "language names mapped to ISO 639-3 codes",
    "english_proficiency": "English proficiency labels standardized",
    "interpreter_needed": "interpreter-needed answers standardized to yes/no",
}


def _allowed(column: Column) -> str:
    parts = []
    if column.allowed_values:
        parts.append("one of: " + ", ".join(column.allowed_values))
    if column.min is not None or column.max is not None:
        unit = "year " if column.type.value in ("date", "datetime") else ""
        low = "no minimum" if column.min is None else f"{unit}{column.min:g}"
        high = "no maximum" if column.max is None else f"{unit}{column.max:g}"
        parts.append(f"from {low} to {high}")
    if column.pattern:
        parts.append(f"matches {column.pattern}")
    if column.not_in_future:
        parts.append("not in the future")
    if column.required:
        parts.append("required")
    if column.unique:
        parts.append("unique")
    if column.checks:
        parts.append("checked: " + ", ".join(column.checks))
    return "; ".join(parts)


def _suppression(dataset: Dataset, field: str) -> str:
    rule = dataset.protect.suppression
    if rule is None:
        return ""
    if field == rule.count_column:
        zeros = " and zeros" if rule.protect_zeros else ""
        return (
            f"counts of 1 to {rule.threshold}{zeros} are suppressed, with complementary cells so totals "
            "cannot reveal them"
        )
    if field in rule.rate_columns:
        return f"suppressed when its count ({rule.count_column}) is"
    if field == rule.flag_column:
        return "marks suppressed cells"
    return ""


def _declared_type(duckdb_type: str) -> str:
    """A computed column's DuckDB type in the words the YAML's column types use (as the rows above it)."""
    kind = duckdb_type.upper()
    if kind.startswith(("VARCHAR", "ENUM")):
        return "text"
    if kind.startswith("BOOL"):
        return "boolean"
    if kind.startswith("TIMESTAMP"):
        return "datetime"
    if kind.startswith("DATE"):
        return "date"
    if kind.endswith(("INT", "INTEGER")):
        return "integer"
    if kind.startswith(("DOUBLE", "FLOAT", "DECIMAL", "REAL", "NUMERIC")):
        return "number"
    return duckdb_type.lower()


def dictionary_rows(
    dataset: Dataset, published_columns: list[tuple[str, str]] | None = None
) -> list[dict[str, str]]:
    """One row per source column, then one per computed field of the published table (when known)."""
    rel = {c.column: str(c.field) for c in (dataset.standardize.columns if dataset.standardize else [])}
    published = {name for name, _ in published_columns} if published_columns is not None else None
    rows: list[dict[str, str]] = []
    for column in dataset.columns:
        name = column.field_name or column.source
        if column.pii:
            state = "no: personal information, left out"
        elif published is None or name in published:
            state = "yes"
        else:
            state = "no: aggregated into the published table"
        rel_words = _REL_WORDS.get(rel[name], rel[name]) if name in rel else ""
        rows.append(
            {
                "field_name": name,
                "source_name": column.source,
                "type": column.type.value,
                "description": column.description,
                "allowed": _allowed(column),
                "rel_mapping": rel_words,
                "suppression": _suppression(dataset, name),
                "published": state,
            }
        )
    declared = {r["field_name"] for r in rows}
    for name, kind in published_columns or []:
        if name in declared:
            continue
        rows.append(
            {
                "field_name": name,
                "source_name": "",
                "type": _declared_type(kind),
                "description": published_column_description(dataset, name)
                or f"computed by the publish step ({dataset.protect.mode})",
                "allowed": "",
                "rel_mapping": "reporting group from the standardized race and ethnicity"
                if "race" in name
                else "",
                "suppression": _suppression(dataset, name),
                "published": "yes",
            }
        )
    return rows


def write_dictionary(rows: list[dict[str, str]], folder: Path, dataset_id: str) -> dict[str, Path]:
    """``<id>_dictionary.csv`` and ``.xlsx`` in ``folder``; returns their paths by format."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    folder.mkdir(parents=True, exist_ok=True)
    paths = {"csv": folder / f"{dataset_id}_dictionary.csv", "xlsx": folder / f"{dataset_id}_dictionary.xlsx"}
    with paths["csv"].open("w", newline="", encoding="utf-8-sig") as handle:  # BOM: Excel opens UTF-8 right
        writer = csv.writer(handle)
        writer.writerow(HEADERS.values())
        writer.writerows([row[k] for k in HEADERS] for row in rows)
    book = Workbook()
    sheet: Any = book.active
    sheet.title = "Data dictionary"
    sheet.append(list(HEADERS.values()))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append([row[k] for k in HEADERS])
    for letter, width in zip("ABCDEFGH", (24, 24, 10, 40, 36, 36, 36, 30), strict=True):
        sheet.column_dimensions[letter].width = width
    for line in sheet.iter_rows(min_row=2):
        for cell in line:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    sheet.freeze_panes = "A2"
    book.save(paths["xlsx"])
    return paths
