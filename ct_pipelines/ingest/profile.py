"""What the pipeline sees in a file, and a starter dataset YAML written from it.

Profiling runs the real ingest readers against an in-memory DuckDB, so what ``ct-pipelines profile``
reports (encoding, header line, row count, field names) is exactly what ingest will do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import yaml

from ct_pipelines.catalog.handbook import Category, UpdateFrequency
from ct_pipelines.catalog.models import SourceFormat
from ct_pipelines.ingest.ingest import source_format
from ct_pipelines.ingest.naming import field_names_for
from ct_pipelines.ingest.readers import (
    ReadResult,
    create_rows_view,
    quote_ident,
    read_csv_into,
    read_excel_into,
    read_json_into,
    read_parquet_into,
)

# Formats tried, in order, when inferring date and timestamp columns (US agency exports first).
DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y", "%m-%d-%Y", "%Y/%m/%d")
DATETIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M:%S",
                    "%m/%d/%Y %H:%M")


@dataclass
class ColumnProfile:
    name: str
    field_name: str
    type: str
    nulls: int = 0
    distinct: int = 0


@dataclass
class Profile:
    path: Path
    read: ReadResult
    columns: list[ColumnProfile]
    sample: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "format": self.read.format,
            "encoding": self.read.encoding,
            "bom": self.read.bom,
            "delimiter": self.read.delimiter,
            "header_row": self.read.header_line,
            "sheet": self.read.sheet,
            "rows": self.read.rows,
            "columns": [{"name": c.name, "field_name": c.field_name, "type": c.type, "nulls": c.nulls,
                         "distinct": c.distinct} for c in self.columns],
            "sample": self.sample,
        }


def _infer_type(con: duckdb.DuckDBPyConnection, table: str, column: str) -> str:
    """The narrowest type every non-empty value fits; codes with leading zeros stay text."""
    col = quote_ident(column)
    checks = {
        "integer": f"TRY_CAST({col} AS BIGINT) IS NOT NULL AND NOT regexp_matches({col}, '^0[0-9]')",
        "number": f"TRY_CAST(replace({col}, ',', '') AS DOUBLE) IS NOT NULL AND NOT regexp_matches({col}, '^0[0-9]')",
        "date": " OR ".join(f"TRY_STRPTIME({col}, '{f}') IS NOT NULL" for f in DATE_FORMATS),
        "datetime": " OR ".join(f"TRY_STRPTIME({col}, '{f}') IS NOT NULL" for f in DATETIME_FORMATS),
        "boolean": f"lower({col}) IN ('true', 'false')",
    }
    selects = ", ".join(f"bool_and({expr}) AS {name}" for name, expr in checks.items())
    row = con.execute(f"SELECT count({col}), {selects} FROM {table} WHERE {col} IS NOT NULL").fetchone()
    if not row or row[0] == 0:
        return "text"
    found = dict(zip(checks, row[1:], strict=True))
    for kind in ("boolean", "integer", "number", "date", "datetime"):
        if found[kind]:
            return kind
    return "text"


def profile_file(path: Path, *, encoding: str = "auto", sheet: str | int | None = None,
                 header_row: int | None = None, delimiter: str | None = None, workdir: Path | None = None) -> Profile:
    con = duckdb.connect()
    table = "profiled"
    fmt = source_format(path, SourceFormat.AUTO)
    names_for = field_names_for
    if fmt == SourceFormat.CSV:
        read = read_csv_into(con, path, table, names_for, encoding=encoding, delimiter=delimiter,
                             header_row=header_row, workdir=workdir or path.parent)
    elif fmt == SourceFormat.EXCEL:
        read = read_excel_into(con, path, table, names_for, sheet=sheet, header_row=header_row)
    elif fmt == SourceFormat.JSON:
        read = read_json_into(con, path, table, names_for)
    else:
        read = read_parquet_into(con, path, table, names_for)
    create_rows_view(con, "profiled_rows", table, read, "profiled_lines")
    table = "profiled_rows"
    columns = []
    for source, name in zip(read.source_columns, read.field_names, strict=True):
        nulls, distinct = con.execute(
            f"SELECT count(*) - count({quote_ident(name)}), count(DISTINCT {quote_ident(name)}) FROM {table}").fetchone()
        columns.append(ColumnProfile(source, name, _infer_type(con, table, name), nulls, distinct))
    names = ", ".join(quote_ident(n) for n in read.field_names)
    sample_rows = con.execute(f"SELECT {names} FROM {table} ORDER BY _row LIMIT 5").fetchall()
    sample = [dict(zip(read.field_names, row, strict=True)) for row in sample_rows]
    con.close()
    return Profile(path, read, columns, sample)


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return slug if slug and slug[0].isalpha() else f"dataset_{slug}".strip("_")


def starter_yaml(profile: Profile, dataset_id: str | None = None) -> str:
    """A dataset YAML that passes ``catalog validate`` as written, with TODOs where a person must decide."""
    stem = profile.path.stem
    dataset_id = dataset_id or _slug(stem)[:63]
    header: dict[str, Any] = {
        "id": dataset_id,
        "title": re.sub(r"[_\-]+", " ", stem).strip().title(),
        "description": f"TODO: describe what each row of {profile.path.name} represents, where it comes from "
                       "and how it is collected.",
        "agency": "TODO: agency name",
        "category": Category.GOVERNMENT.value,
        "tags": [],
        "update_frequency": UpdateFrequency.AS_NEEDED.value,
        "contact": "TODO.data.officer@ct.gov",
    }
    source: dict[str, Any] = {"path": profile.path.name}
    if profile.read.header_line and profile.read.header_line != 1:
        source["header_row"] = profile.read.header_line
    if profile.read.sheet:
        source["sheet"] = profile.read.sheet
    columns = []
    for column in profile.columns:
        entry: dict[str, Any] = {"source": column.name}
        if column.field_name != _default_name(column.name):
            entry["field_name"] = column.field_name
        entry["type"] = column.type
        entry["description"] = ""
        if column.nulls == 0 and profile.read.rows:
            entry["required"] = True
        columns.append(entry)
    body = yaml.safe_dump(header, sort_keys=False, allow_unicode=True, width=110)
    body += yaml.safe_dump({"source": source}, sort_keys=False, allow_unicode=True)
    body += yaml.safe_dump({"columns": columns}, sort_keys=False, allow_unicode=True, width=110)
    notes = (
        "# Starter dataset file written by `ct-pipelines dataset new`. Fill in the TODOs, then run\n"
        "# `ct-pipelines catalog validate`. category: one of " + ", ".join(c.value for c in Category) + ".\n"
        "# update_frequency: one of " + ", ".join(f.value for f in UpdateFrequency) + ".\n"
        "# Mark columns that identify a person with `pii: true`; they are never published.\n"
        "# Set row_identifier to a unique column's field name to publish changes incrementally.\n"
    )
    return notes + body


def _default_name(source: str) -> str:
    return field_names_for([source])[0]
