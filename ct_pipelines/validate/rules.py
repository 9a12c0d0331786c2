"""Row-level rules from a dataset's column definitions, declared once and evaluated once.

Each :class:`Rule` is a DuckDB condition that is true for a row breaking it. scan.py puts every rule
into the one scan that types the rows, as a bit of a per-row mask; the check counts, the quarantine
rows and pandera's verdict (``pandera_schema`` checks the dtypes of the written table; pandera then
checks the per-rule counts of that scan) all come from it, so the counts in the UI and the rows set
aside agree and no rule is evaluated twice. Plain SQL text rather than an expression library keeps a
3,000-column extract's rules cheap to build: no per-rule compilation.

Rules read the *typed row* made in that scan: for every declared column ``x`` it holds ``x`` cast to
the declared type (NULL when the text does not parse) and ``x__text``, the trimmed text with empty
cells and null tokens as NULL. Type failures are therefore "text present, typed value NULL".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import TYPE_CHECKING

from ct_pipelines.catalog.models import Column, ColumnType, Dataset
from ct_pipelines.catalog.naming import ZIP_WIDTH, is_zip_name
from ct_pipelines.core.outcomes import Severity
from ct_pipelines.core.sql import quote_ident, quote_literal
from ct_pipelines.validate.custom_checks import get_check
from ct_pipelines.validate.parsing import (
    AMBIGUOUS_DATE,
    DECIMAL_COMMA,
    EXCEL_DAY_NUMBER,
    FRACTION,
    ZONED_DATETIME,
    cast_sql,  # noqa: F401 - re-exported for the starter's profiler
    column_quirks,
    date_floor,
    sql_member,
)

if TYPE_CHECKING:
    import pandera.pandas as pa

TEXT_SUFFIX = "__text"
EXACT_INTEGER = 2**53 - 1  # the largest whole number a 64-bit float (JSON in a browser) holds exactly
EXACT_DIGITS = 15  # the significant digits a 64-bit float keeps
SAMPLE_SIZE = 20

# The Arrow type DuckDB gives each declared type's column (pyarrow's aliases).
PANDERA_DTYPES = {
    ColumnType.TEXT: "string",
    ColumnType.INTEGER: "int64",
    ColumnType.NUMBER: "double",
    ColumnType.BOOLEAN: "bool",
    ColumnType.DATE: "date32",
    ColumnType.DATETIME: "timestamp[us]",  # DuckDB's TIMESTAMP
    ColumnType.CODE: "string",
}


class DatasetRuleError(ValueError):
    """A column rule in the dataset YAML that cannot be applied (reported to the YAML's author)."""


@dataclass(frozen=True)
class Rule:
    """One row-level rule on one column; ``sql`` is true for rows that break it (NULL means it holds).

    ``sql`` is a DuckDB condition over the typed row (``x``, ``x__text``, ``x_suppressed``). A ``window``
    rule (unique) needs the whole column, so it runs after the scan on the written table.
    """

    group: str
    rule: str
    column: str
    severity: Severity
    phrase: str  # completes "12 rows ..."
    sql: str
    window: bool = False

    @property
    def check_name(self) -> str:
        return f"{self.group}:{self.column}:{self.rule}"


def _number(value: float) -> str:
    return f"{value:g}"


RuleMaker = Callable[..., "Rule"]


def _sql_literal(value: date | datetime) -> str:
    if isinstance(value, datetime):
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
    return f"DATE '{value.isoformat()}'"


def _column_rules(
    dataset: Dataset, column: Column, severity_for: Callable[[str], Severity], now: datetime
) -> list[Rule]:
    name = column.field_name or column.source
    typed, text = quote_ident(name), quote_ident(name + TEXT_SUFFIX)
    a_name = f"{'an' if name[0] in 'aeiou' else 'a'} {name}"
    flag = column.suppressed_flag if column_quirks(dataset, column).suppressed_values else None
    value = typed if column.type == ColumnType.CODE else text  # text rules see a code with its zeros put back

    def rule(group: str, rule_name: str, phrase: str, broken: str, window: bool = False) -> Rule:
        return Rule(group, rule_name, name, severity_for(group), phrase, broken, window)

    rules: list[Rule] = []
    if column.required:  # a value suppressed at the source is not missing
        empty = f"{text} IS NULL AND NOT {quote_ident(flag)}" if flag else f"{text} IS NULL"
        rules.append(rule("required", "required", f"have an empty {name}", empty))
    if column.unique and name == dataset.row_identifier:
        rules.append(_unique_key_rule(name, typed, text, a_name, rule))
    elif column.unique:  # keep the first occurrence: later rows repeating a value are the ones set aside
        repeat = f"{text} IS NOT NULL AND row_number() OVER (PARTITION BY {typed} ORDER BY _row) > 1"
        rules.append(
            rule("unique", "unique", f"repeat {a_name} already used on an earlier row", repeat, True)
        )
    rules.extend(_type_rules(dataset, column, a_name, rule))
    if column.min is not None or column.max is not None:
        rules.append(_range_rule(column, name, a_name, rule))
    if column.allowed_values is not None:
        allowed = list(column.allowed_values)
        shown = ", ".join(allowed[:10]) + (", ..." if len(allowed) > 10 else "")
        outside = (
            f"{value} IS NOT NULL AND NOT {sql_member(value, allowed)}" if allowed else f"{value} IS NOT NULL"
        )
        phrase = f"have {a_name} outside the allowed values ({shown})"
        rules.append(rule("allowed_values", "allowed_values", phrase, outside))
    if column.pattern is not None:
        anchored = quote_literal(f"^(?:{column.pattern})$")
        phrase = f"have {a_name} that does not match the expected pattern"
        broken = f"CASE WHEN {value} IS NOT NULL THEN NOT regexp_matches({value}, {anchored}) END"
        rules.append(rule("patterns", "pattern", phrase, broken))
    if column.not_in_future:
        if column.type not in (ColumnType.DATE, ColumnType.DATETIME):
            raise DatasetRuleError(
                f"column '{name}': not_in_future needs type date or datetime, not {column.type.value}"
            )
        limit = _sql_literal(now.date() if column.type == ColumnType.DATE else now)
        rules.append(
            rule("not_in_future", "not_in_future", f"have {a_name} in the future", f"{typed} > {limit}")
        )
    rules.extend(_zip_rules(column, name, value, rule))
    for check_name in column.checks:
        try:
            check = get_check(check_name)
        except KeyError as exc:
            raise DatasetRuleError(f"column '{name}': {exc.args[0]}") from None
        phrase = f"have {a_name} that {check.failure_phrase}"
        broken = f"CASE WHEN {value} IS NOT NULL THEN NOT ({check.passes(value)}) END"
        rules.append(rule("custom_checks", check.name, phrase, broken))
    return rules


#: The row identifier's own uniqueness rule: its SQL compares the rows' other columns, written in as a hash
#: of the columns of the table it runs on where ROW_CONTENT stands (see scan.failure_inserts).
UNIQUE_KEY = "unique_key"
ROW_CONTENT = "__row_content__"


def _unique_key_rule(name: str, typed: str, text: str, a_name: str, rule: RuleMaker) -> Rule:
    """Rows sharing a row identifier: an exact repeat keeps its first row, but rows whose other values differ
    are all set aside, since the file does not say which is right. Keeping the first published a helper's
    permit fee of 1.00 over the real 11,101.86, because the wrong row came first; set aside, the key keeps
    what the portal had."""
    by_key = f"OVER (PARTITION BY {typed})"
    repeat = (
        f"{text} IS NOT NULL AND (count(DISTINCT {ROW_CONTENT}) {by_key} > 1 "
        f"OR row_number() OVER (PARTITION BY {typed} ORDER BY _row) > 1)"
    )
    phrase = (
        f"repeat {a_name} used on another row (rows with the same {name} and other values differ are all set "
        "aside, since the file does not say which is right; an exact repeat keeps its first row)"
    )
    return rule("unique", UNIQUE_KEY, phrase, repeat, True)


def _zip_rules(column: Column, name: str, value: str, rule: Callable[..., Rule]) -> list[Rule]:
    """A ZIP column must keep its leading zero: Connecticut's are all 06xxx, and an Excel cell or a
    number-typed export holds 6810. Typed as a number, every ZIP would reach the portal short, so the YAML
    is refused; typed as a code without ``width``, a ZIP of 3 or 4 digits sets its row aside."""
    if not is_zip_name(name):
        return []
    fix = f"set type: code and width: {ZIP_WIDTH} on column '{name}' so 6810 is published as 06810"
    if column.type in (ColumnType.INTEGER, ColumnType.NUMBER):
        raise DatasetRuleError(
            f"column '{name}' holds ZIP codes but is typed {column.type.value}, which drops their leading "
            f"zero (06810 would be published as 6810); {fix}"
        )
    if column.type not in (ColumnType.CODE, ColumnType.TEXT) or column.width is not None:
        return []
    short = f"CASE WHEN {value} IS NOT NULL THEN regexp_full_match({value}, '[0-9]{{3,4}}([.]0+)?') END"
    phrase = f"have a ZIP code of 3 or 4 digits in {name}, which lost its leading zero; {fix}"
    return [rule("patterns", "zip_leading_zero", phrase, short)]


def _format_hints(column: Column, a_name: str) -> list[tuple[str, str, str]]:
    """(rule, RE2 pattern, phrase) for values that only fail because a format was not declared."""
    fmt = column.format
    if column.type == ColumnType.INTEGER:  # no format makes 1,2 a whole number: no advice to declare one
        return [
            (
                "decimal_comma",
                DECIMAL_COMMA,
                f"have {a_name} with a comma that does not separate thousands (such as 1,2), so not a whole number",
            ),
            (  # a column typed from a first file of whole amounts (1216100.00) met 1042200.50 later
                "fraction",
                FRACTION,
                f"have {a_name} with a fraction (such as 1042200.50), so not a whole number; if the column "
                "holds such values, declare it type: number",
            ),
        ]
    if column.type == ColumnType.NUMBER and (fmt is None or fmt.decimal == "."):
        return [
            (
                "decimal_comma",
                DECIMAL_COMMA,
                f"have {a_name} written with a decimal comma (such as 510,93); if the agency writes "
                "numbers that way, declare the column's format: {decimal: ','}",
            )
        ]
    if column.type not in (ColumnType.DATE, ColumnType.DATETIME):
        return []
    if fmt and fmt.date:  # a declared four-digit year met two digits (DCF's 6/26/14 under '%m/%d/%Y')
        formats = fmt.date  # a list: ValueFormat makes one of a single format
        if not any("%Y" in f for f in formats) or any("%y" in f for f in formats):
            return []
        written = formats[0].replace("%Y", "%y")
        return [
            (
                "two_digit_year",
                AMBIGUOUS_DATE,
                f"have {a_name} with a two-digit year (such as 6/26/14), where the declared format "
                f"'{formats[0]}' has four; declare the column's format as {{date: '{written}', pivot_year: 50}}",
            )
        ]
    hints = [
        (
            "ambiguous_date",
            AMBIGUOUS_DATE,
            f"have {a_name} with a two-digit year or unclear order (such as 3/5/24); declare the column's "
            "format, e.g. {date: '%m/%d/%y', pivot_year: 50}",
        )
    ]
    hints.append(  # a General-format cell in a workbook's date column: a helper was told only "not a date"
        (
            "excel_day_number",
            EXCEL_DAY_NUMBER,
            f"have {a_name} written as an Excel day number (such as 45473 for 2024-06-30), from a cell "
            "formatted General; ask the agency to format the column as a date in the workbook and send it again",
        )
    )
    if column.type == ColumnType.DATETIME:
        hints.append(
            (
                "time_zone",
                ZONED_DATETIME,
                f"have {a_name} with a time zone offset, which the portal cannot keep; declare the column's "
                "format with %z (e.g. format: '%Y-%m-%dT%H:%M:%S%z') to publish them as Connecticut time, or "
                "send local times without an offset",
            )
        )
    return hints


def _type_rules(dataset: Dataset, column: Column, a_name: str, rule: RuleMaker) -> list[Rule]:
    """The type rule, the named reasons for values needing a declared format, and the date floor."""
    name = column.field_name or column.source
    typed, text = quote_ident(name), quote_ident(name + TEXT_SUFFIX)
    if column.type == ColumnType.TEXT or (column.type == ColumnType.CODE and column.width is None):
        return []
    hints = [
        (rule_name, quote_literal(f"^(?:{pattern})$"), phrase)
        for rule_name, pattern, phrase in _format_hints(column, a_name)
    ]
    # CASE, not AND: DuckDB evaluates both sides of an AND for every row, and the hint patterns are
    # needed only for the few cells that did not parse
    unparsed = f"{text} IS NOT NULL AND {typed} IS NULL"
    not_hinted = " AND ".join(f"NOT regexp_matches({text}, {anchored})" for _, anchored, _ in hints)
    other = f"CASE WHEN {unparsed} THEN {not_hinted} END" if hints else unparsed
    kind = (
        f"code of at most {column.width} characters" if column.type == ColumnType.CODE else column.type.value
    )
    rules = [rule("types", "type", f"have {a_name} that is not a valid {kind}", other)]
    for rule_name, anchored, phrase in hints:
        hinted = f"CASE WHEN {unparsed} THEN regexp_matches({text}, {anchored}) END"
        rules.append(rule("types", rule_name, phrase, hinted))
    if column.type == ColumnType.INTEGER:  # an identifier typed integer: portals and browsers round it
        rules.append(
            rule(
                "types",
                "beyond_exact",
                f"have {a_name} above {EXACT_INTEGER:,}, which portals and browsers round ({EXACT_INTEGER + 2:,} "
                "reaches them as ...992); a number this long is an identifier: type the column `code` to "
                "publish it as written",
                f"abs({typed}) > {EXACT_INTEGER}",
            )
        )
    if column.type == ColumnType.NUMBER:  # a 64-bit float keeps 15 significant digits
        digits = f"regexp_replace(CASE WHEN contains({text}, '.') THEN rtrim({text}, '0') ELSE {text} END, '[^0-9]', '', 'g')"
        rules.append(
            rule(
                "types",
                "beyond_exact",
                f"have {a_name} with more than {EXACT_DIGITS} significant digits, which a number column "
                "rounds (12345678.123456789 is kept as 12345678.12345679); type the column `code` or `text` "
                "to publish it as written",
                f"CASE WHEN {typed} IS NOT NULL AND length({text}) > {EXACT_DIGITS} "
                f"AND NOT regexp_matches({text}, '[eE]') THEN length(ltrim({digits}, '0')) > {EXACT_DIGITS} END",
            )
        )
    if column.type in (ColumnType.DATE, ColumnType.DATETIME):
        floor = date_floor(dataset, column)
        low = _sql_literal(floor if column.type == ColumnType.DATE else datetime.combine(floor, time()))
        phrase = (
            f"have {a_name} before {floor.isoformat()}, too early to be real (declare the column's "
            "format: {floor: ...} if it is)"
        )
        rules.append(rule("ranges", "floor", phrase, f"{typed} < {low}"))
    return rules


def _range_rule(column: Column, name: str, a_name: str, make: RuleMaker) -> Rule:
    """Numbers compare directly; for dates the YAML's min/max are years (the catalog stores them as numbers)."""
    if column.type in (ColumnType.TEXT, ColumnType.CODE, ColumnType.BOOLEAN):
        raise DatasetRuleError(
            f"column '{name}': min/max need a number or date column, not {column.type.value}"
        )
    is_date = column.type in (ColumnType.DATE, ColumnType.DATETIME)
    low, high = column.min, column.max
    unit = "year " if is_date else ""
    if low is not None and high is not None:
        phrase = f"have {a_name} outside {unit}{_number(low)} to {_number(high)}"
    elif low is not None:
        phrase = f"have {a_name} below {unit}{_number(low)}"
    else:
        phrase = f"have {a_name} above {unit}{_number(high)}"  # type: ignore[arg-type]
    value = f"year({quote_ident(name)})" if is_date else quote_ident(name)
    bounds = [f"{value} < {low!r}" for low in [low] if low is not None]
    bounds += [f"{value} > {high!r}" for high in [high] if high is not None]
    return make("ranges", "range", phrase, " OR ".join(bounds))


def build_rules(dataset: Dataset, now: datetime) -> list[Rule]:
    """Every row-level rule of a dataset, with severities resolved (group override, else the column's)."""
    overrides = dataset.validate.severities
    rules: list[Rule] = []
    for column in dataset.columns:

        def severity_for(group: str, column: Column = column) -> Severity:
            return overrides.get(group, column.severity)

        rules.extend(_column_rules(dataset, column, severity_for, now))
    return rules


def pandera_schema(dataset: Dataset) -> pa.DataFrameSchema:
    """The declared schema: every typed column with the Arrow dtype DuckDB gives it (pandera checks the
    written table's columns against it, on an empty Arrow-typed frame: no rows are read)."""
    import pandas as pd
    import pandera.pandas as pa  # only validation needs pandera; definitions loading does not
    import pyarrow

    def dtype(alias: str) -> pd.ArrowDtype:
        return pd.ArrowDtype(pyarrow.type_for_alias(alias))

    columns: dict[str, pa.Column] = {}
    for column in dataset.columns:
        name = column.field_name or column.source
        columns[name] = pa.Column(
            dtype(PANDERA_DTYPES[column.type]), nullable=True, description=column.description
        )
        if column_quirks(dataset, column).suppressed_values:
            columns[column.suppressed_flag] = pa.Column(dtype("bool"), nullable=True)
    return pa.DataFrameSchema(columns, name=dataset.id)
