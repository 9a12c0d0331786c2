"""Find out how an agency extract is encoded and laid out before DuckDB reads it.

Agency exports arrive as UTF-8 with or without a BOM, Windows cp1252 or UTF-16, with title lines
above the header, and with any of several delimiters. Detection works on a bounded sample so it
costs the same for a 1 KB file and a 1 GB file, except the strict UTF-8 scan which streams.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ct_pipelines.catalog.models import SourceFormat
from ct_pipelines.ingest.errors import IngestError, record_shape

CHUNK = 16 * 1024 * 1024
SAMPLE_BYTES = 256 * 1024
HEADER_SEARCH_RECORDS = 30
DELIMITERS = (",", "\t", "|", ";")
# Bytes that cp1252 leaves undefined: their presence rules cp1252 out in favour of latin-1.
CP1252_UNDEFINED = {0x81, 0x8D, 0x8F, 0x90, 0x9D}


@dataclass(frozen=True)
class Encoding:
    codec: str  # Python codec name of the text after any BOM
    bom: bool

    @property
    def is_utf8(self) -> bool:
        return self.codec == "utf-8"


@dataclass(frozen=True)
class Layout:
    delimiter: str
    header_line: int  # 1-based physical line of the header
    header: list[str]
    field_count: int


def detect_encoding(path: Path, declared: str = "auto", *, full_scan: bool = True) -> Encoding:
    """BOM first, then a strict UTF-8 scan, then cp1252 or latin-1.

    With ``full_scan=False`` only the first bytes are checked; the caller must then let a strict
    UTF-8 reader (DuckDB) confirm the rest, and decode line by line when it refuses or when the
    sample is not UTF-8 (the cp1252 answer is then only the fallback for non-UTF-8 lines).
    """
    with path.open("rb") as handle:
        head = handle.read(4)
    if head.startswith(codecs.BOM_UTF8):
        return Encoding("utf-8", True)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return Encoding("utf-16", True)
    if declared != "auto":
        try:
            codec = codecs.lookup(declared).name
        except LookupError as exc:
            raise IngestError(
                path,
                f"unknown encoding '{declared}' in the dataset's ingest.encoding",
                "use auto, or a codec name such as utf-8, cp1252, latin-1, utf-16",
            ) from exc
        return Encoding("utf-8" if codec == "utf-8" else codec, False)
    if _looks_utf16_without_bom(head):
        return Encoding("utf-16-le" if head[1] == 0 else "utf-16-be", False)
    if not full_scan:
        with path.open("rb") as handle:
            sample = handle.read(SAMPLE_BYTES)
        try:
            codecs.getincrementaldecoder("utf-8")().decode(sample)  # a cut multi-byte tail is fine
            return Encoding("utf-8", False)
        except UnicodeDecodeError:
            # The reader decodes line by line (UTF-8 where valid, this fallback elsewhere), so the
            # whole-file choice between cp1252 and latin-1 below is not needed here.
            return Encoding("cp1252", False)
    decoder = codecs.getincrementaldecoder("utf-8")()
    seen_high: set[int] = set()
    offset = 0
    utf8 = True
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            if utf8:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    utf8 = False
            if not utf8:
                seen_high.update(b for b in set(chunk) if b >= 0x80)
            offset += len(chunk)
    if utf8:
        try:
            decoder.decode(b"", final=True)
            return Encoding("utf-8", False)
        except UnicodeDecodeError:
            pass
    return Encoding("latin-1" if seen_high & CP1252_UNDEFINED else "cp1252", False)


def _looks_utf16_without_bom(head: bytes) -> bool:
    return len(head) >= 4 and ((head[1] == 0 and head[3] == 0) or (head[0] == 0 and head[2] == 0))


def read_sample_text(path: Path, encoding: Encoding, limit: int = SAMPLE_BYTES) -> str:
    """The first ``limit`` bytes decoded (BOM removed), cut at the last complete line."""
    with path.open("rb") as handle:
        raw = handle.read(limit)
    codec = "utf-8-sig" if encoding.codec == "utf-8" else encoding.codec
    text = raw.decode(codec, errors="replace")
    if len(raw) == limit and "\n" in text:
        text = text[: text.rfind("\n") + 1]
    return text


def _records_with_lines(text: str, delimiter: str, limit: int) -> list[tuple[int, list[str]]]:
    """Parse up to ``limit`` CSV records from text, with the 1-based line each one starts on."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    records: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for record in reader:
            records.append((start, record))
            start = reader.line_num + 1
            if len(records) >= limit:
                break
    except csv.Error:
        pass
    return records


def detect_delimiter(text: str) -> str:
    """The candidate that splits the most sample lines into the same number (>1) of fields."""
    best, best_score = ",", -1.0
    for delimiter in DELIMITERS:
        records = _records_with_lines(text, delimiter, 200)
        counts = Counter(len(r) for _, r in records if any(cell.strip() for cell in r))
        if not counts:
            continue
        width, hits = counts.most_common(1)[0]
        if width < 2:
            continue
        score = hits * (1 + 0.01 * width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _is_header(record: list[str], width: int) -> bool:
    cells = [c.strip() for c in record]
    filled = [c for c in cells if c]
    if len(cells) < width or len(filled) < max(min(2, width), int(width * 0.8)):
        return False
    # Agency headers repeat names ("Other " next to "Other", two "Total"s): a few repeats are allowed,
    # a row of mostly repeated values (Y, Y, N, N) is data.
    repeats = len(filled) - len({" ".join(c.split()).casefold() for c in filled})
    if repeats > max(1, len(filled) // 4):
        return False
    numeric = sum(1 for c in filled if _is_number(c))
    return numeric <= len(filled) // 4


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
    except ValueError:
        return False
    return True


def detect_layout(
    path: Path, text: str, delimiter: str | None = None, header_line: int | None = None
) -> Layout:
    """Delimiter and header line: the configured ones, or the first record that looks like a header
    (as wide as the data, every cell filled, unique, mostly not numbers), skipping title lines."""
    delimiter = delimiter or detect_delimiter(text)
    records = _records_with_lines(text, delimiter, HEADER_SEARCH_RECORDS + 200)
    if not any(any(c.strip() for c in r) for _, r in records):
        size = path.stat().st_size if path.exists() else 0
        what = (
            "the file is empty (0 bytes)"
            if size == 0
            else f"the file holds no values ({size:,} bytes of blank lines)"
        )
        raise IngestError(path, what, "check that the agency's export finished and ask for the file again")
    if header_line is not None:
        for line, record in records:
            if line == header_line:
                return Layout(delimiter, line, record, len(record))
        raise IngestError(
            path,
            f"ingest.header_row is {header_line} but the file has no record starting on that line",
            "set header_row to the line number of the column names, or remove it to detect it",
            line=header_line,
        )
    widths = Counter(len(r) for _, r in records if sum(1 for c in r if c.strip()) >= 2)
    width = widths.most_common(1)[0][0] if widths else 1  # a one-column file
    for line, record in records[:HEADER_SEARCH_RECORDS]:
        if _is_header(record, width):
            return Layout(delimiter, line, record, len(record))
    first_line, first = next((lr for lr in records if any(c.strip() for c in lr[1])), records[0])
    raise IngestError(
        path,
        f"could not find a header line among the first {HEADER_SEARCH_RECORDS} records "
        f"(first non-empty record, shapes only: {record_shape(first)})",
        "set ingest.header_row to the 1-based line number of the column names",
        line=first_line,
    )


def looks_like_column_names(cells: list[str]) -> bool:
    """Distinct, non-empty names with no number, date or e-mail among them: safe to print in a message."""
    names = [" ".join(c.split()).casefold() for c in cells]
    if not names or any(not n for n in names) or len(set(names)) != len(names):
        return False
    return not any(_is_number(n) or re.search(r"\d{1,4}[/-]\d{1,2}[/-]\d{1,4}|@", n) for n in names)


def describe_header(header: list[str]) -> str:
    """The header for an error message: its names when they look like column names; otherwise the row may
    be data taken for the header (repeated names), so only positions and shapes are shown (no values)."""
    if looks_like_column_names(header):
        return "the file has: " + ", ".join(h.strip() for h in header)
    return (
        "the line taken as the header repeats names or holds values, so it may be a data row; shapes only: "
        + record_shape(list(header))
    )


BINARY_KINDS = {
    b"%PDF": "a PDF document",
    b"PK\x03\x04": "a zip archive or Excel workbook",
    b"PAR1": "a Parquet file",
}


def refuse_binary_as_text(path: Path, fmt: SourceFormat) -> None:
    """A PDF or workbook renamed .csv would be read as garbage columns; say what the file really is."""
    if fmt not in (SourceFormat.CSV, SourceFormat.JSON):
        return
    with path.open("rb") as handle:
        start = handle.read(4)
    kind = next((name for magic, name in BINARY_KINDS.items() if start.startswith(magic)), None)
    if kind:
        raise IngestError(
            path,
            f"the file is {kind}, not {fmt.value} text",
            "ask the agency for the extract in the agreed format, or set ingest.format to match the file",
        )
