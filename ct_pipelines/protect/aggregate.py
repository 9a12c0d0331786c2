"""Aggregates with declared margins, and suppression of a count table that keeps its column types.

Why declared margins: a total is published only over dimensions every measure adds up over
(``AggregateConfig.margin_dimensions``), so cumulative or point-in-time counts are never summed over
their dates. Why typed write-back: suppression runs in pandas on text keys, but the published table
gets each column back in its DuckDB type (a date stays a DATE); only a dimension with a total row
becomes text, because it holds the total label.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import duckdb
import numpy as np
import pandas as pd

from ct_pipelines.catalog.blocks.protect import AggregateConfig, Measure, SuppressionConfig
from ct_pipelines.catalog.naming import (
    STATE_LABEL_RE2,
    TOTAL_LABEL_RE2,
    closest,
    is_state_label,
    is_total_label,
)
from ct_pipelines.core.sql import quote_ident as q
from ct_pipelines.core.sql import quote_literal, release_table, released_table
from ct_pipelines.core.warehouse import relation_exists
from ct_pipelines.protect.errors import PublishConfigError
from ct_pipelines.protect.sandbox import explain_sql_error
from ct_pipelines.protect.suppression import (
    SuppressionInputError,
    SuppressionResult,
    collapse_categories,
    suppress,
)

NOT_REPORTED = "Not reported"
_NULL_KEY = "\x00null"  # a missing value of a typed dimension, while keys are text


def column_types(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    return {row[0]: str(row[1]) for row in con.execute(f"DESCRIBE {q(table)}").fetchall()}


def is_text_column(column_type: str) -> bool:
    return column_type.upper().startswith("VARCHAR")


def _is_time(column_type: str) -> bool:
    return column_type.upper().startswith(("DATE", "TIMESTAMP", "TIME"))


#: Text that names a period rather than a category (RE2, whole value, any case): 2025-01, 01/2025,
#: FY2024, SFY 2023-24, 2016-17, 2024 Q1, Q1 2024, Jan-25, January 2025, a year alone.
_MONTH = "(jan(uary)?|feb(ruary)?|mar(ch)?|apr(il)?|may|june?|july?|aug(ust)?|sep(t(ember)?)?|oct(ober)?|nov(ember)?|dec(ember)?)"
PERIOD_TEXT_RE2 = (
    r"(?i)^\s*("
    r"(19|20)[0-9]{2}([-/](0?[1-9]|1[0-2]))?"
    r"|(0?[1-9]|1[0-2])[-/](19|20)[0-9]{2}"
    r"|(s?fy|cy|ay|fiscal year|calendar year|academic year|school year|sy)\s*'?[0-9]{2}([0-9]{2})?(\s*[-/]\s*[0-9]{2}([0-9]{2})?)?"
    r"|(fall|spring|summer|winter|autumn)( term| semester| quarter)?\s*,?\s*'?[0-9]{2}([0-9]{2})?"
    r"|(0?[1-9]|1[0-2])[-/](0?[1-9]|[12][0-9]|3[01])[-/]([0-9]{2}|(19|20)[0-9]{2})"
    r"|(19|20)[0-9]{2}-(0?[1-9]|1[0-2])-(0?[1-9]|[12][0-9]|3[01])"
    r"|(0?[1-9]|[12][0-9]|3[01])\s+" + _MONTH + r"\.?,?\s+(19|20)[0-9]{2}"
    r"|(19|20)[0-9]{2}\s*[-/]\s*[0-9]{2}([0-9]{2})?"
    r"|(19|20)[0-9]{2}\s*-?\s*q[1-4]|q[1-4]\s*-?\s*(19|20)[0-9]{2}"
    rf"|{_MONTH}\.?[ ,.-]*((0?[1-9]|[12][0-9]|3[01]),?\s+)?('?[0-9]{{2}}|(19|20)[0-9]{{2}})"
    r")\s*$"
)
PERIOD_SAMPLE_ROWS = 2048
#: A whole-number column named for a year (year, fiscal_year, fy, calendar_year, report_year) or a
#: month or period written as 202501 (month, period, yyyymm, year_month).
_YEAR_NAME = (
    r"(^|_)(year|yr|fy|sfy|cy|fiscal_year|calendar_year|school_year|report_year|reporting_year|month|period"
    r"|yyyymm|year_month|yearmonth|report_month|reporting_period)$"
)
#: Whole numbers that name a year (1900-2100) or a month (190001-210012, month 01-12).
_YEAR_OR_MONTH = "BETWEEN 1900 AND 2100 OR ({c} BETWEEN 190001 AND 210012 AND {c} % 100 BETWEEN 1 AND 12)"


def time_columns(con: duckdb.DuckDBPyConnection, view: str, types: dict[str, str]) -> set[str]:
    """Columns whose values are dates or periods: a date type, text such as "2025-01" or "FY2024" on every
    filled row, or whole numbers 1900-2100 in a column named for a year. A total over them adds counts
    taken at different times: a helper's enrollment by month, kept as text, published a "Total" month
    of 57,559 members where each month had about 19,000."""
    found = {c for c, t in types.items() if _is_time(t) and not c.startswith("_")}
    text = [c for c, t in types.items() if is_text_column(t) and not c.startswith("_")]
    years = [
        c
        for c, t in types.items()
        if t.upper() in ("BIGINT", "INTEGER", "HUGEINT", "SMALLINT") and re.search(_YEAR_NAME, c.lower())
    ]

    def holding_periods(columns: list[str], source: str) -> list[str]:
        """Columns with no value that is not a period in ``source`` (and, read in full, some value)."""
        tests = [
            f"coalesce(bool_and(regexp_full_match({q(c)}, {quote_literal(PERIOD_TEXT_RE2)})), true)"
            if c in text
            else f"coalesce(bool_and({q(c)} {_YEAR_OR_MONTH.format(c=q(c))}), true)"
            for c in columns
        ]
        if source == q(view):
            tests = [f"count({q(c)}) > 0 AND {test}" for c, test in zip(columns, tests, strict=True)]
        if not tests:
            return []
        row = con.execute(f"SELECT {', '.join(tests)} FROM {source}").fetchall()[0]
        return [c for c, hit in zip(columns, row, strict=True) if hit]

    # the first rows rule out most columns (a town, a race); only the rest are read in full
    likely = holding_periods([*text, *years], f"(SELECT * FROM {q(view)} LIMIT {PERIOD_SAMPLE_ROWS})")
    return found | set(holding_periods(likely, q(view)))


def _declared(aggregate: AggregateConfig, dim: str) -> bool:
    """A date dimension gets totals only when every measure says in YAML that it adds up over it."""
    return all(m.adds_up_over is not None and dim in m.adds_up_over for m in aggregate.measures)


def key_sql(name: str, column_type: str, margin_dims: Sequence[str]) -> str:
    """A dimension as a text key for pandas; typed values keep a marker for missing so they round-trip."""
    missing = NOT_REPORTED if name in margin_dims or is_text_column(column_type) else _NULL_KEY
    return f"COALESCE(CAST({q(name)} AS VARCHAR), '{missing}') AS {q(name)}"


def check_aggregate_columns(
    types: dict[str, str], aggregate: AggregateConfig, pii_fields: Sequence[str], label: str
) -> None:
    """Name a dimension or measure column that does not exist, and list the ones that do."""
    wanted = [(d.name, "dimension") for d in aggregate.dimension_specs]
    wanted += [(m.column, f"measure '{m.name}'") for m in aggregate.measures if m.column]
    for name, role in wanted:
        if name not in types:
            pii = (
                f" '{name}' is marked pii and is never available to published tables."
                if name in pii_fields
                else ""
            )
            named = [c for c in types if not c.startswith("_")]
            meant = closest(name, named)
            hint = f" (did you mean '{meant}'?)" if meant and not pii else ""
            raise PublishConfigError(
                f"{label}: {role} column '{name}' does not exist{hint}; the columns that exist are: "
                f"{', '.join(named)}.{pii}"
            )


def refuse_figures_over_source_suppression(
    con: duckdb.DuckDBPyConnection, view: str, types: dict[str, str], uses: list[tuple[str, str]], fix: str
) -> None:
    """A sum (or count, mean, min, max) of a column whose cells the source suppressed would leave those
    cells out and be published as a true figure, too low: SDE's statewide enrollment by race came out
    37% short for one group. Nothing can rebuild the hidden values, so the run stops and says what to do.
    ``uses``: (column, what uses it, as the message's opening words)."""
    for column, what in uses:
        flag = f"{column}_suppressed"
        if flag not in types:
            continue
        hidden = con.execute(f"SELECT count_if({q(flag)}) FROM {q(view)}").fetchone()[0]
        if hidden:
            raise PublishConfigError(
                f"{what}, and the source suppressed {hidden:,} of its values (empty, with {flag} true), so "
                f"every figure including them would be published wrong; {fix}"
            )


def refuse_sums_over_dates(
    con: duckdb.DuckDBPyConnection, view: str, times: set[str], aggregate: AggregateConfig
) -> None:
    """A published cell that sums rows from several dates of a date column that is not a dimension adds
    those dates together. For counts taken on a date (DCF's children in placement on each July 1) that
    counts the same children again: a new user's DCF aggregate by extract date summed seven annual counts
    into each cell. Only the YAML can say the rows are separate events, so the run stops and says how.
    A date that has one value within every cell (the extract date of each July 1) adds nothing up."""
    dims = [d.name for d in aggregate.dimension_specs]
    dates = sorted(c for c in times if c not in dims)
    sums = [m for m in aggregate.measures if m.agg.lower() == "sum" and m.column]
    wanted = list(dict.fromkeys(c for m in sums for c in dates if c not in m.sum_over))
    for measure in sums:
        for date in (c for c in dates if c in measure.sum_over):
            _refuse_running_totals(con, view, dims, date, measure)
    if not wanted:
        return
    group = f" GROUP BY {', '.join(q(d) for d in dims)}" if dims else ""
    per_cell = ", ".join(f"count(DISTINCT {q(c)}) AS {q(c)}" for c in wanted)
    most = (
        con.execute(
            f"SELECT {', '.join(f'max({q(c)})' for c in wanted)} FROM (SELECT {per_cell} FROM {q(view)}{group})"
        ).fetchone()
        or ()
    )
    several = {c: n for c, n in zip(wanted, most, strict=True) if n and n > 1}
    for measure in sums:
        summed = {c: n for c, n in several.items() if c not in measure.sum_over}
        if not summed:
            continue
        listed = " and ".join(f"up to {n:,} different values of '{c}'" for c, n in summed.items())
        first = next(iter(summed))
        which = f"{' and '.join(summed)} {'is not a dimension' if len(summed) == 1 else 'are not dimensions'}"
        raise PublishConfigError(
            f"protect.aggregate: measure '{measure.name}' would add up '{measure.column}' over {listed} in "
            f"one published cell, because {which}; counts taken on different dates would be added as if "
            "they counted different people, so add each such date to the dimensions as a time dimension "
            f"(for example '- {{name: {first}, time: true}}'), or, if each row counts separate events, "
            "list it in the measure's sum_over"
        )


def refuse_sums_over_empty_cells(con: duckdb.DuckDBPyConnection, view: str, measures: list[Measure]) -> None:
    """A sum leaves empty cells out and is published as a true figure, too low: a helper blanked four of
    DCF's TOTAL_CIP cells and eight of 75 published counts fell short, while the run said every row was
    counted. Only the agency knows what an empty cell means, so the run stops and says where they are."""
    for measure in measures:
        if measure.agg.lower() != "sum" or measure.column is None:
            continue
        empty = con.execute(f"SELECT count(*) - count({q(measure.column)}) FROM {q(view)}").fetchone()[0]
        if empty:
            raise PublishConfigError(
                f"protect.aggregate: measure '{measure.name}' is the sum of '{measure.column}', which is empty "
                f"on {empty:,} row{'s' if empty != 1 else ''}, so every sum including them would be published "
                "too low; fill them in the extract (0 where the agency means none), or add required: true to "
                f"'{measure.column}' so validation names each such row"
            )


#: A series is read as running totals when it has this many dates or more and never goes down...
RUNNING_TOTAL_DATES = 4
#: ... and this share of such series do, ending higher than they began.
RUNNING_TOTAL_SHARE = 0.9


def _refuse_running_totals(
    con: duckdb.DuckDBPyConnection, view: str, dims: list[str], date: str, measure: Measure
) -> None:
    """``sum_over`` says each row counts separate events, but cumulative counts (DPH's COVID cases by town,
    each week holding every week before it) only ever grow: a helper's sum over 40 weeks published
    Bridgeport's Hispanic cases as 7,295 where the latest week says 349."""
    keys = ", ".join(q(d) for d in dims)
    by = f"PARTITION BY {keys} " if dims else ""
    series = con.execute(
        f"""
        WITH per AS (
            SELECT {keys + ", " if dims else ""}{q(date)} AS d, sum({q(measure.column)}) AS v
            FROM {q(view)} GROUP BY ALL
        ),
        steps AS (
            SELECT *, v - lag(v) OVER ({by}ORDER BY d) AS step,
                first_value(v) OVER ({by}ORDER BY d ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS v0,
                last_value(v) OVER ({by}ORDER BY d ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS v1
            FROM per
        ),
        judged AS (
            SELECT count(*) AS dates, bool_and(coalesce(step, 0) >= 0) AND max(v1) > max(v0) AS growing
            FROM steps {"GROUP BY " + keys if dims else ""}
        )
        SELECT count(*), count_if(growing) FROM judged WHERE dates >= {RUNNING_TOTAL_DATES}
        """
    ).fetchone()
    judged, growing = series if series else (0, 0)
    if judged and growing >= RUNNING_TOTAL_SHARE * judged:
        raise PublishConfigError(
            f"protect.aggregate: measure '{measure.name}' sums '{measure.column}' over '{date}' (sum_over), but "
            f"{growing:,} of {judged:,} series never go down from one {date} to the next: these look like running "
            "totals, which a sum would count again at every date; publish each date (make it a time dimension, "
            f"'- {{name: {date}, time: true}}'), or keep only the latest rows in the extract"
        )


def refuse_sums_over_total_rows(
    con: duckdb.DuckDBPyConnection, view: str, types: dict[str, str], aggregate: AggregateConfig
) -> None:
    """A summed column over a column that holds its own total (DPH's "BOTH SEXES" beside MALE and FEMALE)
    adds each total to its parts: a helper's suggested sum of deaths by group published every figure
    twice. A column is summed over when it is not a dimension, or when it is one that gets totals."""
    sums = [m for m in aggregate.measures if m.agg.lower() == "sum" and m.column]
    if not sums:
        return
    margins = set(aggregate.margin_dimensions())
    dims = {d.name for d in aggregate.dimension_specs}
    columns = [
        c
        for c, t in types.items()
        if is_text_column(t) and (c not in dims or c in margins) and not c.startswith("_")
    ]
    if not columns:
        return
    pattern = quote_literal(f"{TOTAL_LABEL_RE2}|{STATE_LABEL_RE2[4:]}")
    found = (
        con.execute(
            "SELECT "
            + ", ".join(
                f"list(DISTINCT {q(c)}) FILTER (WHERE regexp_matches({q(c)}, {pattern})), count(DISTINCT {q(c)})"
                for c in columns
            )
            + f" FROM {q(view)}"
        ).fetchone()
        or ()
    )
    for k, column in enumerate(columns):
        values, distinct = found[2 * k] or [], found[2 * k + 1]
        # "Connecticut" in a column of town names totals them; in a column holding only it, it is the state
        totals = sorted(v for v in values if is_total_label(v) or (is_state_label(v) and distinct > 1))
        if not totals:
            continue
        listed = ", ".join(f"'{v}'" for v in totals[:3]) + (
            f" and {len(totals) - 3} more" if len(totals) > 3 else ""
        )
        role = "gets totals" if column in margins else "is not a dimension"
        which = (
            f"equals: '{totals[0]}'"
            if len(totals) == 1
            else "matches: '^("
            + "|".join(re.sub(r"([.^$*+?()\[\]{}|\\])", r"\\\1", v) for v in totals).replace("'", "''")
            + ")$'"
        )
        raise PublishConfigError(
            f"protect.aggregate: '{column}' holds {listed}, which read{'s' if len(totals) == 1 else ''} as a "
            f"total of its other values, and {column} {role}, so the sum of '{sums[0].column}' would add each "
            f"total to its own parts; leave those rows out at ingest (ingest.leave_out: [{{name: {column} "
            f"total, column: {column}, {which}}}]), or make '{column}' a dimension without "
            f"totals ('- {{name: {column}, totals: false}}')"
        )


def measure_sql(measure: Measure) -> str:
    agg = measure.agg.lower()
    if agg == "count" and measure.column is None:
        return f"count(*) AS {q(measure.name)}"
    return f"{agg}({q(measure.column or '')}) AS {q(measure.name)}"


def _dimension_sql(name: str, column_type: str, totalled: bool, label: str | None) -> str:
    """A dimension as published: text with 'Not reported' when it can get a total, else its own type."""
    if totalled:
        text = f"COALESCE(CAST({q(name)} AS VARCHAR), '{NOT_REPORTED}')"
        if label is not None:
            text = f"CASE WHEN grouping({q(name)}) = 1 THEN '{label}' ELSE {text} END"
        return f"{text} AS {q(name)}"
    if is_text_column(column_type):
        return f"COALESCE({q(name)}, '{NOT_REPORTED}') AS {q(name)}"
    return q(name)


def grouped_query(
    view: str,
    dims: list[str],
    margin_dims: list[str],
    measures: list[Measure],
    types: dict[str, str],
    total_label: str,
    margins_only: bool = False,
) -> str:
    """GROUP BY GROUPING SETS: the interior cells plus a total over every subset of ``margin_dims``."""
    label = total_label if margin_dims else None
    select = [_dimension_sql(d, types[d], d in margin_dims, label) for d in dims]
    select += [measure_sql(m) for m in measures]
    sets = []
    for mask in range(1 << len(margin_dims)):
        if margins_only and mask == 0:
            continue
        summed = {d for i, d in enumerate(margin_dims) if mask >> i & 1}
        sets.append("(" + ", ".join(q(d) for d in dims if d not in summed) + ")")
    if set(sets) == {"()"}:  # a grand total alone: DuckDB's GROUPING() needs a grouped set beside it
        sets.insert(0, "(" + ", ".join(q(d) for d in dims) + ")")
    return f"SELECT {', '.join(select)} FROM {q(view)} GROUP BY GROUPING SETS ({', '.join(sets)})"


def build_aggregate(
    con: duckdb.DuckDBPyConnection,
    view: str,
    target: str,
    aggregate: AggregateConfig,
    suppression: SuppressionConfig | None,
    pii_fields: Sequence[str],
) -> list[SuppressionResult]:
    """Group the PII-free rows by the dimensions; margins and suppression follow the YAML."""
    label = "protect.aggregate"
    types = column_types(con, view)
    check_aggregate_columns(types, aggregate, pii_fields, label)
    refuse_figures_over_source_suppression(
        con,
        view,
        types,
        [
            (m.column, f"protect.aggregate: measure '{m.name}' is the {m.agg} of '{m.column}'")
            for m in aggregate.measures
            if m.column
        ],
        "publish the rows as they are (remove protect.aggregate: each suppressed value stays empty with its "
        "flag), or aggregate a column the source did not suppress",
    )
    refuse_sums_over_empty_cells(con, view, aggregate.measures)
    times = time_columns(con, view, types)
    refuse_sums_over_dates(con, view, times, aggregate)
    refuse_sums_over_total_rows(con, view, types, aggregate)
    dims = [d.name for d in aggregate.dimension_specs]
    margin_dims = [d for d in aggregate.margin_dimensions() if d not in times or _declared(aggregate, d)]
    try:
        if suppression is None:
            query = grouped_query(view, dims, margin_dims, aggregate.measures, types, aggregate.total_label)
            con.execute(f"CREATE OR REPLACE TABLE {q(target)} AS {query} ORDER BY ALL")
            return []
        staging = f"{target}__cells"
        cells = grouped_query(view, dims, [], aggregate.measures, types, aggregate.total_label)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {q(staging)} AS {cells}")
        others = [m for m in aggregate.measures if m.name not in suppression.counts]
        margin_frame = None
        if margin_dims and others and not suppression.collapse:
            query = grouped_query(
                view, dims, margin_dims, others, types, aggregate.total_label, margins_only=True
            )
            keys = [key_sql(d, types[d], margin_dims) for d in dims]
            margin_frame = con.execute(
                f"SELECT {', '.join([*keys, *(q(m.name) for m in others)])} FROM ({query})"
            ).df()
    except duckdb.Error as exc:
        raise PublishConfigError(explain_sql_error(exc, label, {view: list(types)}, pii_fields)) from exc
    try:
        sums = [m.name for m in aggregate.measures if m.agg.lower() == "sum"]
        return suppress_table(
            con,
            staging,
            target,
            dims,
            margin_dims,
            suppression,
            aggregate.total_label,
            margin_frame,
            sums,
            periods=times,
        )
    finally:
        con.execute(f"DROP TABLE IF EXISTS {q(staging)}")


def suppress_table(
    con: duckdb.DuckDBPyConnection,
    staging: str,
    target: str,
    dims: list[str],
    margin_dims: list[str],
    config: SuppressionConfig,
    total_label: str,
    margin_frame: pd.DataFrame | None = None,
    sums: Sequence[str] = (),
    periods: set[str] | frozenset[str] = frozenset(),
) -> list[SuppressionResult]:
    """Suppress every count column of ``staging`` (interior cells) into ``target``, with margins and types.

    Rates and other measures are hidden wherever a count of their row is hidden. Suppression publishes
    every combination of the dimensions; one with no rows gets 0 for the ``sums`` (a sum over no rows),
    and stays empty for a mean, minimum or maximum. A category with no row in a period of a date
    dimension is left out for that period (see ``_absent_in_period``).
    """
    types = column_types(con, staging)
    counts = config.counts
    missing = [c for c in [*dims, *counts, *config.rate_columns] if c not in types]
    if missing:
        raise PublishConfigError(
            f"column(s) {', '.join(missing)} are not in the published aggregate; it has {', '.join(types)}"
        )
    keys = [key_sql(d, types[d], margin_dims) for d in dims]
    rest = [c for c in types if c not in dims]
    frame = con.execute(f"SELECT {', '.join([*keys, *(q(c) for c in rest)])} FROM {q(staging)}").df()
    if config.collapse:  # other measures of merged categories cannot be rebuilt from the cells
        frame = collapse_categories(frame, dims, counts, config.collapse, config.collapse_label)
    before = last_release(con, target)
    try:
        results = [
            _suppress_count(frame, dims, count, margin_dims, config, total_label, before.get(count))
            for count in counts
        ]
    except SuppressionInputError as exc:
        raise PublishConfigError(f"suppression: {exc}") from exc
    _write_release(con, target, results)
    published = results[0].table[[*dims, "is_margin"]].copy()
    hidden = np.zeros(len(published), bool)
    for result in results:
        published[result.count] = result.table[result.count].to_numpy()
        hidden |= result.table[config.flag_column].to_numpy(bool)
    published[config.flag_column] = hidden
    extra = [c for c in frame.columns if c not in (*dims, *counts)]
    published = published.merge(frame[[*dims, *extra]], on=dims, how="left", indicator="_cell")
    no_rows = (published.pop("_cell") == "left_only").to_numpy() & ~published["is_margin"].to_numpy(bool)
    for column in (c for c in extra if c in sums):
        published[column] = published[column].astype(object).where(~no_rows, 0)
    if margin_frame is not None:
        _fill_margins(published, margin_frame, dims, extra)
    for column in extra:
        published[column] = published[column].astype(object).where(~hidden, None)
    absent = _absent_in_period(published, frame, dims, types, total_label, periods)
    published = published[~(absent & ~hidden)]
    _write_typed(con, published.drop(columns=["is_margin"]), target, types, dims, margin_dims, counts)
    return results


def _absent_in_period(
    published: pd.DataFrame,
    frame: pd.DataFrame,
    dims: list[str],
    types: dict[str, str],
    total_label: str,
    periods: set[str] | frozenset[str] = frozenset(),
) -> np.ndarray:
    """Rows for a period with no row at all, or for a category with no row in that period (a region that
    did not report in 2014, or did not exist yet): the grid would publish them as 0, which says no one,
    where the source said nothing. A period is a combination of the date dimensions' values: DCF's extract
    date and the July 1 it counts occur only in pairs, and the other pairs are not periods. Within a
    period, a missing combination of categories that do occur stays 0. Suppression and its audit treat
    these cells as known zeros, so leaving them out only hides more."""
    times = [d for d in dims if _is_time(types[d]) or d in periods]
    absent = np.zeros(len(published), bool)
    if not times:
        return absent
    periods = list(zip(*(published[t] for t in times), strict=True))
    seen_periods = list(zip(*(frame[t] for t in times), strict=True))
    whole = [total_label not in period for period in periods]  # a total over a date is no period
    occurring = set(seen_periods)
    absent |= np.fromiter((w and p not in occurring for w, p in zip(whole, periods, strict=True)), bool)
    for dim in (d for d in dims if d not in times):
        seen = set(zip(seen_periods, frame[dim], strict=True))
        absent |= np.fromiter(
            (
                w and v != total_label and (p, v) not in seen
                for w, p, v in zip(whole, periods, published[dim], strict=True)
            ),
            bool,
            len(published),
        )
    return absent


def _suppress_count(
    frame: pd.DataFrame,
    dims: list[str],
    count: str,
    margin_dims: list[str],
    config: SuppressionConfig,
    total_label: str,
    before: pd.DataFrame | None = None,
) -> SuppressionResult:
    return suppress(
        frame[[*dims, count]],
        dims,
        count,
        config.threshold,
        config.protect_zeros,
        total_label,
        margin_dims,
        config.flag_column,
        method=config.method,
        time_limit=config.time_limit,
        node_limit=config.node_limit,
        last_release=before,
    )


def last_release(con: duckdb.DuckDBPyConnection, target: str) -> dict[str, pd.DataFrame]:
    """The last published release's cells, per count column (empty when there is none)."""
    table = released_table(target)
    if not relation_exists(con, "main", table):
        return {}
    frame = con.execute(f"SELECT * FROM {q(table)}").df()
    return {str(count): part.drop(columns="__count") for count, part in frame.groupby("__count")}


def _write_release(con: duckdb.DuckDBPyConnection, target: str, results: list[SuppressionResult]) -> None:
    release = pd.concat([r.release().assign(__count=r.count) for r in results], ignore_index=True)
    con.register("_protect_release", release)
    try:
        con.execute(f"CREATE OR REPLACE TABLE {q(release_table(target))} AS SELECT * FROM _protect_release")
    finally:
        con.unregister("_protect_release")


def _fill_margins(
    published: pd.DataFrame, margins: pd.DataFrame, dims: list[str], measures: list[str]
) -> None:
    """Margin rows get the other measures from the grouping-sets query (keys compared as text)."""
    lookup = margins.set_index(dims)[[m for m in measures if m in margins]].to_dict("index")
    for row in np.flatnonzero(published["is_margin"].to_numpy()):
        key = tuple(published.at[row, d] for d in dims)
        found = lookup.get(key if len(dims) > 1 else key[0])
        if found:
            for measure, value in found.items():
                published.at[row, measure] = value


def _write_typed(
    con: duckdb.DuckDBPyConnection,
    frame: pd.DataFrame,
    target: str,
    types: dict[str, str],
    dims: list[str],
    margin_dims: list[str],
    counts: list[str],
) -> None:
    """Write the suppressed frame with each column in its original type (totalled dimensions as text)."""
    view = f"_{target}_frame"
    select = []
    for column in frame.columns:
        if column in counts:
            select.append(f"CAST({q(column)} AS BIGINT) AS {q(column)}")
        elif column in margin_dims or column not in types or is_text_column(types[column]):
            select.append(q(column))
        elif column in dims:
            value = f"NULLIF(CAST({q(column)} AS VARCHAR), '{_NULL_KEY}')"
            select.append(f"CAST({value} AS {types[column]}) AS {q(column)}")
        else:
            select.append(f"CAST({q(column)} AS {types[column]}) AS {q(column)}")
    con.register(view, frame)
    try:
        con.execute(f"CREATE OR REPLACE TABLE {q(target)} AS SELECT {', '.join(select)} FROM {q(view)}")
    finally:
        con.unregister(view)
