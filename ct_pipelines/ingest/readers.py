"""Readers that load one extract into a DuckDB table of text columns, without a whole-file pandas frame.

Every reader produces the same shape once :func:`create_rows_view` exposes it: one VARCHAR column per
source column (named by its API field name), ``_row`` (1-based data row) and ``_line`` (1-based physical
line where the record starts, or NULL where the format has no lines). Typing happens later, in
validation, where a failed cast can be quarantined with its line instead of failing the whole load.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from ct_pipelines.core.sql import quote_ident
from ct_pipelines.ingest.decode import LineDecoder, decode_sample, is_single_byte_ascii, transcode_lines
from ct_pipelines.ingest.detect import (
    CHUNK,
    SAMPLE_BYTES,
    Encoding,
    detect_encoding,
    detect_layout,
    read_sample_text,
)
from ct_pipelines.ingest.errors import IngestError

ARROW_BATCH_ROWS = 50_000
NameMapper = Callable[[list[str]], list[str]]


@dataclass
class ReadResult:
    rows: int
    source_columns: list[str]
    field_names: list[str]
    format: str
    encoding: str | None = None
    bom: bool = False
    delimiter: str | None = None
    header_line: int | None = None
    sheet: str | None = None
    notes: list[str] = field(default_factory=list)
    # Delimited files store no row numbers: they derive from rowid (file order), plus these line shifts
    # for rows after quoted newlines. Other formats store _row and _line columns (``numbered``).
    numbered: bool = True
    line_shifts: pa.Table | None = None
    fallback_lines: int = 0  # lines of a mostly-UTF-8 file read with the single-byte fallback
    first_fallback_line: int | None = None


def unwrap_formula_sql(expr: str) -> str:
    """SQL that turns Excel's ``="0012345"`` (used to keep leading zeros) into ``0012345``, and '' into NULL."""
    return (
        f"CASE WHEN starts_with({expr}, '=\"') AND ends_with({expr}, '\"') AND length({expr}) >= 3 "
        f"THEN NULLIF(substr({expr}, 3, length({expr}) - 3), '') WHEN {expr} = '' THEN NULL ELSE {expr} END"
    )


@dataclass(frozen=True)
class FileScan:
    sha256: str
    lines: int  # physical lines (a last line without a newline counts)
    trailing_blank: int  # blank lines at the end, which are not rows
    quoted_newlines: np.ndarray  # positions (among all newlines) of newlines inside double quotes
    has_formula: bool = False  # the bytes '="' occur: some value may be written as an Excel formula

    def record_start_shifts(self, header_line: int, rows: int) -> pa.Table | None:
        """For data rows whose first line is pushed down by quoted newlines in earlier rows: (row index,
        extra lines). None when the quote-parity view of the file disagrees with the parser's row count
        (a stray quote, blank lines between rows), so the caller falls back to counting in DuckDB.

        The k-th quoted newline (0-based), at newline position q, lies in line-level record q - k; every
        data row after that record starts k + 1 lines further down. Only these positions are kept, so
        memory follows the number of quoted newlines, not the size of the file."""
        quoted = self.quoted_newlines
        if not len(quoted):
            return None
        records = self.lines - len(quoted) - header_line - self.trailing_blank
        if records not in (rows, rows + 1):
            return None
        k = np.arange(len(quoted), dtype=np.int64)
        data_row = quoted - k - header_line  # 0-based data row holding the quoted newline
        if len(data_row) and data_row[0] < 0:
            return None  # a quoted newline in the title or header lines: let DuckDB count
        at_rowid = data_row + 1
        last = np.ones(len(at_rowid), dtype=bool)  # several quoted newlines in one row: keep the last total
        last[:-1] = at_rowid[1:] != at_rowid[:-1]
        keep = last & (at_rowid < rows)
        return pa.table({"at_rowid": at_rowid[keep], "shift": (k + 1)[keep]})


def scan_file(path: Path) -> FileScan:
    """SHA-256, line counts and the newlines that sit inside quotes, in one streaming pass. hashlib and
    numpy release the GIL, so this runs on a thread next to DuckDB's reader at little extra wall time."""
    digest = hashlib.sha256()
    lines = 0
    tail = b""
    inside_quotes = 0  # parity of double quotes seen so far
    quoted: list[np.ndarray] = []
    has_formula = False
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            has_formula = has_formula or b'="' in tail[-1:] + chunk
            data = np.frombuffer(chunk, dtype=np.uint8)
            quotes = np.flatnonzero(data == 34)
            newlines = np.flatnonzero(data == 10)
            if len(quotes):
                parity = (inside_quotes + np.searchsorted(quotes, newlines)) & 1
                quoted.append(np.flatnonzero(parity) + lines)
            inside_quotes = (inside_quotes + len(quotes)) & 1
            lines += len(newlines)
            tail = (tail + chunk)[-4096:]
    if tail and not tail.endswith(b"\n"):
        lines += 1
    trailing = 0
    for line in reversed(tail.split(b"\n")[:-1] if tail.endswith(b"\n") else tail.split(b"\n")):
        if line.strip(b'\r\t ,;|"') == b"":
            trailing += 1
        else:
            break
    return FileScan(
        digest.hexdigest(),
        lines,
        trailing,
        np.concatenate(quoted) if quoted else np.empty(0, dtype=np.int64),
        has_formula,
    )


def _transcode_to_utf8(path: Path, encoding: Encoding, workdir: Path) -> Path:
    """Stream a non-UTF-8 file into a UTF-8 temp file; DuckDB reads only UTF-8 (and not cp1252)."""
    codec = encoding.codec
    if codec == "utf-16" or codec.startswith("utf-16"):
        codec = "utf-16" if encoding.bom else codec
    decoder = codecs.getincrementaldecoder(codec)(errors="strict")
    out = _temp_path(path, workdir)
    offset = 0
    with path.open("rb") as src, out.open("wb") as dst:
        while chunk := src.read(CHUNK):
            try:
                dst.write(decoder.decode(chunk).encode("utf-8"))
            except UnicodeDecodeError as exc:
                out.unlink(missing_ok=True)
                raise IngestError(
                    path,
                    f"bytes are not valid {encoding.codec}",
                    "re-export the file as UTF-8, "
                    "or set ingest.encoding to the encoding the agency system uses",
                    byte=offset + exc.start,
                ) from exc
            offset += len(chunk)
        dst.write(decoder.decode(b"", final=True).encode("utf-8"))
    return out


def read_csv_into(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    table: str,
    names_for: NameMapper,
    *,
    encoding: str = "auto",
    delimiter: str | None = None,
    header_row: int | None = None,
    workdir: Path,
    scan: Callable[[], FileScan] | None = None,
) -> ReadResult:
    """Load a delimited file. UTF-8 is assumed from a sample and confirmed by DuckDB's strict reader; when
    DuckDB meets a byte that is not UTF-8, or the sample is not UTF-8, the file is decoded line by line
    (UTF-8 where valid, the declared or cp1252 fallback elsewhere) into a UTF-8 copy. A declared utf-8
    refuses the first line that breaks instead. ``scan`` supplies line counts computed alongside."""
    enc = detect_encoding(path, encoding, full_scan=False)
    declared = _declared_codec(encoding)
    if enc.is_utf8:
        try:
            return _read_delimited(
                con, path, table, names_for, enc, delimiter, header_row, workdir, scan, None
            )
        except _NotUtf8:
            pass
        fallback = declared if declared and is_single_byte_ascii(declared) else "cp1252"
        decoder = LineDecoder(
            path,
            fallback,
            strict_fallback=bool(declared) and fallback == declared,
            strict_utf8=declared == "utf-8",
        )
    elif is_single_byte_ascii(enc.codec):
        decoder = LineDecoder(path, enc.codec, strict_fallback=declared == enc.codec)
    else:
        decoder = None  # UTF-16 and other multi-byte encodings: one codec for the whole file
    return _read_delimited(con, path, table, names_for, enc, delimiter, header_row, workdir, None, decoder)


def _declared_codec(encoding: str) -> str | None:
    """The codec ingest.encoding names (None for auto); utf-8-sig counts as utf-8."""
    if encoding.strip().lower() == "auto":
        return None
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return None  # detect_encoding has already refused it
    return "utf-8" if name in ("utf-8", "utf-8-sig") else name


class _NotUtf8(Exception):
    """DuckDB found bytes that are not UTF-8 after the sample said the file was."""


def _read_delimited(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    table: str,
    names_for: NameMapper,
    enc: Encoding,
    delimiter: str | None,
    header_row: int | None,
    workdir: Path,
    scan: Callable[[], FileScan] | None,
    decoder: LineDecoder | None,
) -> ReadResult:
    text = _sample_text(path, enc, decoder)
    layout = detect_layout(path, text, delimiter, header_row)
    raw_header = list(layout.header)
    if not any(h.strip() for h in raw_header):
        raise IngestError(path, "the header line is empty", "set ingest.header_row", line=layout.header_line)
    header = [h if h.strip() else f"column_{i + 1}" for i, h in enumerate(raw_header)]
    names = names_for(header)
    if decoder is not None:
        utf8_path = _temp_path(path, workdir)
        transcode_lines(path, utf8_path, decoder, skip=len(codecs.BOM_UTF8) if enc.bom else 0)
    elif not enc.is_utf8:
        utf8_path = _transcode_to_utf8(path, enc, workdir)
    else:
        utf8_path = path
    if utf8_path != path or scan is None:

        def scan() -> FileScan:
            return scan_file(utf8_path)

    try:
        rows, shifts = _load_delimited(
            con, path, utf8_path, table, names, layout.delimiter, layout.header_line, scan
        )
    finally:
        if utf8_path != path:
            utf8_path.unlink(missing_ok=True)
    if rows == 0:
        raise IngestError(
            path,
            "the file holds only the header line and no data rows",
            "check that the export finished and re-send it with its rows",
            line=layout.header_line,
        )
    label = decoder.label(enc.bom) if decoder else ("utf-8-sig" if enc.bom and enc.is_utf8 else enc.codec)
    notes = []
    if decoder and decoder.fallback_lines and decoder.utf8_seen:
        notes.append(
            f"{decoder.fallback_lines:,} lines were not UTF-8 and were read as "
            f"{'/'.join(sorted(decoder.codecs_used))} (first: line {decoder.first_fallback_line})"
        )
    return ReadResult(
        rows=rows,
        source_columns=[h.strip() or h for h in header],
        field_names=names,
        format="csv",
        encoding=label,
        bom=enc.bom,
        delimiter=layout.delimiter,
        header_line=layout.header_line,
        numbered=False,
        line_shifts=shifts,
        notes=notes,
        fallback_lines=decoder.fallback_lines if decoder else 0,
        first_fallback_line=decoder.first_fallback_line if decoder else None,
    )


def _sample_text(path: Path, enc: Encoding, decoder: LineDecoder | None) -> str:
    """The first complete lines, decoded as the whole file will be (line by line when mixed)."""
    if decoder is None:
        return read_sample_text(path, enc)
    with path.open("rb") as handle:
        raw = handle.read(SAMPLE_BYTES)
    if enc.bom:
        raw = raw[len(codecs.BOM_UTF8) :]
    if len(raw) == SAMPLE_BYTES - (len(codecs.BOM_UTF8) if enc.bom else 0) and b"\n" in raw:
        raw = raw[: raw.rfind(b"\n") + 1]
    probe = LineDecoder(
        path, decoder.fallback, strict_fallback=decoder.strict_fallback, strict_utf8=decoder.strict_utf8
    )
    return decode_sample(raw, probe)


def _temp_path(path: Path, workdir: Path) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=path.stem + ".", suffix=".utf8.csv", dir=workdir)
    os.close(handle)
    return Path(name)


def _load_delimited(
    con: duckdb.DuckDBPyConnection,
    original: Path,
    path: Path,
    table: str,
    names: list[str],
    delimiter: str,
    header_line: int,
    scan: Callable[[], FileScan],
) -> tuple[int, pa.Table | None]:
    """Load the records as text columns (no row numbers: see :func:`create_rows_view`); returns the row
    count and, when records span lines, where the source lines of later rows shift."""
    cols = [f"c{i}" for i in range(len(names))]
    columns_arg = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in cols) + "}"
    # Excel-formula values ("=""0012345""") are unwrapped after the load, and only when the file's bytes hold
    # '="' at all (the scan alongside tells): most extracts never pay for it.
    selected = ", ".join(f"NULLIF({c}, '') AS {quote_ident(n)}" for c, n in zip(cols, names, strict=True))
    not_blank = f"coalesce({', '.join(cols)}) IS NOT NULL" if len(cols) > 1 else f"{cols[0]} IS NOT NULL"

    def load(padding: bool) -> None:
        # Padding short rows needs DuckDB's single-threaded scanner, so it is only the fallback.
        options = ", null_padding=true, parallel=false" if padding else ""
        reader = (
            f"read_csv({_sql_str(str(path))}, delim={_sql_str(delimiter)}, quote='\"', escape='\"', "
            f"header=false, skip={header_line}, columns={columns_arg}, auto_detect=false, "
            f"strict_mode=true, max_line_size=20000000{options})"
        )
        con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT {selected} FROM {reader} WHERE {not_blank}")

    try:
        load(padding=False)
    except duckdb.Error as exc:
        if "Invalid unicode" in str(exc):
            raise _NotUtf8 from exc
        found = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", str(exc))
        if not (found and int(found[2]) < int(found[1])):
            raise _csv_error(original, exc, len(names)) from exc
        try:
            load(padding=True)
        except duckdb.Error as exc2:
            if "Invalid unicode" in str(exc2):
                raise _NotUtf8 from exc2
            raise _csv_error(original, exc2, len(names)) from exc2
    rows = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    counts = scan()
    if counts.has_formula:
        for name in names:
            column = quote_ident(name)
            con.execute(
                f"UPDATE {table} SET {column} = {unwrap_formula_sql(column)} "
                f"WHERE starts_with({column}, '=\"')"
            )
    if rows == counts.lines - header_line - counts.trailing_blank:
        return rows, None
    shifts = counts.record_start_shifts(header_line, rows)
    if shifts is None:
        # The quote scan and the parser disagree (a stray quote, blank lines between rows): count the
        # newlines inside the loaded rows instead.
        has_newline = " OR ".join(f"contains({quote_ident(n)}, chr(10))" for n in names)
        newlines = " + ".join(
            f"coalesce(length({quote_ident(n)}) - length(replace({quote_ident(n)}, chr(10), '')), 0)"
            for n in names
        )
        shifts = con.sql(
            f"SELECT rowid + 1 AS at_rowid, sum({newlines}) OVER (ORDER BY rowid) AS shift "
            f"FROM {table} WHERE {has_newline} ORDER BY at_rowid"
        ).to_arrow_table()
    return rows, shifts


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
    first_line = (read.header_line or 0) + 1
    if read.line_shifts is None:
        con.execute(
            f'CREATE OR REPLACE VIEW "{view}" AS SELECT rowid + 1 AS _row, rowid + {first_line} AS _line, * '
            f'FROM "{data_table}"'
        )
        return
    con.register("_ingest_shifts", read.line_shifts)
    con.execute(f'CREATE TABLE "{shifts_table}" AS SELECT at_rowid, shift FROM _ingest_shifts')
    con.unregister("_ingest_shifts")
    con.execute(
        f'CREATE OR REPLACE VIEW "{view}" AS SELECT d.rowid + 1 AS _row, '
        f'd.rowid + {first_line} + coalesce(s.shift, 0) AS _line, d.* FROM "{data_table}" d '
        f'ASOF LEFT JOIN "{shifts_table}" s ON d.rowid >= s.at_rowid'
    )


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
            f"read_json({_sql_str(str(path))}, format='{fmt}', sample_size=-1, union_by_name=true)"
        )
    except duckdb.Error as exc:
        at = re.search(r"\bline (\d+)", str(exc))
        raise IngestError(
            path,
            f"not valid JSON ({_first_line(exc)})",
            "export an array of objects or one object per line (JSON lines)",
            line=int(at[1]) if at else None,
        ) from exc
    source = [r[0] for r in con.execute("DESCRIBE _ingest_json").fetchall()]
    names = names_for(source)
    line = "row_number() OVER ()" if lines_format else "NULL::BIGINT"
    selected = ", ".join(
        f"{unwrap_formula_sql(f'CAST({quote_ident(s)} AS VARCHAR)')} AS {quote_ident(n)}"
        for s, n in zip(source, names, strict=True)
    )
    con.execute(
        f"CREATE OR REPLACE TABLE {table} AS SELECT row_number() OVER () AS _row, {line} AS _line, "
        f"{selected} FROM _ingest_json"
    )
    con.execute("DROP TABLE _ingest_json")
    rows = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    return ReadResult(rows=rows, source_columns=source, field_names=names, format="json", encoding="utf-8")


def read_parquet_into(
    con: duckdb.DuckDBPyConnection, path: Path, table: str, names_for: NameMapper
) -> ReadResult:
    try:
        source = [
            r[0]
            for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet({_sql_str(str(path))})").fetchall()
        ]
    except duckdb.Error as exc:
        raise IngestError(
            path,
            f"not a readable Parquet file ({_first_line(exc)}; it may be truncated or another format)",
            "re-export the file, or set ingest.format to match the file",
        ) from exc
    names = names_for(source)
    selected = ", ".join(
        f"CAST({quote_ident(s)} AS VARCHAR) AS {quote_ident(n)}" for s, n in zip(source, names, strict=True)
    )
    con.execute(
        f"CREATE OR REPLACE TABLE {table} AS SELECT file_row_number + 1 AS _row, NULL::BIGINT AS _line, "
        f"{selected} FROM read_parquet({_sql_str(str(path))}, file_row_number=true) ORDER BY _row"
    )
    rows = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    return ReadResult(rows=rows, source_columns=source, field_names=names, format="parquet")


def _csv_error(path: Path, exc: Exception, width: int) -> IngestError:
    """Turn DuckDB's CSV error into one naming the line, what was found, and what to do. DuckDB's text
    lists its options (``quote = "``) and the original line (PII), so only known phrases are matched and
    none of the line is repeated."""
    text = str(exc)
    line = re.search(r"Line: (\d+)", text)
    at = int(line[1]) if line else None
    found = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", text)
    if isinstance(exc, duckdb.OutOfMemoryException) or "Out of Memory" in text:
        return IngestError(
            path,
            f"DuckDB ran out of memory while loading this {width:,}-column file",
            "raise CT_PIPELINES_DUCKDB_MEMORY, or ask the agency to split the extract into narrower files",
        )
    if "Invalid unicode" in text:
        return IngestError(
            path,
            "this line holds bytes that are not valid UTF-8",
            "re-export the file as UTF-8, or set ingest.encoding to the agency system's encoding",
            line=at,
        )
    if found:
        problem = f"expected {found[1]} fields as in the header, found {found[2]}"
        fix = "quote fields that contain the delimiter, or remove the extra delimiter on that line"
    elif "unterminated quote" in text.lower():
        problem = "a quoted field that starts on this line is never closed"
        fix = "close the quote, or double any quote character inside a quoted field"
    elif "maximum line size" in text.lower():
        problem = (
            "a record is longer than 20 MB (usually an unclosed quote that swallows the rest of the file)"
        )
        fix = "close the quote that opens on or before this line, or double quote characters inside fields"
    else:
        problem = f"the CSV reader stopped: {_first_line(exc)}"
        fix = "check the line, or set ingest.delimiter and ingest.header_row in the dataset YAML"
    return IngestError(path, problem, fix, line=at)


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _first_line(exc: Exception) -> str:
    """DuckDB's reason in plain words: its first line without the error category (``Invalid Input
    Error:``), file paths or quoted text (which can be a value from the file)."""
    text = (str(exc).strip().splitlines() or [""])[0]
    text = re.sub(r"^(\w+ )*\w*(Error|Exception): ", "", text)
    text = re.sub(r"(?:in file )?([\"']).*?\1,? ?", "", text)
    text = text.strip(" .,:")
    return text or "the reader could not parse it"
