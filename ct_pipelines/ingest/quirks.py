"""Source quirks declared in the dataset YAML, applied right after a file is read: rows left out by named
rules (a footer ``Total`` row, a notes line) and wide tables turned long (one count column per race group).

Nothing is dropped silently: every left-out row is kept in ``left_out__<id>`` with its row, line and rule,
and counted per rule in the ingest lineage, so source rows = raw rows + rows left out (before unpivoting).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ct_pipelines.catalog.models import Dataset, LeaveOutRule, Source
from ct_pipelines.core.sql import quote_ident, quote_literal
from ct_pipelines.ingest.errors import IngestError
from ct_pipelines.ingest.readers import ReadResult


def left_out_table(dataset_id: str) -> str:
    """Rows left out by a rule: ``_row``, ``_line``, ``rule``, ``column_name``, ``value`` (masked for PII)."""
    return f"left_out__{dataset_id}"


def shaped_table(dataset_id: str) -> str:
    """The rows kept (and unpivoted) that ``ingest__<id>`` shows when the dataset declares quirks."""
    return f"raw_shaped__{dataset_id}"


@dataclass
class QuirkResult:
    source_rows: int  # records read from the file
    left_out: dict[str, int] = field(default_factory=dict)  # rule name -> rows left out
    rows: int = 0  # rows in ingest__<id> afterwards
    unpivoted_columns: int = 0  # wide columns turned into rows (0 when no unpivot)

    @property
    def rows_left_out(self) -> int:
        return sum(self.left_out.values())


def has_quirks(source: Source) -> bool:
    return bool(source.leave_out or source.unpivot)


def produced_columns(source: Source) -> set[str]:
    """Field names that exist only after unpivoting; the YAML may declare them although the file lacks them."""
    return {source.unpivot.name, source.unpivot.value} if source.unpivot else set()


def _norm(name: str) -> str:
    return " ".join(str(name).split()).casefold()


def _field_of(path: Path, read: ReadResult, name: str, what: str) -> str:
    """The loaded column for a source name as in the file (or an API field name).

    An API field name is taken as it is. A source name that several columns share (a report's
    Male, Female, Male, Female under two years) is refused: the last one of them had been taken,
    so an unpivot published one year twice and dropped the other."""
    if name in read.field_names:
        return name
    sharing = [
        f for s, f in zip(read.source_columns, read.field_names, strict=True) if _norm(s) == _norm(name)
    ]
    if len(sharing) > 1:
        raise IngestError(
            path,
            f"{what} names column '{name}', which {len(sharing)} columns of the file are called "
            f"(their field names: {', '.join(sharing)})",
            f"name each one by its field name in the dataset YAML's {what}",
            column=name,
        )
    if sharing:
        return sharing[0]
    raise IngestError(
        path,
        f"{what} names column '{name}', which is not in the file "
        f"(the file has: {', '.join(read.source_columns)})",
        f"correct the column name in the dataset YAML's {what}",
        column=name,
    )


def _rule_sql(path: Path, read: ReadResult, rule: LeaveOutRule) -> tuple[str, str]:
    """(value expression, test) for one rule; the value is the trimmed cell, or the first non-empty cell."""
    if rule.column:
        value = f"NULLIF(trim({quote_ident(_field_of(path, read, rule.column, 'ingest.leave_out'))}), '')"
    else:
        cells = [f"NULLIF(trim({quote_ident(n)}), '')" for n in read.field_names]
        value = f"coalesce({', '.join(cells)})" if len(cells) > 1 else cells[0]
    if rule.equals is not None:
        return value, f"coalesce({value} = {quote_literal(rule.equals.strip())}, false)"
    return value, f"coalesce(regexp_matches({value}, {quote_literal(rule.matches or '')}), false)"


def apply_quirks(
    con: duckdb.DuckDBPyConnection, dataset: Dataset, path: Path, raw_view: str, read: ReadResult
) -> QuirkResult:
    """Leave out rows by rule and unpivot; then ``raw_view`` shows the shaped rows. A no-op without quirks."""
    source, left, shaped = dataset.ingest, left_out_table(dataset.id), shaped_table(dataset.id)
    result = QuirkResult(source_rows=read.rows, rows=read.rows)
    con.execute(f'DROP TABLE IF EXISTS "{left}"')
    if not has_quirks(source):
        con.execute(f'DROP TABLE IF EXISTS "{shaped}"')
        return result
    con.execute(
        f'CREATE TABLE "{left}" (_row BIGINT, _line BIGINT, rule VARCHAR, column_name VARCHAR, value VARCHAR)'
    )
    pii = set(dataset.pii_fields)
    taken: list[str] = []  # tests of earlier rules: a row is counted under the first rule it meets
    for rule in source.leave_out:
        value, test = _rule_sql(path, read, rule)
        column = _field_of(path, read, rule.column, "ingest.leave_out") if rule.column else None
        shown = "'***'" if column in pii else f"left({value}, 200)"
        # every test is true or false, never NULL: an empty cell in an earlier rule's column made NOT (NULL)
        # drop the row from this rule too, and a helper's notes rows were published as data
        earlier = f" AND NOT ({' OR '.join(taken)})" if taken else ""
        con.execute(
            f'INSERT INTO "{left}" SELECT _row, _line, ?, ?, {shown} FROM "{raw_view}" WHERE {test}{earlier}',
            [rule.name, column],
        )
        count = con.execute(f'SELECT count(*) FROM "{left}" WHERE rule = ?', [rule.name]).fetchone()[0]
        if rule.max_rows is not None and count > rule.max_rows:
            raise IngestError(
                path,
                f"the leave-out rule '{rule.name}' matches {count:,} rows, more than its "
                f"max_rows of {rule.max_rows:,}",
                "narrow the rule (column, equals or matches) or "
                "raise max_rows if these rows really are not data",
            )
        result.left_out[rule.name] = count
        taken.append(test)
    kept = f'SELECT * FROM "{raw_view}" v WHERE NOT EXISTS (SELECT 1 FROM "{left}" l WHERE l._row = v._row)'
    if source.unpivot:
        kept, result.unpivoted_columns = _unpivot_sql(path, read, source, kept)
    con.execute(f'CREATE OR REPLACE TABLE "{shaped}" AS {kept}')
    con.execute(f'CREATE OR REPLACE VIEW "{raw_view}" AS SELECT * FROM "{shaped}"')
    result.rows = con.execute(f'SELECT count(*) FROM "{shaped}"').fetchone()[0]
    return result


def _unpivot_sql(path: Path, read: ReadResult, source: Source, kept: str) -> tuple[str, int]:
    """Each kept row becomes one row per wide column (empty cells included, so nothing disappears); the
    new column holds the column's name as in the file (the label REL maps). ``_row`` is renumbered so it
    stays unique; ``_line`` keeps the source line."""
    assert source.unpivot is not None
    spec = source.unpivot
    wide = [_field_of(path, read, c, "ingest.unpivot.columns") for c in spec.columns]
    labels = {f: s for s, f in zip(read.source_columns, read.field_names, strict=True)}
    named = [labels[f] for f in wide]
    repeated = sorted({label for label in named if named.count(label) > 1})
    if repeated:  # a report's two header rows (2019 over Male, Female): the lower row alone repeats
        raise IngestError(
            path,
            f"ingest.unpivot.columns has several columns called {', '.join(repr(r) for r in repeated)} in the "
            f"file, so their rows in '{spec.name}' could not be told apart (a second header row above them, "
            "such as a year, is not read)",
            "export the sheet with one header row whose names say everything (e.g. 'Male 2019'), or publish "
            "it through a protect SQL file that names each column",
        )
    clash = {spec.name, spec.value} & (set(read.field_names) - set(wide))
    if clash or spec.name == spec.value:
        raise IngestError(
            path,
            f"ingest.unpivot would create column(s) {', '.join(sorted(clash or {spec.name}))} "
            "that the file already has",
            "choose other names for ingest.unpivot.name and value",
        )
    kept_columns = [n for n in read.field_names if n not in wide]
    items = ", ".join(
        f"{{'i': {i}, 'n': {quote_literal(labels[f])}, 'v': {quote_ident(f)}}}" for i, f in enumerate(wide)
    )
    ids = ", ".join(quote_ident(n) for n in kept_columns)
    inner = f"SELECT _row AS _wide_row, _line, {ids + ', ' if ids else ''}unnest([{items}]) AS _cell FROM ({kept})"
    sql = (
        f"SELECT row_number() OVER (ORDER BY _wide_row, _cell.i) AS _row, _line, {ids + ', ' if ids else ''}"
        f"_cell.n AS {quote_ident(spec.name)}, CAST(_cell.v AS VARCHAR) AS {quote_ident(spec.value)} "
        f"FROM ({inner}) ORDER BY _row"
    )
    return sql, len(wide)


def recorded_quirks(
    con: duckdb.DuckDBPyConnection, dataset: Dataset, raw_view: str, source_rows: int
) -> QuirkResult:
    """The counts of an earlier ingest of the same file (kept in the warehouse), for a skipped re-ingest."""
    result = QuirkResult(source_rows=source_rows, rows=source_rows)
    tables = {
        r[0]
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
        ).fetchall()
    }
    if shaped_table(dataset.id) not in tables:
        return result
    if left_out_table(dataset.id) in tables:
        counts = con.execute(
            f'SELECT rule, count(*) FROM "{left_out_table(dataset.id)}" GROUP BY rule'
        ).fetchall()
        result.left_out = {r.name: 0 for r in dataset.ingest.leave_out} | {r: int(n) for r, n in counts}
    result.rows = con.execute(f'SELECT count(*) FROM "{raw_view}"').fetchone()[0]
    result.unpivoted_columns = len(dataset.ingest.unpivot.columns) if dataset.ingest.unpivot else 0
    return result
