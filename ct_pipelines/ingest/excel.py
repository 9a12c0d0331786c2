"""Excel workbooks: rows streamed with openpyxl's read-only mode into DuckDB in Arrow batches.

Cells are read with their number format, because agencies type ZIP and town codes as numbers and let
the format (``00000``) show the leading zeros: the text kept is what Excel shows, not the bare number.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from ct_pipelines.core.sql import quote_ident
from ct_pipelines.ingest.detect import _is_header
from ct_pipelines.ingest.errors import IngestError
from ct_pipelines.ingest.result import ARROW_BATCH_ROWS, NameMapper, ReadResult


def read_excel_into(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    table: str,
    names_for: NameMapper,
    *,
    sheet: str | int | None = None,
    header_row: int | None = None,
) -> ReadResult:
    """Stream rows with openpyxl's read-only mode into DuckDB in Arrow batches."""
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
        # Formulas a tool wrote without a cached value (="0012345" from exports) come back as None with
        # data_only, so a second read-only pass supplies the formula text where the value is missing.
        formulas = load_workbook(path, read_only=True, data_only=False)
    except Exception as exc:  # openpyxl raises several types for a damaged or mislabelled file
        raise IngestError(
            path,
            "not a readable .xlsx workbook (it is truncated, damaged, or another kind of file)",
            "save the file as Excel Workbook (.xlsx), or set ingest.format to match the file",
        ) from exc
    try:
        filled = [0]  # cells given their merged range's value
        worksheet, rows_iter = _sheet_rows(path, workbook, formulas, sheet, filled)
        others = [name for name in workbook.sheetnames if name != worksheet.title]
        head = list(itertools.islice(enumerate(rows_iter, start=1), 30))  # where the header is looked for
        header_line, header = _excel_header(path, head, header_row, worksheet.title)
        width = len(header)
        header = [h if h.strip() else f"column_{i + 1}" for i, h in enumerate(header)]
        names = names_for(header)
        schema = pa.schema([("_row", pa.int64()), ("_line", pa.int64())] + [(n, pa.string()) for n in names])

        def records() -> Iterator[tuple[int, list[str | None]]]:
            for number, values in head:
                if number > header_line:
                    yield number, values
            yield from enumerate(rows_iter, start=len(head) + 1)

        count = _write_batches(con, table, schema, records(), width)
    finally:
        workbook.close()
        formulas.close()
    if count == 0:
        raise IngestError(
            path,
            "the sheet holds only the header row and no data rows",
            "check that the export finished and re-send it with its rows",
            sheet=worksheet.title,
            row=header_line,
        )
    notes = []
    if filled[0]:
        notes.append(
            f"filled {filled[0]:,} cells of sheet '{worksheet.title}' from merged ranges (Excel shows one "
            "value over several rows; the file holds it in the first)"
        )
    if others:
        notes.append(
            f"read sheet '{worksheet.title}' only; the workbook also has {', '.join(repr(o) for o in others)}, "
            "not read (set ingest.sheet to read another; a sheet per year is one dataset per sheet, or one "
            "file the agency exports with every year)"
        )
    return ReadResult(
        rows=count,
        source_columns=[h.strip() or h for h in header],
        field_names=names,
        format="excel",
        header_line=header_line,
        sheet=worksheet.title,
        notes=notes,
    )


def _sheet_rows(
    path: Path, workbook: Any, formulas: Any, sheet: str | int | None, filled: list[int]
) -> tuple[Any, Iterator[list]]:
    """The chosen sheet and its rows as text; a formula without a cached value gives its ``="..."`` text."""
    if sheet is None:
        worksheet, formula_sheet = workbook.worksheets[0], formulas.worksheets[0]
    elif isinstance(sheet, int):
        worksheet, formula_sheet = workbook.worksheets[sheet], formulas.worksheets[sheet]
    elif sheet in workbook.sheetnames:
        worksheet, formula_sheet = workbook[sheet], formulas[sheet]
    else:
        raise IngestError(
            path,
            f"no sheet named '{sheet}' (sheets: {', '.join(workbook.sheetnames)})",
            "set ingest.sheet to one of the sheet names or a 0-based index",
        )
    # Cells (not bare values) carry the number format that pads ZIP and town codes (00000).
    cell_rows = (
        [
            _cell_text(c.value, c.number_format)
            if c.value is not None
            else (f if isinstance(f, str) and f.startswith('="') else None)
            for c, f in zip(cells, formula_values, strict=False)
        ]
        for cells, formula_values in zip(
            worksheet.iter_rows(), formula_sheet.iter_rows(values_only=True), strict=False
        )
    )
    return worksheet, _fill_merged(cell_rows, _merged_ranges(worksheet), filled)


_MERGE_CELL = re.compile(rb'<(?:\w+:)?mergeCell\b[^>]*?\bref="([A-Z]{1,3})([0-9]+):([A-Z]{1,3})([0-9]+)"')


def _merged_ranges(worksheet: Any) -> list[tuple[int, int, int, int]]:
    """The sheet's merged ranges spanning several rows, as (first row, last row, first column, last
    column), 1-based; read from the sheet's XML, since openpyxl's read-only mode does not keep them."""
    path, archive = getattr(worksheet, "_worksheet_path", None), getattr(worksheet.parent, "_archive", None)
    if path is None or archive is None:
        return []
    found, tail = [], b""
    with archive.open(path) as source:
        while chunk := source.read(1 << 20):
            data = tail + chunk
            if b"mergeCell" in data:
                found += [m.groups() for m in _MERGE_CELL.finditer(data)]
            tail = data[-256:] if b"<" not in data[-256:] else data[data.rfind(b"<") :]
    from openpyxl.utils import column_index_from_string

    ranges = {
        (int(r1), int(r2), column_index_from_string(c1.decode()), column_index_from_string(c2.decode()))
        for c1, r1, c2, r2 in found
        if int(r2) > int(r1)
    }
    return sorted(ranges)


def _fill_merged(
    rows: Iterator[list], ranges: list[tuple[int, int, int, int]], filled: list[int]
) -> Iterator[list]:
    """Rows with each merged range's value in every cell it covers: Excel shows a town merged down over
    its four race rows, and the file holds it in the first row only, so a helper's aggregate put three
    quarters of the deaths under 'Not reported'. Ranges within one row (a title across columns) are
    left alone. ``filled[0]`` counts the cells filled."""
    starts: dict[int, list[tuple[int, int, int, int]]] = {}
    for merged in ranges:
        starts.setdefault(merged[0], []).append(merged)
    active: list[tuple[int, int, int, object]] = []  # (last row, first column, last column, value)
    for number, row in enumerate(rows, start=1):
        active = [a for a in active if a[0] >= number]
        for _first, last, low, high in starts.get(number, []):
            value = row[low - 1] if low - 1 < len(row) else None
            if value is not None:
                active.append((last, low, high, value))
        for _last, low, high, value in active:
            if len(row) < high:
                row = row + [None] * (high - len(row))
            for column in range(low - 1, high):
                if row[column] is None:
                    row[column] = value
                    filled[0] += 1
        yield row


def _write_batches(
    con: duckdb.DuckDBPyConnection,
    table: str,
    schema: pa.Schema,
    records: Iterator[tuple[int, list[str | None]]],
    width: int,
) -> int:
    con.execute(
        f"CREATE OR REPLACE TABLE {table} ("
        + ", ".join(
            # positions are integers, cells text: a header "1974" is the field _1974, which is a cell
            f"{quote_ident(f.name)} {'BIGINT' if pa.types.is_integer(f.type) else 'VARCHAR'}"
            for f in schema
        )
        + ")"
    )
    batch: list[list[str | int | None]] = []
    count = 0

    def flush() -> None:
        columns = list(zip(*batch, strict=True)) if batch else [[] for _ in schema]
        arrow_batch = pa.table(
            [pa.array(col, type=f.type) for col, f in zip(columns, schema, strict=True)], schema=schema
        )
        con.register("_ingest_batch", arrow_batch)
        con.execute(f"INSERT INTO {table} SELECT * FROM _ingest_batch")
        con.unregister("_ingest_batch")
        batch.clear()

    for line, values in records:
        cells = (values + [None] * width)[:width]
        if all(c is None or c.strip() == "" for c in cells):
            continue
        count += 1
        batch.append([count, line, *[_unwrap(c) for c in cells]])
        if len(batch) >= ARROW_BATCH_ROWS:
            flush()
    if batch:
        flush()
    return count


def _excel_header(
    path: Path, head: list[tuple[int, list[str | None]]], header_row: int | None, sheet: str
) -> tuple[int, list[str]]:
    if not any(v not in (None, "") for _, values in head for v in values):
        raise IngestError(
            path,
            "the sheet is empty (no values in its first 30 rows)",
            "check that the agency's export finished and ask for the file again",
            sheet=sheet,
        )
    if header_row is not None:
        for number, values in head:
            if number == header_row:
                return number, [v or "" for v in values]
        raise IngestError(
            path,
            f"ingest.header_row is {header_row} but the sheet has only {len(head)} rows"
            if len(head) < 30
            else f"ingest.header_row is {header_row} but the header must be among the first 30 rows",
            "set ingest.header_row to the 1-based row number of the column names",
            sheet=sheet,
            row=header_row,
        )
    filled = [sum(1 for v in values if v not in (None, "")) for _, values in head]
    width = max(filled)
    for number, values in head:
        cells = [v or "" for v in values]
        trimmed = cells[: max((i + 1 for i, v in enumerate(cells) if v), default=0)]
        if _is_header(trimmed, width):
            return number, trimmed  # unstripped: "Other " and "Other" can each be declared
    raise IngestError(
        path,
        "could not find a header row among the first 30 rows",
        "set ingest.header_row to the 1-based row number of the column names",
        sheet=sheet,
        row=head[0][0],
    )


def _cell_text(value: object, number_format: str | None = None) -> str | None:
    """A cell as the text Excel shows for codes: integers without ``.0`` (Excel keeps 15 significant
    digits, so 6010.000000000001 is 6010), zero-padded when the number format pads (``00000``)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float) and number_format and "%" in _LITERAL.sub("", number_format):
        # Excel shows 0.793 formatted 0.0% as 79.3%; a typed "73.0%" beside it in the same column was
        # published as 73 and the cell as 0.793, two scales in one column. Both are percent points now.
        points = float(f"{value * 100:.12g}")
        return f"{int(points) if points.is_integer() else points}%"
    if isinstance(value, float):
        value = float(f"{value:.15g}")
        if value.is_integer():
            value = int(value)
        else:
            return str(value)
    if isinstance(value, int):
        padded = _pad_digits(value, number_format) if number_format and number_format != "General" else None
        return padded if padded is not None else str(value)
    if hasattr(value, "isoformat"):
        text = value.isoformat()  # type: ignore[union-attr]
        return text[:-9] if text.endswith("T00:00:00") else text
    return str(value)


_LITERAL = re.compile(r'"([^"]*)"|\\(.)')


def _pad_digits(value: int, number_format: str) -> str | None:
    """Apply a digit-placeholder format such as ``00000`` or ``00000-0000`` to a non-negative integer;
    None for anything else (decimals, thousands separators, conditions, dates), which keeps the plain
    digits."""
    section = number_format.split(";")[0]
    pieces: list[tuple[str, bool]] = []  # (text, is_placeholder)
    pos = 0
    for literal in _LITERAL.finditer(section):
        pieces += [(ch, ch in "0#") for ch in section[pos : literal.start()]]
        pieces.append((literal[1] if literal[1] is not None else literal[2], False))
        pos = literal.end()
    pieces += [(ch, ch in "0#") for ch in section[pos:]]
    bare = "".join(t for t, placeholder in pieces if not placeholder and len(t) == 1)
    if value < 0 or "0" not in section or any(ch not in "- ()/" for ch in bare) or "[" in section:
        return None
    digits = list(str(value))
    out: list[str] = []
    slots = [i for i, (_, placeholder) in enumerate(pieces) if placeholder]
    for index, (text, placeholder) in reversed(list(enumerate(pieces))):
        if not placeholder:
            out.append(text)
            continue
        if index == slots[0] and digits:
            out.append("".join(digits))
            digits = []
        elif digits:
            out.append(digits.pop())
        elif text == "0":
            out.append("0")
    return "".join(reversed(out))


def _unwrap(text: str | None) -> str | None:
    if text is None:
        return None
    if text.startswith('="') and text.endswith('"') and len(text) >= 3:
        text = text[2:-1]
    return text if text != "" else None
