"""Readers that load one extract into a DuckDB table of text columns, without a whole-file pandas frame.

Every reader produces the same shape once :func:`create_rows_view` exposes it: one VARCHAR column per
source column (named by its API field name), ``_row`` (1-based data row) and ``_line`` (1-based physical
line where the record starts, or NULL where the format has no lines). Typing happens later, in
validation, where a failed cast can be quarantined with its line instead of failing the whole load.

Delimited files are read by :mod:`ct_pipelines.ingest.delimited` (with the byte scan of
:mod:`ct_pipelines.ingest.scan`), workbooks by :mod:`ct_pipelines.ingest.excel`; JSON and Parquet here.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from ct_pipelines.core.settings import PUBLISHED_TIME_ZONE
from ct_pipelines.core.sql import quote_ident, quote_literal
from ct_pipelines.ingest.delimited import read_csv_into
from ct_pipelines.ingest.errors import IngestError
from ct_pipelines.ingest.result import (
    ARROW_BATCH_ROWS,
    NameMapper,
    ReadResult,
    first_line,
    unwrap_formula_sql,
)
from ct_pipelines.ingest.scan import FileScan, scan_file

__all__ = [
    "ARROW_BATCH_ROWS",
    "FileScan",
    "NameMapper",
    "ReadResult",
    "create_lines_macro",
    "create_ordered_view",
    "create_rows_view",
    "quote_ident",
    "read_csv_into",
    "read_excel_into",
    "read_json_into",
    "read_parquet_into",
    "scan_file",
    "unwrap_formula_sql",
]


def create_rows_view(
    con: duckdb.DuckDBPyConnection, view: str, data_table: str, read: ReadResult, shifts_table: str
) -> None:
    """Expose the loaded rows with ``_row`` and ``_line`` without a second pass over the data.

    A raw table is written once and never changed, so rowid keeps file order and numbering by rowid in a
    view is free. Quoted newlines push later rows down: those shifts are a small table (one row per record
    holding a newline) joined with ASOF, so each row takes the last shift at or before it. The join is paid
    when a later stage reads the view in full (validation reads it once), and only for such files; storing
    the numbers at ingest instead cost a pass over every row of every file."""
    con.execute(f'DROP TABLE IF EXISTS "{shifts_table}"')
    if read.numbered:
        con.execute(f'CREATE OR REPLACE VIEW "{view}" AS SELECT * FROM "{data_table}"')
        return
    start_line = (read.header_line or 0) + 1
    if read.line_shifts is None:
        con.execute(
            f'CREATE OR REPLACE VIEW "{view}" AS SELECT rowid + 1 AS _row, rowid + {start_line} AS _line, * '
            f'FROM "{data_table}"'
        )
        return
    con.register("_ingest_shifts", read.line_shifts)
    con.execute(f'CREATE TABLE "{shifts_table}" AS SELECT at_rowid, shift FROM _ingest_shifts')
    con.unregister("_ingest_shifts")
    con.execute(
        f'CREATE OR REPLACE VIEW "{view}" AS SELECT d.rowid + 1 AS _row, '
        f'd.rowid + {start_line} + coalesce(s.shift, 0) AS _line, d.* FROM "{data_table}" d '
        f'ASOF LEFT JOIN "{shifts_table}" s ON d.rowid >= s.at_rowid'
    )


def create_ordered_view(
    con: duckdb.DuckDBPyConnection, view: str, rows_view: str, data_table: str, read: ReadResult, shaped: bool
) -> None:
    """``view``: the rows of ``rows_view`` without ``_line``, in ``_row`` order, read with no join.

    Rows numbered by position come straight from the data table (a scan keeps its order); rows that carry
    their numbers (Excel, JSON, or shaped by leave-out rules and unpivot) are sorted by them."""
    if read.numbered or shaped:
        body = f'SELECT * EXCLUDE (_line) FROM "{rows_view}" ORDER BY _row'
    else:
        body = f'SELECT rowid + 1 AS _row, * FROM "{data_table}"'
    con.execute(f'CREATE OR REPLACE VIEW "{view}" AS {body}')


def create_lines_macro(
    con: duckdb.DuckDBPyConnection,
    macro: str,
    rows_view: str,
    read: ReadResult,
    shaped: bool,
    shifts_table: str,
) -> None:
    """``macro(rows_table)``: ``_row`` and ``_line`` of the rows listed in ``rows_table``, the same lines
    ``rows_view`` gives, numbering only those rows (see core.sql.source_lines_macro)."""
    start_line = (read.header_line or 0) + 1
    if read.numbered or shaped:  # the lines are stored with the rows
        body = (
            f'SELECT r._row, v._line FROM query_table(rows_table) r JOIN "{rows_view}" v ON v._row = r._row'
        )
    elif read.line_shifts is None:
        body = f"SELECT r._row, r._row - 1 + {start_line} AS _line FROM query_table(rows_table) r"
    else:
        body = (
            f"SELECT r._row, r._row - 1 + {start_line} + coalesce(s.shift, 0) AS _line "
            f'FROM query_table(rows_table) r ASOF LEFT JOIN "{shifts_table}" s ON r._row - 1 >= s.at_rowid'
        )
    con.execute(f'CREATE OR REPLACE MACRO "{macro}"(rows_table) AS TABLE {body}')


def read_excel_into(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    table: str,
    names_for: NameMapper,
    *,
    sheet: str | int | None = None,
    header_row: int | None = None,
) -> ReadResult:
    """Stream a workbook's rows into DuckDB (see :mod:`ct_pipelines.ingest.excel`; openpyxl loads lazily)."""
    from ct_pipelines.ingest.excel import read_excel_into as read

    return read(con, path, table, names_for, sheet=sheet, header_row=header_row)


def read_json_into(
    con: duckdb.DuckDBPyConnection, path: Path, table: str, names_for: NameMapper
) -> ReadResult:
    """JSON arrays or JSON lines, via DuckDB's reader; nested values are kept as JSON text."""
    with path.open("rb") as handle:
        start = handle.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    lines_format = not start.startswith(b"[")
    fmt = "newline_delimited" if lines_format else "array"
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _ingest_json AS SELECT * FROM "
            f"read_json({quote_literal(str(path))}, format='{fmt}', sample_size=-1, union_by_name=true)"
        )
    except duckdb.Error as exc:
        at = re.search(r"\bline (\d+)", str(exc))
        raise IngestError(
            path,
            f"not valid JSON ({first_line(exc)})",
            "export an array of objects or one object per line (JSON lines)",
            line=int(at[1]) if at else None,
        ) from exc
    if not con.execute("SELECT count(*) FROM _ingest_json").fetchone()[0]:
        con.execute("DROP TABLE _ingest_json")
        raise _no_records(path, "json")  # before the columns are matched: `[]` has none
    described = con.execute("DESCRIBE _ingest_json").fetchall()
    source = [r[0] for r in described]
    names = names_for(source)
    line = "row_number() OVER ()" if lines_format else "NULL::BIGINT"
    selected = ", ".join(
        f"{unwrap_formula_sql(_json_value_as_text(quote_ident(s), str(kind)))} AS {quote_ident(n)}"
        for (s, kind, *_), n in zip(described, names, strict=True)
    )
    con.execute(
        f"CREATE OR REPLACE TABLE {table} AS SELECT row_number() OVER () AS _row, {line} AS _line, "
        f"{selected} FROM _ingest_json"
    )
    con.execute("DROP TABLE _ingest_json")
    rows = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    return ReadResult(rows=rows, source_columns=source, field_names=names, format="json", encoding="utf-8")


def _json_value_as_text(column: str, kind: str) -> str:
    """One JSON column's values as the text the agency wrote. A column mixing strings and numbers
    (``"Black"`` on most records, ``9`` on two) is read as JSON values, whose cast keeps the quotes:
    ``"Black"`` reached the portal with its quote marks, and ``"59"`` failed the integer rule. Nested
    values (objects, lists) stay JSON text."""
    if kind == "JSON":
        return f"({column} ->> '$')"
    if kind.startswith(("STRUCT", "MAP")) or kind.endswith("]"):
        return f"CAST(to_json({column}) AS VARCHAR)"
    return f"CAST({column} AS VARCHAR)"


def read_parquet_into(
    con: duckdb.DuckDBPyConnection, path: Path, table: str, names_for: NameMapper
) -> ReadResult:
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM read_parquet({quote_literal(str(path))})").fetchall()
        source = [r[0] for r in described]
    except duckdb.Error as exc:
        raise IngestError(
            path,
            f"not a readable Parquet file ({first_line(exc)}; it may be truncated or another format)",
            "re-export the file, or set ingest.format to match the file",
        ) from exc
    names = names_for(source)
    selected = ", ".join(
        f"{_parquet_value_as_text(quote_ident(s), str(kind))} AS {quote_ident(n)}"
        for (s, kind, *_), n in zip(described, names, strict=True)
    )
    # No ORDER BY: each row carries its number, and DuckDB keeps the file's order when it writes a scan
    # (insertion order is preserved). Sorting 5M rows took 3-4 s of a 7 s read, spilling to disk.
    con.execute(
        f"CREATE OR REPLACE TABLE {table} AS SELECT file_row_number + 1 AS _row, NULL::BIGINT AS _line, "
        f"{selected} FROM read_parquet({quote_literal(str(path))}, file_row_number=true)"
    )
    rows = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    return ReadResult(rows=rows, source_columns=source, field_names=names, format="parquet")


def _parquet_value_as_text(column: str, kind: str) -> str:
    """A Parquet value as text. An instant (timestamp with a zone) is the wall time in the published
    zone: cast as it was, its text followed the machine's zone, and the same file re-read on a server in
    New York rewrote all 30 rows of a helper's dataset. Nanoseconds are cut to microseconds, which the
    datetime type reads (pandas writes nanoseconds, and every row was set aside)."""
    if kind.upper() == "TIMESTAMP WITH TIME ZONE":
        return f"CAST(timezone({quote_literal(PUBLISHED_TIME_ZONE)}, {column}) AS VARCHAR)"
    if kind.upper() == "TIMESTAMP_NS":  # cut, not rounded: .123456789 is .123456
        return f"regexp_replace(CAST({column} AS VARCHAR), '(\\.[0-9]{{6}})[0-9]+', '\\1')"
    return f"CAST({column} AS VARCHAR)"


def _no_records(path: Path, kind: str) -> IngestError:
    return IngestError(
        path,
        f"the {kind} file holds no records",
        "check that the agency's export finished and ask for the file again",
    )
