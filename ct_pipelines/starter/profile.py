"""What the pipeline sees in a file, and a starter dataset YAML written from it.

Profiling runs the real ingest readers against an in-memory DuckDB, so what ``ct-pipelines profile``
reports (encoding, header line, row count, field names) is exactly what ingest will do.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import yaml

from ct_pipelines.catalog.handbook import Category, UpdateFrequency
from ct_pipelines.catalog.loader import PLACEHOLDER_END, PLACEHOLDER_START
from ct_pipelines.catalog.models import Column, ColumnType, SourceFormat
from ct_pipelines.catalog.naming import ZIP_WIDTH, field_names_for, is_zip_name
from ct_pipelines.core.sql import quote_literal
from ct_pipelines.ingest.ingest import source_format
from ct_pipelines.ingest.readers import (
    ReadResult,
    create_rows_view,
    quote_ident,
    read_csv_into,
    read_excel_into,
    read_json_into,
    read_parquet_into,
)
from ct_pipelines.protect.pii import named_as_personal
from ct_pipelines.validate.rules import EXACT_DIGITS, cast_sql

# The catalog's type for codes whose leading zeros matter (ZIP, FIPS, district codes). Until the catalog
# has a `code` type such columns are written as `text`, which also keeps the zeros.
CODE_TYPE = "code" if "code" in {t.value for t in ColumnType} else "text"
# A last data row whose first cell says this is a total of the rows above, not data.
TOTAL_LABEL = re.compile(r"^(grand |state |statewide )?totals?:?$", re.IGNORECASE)
# A trailing line with only its first cell filled that reads like a note, not a data row.
NOTE_LINE = re.compile(r"^(\*|note|notes|source|sources|data)\b|^\S+(\s+\S+){2,}", re.IGNORECASE)


@dataclass
class ColumnProfile:
    name: str
    field_name: str
    type: str
    nulls: int = 0  # empty cells: missing, '' or blanks, as validation's `required` sees them
    distinct: int = 0
    leading_zeros: bool = False  # digit codes such as 06106: never a number
    suppressed_values: list[str] = field(default_factory=list)  # source markers such as '*' or '<5'
    null_values: list[str] = field(default_factory=list)  # cells meaning no value, such as 'N/A' or '-'
    not_numbers: dict[str, int] = field(default_factory=dict)  # a number column's few bad cells, counted
    two_digit_years: bool = False  # dates such as 6/26/14: the century is the person's to say (pivot_year)
    two_digit_year_span: tuple[int, int] | None = None  # the lowest and highest two-digit year seen
    width: int | None = None  # a code's digits, zero-padded: ZIP codes stored as numbers (6810)
    period: bool = False  # text naming a period on every row (2025-01, FY2024): a time dimension
    identifier: str | None = None  # why numbers are typed code (an identifier's name, or too many digits)
    percent: bool = False  # every value is a number with a % sign (73.0%): a number, format percent


@dataclass
class Profile:
    path: Path
    read: ReadResult
    columns: list[ColumnProfile]
    sample: list[dict[str, Any]] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)  # reader options given by the person (CLI flags)
    leave_out: list[dict[str, Any]] = field(default_factory=list)  # footer/notes rules the starter proposes

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
            "notes": list(self.read.notes),
            "columns": [
                {
                    "name": c.name,
                    "field_name": c.field_name,
                    "type": c.type,
                    "nulls": c.nulls,
                    "distinct": c.distinct,
                    "null_values": c.null_values,
                    "suppressed_values": c.suppressed_values,
                    "not_numbers": c.not_numbers,
                    "two_digit_years": c.two_digit_years,
                    "two_digit_year_span": list(c.two_digit_year_span) if c.two_digit_year_span else None,
                    "width": c.width,
                }
                for c in self.columns
            ],
            "sample": self.sample,
            "leave_out": self.leave_out,
        }


def _infer_type(con: duckdb.DuckDBPyConnection, table: str, column: str) -> tuple[str, int, int, bool]:
    """(type, empty cells, distinct values, leading zeros) from exact counts over every value.

    Each type is tested with the very cast validation uses (``cast_sql``), so a column the starter calls
    `integer` never has a value validation would quarantine as "not an integer" (0.5 makes it `number`).
    """
    text = f"NULLIF(trim({quote_ident(column)}), '')"
    casts = {
        kind: cast_sql(Column(source=column, type=ColumnType(kind)), text)
        for kind in ("boolean", "integer", "number", "date", "datetime")
    }
    selects = ", ".join(f"count({expr})" for expr in casts.values())
    row = con.execute(
        f"SELECT count(*), count({text}), count(DISTINCT {text}), {selects}, "
        f"count_if(regexp_full_match({text}, '[0-9]+([ -][0-9]+)*')), "  # digit codes (ZIP+4 too)
        f"count_if(regexp_full_match({text}, '0[0-9]+([ -][0-9]+)*')), "  # ... with a leading zero
        f"count_if(regexp_matches({text}, '[0-9]')), "  # numbers hold a digit ('nan', 'inf' do not)
        f"count_if(regexp_matches({text}, '[0-9]:[0-5][0-9]')), "  # a time of day
        f"count_if(regexp_full_match({text}, '[+-]?[0-9.,]+')), "  # plain digits, not yes/no words
        f"count_if(regexp_full_match({text}, {quote_literal(TWO_DIGIT_YEAR)})) "
        f"FROM {table}"
    ).fetchone()
    total, filled, distinct = row[0], row[1], row[2]
    found = dict(zip(casts, row[3:8], strict=True))
    digits, leading, with_digit, with_time, numeric, short_years = row[8:14]
    empty = total - filled
    if filled == 0:
        return "text", empty, distinct, False
    if leading and digits == filled:
        return CODE_TYPE, empty, distinct, True
    if found["boolean"] == filled and numeric == 0:
        return "boolean", empty, distinct, False
    if found["integer"] == filled:
        return "integer", empty, distinct, False
    if found["number"] == filled and with_digit == filled:
        return "number", empty, distinct, False
    if found["datetime"] == filled and with_time:
        return "datetime", empty, distinct, False
    if found["date"] == filled:
        return "date", empty, distinct, False
    if short_years == filled:
        return SHORT_YEAR_DATE, empty, distinct, False
    return "text", empty, distinct, False


def _names_periods(con: duckdb.DuckDBPyConnection, table: str, column: str) -> bool:
    """Whether every filled cell names a period (2025-01, FY2024, 2024 Q1): counts by such a column are
    taken in that period, and the suggested sum keeps each period apart."""
    from ct_pipelines.protect.aggregate import PERIOD_TEXT_RE2

    text = f"NULLIF(trim({quote_ident(column)}), '')"
    filled, periods = con.execute(
        f"SELECT count({text}), count_if(regexp_full_match({text}, {quote_literal(PERIOD_TEXT_RE2)})) FROM {table}"
    ).fetchall()[0]
    return bool(filled) and filled == periods


#: The last word of a field named for an identifier (town_code, npi, account_number), not a quantity.
_IDENTIFIER_WORDS = frozenset(["id", "code", "key", "npi", "fips", "uid", "guid", "identifier"])
_NUMBER_WORDS = frozenset(["number", "num", "nbr"])


def _identifier(con: duckdb.DuckDBPyConnection, table: str, column: str) -> str | None:
    """Why a column of numbers should be typed `code`, or None: a new user's license numbers were typed
    integer from a first file without leading zeros, and a later delivery's 0012345 was published as
    12345; 20-digit trace numbers typed number were all published as 1.2345678901234567e+19; Excel's
    3E04 product code became 30000. Identifiers are kept as written."""
    from ct_pipelines.protect.published import named_like_count

    words = column.lower().split("_")
    named = words[-1] in _IDENTIFIER_WORDS or (
        len(words) > 1 and words[-1] in _NUMBER_WORDS and not named_like_count(column)
    )
    text = f"NULLIF(trim({quote_ident(column)}), '')"
    digits_only, exponent, longest = con.execute(
        f"SELECT bool_and(regexp_full_match({text}, '[0-9]+')), bool_or(regexp_matches({text}, '[0-9][eE]')), "
        f"max(length(ltrim({text}, '0'))) FROM {table}"
    ).fetchone()
    if digits_only and (longest or 0) > EXACT_DIGITS:
        return f"digits beyond the {EXACT_DIGITS} a number keeps exactly"
    if named and (digits_only or exponent):
        return "named for an identifier"
    return None


def _all_percent(con: duckdb.DuckDBPyConnection, table: str, column: str) -> bool:
    """Whether every filled cell is a number followed by % (73.0%, 1,204.5 %): a number column read with
    ``format: {percent: true}``, published in percent points."""
    text = f"NULLIF(trim({quote_ident(column)}), '')"
    filled, percents = con.execute(
        f"SELECT count({text}), count_if(regexp_full_match({text}, '[+-]?[0-9][0-9,]*(\\.[0-9]+)?\\s*%')) "
        f"FROM {table}"
    ).fetchone()
    return bool(filled) and filled == percents


def _zip_width(con: duckdb.DuckDBPyConnection, table: str, column: str) -> int | None:
    """ZIP_WIDTH for a column named for ZIP codes whose cells are all plain digits of at most that many
    (an Excel ZIP column holds 6810 for 06810); None otherwise, ZIP+4 included (its text is kept)."""
    if not is_zip_name(column):
        return None
    text = f"NULLIF(trim({quote_ident(column)}), '')"
    other, longest = con.execute(
        f"SELECT count_if(NOT regexp_full_match({text}, '[0-9]+')), max(length({text})) FROM {table}"
    ).fetchone()
    return ZIP_WIDTH if not other and longest and longest <= ZIP_WIDTH else None


def _two_digit_year_span(con: duckdb.DuckDBPyConnection, table: str, column: str) -> tuple[int, int]:
    """The lowest and highest two-digit year of a month/day/yy column, to show what a pivot year does."""
    year = f"CAST(right(trim({quote_ident(column)}), 2) AS INTEGER)"
    low, high = con.execute(
        f"SELECT min({year}), max({year}) FROM {table} WHERE trim({quote_ident(column)}) <> ''"
    ).fetchone()
    return int(low), int(high)


def _pivot_year_ask(span: tuple[int, int] | None) -> str:
    """The marker's question, with what the years in the file become under each choice: the century is
    the person's to say, but they should not have to work out which number gives which."""
    ask = "a number: two-digit years from it on are 19xx"
    if span is None:
        return f"{ask}, e.g. 50 (49 is 2049)"
    low, high = span
    seen = f"here they run from {low:02d} to {high:02d}"
    readings = []
    if high < 99:
        readings.append(f"{high + 1} or more reads them all as 20{low:02d}-20{high:02d}")
    if low > 0:
        readings.append(f"{low} or less as 19{low:02d}-19{high:02d}")
    return f"{ask}; {seen}" + (f": {', '.join(readings)}" if readings else "")


#: Month/day/two-digit-year dates (DCF's 6/26/14): a date column whose pivot year the person chooses.
TWO_DIGIT_YEAR = "(0?[1-9]|1[0-2])/(0?[1-9]|[12][0-9]|3[01])/[0-9]{2}"
SHORT_YEAR_DATE = "date with two-digit years"


# Cells agencies write in count columns instead of a number: markers of a value suppressed at the source,
# and tokens for no value. A starter proposes them only when every other cell of the column is a number.
SUPPRESSION_MARKER = r"^(\*+|[<≤]=?\s*[0-9]+|s|supp(ressed)?|\(s\)|‡|†)$"
NULL_TOKEN = r"^(null|none|n/?a|-+|\.|missing|unknown|not available|nr)$"
# What a database or spreadsheet writes for an empty text cell. Words such as 'Unknown' or 'None' are not
# here: in a text column they can be real answers (a race reported as Unknown).
EXPORT_NULL = r"(?i)null|\(null\)|#n/a|#null!"


#: A number column may hold this many distinct cells that are neither numbers nor markers (typos such as
#: '12 3'), on at most BAD_SHARE of its filled cells (one cell always): it stays a number column, and
#: validation sets those rows aside with their reason. Typed as text, one typo published the whole column
#: as text (OCME's Age) or dropped a race group from the suggested unpivot (EdSight's White).
BAD_VALUES = 3
BAD_SHARE = 0.02


def _markers(
    con: duckdb.DuckDBPyConnection, table: str, column: str, filled: int
) -> tuple[str, list[str], list[str], dict[str, int]] | None:
    """(number type, suppression markers, null tokens, other bad cells counted) when a text column is
    numbers plus a few such cells."""
    text = f"NULLIF(trim({quote_ident(column)}), '')"
    others = con.execute(
        f"SELECT {text} AS v, count(*) FROM {table} WHERE {text} IS NOT NULL AND "
        f"{cast_sql(Column(source=column, type=ColumnType.NUMBER), text)} IS NULL GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 7"
    ).fetchall()
    if not others or len(others) > 6:
        return None
    values = [str(v) for v, _ in others]
    suppressed = [v for v in values if re.match(SUPPRESSION_MARKER, v, re.IGNORECASE)]
    nulls = [v for v in values if v not in suppressed and re.match(NULL_TOKEN, v, re.IGNORECASE)]
    bad = {str(v): int(n) for v, n in others if str(v) not in suppressed and str(v) not in nulls}
    if (
        len(suppressed) + len(nulls) > 3
        or len(bad) > BAD_VALUES
        or sum(bad.values()) > max(1, filled * BAD_SHARE)
    ):
        return None
    listed = ", ".join(quote_literal(v) for v in values)
    kept = f"CASE WHEN {text} IN ({listed}) THEN NULL ELSE {text} END"
    integer = cast_sql(Column(source=column, type=ColumnType.INTEGER), kept)
    filled, whole = con.execute(f"SELECT count({kept}), count({integer}) FROM {table}").fetchone()
    if not filled or (bad and filled < 2 * sum(bad.values()) + 10):  # a few cells of many, not a guess
        return None
    return ("integer" if whole == filled else "number"), suppressed, nulls, bad


def _export_nulls(con: duckdb.DuckDBPyConnection, table: str, column: str) -> list[str]:
    """The spellings of EXPORT_NULL in a text column: DCF's office column holds one literal 'NULL', which
    would otherwise be published as an office's name."""
    text = f"trim({quote_ident(column)})"
    found = con.execute(
        f"SELECT DISTINCT {text} FROM {table} WHERE regexp_full_match({text}, {quote_literal(EXPORT_NULL)}) "
        "ORDER BY 1"
    ).fetchall()
    return [v for (v,) in found]


def _footer_rules(
    con: duckdb.DuckDBPyConnection, table: str, read: ReadResult
) -> tuple[list[dict[str, Any]], list[int]]:
    """Leave-out rules for trailing rows that are not data: a ``Total`` row, notes lines (only the first cell
    filled). Returns the rules (with ``max_rows`` set to what was found, so a surprise is refused) and rows."""
    if len(read.field_names) < 2:
        return [], []
    cells = ", ".join(f"NULLIF(trim({quote_ident(n)}), '')" for n in read.field_names)
    tail = con.execute(f"SELECT _row, {cells} FROM {table} ORDER BY _row DESC LIMIT 5").fetchall()
    total_rows: list[tuple[int, str]] = []
    notes: list[tuple[int, str]] = []
    for row_number, first, *rest in tail:  # from the last row up: notes lines, then at most one total row
        if total_rows or not first:
            break
        if TOTAL_LABEL.match(first):
            total_rows.append((row_number, first))
        elif not any(rest) and NOTE_LINE.match(first):
            notes.append((row_number, first))
        else:
            break
    rules: list[dict[str, Any]] = []
    if total_rows:
        rules.append(
            {
                "name": "footer total",
                "column": read.source_columns[0],
                "equals": total_rows[0][1],
                "max_rows": 1,
            }
        )
    if notes:
        words = sorted({re.escape(text.split()[0]) for _, text in notes})
        rules.append({"name": "notes", "matches": "^(" + "|".join(words) + ")", "max_rows": len(notes)})
    return rules, [r for r, _ in total_rows + notes]


def profile_file(
    path: Path,
    *,
    encoding: str = "auto",
    sheet: str | int | None = None,
    header_row: int | None = None,
    delimiter: str | None = None,
    workdir: Path | None = None,
) -> Profile:
    """Read the file with the ingest readers, then count what every column holds (footer rows excluded)."""
    con = duckdb.connect()
    table = "profiled"
    fmt = source_format(path, SourceFormat.AUTO)
    names_for = field_names_for
    if fmt == SourceFormat.CSV:
        read = read_csv_into(
            con,
            path,
            table,
            names_for,
            encoding=encoding,
            delimiter=delimiter,
            header_row=header_row,
            workdir=workdir or path.parent,
        )
    elif fmt == SourceFormat.EXCEL:
        read = read_excel_into(con, path, table, names_for, sheet=sheet, header_row=header_row)
    elif fmt == SourceFormat.JSON:
        read = read_json_into(con, path, table, names_for)
    else:
        read = read_parquet_into(con, path, table, names_for)
    create_rows_view(con, "profiled_rows", table, read, "profiled_lines")
    leave_out, footer = _footer_rules(con, "profiled_rows", read)
    skip = f" WHERE _row NOT IN ({', '.join(map(str, footer))})" if footer else ""
    con.execute(f"CREATE VIEW profiled_kept AS SELECT * FROM profiled_rows{skip}")
    table = "profiled_kept"
    columns = []
    for source, name in zip(read.source_columns, read.field_names, strict=True):
        kind, empty, distinct, zeros = _infer_type(con, table, name)
        width = _zip_width(con, table, name) if kind in ("integer", CODE_TYPE) else None
        kind = CODE_TYPE if width else kind
        identifier = _identifier(con, table, name) if kind in ("integer", "number") else None
        kind = CODE_TYPE if identifier else kind
        percent = kind == "text" and _all_percent(con, table, name)
        kind = "number" if percent else kind
        short_years = kind == SHORT_YEAR_DATE
        kind = "date" if short_years else kind
        markers = _markers(con, table, name, read.rows - len(footer) - empty) if kind == "text" else None
        if markers:
            kind, suppressed, nulls, bad = markers
            columns.append(ColumnProfile(source, name, kind, empty, distinct, zeros, suppressed, nulls, bad))
        else:
            nulls = _export_nulls(con, table, name) if kind == "text" else []
            span = _two_digit_year_span(con, table, name) if short_years else None
            columns.append(
                ColumnProfile(
                    source,
                    name,
                    kind,
                    empty,
                    distinct,
                    zeros,
                    null_values=nulls,
                    two_digit_years=short_years,
                    two_digit_year_span=span,
                    width=width,
                    identifier=identifier,
                    percent=percent,
                )
            )
    for column in columns:
        if column.type == "text":
            column.period = _names_periods(con, table, column.field_name)
    names = ", ".join(quote_ident(n) for n in read.field_names)
    sample_rows = con.execute(f"SELECT {names} FROM {table} ORDER BY _row LIMIT 5").fetchall()
    sample = [dict(zip(read.field_names, row, strict=True)) for row in sample_rows]
    con.close()
    given = {
        "encoding": None if encoding == "auto" else encoding,
        "sheet": sheet,
        "header_row": header_row,
        "delimiter": delimiter,
    }
    return Profile(path, read, columns, sample, {k: v for k, v in given.items() if v is not None}, leave_out)


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return slug if slug and slug[0].isalpha() else f"dataset_{slug}".strip("_")


def todo(what: str) -> str:
    """The starter's placeholder: ``catalog validate`` refuses a file that still holds one (see catalog.loader)."""
    return f"{PLACEHOLDER_START} {what}{PLACEHOLDER_END}"


def _header(profile: Profile, dataset_id: str) -> dict[str, Any]:
    stem = profile.path.stem
    suggested = re.sub(r"[_\-]+", " ", stem).strip().title()
    return {
        "id": dataset_id,
        "title": todo(f"a plain-language title without acronyms, e.g. {suggested}"),
        "description": todo(
            f"what each row of {profile.path.name} represents, where it comes from and how it is collected"
        ),
        "agency": todo("the publishing agency's full name, e.g. Department of Public Health"),
        "category": todo("one of " + ", ".join(c.value for c in Category)),
        "tags": [],
        "update_frequency": todo("one of " + ", ".join(f.value for f in UpdateFrequency)),
        "contact": todo("the dataset owner's e-mail address, e.g. data.officer@ct.gov"),
    }


def _source(profile: Profile) -> dict[str, Any]:
    """The reader options given on the command line, plus what was detected and must be repeated."""
    options = profile.options
    source: dict[str, Any] = {"path": profile.path.name}
    if "encoding" in options:
        source["encoding"] = options["encoding"]
    if "sheet" in options or profile.read.sheet:
        source["sheet"] = options.get("sheet", profile.read.sheet)
    header_row = options.get("header_row") or profile.read.header_line
    if header_row and (header_row != 1 or "header_row" in options):
        source["header_row"] = header_row
    if "delimiter" in options:
        source["delimiter"] = options["delimiter"]
    if profile.leave_out:
        source["leave_out"] = profile.leave_out
    return source


def starter_yaml(profile: Profile, dataset_id: str | None = None) -> str:
    """A dataset YAML whose every undecided value is a ``<<TODO: ...>>`` marker saying what to write;
    ``catalog validate`` refuses it (naming the line) until each is filled, and accepts it after."""
    dataset_id = dataset_id or _slug(profile.path.stem)[:63]
    columns = []
    for column in profile.columns:
        entry: dict[str, Any] = {"source": column.name}
        if column.field_name != _default_name(column.name):
            entry["field_name"] = column.field_name
        entry["type"] = column.type
        if column.width:
            entry["width"] = column.width
        entry["description"] = ""
        if column.percent:
            entry["format"] = {"percent": True}
        if column.two_digit_years:
            entry["format"] = {
                "date": "%m/%d/%y",
                "pivot_year": todo(_pivot_year_ask(column.two_digit_year_span)),
            }
        if column.suppressed_values:  # each such cell becomes empty with <field>_suppressed = true
            entry["suppressed_values"] = column.suppressed_values
        if column.null_values:
            entry["null_values"] = column.null_values
        if named_as_personal(column.field_name):
            entry["pii"] = True
        columns.append(entry)
    body = yaml.safe_dump(_header(profile, dataset_id), sort_keys=False, allow_unicode=True, width=1000)
    body += yaml.safe_dump({"ingest": _source(profile)}, sort_keys=False, allow_unicode=True, width=1000)
    body += yaml.safe_dump({"columns": columns}, sort_keys=False, allow_unicode=True, width=110)
    notes = [
        "# Starter dataset file written by `ct-pipelines dataset new`. Replace every <<TODO: ...>> marker",
        "# (the whole marker) with what it asks for; `ct-pipelines catalog validate` refuses the file until then.",
        "# Mark columns that identify a person with `pii: true`; they are never published.",
        "# To publish changes incrementally, set row_identifier to the field name of a unique column that is",
        "# published (not pii); an aggregate is replaced whole instead.",
    ]
    personal = [c.field_name for c in profile.columns if named_as_personal(c.field_name)]
    if personal:  # a new user published a clinic's patient names: no value pattern finds a name
        notes += textwrap.wrap(
            f"Marked pii for their names (a person's name, birth date or record number): {', '.join(personal)}. "
            "Remove the mark where a column holds no personal data.",
            100,
            initial_indent="# ",
            subsequent_indent="# ",
        )
    # OCME's ID: a new user did not know which column the note above meant
    kept = profile.read.rows - sum(rule.get("max_rows", 0) for rule in profile.leave_out)
    unique = [
        c.field_name
        for c in profile.columns
        if c.nulls == 0
        and c.distinct == kept > 1
        and c.type in ("text", "code", "integer")
        and not named_as_personal(c.field_name)
    ]
    if unique and len(_race_group_columns(profile)) < 2:  # (an unpivot repeats each row per group)
        notes.append(f"# A different value on every row, so a possible row_identifier: {', '.join(unique)}.")
    # A rule the person did not choose set a later delivery's rows aside: a helper's new case never reached
    # the portal for want of a cause of death. Rules are theirs to add; the file's facts are named.
    filled = [c.field_name for c in profile.columns if c.nulls == 0 and not c.null_values]
    if filled and profile.read.rows:
        notes += textwrap.wrap(
            f"A value on every row of this file: {', '.join(filled)}. Add `required: true` to those where an "
            "empty cell means the row is wrong; validation then sets such rows aside, each with its reason.",
            100,
            initial_indent="# ",
            subsequent_indent="# ",
        )
    zips = [c.field_name for c in profile.columns if c.width]
    if zips:
        notes.append(
            f"# ZIP codes written as numbers here (6810): `width: {ZIP_WIDTH}` publishes them as 06810: {', '.join(zips)}."
        )
    for note in profile.read.notes:  # what the reader did: merged cells filled, other sheets not read
        notes += textwrap.wrap(
            note[0].upper() + note[1:] + ".", 100, initial_indent="# ", subsequent_indent="# "
        )
    identifiers = [f"{c.field_name} ({c.identifier})" for c in profile.columns if c.identifier]
    if identifiers:
        notes += textwrap.wrap(
            "Numbers typed `code`, kept exactly as written (a later file's leading zeros too) and never "
            f"summed: {', '.join(identifiers)}. Make one `integer` only if it is a quantity.",
            100,
            initial_indent="# ",
            subsequent_indent="# ",
        )
    codes = [c.field_name for c in profile.columns if c.leading_zeros]
    if codes and CODE_TYPE == "text":
        notes.append(f"# Codes with leading zeros, kept as text so the zeros survive: {', '.join(codes)}.")
    bad = [c for c in profile.columns if c.not_numbers]
    if bad:
        listed = "; ".join(f"{c.field_name}: {_counted(c.not_numbers)}" for c in bad)
        said = "Cells that are not numbers in number columns; validation sets their rows aside, each with "
        notes += textwrap.wrap(
            f"{said}its reason, until the agency fixes them: {listed}.",
            100,
            initial_indent="# ",
            subsequent_indent="# ",
        )
    if profile.leave_out:
        notes.append(
            "# ingest.leave_out: trailing rows found that are not data (a total or notes); they are left "
            "out and counted."
        )
    return "\n".join(notes) + "\n" + body + _rel_hint(profile)


REL_NAMES = {  # column names that usually hold race/ethnicity or language answers
    "race, ethnicity or race_ethnicity (one question asking both)": re.compile(
        r"race|ethnic|hispanic|latino|demograph", re.IGNORECASE
    ),
    "language": re.compile(r"language|\blang\b", re.IGNORECASE),
}


NUMBER_TYPES = ("integer", "number")


def _rel_hint(profile: Profile) -> str:
    """Commented blocks for race, ethnicity and language: new users found rel_reporting_group only in the
    README. Comments, so nothing is guessed.

    Text columns whose names suggest REL answers get a standardize block. Number columns named after
    race/ethnicity groups (EdSight's one column of student counts per race) hold counts, not answers:
    they get an unpivot block, which makes the group names the values of one column to standardize."""
    group_columns = _race_group_columns(profile)
    found = [  # (column, its field or the choice to make)
        (column.field_name, f"<{field}>")
        for column in profile.columns
        for field, pattern in REL_NAMES.items()
        if pattern.search(column.name) and column.type not in NUMBER_TYPES
    ]
    lines: list[str] = []
    protect = _aggregate_hint(profile)
    if len(group_columns) >= 2:
        listed = ", ".join(_flow(c.name) for c in group_columns)
        marker = next((v for c in group_columns for v in c.suppressed_values), None)
        nulls = list(dict.fromkeys(v for c in group_columns for v in c.null_values))
        count = (
            "{source: count, type: integer"
            + (f", suppressed_values: ['{marker}']" if marker else "")
            + (f", null_values: [{', '.join(_flow(v) for v in nulls)}]" if nulls else "")
            + "}"
        )
        lines += [
            f"# {len(group_columns)} number columns are named after race/ethnicity groups: each holds counts for",
            "# one group. To publish one row per group, add this unpivot to the ingest block above, and in",
            "# columns replace those columns' entries with the two it makes (race_ethnicity and count):",
            f"#   unpivot: {{columns: [{listed}], name: race_ethnicity, value: count}}",
            "#   - {source: race_ethnicity, required: true}",
            f"#   - {count}",
        ]
        found = [(name, field) for name, field in found if name not in {c.field_name for c in group_columns}]
        found.insert(0, ("race_ethnicity", "race_ethnicity"))
        protect = (
            [
                f"# The source hid small counts ('{marker}'): publish these rows as they are (each hidden count",
                "# stays empty, flagged in count_suppressed); sums over them would be too low, so no aggregate.",
            ]
            if marker
            else [
                "# To publish sums by group with cells of 1 to 5 hidden: protect: {mode: aggregate, aggregate:",
                "#   {dimensions: [rel_reporting_group], measures: [{name: students, agg: sum, column: count}]},",
                "#   suppression: {count_column: students, threshold: 5}}",
            ]
        )
    if not found:
        return "\n".join(lines) + "\n" if lines else ""
    lines += [
        "# To standardize race, ethnicity and language to Connecticut's REL standards, uncomment and choose",
        "# each column's field (rows then get rel_reporting_group, built only from what was collected):",
        "# standardize:",
        "#   columns:",
        *(f"#   - {{column: {name}, field: {field}}}" for name, field in found),
        *protect,
    ]
    return "\n".join(lines) + "\n"


def _counted(values: dict[str, int]) -> str:
    """``'12 3' (2 rows), '1,2' (1 row)``: each value quoted as in YAML, with its count."""
    quoted = {v: "'" + v.replace("'", "''") + "'" for v in values}
    return ", ".join(f"{quoted[v]} ({n:,} row{'s' if n > 1 else ''})" for v, n in values.items())


def _aggregate_hint(profile: Profile) -> list[str]:
    """The commented protect block: counts of rows by group, or, when the rows already hold counts (a
    column named like one, such as DCF's TOTAL_CIP), the sum of that column, with every date column a
    time dimension: counting such rows counts groups, not people, and counts taken on different dates
    (each July 1) must not be added together."""
    from ct_pipelines.protect.published import named_like_count

    counts = [c for c in profile.columns if c.type == "integer" and named_like_count(c.name)]
    if not counts:
        whole = [
            c.field_name
            for c in profile.columns
            if c.type == "integer"
            and not re.search(r"(^|_)(year|yr|month|day|quarter|fy|age)(_|$)", c.field_name)
        ]
        # A count of rows is a count of records; a table whose rows already hold counts under a name the
        # starter does not know would publish its number of rows (a helper's 39 for every group).
        maybe = (
            textwrap.wrap(
                "This counts rows (records). If each row already holds a count of people or events (perhaps "
                f"{' or '.join(whole[:3])}), sum it instead: measures: [{{name: {whole[0]}, agg: sum, column: "
                f"{whole[0]}}}] and count_column: {whole[0]}.",
                100,
                initial_indent="# ",
                subsequent_indent="# ",
            )
            if whole
            else []
        )
        return [
            "# To publish counts by group instead of rows, with cells of 1 to 5 hidden:",
            *maybe,
            "# protect:",
            "#   mode: aggregate",
            "#   aggregate: {dimensions: [rel_reporting_group], measures: [{name: count}]}",
            "#   suppression: {count_column: count, threshold: 5}",
        ]
    measure = counts[0].field_name
    dates = [c.field_name for c in profile.columns if c.type in ("date", "datetime") or c.period]
    dimensions = [f"{{name: {d}, time: true}}" for d in dates] + ["rel_reporting_group"]
    return [
        f"# Each row already holds counts ({', '.join(c.field_name for c in counts)}): to publish their sums by",
        "# group, with cells of 1 to 5 hidden, uncomment this (every date column is a dimension: counts",
        "# taken on different dates must not be added together):",
        "# protect:",
        "#   mode: aggregate",
        f"#   aggregate: {{dimensions: [{', '.join(dimensions)}], measures: [{{name: {measure}, agg: sum, column: {measure}}}]}}",
        f"#   suppression: {{count_column: {measure}, threshold: 5}}",
    ]


def _race_group_columns(profile: Profile) -> list[ColumnProfile]:
    """Number columns whose header is a race/ethnicity group the REL reference recognizes, with the
    Unknown or Declined columns beside them: a helper's unpivot of DPH's case counts left Unknown out, and
    the published total fell 5,001 short of the file's own."""
    from ct_pipelines.catalog.blocks.standardize import RelField
    from ct_pipelines.standardize.normalize import classify_race
    from ct_pipelines.standardize.reference import Status

    read = {
        c.name: classify_race(c.name, RelField.RACE_ETHNICITY).status
        for c in profile.columns
        if c.type in NUMBER_TYPES
    }
    groups = [c for c in profile.columns if read.get(c.name) == Status.REPORTED]
    if not groups:
        return []
    kept = (Status.REPORTED, Status.UNKNOWN, Status.DECLINED)
    return [c for c in profile.columns if read.get(c.name) in kept]


def _flow(name: str) -> str:
    """A source column name as a YAML flow-sequence item (quoted when it has a comma, colon or quote)."""
    return name if re.fullmatch(r"[A-Za-z0-9 /._-]+", name) else yaml.safe_dump(name, width=1000).strip()


def _default_name(source: str) -> str:
    return field_names_for([source])[0]
