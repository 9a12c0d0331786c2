"""Delimited extracts (CSV, TSV, PSV) into a DuckDB table of text columns.

The file is read in place by DuckDB's strict reader whenever it can be: UTF-8 (with or without BOM) and one
kind of line end. Otherwise a UTF-8 copy is streamed first and read instead, one source line per copied
line so line numbers stay the agency's: a file that is not (entirely) UTF-8 is decoded line by line
(``decode``) or with its one codec (UTF-16), and a file whose lines end in a mix of CRLF, LF and lone CR
gets LF line ends (``newlines``). Which path a file takes is decided from a sample, and corrected when
DuckDB refuses the file (bytes that are not UTF-8, mixed line ends) or the byte scan alongside disagrees.
"""

from __future__ import annotations

import codecs
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from ct_pipelines.core.sql import quote_ident, quote_literal
from ct_pipelines.ingest.decode import LineDecoder, decode_sample, is_single_byte_ascii, transcode_lines
from ct_pipelines.ingest.detect import (
    CHUNK,
    SAMPLE_BYTES,
    Encoding,
    Layout,
    detect_encoding,
    detect_layout,
    read_sample_text,
)
from ct_pipelines.ingest.errors import IngestError
from ct_pipelines.ingest.newlines import file_line_ends, normalised_blocks, read_blocks, sample_line_ends
from ct_pipelines.ingest.result import NameMapper, ReadResult, first_line, unwrap_formula_sql
from ct_pipelines.ingest.scan import FileScan, record_line_shifts, scan_file

Scan = Callable[[], FileScan]
#: The longest record DuckDB's reader accepts (a long narrative field with embedded newlines fits).
MAX_LINE_BYTES = 20_000_000
#: DuckDB's read buffer, per reading thread. Its default is 16 x the line limit: 320 MB buffers, so the
#: 5M-row load peaked at 740 MB RSS and a 640 MB memory cap could not load at all. Two lines' worth
#: reads as fast (7.0-7.6 s for the 5M-row bench file either way) in half the memory (355-395 MB).
CSV_BUFFER_BYTES = 2 * MAX_LINE_BYTES
COLUMN_COUNT = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")


class _NotUtf8(Exception):
    """DuckDB found bytes that are not UTF-8 after the sample said the file was."""


class _MixedLineEnds(Exception):
    """The file's lines end in more than one way (or in lone CRs) beyond what the sample showed."""


@dataclass(frozen=True)
class _Request:
    """What read_csv_into was asked to load, passed along each attempt."""

    con: duckdb.DuckDBPyConnection
    path: Path
    table: str
    names_for: NameMapper
    delimiter: str | None
    header_row: int | None
    workdir: Path


@dataclass(frozen=True)
class _Source:
    """The file DuckDB reads in one attempt (the landing file or a copy), and what is known of it."""

    path: Path
    scan: Scan
    decoded: bool  # a copy written by a decoder (UTF-8 by construction), or a file DuckDB decodes as latin-1
    normalised: bool  # its line ends are LF only
    encoding: str = "utf-8"  # how DuckDB decodes it: utf-8, or latin-1 for a single-byte file read in place


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
    scan: Scan | None = None,
) -> ReadResult:
    """Load a delimited file. UTF-8 is assumed from a sample and confirmed by DuckDB's strict reader; when
    DuckDB meets a byte that is not UTF-8, or the sample is not UTF-8, the file is decoded line by line
    (UTF-8 where valid, the declared or cp1252 fallback elsewhere) into a UTF-8 copy. A declared utf-8
    refuses the first line that breaks instead. Mixed line ends are evened out in the copy (or a copy made
    for them). ``scan`` supplies the byte scan of ``path`` computed alongside."""
    enc = detect_encoding(path, encoding, full_scan=False)
    declared = _declared_codec(encoding)
    request = _Request(con, path, table, names_for, delimiter, header_row, workdir)
    by_line = not enc.is_utf8 and is_single_byte_ascii(enc.codec)
    normalise: bool | None = None  # None: decided from the sample
    while True:
        decoder = _line_decoder(path, enc, declared) if by_line else None
        try:
            return _read_delimited(request, enc, decoder, scan, normalise)
        except _NotUtf8:  # only a file read as it is (never a decoded copy) is refused so
            by_line = True
        except _MixedLineEnds:
            normalise = True


def _line_decoder(path: Path, enc: Encoding, declared: str | None) -> LineDecoder:
    """A fresh per-line decoder: UTF-8 where valid, else the declared code page or cp1252."""
    if enc.is_utf8:
        fallback = declared if declared and is_single_byte_ascii(declared) else "cp1252"
        return LineDecoder(
            path,
            fallback,
            strict_fallback=bool(declared) and fallback == declared,
            strict_utf8=declared == "utf-8",
        )
    return LineDecoder(path, enc.codec, strict_fallback=declared == enc.codec)


def _declared_codec(encoding: str) -> str | None:
    """The codec ingest.encoding names (None for auto); utf-8-sig counts as utf-8."""
    if encoding.strip().lower() == "auto":
        return None
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return None  # detect_encoding has already refused it
    return "utf-8" if name in ("utf-8", "utf-8-sig") else name


def _read_delimited(
    request: _Request, enc: Encoding, decoder: LineDecoder | None, scan: Scan | None, normalise: bool | None
) -> ReadResult:
    """One attempt: layout from the sample, then a load from the file itself or from a UTF-8/LF copy."""
    path = request.path
    text = _sample_text(path, enc, decoder)
    layout = detect_layout(path, text, request.delimiter, request.header_row)
    if not any(h.strip() for h in layout.header):
        raise IngestError(path, "the header line is empty", "set ingest.header_row", line=layout.header_line)
    header = [h if h.strip() else f"column_{i + 1}" for i, h in enumerate(layout.header)]
    names = request.names_for(header)
    if normalise is None:
        normalise = sample_line_ends(text.encode("utf-8")).mixed
    in_place = decoder is not None and not normalise and not enc.bom and decoder.read_in_place()
    copy = path if in_place else _source_for_duckdb(path, enc, decoder, normalise, request.workdir)
    if copy != path or scan is None:

        def scan() -> FileScan:
            return scan_file(copy)

    decoded = decoder is not None or not enc.is_utf8
    try:
        source = _Source(copy, scan, decoded, normalise, "latin-1" if in_place else "utf-8")
        rows, shifts, short = _load_delimited(request, source, names, layout)
        if short is not None and len(short):
            _refuse_cut_off(path, short, rows, len(names), scan)
    finally:
        if copy != path:
            copy.unlink(missing_ok=True)
    if rows == 0:
        raise IngestError(
            path,
            "the file holds only the header line and no data rows",
            "check that the export finished and re-send it with its rows",
            line=layout.header_line,
        )
    result = _result(rows, header, names, layout, enc, decoder, shifts)
    result.short_rows = short if short is not None and len(short) else None
    return result


def _refuse_cut_off(path: Path, short: pa.Table, rows: int, width: int, scan: Scan) -> None:
    """A last row with fewer fields than the header, in a file that does not end with a line break, is an
    export that stopped mid-row: the rows after it are missing too, so the whole file is refused."""
    if short["at_rowid"][-1].as_py() != rows - 1:
        return
    with path.open("rb") as handle:
        handle.seek(max(path.stat().st_size - 1, 0))
        ends_a_line = handle.read(1) in (b"\n", b"\r")
    if ends_a_line:
        return
    fields = short["fields"][-1].as_py()
    raise IngestError(
        path,
        f"the last line holds {fields} of the header's {width} fields and the file ends in the middle of it, "
        "so the export looks cut off and later rows may be missing",
        "ask the agency for the whole file (or, if the row is complete, end it with its missing delimiters "
        "and a line break)",
        line=scan().lines,
    )


def _result(
    rows: int,
    header: list[str],
    names: list[str],
    layout: Layout,
    enc: Encoding,
    decoder: LineDecoder | None,
    shifts: pa.Table | None,
) -> ReadResult:
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


def _source_for_duckdb(
    path: Path, enc: Encoding, decoder: LineDecoder | None, normalise: bool, workdir: Path
) -> Path:
    """The file DuckDB reads: ``path`` itself when it is UTF-8 with one kind of line end, else a UTF-8
    copy with one source line per line (LF line ends when ``normalise``)."""
    if decoder is None and enc.is_utf8 and not normalise:
        return path
    workdir.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=path.stem + ".", suffix=".utf8.csv", dir=workdir)
    os.close(handle)
    out = Path(name)
    bom = len(codecs.BOM_UTF8) if enc.bom and enc.is_utf8 else 0
    try:
        if decoder is not None:
            transcode_lines(path, out, decoder, skip=bom, normalise=normalise)
            return out
        blocks = read_blocks(path, bom, CHUNK) if enc.is_utf8 else _utf8_blocks(path, enc)
        with out.open("wb") as dst:
            for block in normalised_blocks(blocks) if normalise else blocks:
                dst.write(block)
        return out
    except BaseException:
        out.unlink(missing_ok=True)
        raise


def _utf8_blocks(path: Path, encoding: Encoding) -> Iterator[bytes]:
    """A non-UTF-8 file (UTF-16, or one codec for the whole file) as UTF-8 blocks; DuckDB reads only UTF-8."""
    codec = encoding.codec
    if codec == "utf-16" or codec.startswith("utf-16"):
        codec = "utf-16" if encoding.bom else codec
    decoder = codecs.getincrementaldecoder(codec)(errors="strict")
    offset = 0
    for chunk in read_blocks(path, 0, CHUNK):
        try:
            yield decoder.decode(chunk).encode("utf-8")
        except UnicodeDecodeError as exc:
            raise IngestError(
                path,
                f"bytes are not valid {encoding.codec}",
                "re-export the file as UTF-8, or set ingest.encoding to the encoding the agency system uses",
                byte=offset + exc.start,
            ) from exc
        offset += len(chunk)
    yield decoder.decode(b"", final=True).encode("utf-8")


def _load_delimited(
    request: _Request, source: _Source, names: list[str], layout: Layout
) -> tuple[int, pa.Table | None, pa.Table | None]:
    """Load the records as text columns (no row numbers: see ``readers.create_rows_view``); returns the
    row count, where the source lines of later rows shift when records span lines, and the rows with
    fewer fields than the header (see ``_load_text_columns``)."""
    con, table = request.con, request.table
    short = _load_text_columns(request, source, names, layout)
    rows = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    counts = source.scan()
    if counts.mixed_line_ends and not source.normalised:  # DuckDB refuses these: never keep a CR in a value
        raise _MixedLineEnds
    if counts.has_formula:
        for name in names:
            column = quote_ident(name)
            con.execute(
                f"UPDATE {table} SET {column} = {unwrap_formula_sql(column)} WHERE starts_with({column}, '=\"')"
            )
    return rows, _line_shifts(con, table, source.path, names, layout, rows, counts), short


#: What DuckDB's padded read calls NULL: no cell holds it, so an empty field stays '' and only the
#: fields a short row lacks are NULL.
PADDED = "<<ct-pipelines: no such field>>"


def _load_text_columns(
    request: _Request, source: _Source, names: list[str], layout: Layout
) -> pa.Table | None:
    """CREATE the table from DuckDB's strict reader; short rows are padded in a second, single-threaded
    try (DuckDB pads only then). Errors become _NotUtf8, _MixedLineEnds or an IngestError.

    A padded row's missing fields would be published empty over the portal's values (a helper's export
    cut off mid-row changed a permit's status to nothing), so the padded try reads empty fields as ''
    and padding as NULL, and returns the rows that were short: (at_rowid, fields), 0-based rowid."""
    cols = [f"c{i}" for i in range(len(names))]
    columns_arg = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in cols) + "}"
    # Excel-formula values ("=""0012345""") are unwrapped after the load, and only when the file's bytes
    # hold '="' at all (the scan alongside tells): most extracts never pay for it.
    selected = ", ".join(f"NULLIF({c}, '') AS {quote_ident(n)}" for c, n in zip(cols, names, strict=True))
    not_blank = f"coalesce({', '.join(cols)}) IS NOT NULL" if len(cols) > 1 else f"{cols[0]} IS NOT NULL"

    def reader(padding: bool) -> str:
        options = f", null_padding=true, parallel=false, nullstr={quote_literal(PADDED)}" if padding else ""
        if source.encoding != "utf-8":
            options += f", encoding={quote_literal(source.encoding)}"
        return (
            f"read_csv({quote_literal(str(source.path))}, delim={quote_literal(layout.delimiter)}, "
            f"quote='\"', escape='\"', "
            f"header=false, skip={layout.header_line}, columns={columns_arg}, auto_detect=false, "
            f"strict_mode=true, max_line_size={MAX_LINE_BYTES}, buffer_size={CSV_BUFFER_BYTES}{options})"
        )

    con = request.con
    try:
        con.execute(
            f"CREATE OR REPLACE TABLE {request.table} AS SELECT {selected} FROM {reader(False)} WHERE {not_blank}"
        )
        return None
    except duckdb.Error as exc:
        found = COLUMN_COUNT.search(str(exc))
        if not (found and int(found[2]) < int(found[1])):
            raise _refusal(request.path, source, exc, len(names)) from exc
    try:  # empty fields read as '', padding as NULL: the first NULL is where a short row ended
        padded_blank = "coalesce(" + ", ".join(f"NULLIF({c}, '')" for c in cols) + ") IS NOT NULL"
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _ingest_padded AS SELECT * FROM {reader(True)} "
            f"WHERE {padded_blank}"
        )
    except duckdb.Error as exc2:
        raise _refusal(request.path, source, exc2, len(names)) from exc2
    try:
        con.execute(f"CREATE OR REPLACE TABLE {request.table} AS SELECT {selected} FROM _ingest_padded")
        fields = " + ".join(f"({c} IS NOT NULL)::BIGINT" for c in cols)
        return con.sql(
            f"SELECT rowid AS at_rowid, {fields} AS fields FROM _ingest_padded WHERE {cols[-1]} IS NULL "
            "ORDER BY rowid"
        ).to_arrow_table()
    finally:
        con.execute("DROP TABLE IF EXISTS _ingest_padded")


def _refusal(original: Path, source: _Source, exc: duckdb.Error, width: int) -> Exception:
    """What a DuckDB refusal means: bytes that are not UTF-8, line ends of several kinds (seen by the
    scan, or for lone CRs by a pass of its own, made only here: never for a file DuckDB reads), or a
    problem the agency must fix."""
    text = str(exc)
    if "Invalid unicode" in text and not source.decoded:
        return _NotUtf8()
    line_ends_may_be_why = not (source.normalised or COLUMN_COUNT.search(text) or "Out of Memory" in text)
    if line_ends_may_be_why and (source.scan().mixed_line_ends or file_line_ends(source.path).mixed):
        return _MixedLineEnds()
    return _csv_error(original, exc, width, source.scan)


def _line_shifts(
    con: duckdb.DuckDBPyConnection,
    table: str,
    source: Path,
    names: list[str],
    layout: Layout,
    rows: int,
    counts: FileScan,
) -> pa.Table | None:
    """Where rows after records spanning several lines, or after blank lines, shift (None when none do)."""
    header_line = layout.header_line
    if rows == counts.lines - header_line - counts.trailing_blank:
        return None
    shifts = counts.record_start_shifts(header_line, rows)
    if shifts is None:
        shifts = record_line_shifts(source, layout.delimiter, header_line, rows)
    if shifts is not None:
        return shifts
    # The quote parity view and the parser disagree (a quote inside an unquoted value): count the newlines
    # inside the loaded rows instead (blank lines between rows are then not counted).
    has_newline = " OR ".join(f"contains({quote_ident(n)}, chr(10))" for n in names)
    newlines = " + ".join(
        f"coalesce(length({quote_ident(n)}) - length(replace({quote_ident(n)}, chr(10), '')), 0)"
        for n in names
    )
    return con.sql(
        f"SELECT rowid + 1 AS at_rowid, CAST(sum({newlines}) OVER (ORDER BY rowid) AS BIGINT) AS shift "
        f"FROM {table} WHERE {has_newline} ORDER BY at_rowid"
    ).to_arrow_table()


def _csv_error(path: Path, exc: Exception, width: int, scan: Scan) -> IngestError:
    """Turn DuckDB's CSV error into one naming the line, what was found, and what to do. DuckDB's text
    lists its options (``quote = "``) and the original line (PII), so only known phrases are matched and
    none of the line is repeated."""
    text = str(exc)
    line = re.search(r"Line: (\d+)", text)
    at = scan().physical_line(int(line[1])) if line else None
    found = COLUMN_COUNT.search(text)
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
    elif "invalid state" in text.lower() and at is None:
        problem = (
            "the CSV reader could not parse the file and names no line (a quote character inside an "
            "unquoted value can hide line ends of different kinds from ingest)"
        )
        fix = "quote values that hold a quote character, doubling it, or re-export the file with one kind of line end"
    else:
        problem = f"the CSV reader stopped: {first_line(exc)}"
        fix = "check the delimiter and quoting, or set ingest.delimiter and ingest.header_row in the dataset YAML"
    return IngestError(path, problem, fix, line=at)
