"""Row-level rules from a dataset's column definitions, declared once and used twice.

Each :class:`Rule` is an ibis expression that is true for a row breaking it. validate.py compiles
every rule's expression into one scan that lists the failing (row, rule) pairs; the check counts, the
quarantine rows and pandera's verdict (``pandera_schema`` checks the dtypes; pandera then checks the
per-rule counts of that scan) all come from it, so the counts in the UI and the rows set aside agree
and no rule is evaluated twice.

Rules run on a *typed table* made once from the raw table: for every declared column ``x`` it holds ``x`` cast to
the declared type (NULL when the text does not parse) and ``x__text``, the trimmed text with empty
cells as NULL. Type failures are therefore "text present, typed value NULL".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time
from typing import TYPE_CHECKING

import ibis
import ibis.expr.types as ir

from ct_pipelines.catalog.models import Column, ColumnType, Dataset
from ct_pipelines.core.outcomes import Severity
from ct_pipelines.core.sql import quote_ident
from ct_pipelines.validate.custom_checks import get_check
from ct_pipelines.validate.parsing import (
    AMBIGUOUS_DATE,
    DECIMAL_COMMA,
    ZONED_DATETIME,
    cast_sql,
    column_quirks,
    date_floor,
    sql_in,
    suppressed_field,
)

if TYPE_CHECKING:
    import pandera.ibis as pa

TEXT_SUFFIX = "__text"
SAMPLE_SIZE = 20

PANDERA_DTYPES = {
    ColumnType.TEXT: "string",
    ColumnType.INTEGER: "int64",
    ColumnType.NUMBER: "float64",
    ColumnType.BOOLEAN: "boolean",
    ColumnType.DATE: "date",
    ColumnType.DATETIME: "timestamp(6)",  # DuckDB's TIMESTAMP; bare "timestamp" never matches it
    ColumnType.CODE: "string",
}


class DatasetRuleError(ValueError):
    """A column rule in the dataset YAML that cannot be applied (reported to the YAML's author)."""


def typed_select_sql(dataset: Dataset, raw_columns: list[str], raw_table: str) -> str:
    """SELECT that types every declared column and keeps its cleaned text (and suppression flag) beside it.

    The inner SELECT trims each cell and turns empty cells, null tokens and suppression markers into
    NULL (``x__text``) once; the outer one casts that text. Undeclared extra columns pass through
    unchanged (VARCHAR), so nothing the agency sent is lost.
    """
    declared = {c.field_name: c for c in dataset.columns}
    trims: list[str] = []  # innermost: each cell trimmed once (no expression below repeats the trim)
    inner: list[str] = []
    typed: list[str] = []
    texts: list[str] = []
    flags: list[str] = []
    for name in raw_columns:
        column = declared.get(name)
        if column is None:
            trims.append(quote_ident(name))
            inner.append(quote_ident(name))
            typed.append(quote_ident(name))
            continue
        quirks = column_quirks(dataset, column)
        trims.append(f"NULLIF(trim({quote_ident(name)}), '') AS {quote_ident(name)}")
        trimmed = quote_ident(name)
        tokens = quirks.null_values + quirks.suppressed_values
        cleaned = (
            f"CASE WHEN lower({trimmed}) IN {sql_in(tokens)} THEN NULL ELSE {trimmed} END"
            if tokens
            else trimmed
        )
        text_ref = quote_ident(name + TEXT_SUFFIX)
        inner.append(f"{cleaned} AS {text_ref}")
        typed.append(f"{cast_sql(column, text_ref)} AS {quote_ident(name)}")
        texts.append(text_ref)
        if quirks.suppressed_values:
            flag = quote_ident(suppressed_field(column))
            inner.append(f"coalesce(lower({trimmed}) IN {sql_in(quirks.suppressed_values)}, FALSE) AS {flag}")
            flags.append(flag)
    return (
        f"SELECT {', '.join(typed + texts + flags)} FROM (SELECT {', '.join(inner)} FROM "
        f"(SELECT {', '.join(trims)} FROM {raw_table}))"
    )


def quirk_counts_sql(dataset: Dataset, raw_table: str) -> tuple[str, list[tuple[str, str]]] | None:
    """One scan counting, per column, cells that were null tokens and cells suppressed at the source."""
    parts: list[str] = []
    keys: list[tuple[str, str]] = []
    for column in dataset.columns:
        quirks = column_quirks(dataset, column)
        cell = f"lower(trim({quote_ident(column.field_name or column.source)}))"
        if quirks.null_values:
            parts.append(f"count_if({cell} IN {sql_in(quirks.null_values)})")
            keys.append(("null_tokens", column.field_name or column.source))
        if quirks.suppressed_values:
            parts.append(f"count_if({cell} IN {sql_in(quirks.suppressed_values)})")
            keys.append(("suppressed", column.field_name or column.source))
    if not parts:
        return None
    return f"SELECT {', '.join(parts)} FROM {raw_table}", keys


@dataclass(frozen=True)
class Rule:
    """One row-level rule on one column; ``fails`` is true (never NULL) for rows that break it."""

    group: str
    rule: str
    column: str
    severity: Severity
    phrase: str  # completes "12 rows ..."
    fails: Callable[[ir.Table], ir.BooleanValue]

    @property
    def check_name(self) -> str:
        return f"{self.group}:{self.column}:{self.rule}"


def _number(value: float) -> str:
    return f"{value:g}"


RuleMaker = Callable[[str, str, str, Callable[[ir.Table], ir.BooleanValue]], "Rule"]


def _column_rules(
    dataset: Dataset, column: Column, severity_for: Callable[[str], Severity], now: datetime
) -> list[Rule]:
    name = column.field_name or column.source
    text_name = name + TEXT_SUFFIX
    a_name = f"{'an' if name[0] in 'aeiou' else 'a'} {name}"
    flag = suppressed_field(column) if column_quirks(dataset, column).suppressed_values else None

    def rule(group: str, rule_name: str, phrase: str, broken: Callable[[ir.Table], ir.BooleanValue]) -> Rule:
        def fails(table: ir.Table) -> ir.BooleanValue:
            return broken(table).fill_null(False)

        return Rule(group, rule_name, name, severity_for(group), phrase, fails)

    def text(t: ir.Table) -> ir.StringValue:
        return t[text_name]

    def typed(t: ir.Table) -> ir.Value:
        return t[name]

    def value(t: ir.Table) -> ir.StringValue:  # what text rules see: a code with its zeros put back
        return t[name] if column.type == ColumnType.CODE else t[text_name]

    def empty(t: ir.Table) -> ir.BooleanValue:  # a value suppressed at the source is not missing
        return text(t).isnull() & ~t[flag] if flag else text(t).isnull()

    rules: list[Rule] = []
    if column.required:
        rules.append(rule("required", "required", f"have an empty {name}", empty))
    if column.unique:
        # Keep the first occurrence: later rows repeating a value are the ones set aside.
        rules.append(
            rule(
                "unique",
                "unique",
                f"repeat {a_name} already used on an earlier row",
                lambda t: (
                    text(t).notnull() & (ibis.row_number().over(group_by=typed(t), order_by=t["_row"]) > 0)
                ),  # 0-based
            )
        )
    rules.extend(_type_rules(dataset, column, a_name, rule))
    if column.min is not None or column.max is not None:
        rules.append(_range_rule(column, name, a_name, rule))
    if column.allowed_values is not None:
        allowed = list(column.allowed_values)
        shown = ", ".join(allowed[:10]) + (", ..." if len(allowed) > 10 else "")
        rules.append(
            rule(
                "allowed_values",
                "allowed_values",
                f"have {a_name} outside the allowed values ({shown})",
                lambda t: value(t).notnull() & ~value(t).isin(allowed),
            )
        )
    if column.pattern is not None:
        anchored = f"^(?:{column.pattern})$"
        rules.append(
            rule(
                "patterns",
                "pattern",
                f"have {a_name} that does not match the expected pattern",
                lambda t: value(t).notnull() & ~value(t).re_search(anchored),
            )
        )
    if column.not_in_future:
        if column.type not in (ColumnType.DATE, ColumnType.DATETIME):
            raise DatasetRuleError(
                f"column '{name}': not_in_future needs type date or datetime, not {column.type.value}"
            )
        limit = ibis.literal(now.date()) if column.type == ColumnType.DATE else ibis.literal(now)
        rules.append(
            rule("not_in_future", "not_in_future", f"have {a_name} in the future", lambda t: typed(t) > limit)
        )
    for check_name in column.checks:
        try:
            check = get_check(check_name)
        except KeyError as exc:
            raise DatasetRuleError(f"column '{name}': {exc.args[0]}") from None
        rules.append(
            rule(
                "custom_checks",
                check.name,
                f"have {a_name} that {check.failure_phrase}",
                lambda t, check=check: value(t).notnull() & ~check.passes(value(t)),
            )
        )
    return rules


def _format_hints(column: Column, a_name: str) -> list[tuple[str, str, str]]:
    """(rule, RE2 pattern, phrase) for values that only fail because a format was not declared."""
    fmt = column.format
    if column.type in (ColumnType.INTEGER, ColumnType.NUMBER) and (fmt is None or fmt.decimal == "."):
        return [
            (
                "decimal_comma",
                DECIMAL_COMMA,
                f"have {a_name} written with a decimal comma (such as 510,93); if the agency writes "
                "numbers that way, declare the column's format: {decimal: ','}",
            )
        ]
    if column.type not in (ColumnType.DATE, ColumnType.DATETIME) or (fmt and fmt.date):
        return []
    hints = [
        (
            "ambiguous_date",
            AMBIGUOUS_DATE,
            f"have {a_name} with a two-digit year or unclear order (such as 3/5/24); declare the column's "
            "format, e.g. {date: '%m/%d/%y', pivot_year: 50}",
        )
    ]
    if column.type == ColumnType.DATETIME:
        hints.append(
            (
                "time_zone",
                ZONED_DATETIME,
                f"have {a_name} with a time zone offset, which the portal cannot keep; "
                "send local times without an offset",
            )
        )
    return hints


def _type_rules(dataset: Dataset, column: Column, a_name: str, rule: RuleMaker) -> list[Rule]:
    """The type rule, the named reasons for values needing a declared format, and the date floor."""
    name = column.field_name or column.source
    text_name = name + TEXT_SUFFIX
    if column.type == ColumnType.TEXT or (column.type == ColumnType.CODE and column.width is None):
        return []
    hints = _format_hints(column, a_name)

    def unparsed(t: ir.Table) -> ir.BooleanValue:
        return t[text_name].notnull() & t[name].isnull()

    def other(t: ir.Table) -> ir.BooleanValue:
        out = unparsed(t)
        for _, pattern, _ in hints:
            out = out & ~t[text_name].re_search(f"^(?:{pattern})$")
        return out

    kind = (
        f"code of at most {column.width} characters" if column.type == ColumnType.CODE else column.type.value
    )
    rules = [rule("types", "type", f"have {a_name} that is not a valid {kind}", other)]
    for rule_name, pattern, phrase in hints:
        anchored = f"^(?:{pattern})$"
        rules.append(
            rule("types", rule_name, phrase, lambda t, a=anchored: unparsed(t) & t[text_name].re_search(a))
        )
    if column.type in (ColumnType.DATE, ColumnType.DATETIME):
        floor = date_floor(dataset, column)
        low = (
            ibis.literal(floor)
            if column.type == ColumnType.DATE
            else ibis.literal(datetime.combine(floor, time()))
        )
        rules.append(
            rule(
                "ranges",
                "floor",
                f"have {a_name} before {floor.isoformat()}, too early to be real (declare the column's "
                "format: {floor: ...} if it is)",
                lambda t: t[name] < low,
            )
        )
    return rules


def _range_rule(column: Column, name: str, a_name: str, make: Callable[..., Rule]) -> Rule:
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

    def broken(t: ir.Table) -> ir.BooleanValue:
        value = t[name].year() if is_date else t[name]
        out = ibis.literal(False)
        if low is not None:
            out = out | (value < low)
        if high is not None:
            out = out | (value > high)
        return out

    return make("ranges", "range", phrase, broken)


def build_rules(dataset: Dataset, now: datetime) -> list[Rule]:
    """Every row-level rule of a dataset, with severities resolved (group override, else the column's)."""
    overrides = dataset.validate.severities
    rules: list[Rule] = []
    for column in dataset.columns:

        def severity_for(group: str, column: Column = column) -> Severity:
            return overrides.get(group, column.severity)

        rules.extend(_column_rules(dataset, column, severity_for, now))
    return rules


def pandera_schema(dataset: Dataset, rules: list[Rule]) -> pa.DataFrameSchema:
    """The declared schema: typed columns with their dtypes, and every rule as a table-level check."""
    import pandera.ibis as pa  # only validation needs pandera; definitions loading does not

    columns: dict[str, pa.Column] = {}
    for column in dataset.columns:
        name = column.field_name or column.source
        columns[name] = pa.Column(
            ibis.dtype(PANDERA_DTYPES[column.type]), nullable=True, description=column.description
        )
        columns[name + TEXT_SUFFIX] = pa.Column(ibis.dtype("string"), nullable=True)
    # With rules, each check answers with one scalar ("no row fails"): one aggregate query per rule, which
    # validate.py no longer uses (it passes no rules and checks the one scan's counts instead).
    # The select() puts the rule in a subquery, because a window (unique) inside an aggregate is invalid SQL.
    checks = [
        pa.Check(
            lambda data, rule=rule: ~data.table.select(fails=rule.fails(data.table)).fails.any(),
            name=rule.check_name,
            error=rule.phrase,
            n_failure_cases=SAMPLE_SIZE,
            ignore_na=False,
        )
        for rule in rules
    ]
    return pa.DataFrameSchema(columns, checks=checks, name=dataset.id)
