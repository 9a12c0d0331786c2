"""SQL that turns an agency's text cells into typed values without ever guessing.

A value either parses under the column's declared (or default) format or becomes NULL, which the
``types`` rule then sets aside with a reason. Nothing is reinterpreted: ``510,93`` under the default
format is not 51093, ``3/5/24`` without a declared format and pivot year is not a date, and a code
cell longer than its declared width is not cut.

Every function returns a DuckDB SQL expression over ``text``, the trimmed cell with empty cells,
null tokens and suppression markers already turned into NULL.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from ct_pipelines.catalog.blocks.validate import DEFAULT_DATE_FLOOR, ValueFormat
from ct_pipelines.catalog.models import Column, ColumnType, Dataset
from ct_pipelines.core.settings import PUBLISHED_TIME_ZONE
from ct_pipelines.core.sql import quote_literal

# Without a declared format only these forms are read: a four-digit year is required, and month
# comes before day in slashed dates as in every Connecticut extract seen so far.
ISO_DATE = r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"
US_DATE = r"[0-9]{1,2}/[0-9]{1,2}/[0-9]{4}"  # the first of DATE_FORMATS
ISO_DATETIME = r"[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9]{1,2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?)?"
DATE_FORMATS = ("%m/%d/%Y", "%Y/%m/%d", "%m-%d-%Y", "%Y%m%d")
TIME_FORMATS = (
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%Y-%m-%d %I:%M:%S %p",
)
TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")
DEFAULT_FORMAT = ValueFormat()

# Values that only fail because the column's format was not declared: the quarantine reason says
# what to declare instead of the generic "not a valid number".
DECIMAL_COMMA = r"[+-]?[0-9]{1,3}(\.[0-9]{3})*,[0-9]+"
FRACTION = r"[+-]?\$?[0-9][0-9,]*\.[0-9]+"  # digits after the point: a number, but not a whole one
AMBIGUOUS_DATE = r"[0-9]{1,2}[/.-][0-9]{1,2}[/.-][0-9]{2}( .*)?"
EXCEL_DAY_NUMBER = r"[1-5][0-9]{4}(\.[0-9]+)?"  # Excel's day numbers for 1927 to 2173
ZONED_DATETIME = ISO_DATETIME + r" ?(Z|[+-][0-9]{2}:?[0-9]{2})"


def sql_list(values: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(quote_literal(v) for v in values) + "]"


def sql_in(values: tuple[str, ...] | list[str]) -> str:
    """``('a', 'b')`` for ``x IN ...`` (Python's tuple repr breaks on one value or a quote)."""
    return "(" + ", ".join(quote_literal(v) for v in values) + ")"


def sql_member(value: str, values: tuple[str, ...] | list[str]) -> str:
    """SQL true when ``value`` is one of ``values`` (NULL for NULL), exactly as ``value IN (...)``.

    A long list is a cast to an ENUM, one hash lookup per row instead of one comparison per listed
    value (the 169 Connecticut towns cost a row 169 comparisons).
    """
    distinct = list(dict.fromkeys(values))
    if not distinct:
        return f"CASE WHEN {value} IS NOT NULL THEN FALSE END"
    if len(distinct) <= 8:
        return f"{value} IN {sql_in(distinct)}"
    return f"CASE WHEN {value} IS NOT NULL THEN TRY_CAST({value} AS ENUM{sql_in(distinct)}) IS NOT NULL END"


def _re_escape(mark: str) -> str:
    return re.escape(mark) if mark else ""


def number_pattern(fmt: ValueFormat, integer: bool) -> str:
    """RE2 pattern for a whole cell: sign, currency before or after, grouped digits, fraction, percent.

    Group 1 and 2 are the signs (before and after a leading currency sign), group 3 the number.
    """
    dec, thou = _re_escape(fmt.decimal), _re_escape(fmt.thousands or "")
    whole = f"(?:[0-9]+|[0-9]{{1,3}}(?:{thou}[0-9]{{3}})+)" if thou else "[0-9]+"
    if integer:
        body = f"{whole}(?:{dec}0*)?"
    else:
        body = f"(?:{whole}(?:{dec}[0-9]*)?|{dec}[0-9]+)"
        if fmt.decimal == ".":
            body += "(?:[eE][+-]?[0-9]+)?"
    signs = "|".join(re.escape(c) for c in fmt.currency if c)
    before = f"(?:(?:{signs})\\s*)?" if signs else ""
    after = f"(?:\\s*(?:{signs}))?" if signs else ""
    percent = r"(?:\s*%)?" if fmt.percent else ""
    return f"^([+-]?){before}([+-]?)({body}){after}{percent}$"


def number_sql(text: str, fmt: ValueFormat, integer: bool, *, nested: bool = False) -> str:
    """The cell as BIGINT/DOUBLE when it is written in the column's format, else NULL.

    Most cells are plain digits or decimals, or digits grouped by the declared thousands mark: each of
    those is recognised by one small regular expression and cast; only the other cells are matched
    against the whole format (signs, currency, percent) and rewritten to sign and digits. A cell the
    small expressions accept is one the whole format reads the same way.
    """
    pattern = quote_literal(number_pattern(fmt, integer))
    target = "BIGINT" if integer else "DOUBLE"
    dec = _re_escape(fmt.decimal)
    fraction = "" if integer else f"({dec}[0-9]+)?"
    plain = f"[0-9]+{fraction}" if fmt.decimal == "." else "[0-9]+"
    cases = [f"WHEN regexp_full_match({text}, {quote_literal(plain)}) THEN TRY_CAST({text} AS {target})"]
    if fmt.thousands:
        grouped = f"[0-9]{{1,3}}({_re_escape(fmt.thousands)}[0-9]{{3}})+{fraction}"
        digits = _to_point(f"replace({text}, {quote_literal(fmt.thousands)}, '')", fmt)
        cases.append(
            f"WHEN regexp_full_match({text}, {quote_literal(grouped)}) THEN TRY_CAST({digits} AS {target})"
        )
    digits = f"regexp_replace({text}, {pattern}, '\\1\\2\\3')"
    if fmt.thousands:
        digits = f"replace({digits}, {quote_literal(fmt.thousands)}, '')"
    cases.append(
        f"WHEN regexp_matches({text}, {pattern}) THEN TRY_CAST({_to_point(digits, fmt)} AS {target})"
    )
    if not nested:  # an accountant's negative, (1,368): a helper's net changes were set aside as not numbers
        inner = f"regexp_extract({text}, '^\\(\\s*([^()+-]+?)\\s*\\)$', 1)"
        cases.append(
            f"WHEN regexp_full_match({text}, '\\(\\s*[^()+-]+?\\s*\\)') "
            f"THEN -({number_sql(inner, fmt, integer, nested=True)})"
        )
    return f"CASE {' '.join(cases)} END"


def _to_point(digits: str, fmt: ValueFormat) -> str:
    return f"replace({digits}, {quote_literal(fmt.decimal)}, '.')" if fmt.decimal != "." else digits


def _with_pivot(parsed: str, pivot: int) -> str:
    """Move a %y year into the declared century window (DuckDB's own pivot is 69)."""
    yy = f"(year({parsed}) % 100)"
    year = f"(CASE WHEN {yy} < {pivot} THEN 2000 + {yy} ELSE 1900 + {yy} END)"
    seconds = f"(microsecond({parsed}) / 1000000.0)"
    return (
        f"try(make_timestamp({year}, month({parsed}), day({parsed}), hour({parsed}), minute({parsed}), "
        f"{seconds}))"
    )


def _declared_formats_sql(text: str, formats: list[str], pivot: int | None) -> str:
    parts = []
    for fmt in formats:
        parsed = f"try_strptime({text}, {quote_literal(fmt)})"
        if (
            "%z" in fmt or "%Z" in fmt
        ):  # an instant: its wall time where it is published (a type error before)
            parsed = f"timezone({quote_literal(PUBLISHED_TIME_ZONE)}, {parsed})"
        if "%y" in fmt and pivot is not None:
            parsed = _with_pivot(parsed, pivot)
        if "%Y" in fmt:  # DuckDB's %Y takes '24' as the year 24: insist on four digits
            parsed = f"CASE WHEN regexp_matches({text}, '[0-9]{{4}}') THEN {parsed} END"
        parts.append(parsed)
    return parts[0] if len(parts) == 1 else f"COALESCE({', '.join(parts)})"


def timestamp_sql(text: str, fmt: ValueFormat) -> str:
    """TIMESTAMP from ISO text or the known four-digit-year forms, or from the declared formats only."""
    if fmt.date:
        return _declared_formats_sql(text, fmt.date, fmt.pivot_year)
    return (
        f"CASE WHEN regexp_full_match({text}, {quote_literal(ISO_DATETIME)}) THEN TRY_CAST({text} AS TIMESTAMP) "
        f"WHEN regexp_matches({text}, '[0-9]{{4}}') "
        f"THEN try_strptime({text}, {sql_list(TIME_FORMATS + DATE_FORMATS)}) END"
    )


def _midnight_date(stamp: str) -> str:
    """The timestamp's date when it is midnight, else NULL; a one-element list names it, so it is parsed once."""
    test = "CASE WHEN stamp_ = date_trunc('day', stamp_) THEN CAST(stamp_ AS DATE) END"
    return f"list_extract(list_transform([{stamp}], lambda stamp_: {test}), 1)"


def date_sql(text: str, fmt: ValueFormat) -> str:
    """DATE as for timestamps; a time of day other than midnight is not silently dropped (NULL).

    Without a declared format, ISO and US dates (most cells) are read by one cast each; a US-shaped
    cell that '%m/%d/%Y' refuses is refused by every other listed format too (checked for every
    month/day pair), so only the remaining cells try the whole list.
    """
    if fmt.date:
        return _midnight_date(_declared_formats_sql(text, fmt.date, fmt.pivot_year))
    stamp = (
        f"CASE WHEN regexp_matches({text}, '[0-9]{{4}}') "
        f"THEN try_strptime({text}, {sql_list(DATE_FORMATS + TIME_FORMATS)}) END"
    )
    return (
        f"CASE WHEN regexp_full_match({text}, {quote_literal(ISO_DATE)}) THEN TRY_CAST({text} AS DATE) "
        f"WHEN regexp_full_match({text}, {quote_literal(US_DATE)}) "
        f"THEN CAST(try_strptime({text}, {quote_literal(DATE_FORMATS[0])}) AS DATE) "
        f"ELSE {_midnight_date(stamp)} END"
    )


def code_sql(text: str, width: int | None) -> str:
    """Codes stay text; with a width, numeric cells (Excel's 6196 or 6196.0) get their leading zeros back."""
    if width is None:
        return text
    digits = f"regexp_replace({text}, '\\.0+$', '')"
    return (
        f"CASE WHEN regexp_full_match({text}, '[0-9]+(\\.0+)?') AND length({digits}) <= {width} "
        f"THEN lpad({digits}, {width}, '0') "
        f"WHEN NOT regexp_full_match({text}, '[0-9]+(\\.0+)?') AND length({text}) <= {width} THEN {text} END"
    )


def cast_sql(column: Column, text: str) -> str:
    """DuckDB expression turning cleaned text into the column's declared type; NULL when it does not parse."""
    fmt = column.format or DEFAULT_FORMAT
    kind = column.type
    if kind == ColumnType.TEXT:
        return text
    if kind == ColumnType.CODE:
        return code_sql(text, column.width)
    if kind in (ColumnType.INTEGER, ColumnType.NUMBER):
        return number_sql(text, fmt, integer=kind == ColumnType.INTEGER)
    if kind == ColumnType.BOOLEAN:
        return (
            f"CASE WHEN lower({text}) IN {sql_in(TRUE_WORDS)} THEN TRUE "
            f"WHEN lower({text}) IN {sql_in(FALSE_WORDS)} THEN FALSE END"
        )
    if kind == ColumnType.DATE:
        return date_sql(text, fmt)
    return timestamp_sql(text, fmt)


@dataclass(frozen=True)
class Quirks:
    """A column's null tokens and suppression markers, lower-cased (cells are compared case-insensitively)."""

    null_values: tuple[str, ...]
    suppressed_values: tuple[str, ...]


def column_quirks(dataset: Dataset, column: Column) -> Quirks:
    """Column lists replace the dataset's; dataset suppression markers apply to integer and number
    columns other than the row identifier (counts and rates, where agencies suppress small cells)."""
    nulls = column.null_values if column.null_values is not None else dataset.validate.null_values
    if column.suppressed_values is not None:
        markers = column.suppressed_values
    elif (
        column.type in (ColumnType.INTEGER, ColumnType.NUMBER) and column.field_name != dataset.row_identifier
    ):
        markers = dataset.validate.suppressed_values
    else:
        markers = []
    clean = lambda values: tuple(dict.fromkeys(v.strip().lower() for v in values if v.strip()))  # noqa: E731
    suppressed = clean(markers)
    return Quirks(tuple(v for v in clean(nulls) if v not in suppressed), suppressed)  # a marker wins


def date_floor(dataset: Dataset, column: Column) -> dt.date:
    """The earliest believable date for a column (its format's floor, else the dataset's)."""
    if column.format and column.format.floor:
        return column.format.floor
    return dataset.validate.date_floor or DEFAULT_DATE_FLOOR
