"""Row-level rules from a dataset's column definitions, declared once and used twice.

Each :class:`Rule` is an ibis expression that is true for a row breaking it. The same expression
becomes a pandera check (the declared schema, validated lazily in DuckDB through pandera's ibis
backend) and a SQL ``WHERE`` clause that lists the failing rows for the quarantine table. Keeping
one definition is what guarantees the counts in the UI and the rows set aside always agree.

Rules run on a *typed table* made once from the raw table: for every declared column ``x`` it holds ``x`` cast to
the declared type (NULL when the text does not parse) and ``x__text``, the trimmed text with empty
cells as NULL. Type failures are therefore "text present, typed value NULL".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import ibis
import ibis.expr.types as ir

from ct_pipelines.catalog.models import Column, ColumnType, Dataset
from ct_pipelines.core.outcomes import Severity
from ct_pipelines.validate.custom_checks import get_check

if TYPE_CHECKING:
    import pandera.ibis as pa

TEXT_SUFFIX = "__text"
SAMPLE_SIZE = 20

# Formats seen in agency extracts; DuckDB tries them in order. ISO strings are handled by TRY_CAST first.
DATE_FORMATS = ("%m/%d/%Y", "%m/%d/%y", "%Y/%m/%d", "%m-%d-%Y", "%Y%m%d")
DATETIME_FORMATS = (
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%Y-%m-%d %I:%M:%S %p",
    *DATE_FORMATS,
)
TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")

PANDERA_DTYPES = {
    ColumnType.TEXT: "string",
    ColumnType.INTEGER: "int64",
    ColumnType.NUMBER: "float64",
    ColumnType.BOOLEAN: "boolean",
    ColumnType.DATE: "date",
    ColumnType.DATETIME: "timestamp",
}


class DatasetRuleError(ValueError):
    """A column rule in the dataset YAML that cannot be applied (reported to the YAML's author)."""


def quote(identifier: str) -> str:
    """Quote a DuckDB identifier so field names such as ``order`` or ``_2020`` are safe."""
    return '"' + identifier.replace('"', '""') + '"'


def _sql_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def cast_sql(column_type: ColumnType, text: str) -> str:
    """DuckDB expression turning trimmed text into the declared type; NULL when it does not parse.

    Integers are matched by pattern first because DuckDB's TRY_CAST rounds '12.5' to 13 instead of failing.
    """
    cleaned = f"replace({text}, ',', '')"
    if column_type == ColumnType.TEXT:
        return text
    if column_type == ColumnType.INTEGER:
        return (
            f"CASE WHEN regexp_full_match({cleaned}, '[+-]?[0-9]+(\\.0*)?') "
            f"THEN TRY_CAST({cleaned} AS BIGINT) END"
        )
    if column_type == ColumnType.NUMBER:
        return f"TRY_CAST(regexp_replace({cleaned}, '^\\$', '') AS DOUBLE)"
    if column_type == ColumnType.BOOLEAN:
        return (
            f"CASE WHEN lower({text}) IN {tuple(TRUE_WORDS)} THEN TRUE "
            f"WHEN lower({text}) IN {tuple(FALSE_WORDS)} THEN FALSE END"
        )
    if column_type == ColumnType.DATE:
        return (
            f"COALESCE(TRY_CAST({text} AS DATE), "
            f"CAST(try_strptime({text}, {_sql_list(DATE_FORMATS + DATETIME_FORMATS)}) AS DATE))"
        )
    return f"COALESCE(TRY_CAST({text} AS TIMESTAMP), try_strptime({text}, {_sql_list(DATETIME_FORMATS)}))"


def typed_select_sql(dataset: Dataset, raw_columns: list[str], raw_table: str) -> str:
    """SELECT that types every declared column and keeps its trimmed text beside it.

    Undeclared extra columns pass through unchanged (VARCHAR), so nothing the agency sent is lost.
    """
    declared = {c.field_name: c for c in dataset.columns}
    typed: list[str] = []
    texts: list[str] = []
    for name in raw_columns:
        column = declared.get(name)
        if column is None:
            typed.append(quote(name))
            continue
        text = f"NULLIF(trim({quote(name)}), '')"
        typed.append(f"{cast_sql(column.type, text)} AS {quote(name)}")
        texts.append(f"{text} AS {quote(name + TEXT_SUFFIX)}")
    return f"SELECT {', '.join(typed + texts)} FROM {raw_table}"


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


def _column_rules(column: Column, severity_for: Callable[[str], Severity], now: datetime) -> list[Rule]:
    name = column.field_name or column.source
    text_name = name + TEXT_SUFFIX
    a_name = f"{'an' if name[0] in 'aeiou' else 'a'} {name}"

    def rule(group: str, rule_name: str, phrase: str, broken: Callable[[ir.Table], ir.BooleanValue]) -> Rule:
        def fails(table: ir.Table) -> ir.BooleanValue:
            return broken(table).fill_null(False)

        return Rule(group, rule_name, name, severity_for(group), phrase, fails)

    def text(t: ir.Table) -> ir.StringValue:
        return t[text_name]

    def typed(t: ir.Table) -> ir.Value:
        return t[name]

    rules: list[Rule] = []
    if column.required:
        rules.append(rule("required", "required", f"have an empty {name}", lambda t: text(t).isnull()))
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
    if column.type != ColumnType.TEXT:
        rules.append(
            rule(
                "types",
                "type",
                f"have {a_name} that is not a valid {column.type.value}",
                lambda t: text(t).notnull() & typed(t).isnull(),
            )
        )
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
                lambda t: text(t).notnull() & ~text(t).isin(allowed),
            )
        )
    if column.pattern is not None:
        anchored = f"^(?:{column.pattern})$"
        rules.append(
            rule(
                "patterns",
                "pattern",
                f"have {a_name} that does not match the expected pattern",
                lambda t: text(t).notnull() & ~text(t).re_search(anchored),
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
                lambda t, check=check: text(t).notnull() & ~check.passes(text(t)),
            )
        )
    return rules


def _range_rule(column: Column, name: str, a_name: str, make: Callable[..., Rule]) -> Rule:
    """Numbers compare directly; for dates the YAML's min/max are years (the catalog stores them as numbers)."""
    if column.type in (ColumnType.TEXT, ColumnType.BOOLEAN):
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

        rules.extend(_column_rules(column, severity_for, now))
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
    # Each check answers with one scalar ("no row fails"), so pandera runs one aggregate query per rule
    # and never pulls a per-row result into pandas; failing rows are listed by SQL (see validate.py).
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
