"""One streaming pass over a delimited file, on a thread next to DuckDB's reader: its SHA-256, line
counts, the newlines that sit inside quotes (they push later rows' line numbers down), and whether its
lines end in both CRLF and LF (then it is read from a copy with LF only, see ``newlines``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from ct_pipelines.ingest.decode import iter_line_chunks
from ct_pipelines.ingest.detect import CHUNK
from ct_pipelines.ingest.newlines import read_blocks


@dataclass(frozen=True)
class FileScan:
    sha256: str
    lines: int  # physical lines (a last line without a newline counts)
    trailing_blank: int  # blank lines at the end, which are not rows
    quoted_newlines: np.ndarray  # positions (among all newlines) of newlines inside double quotes
    has_formula: bool = False  # the bytes '="' occur: some value may be written as an Excel formula
    crlf: int = 0  # line ends outside quotes written as CRLF
    bare_lf: int = 0  # line ends outside quotes written as LF alone

    @property
    def mixed_line_ends(self) -> bool:
        """Lines end partly in CRLF and partly in LF (lone CRs are not counted here; see newlines)."""
        return self.crlf > 0 and self.bare_lf > 0

    def physical_line(self, record_line: int) -> int:
        """The line where the record starts that DuckDB's reader calls line ``record_line``: it counts
        records (title and header lines included), so each newline inside quotes in an earlier record
        puts the record one line further down. The k-th quoted newline, at newline position q, lies in
        0-based record q - k."""
        quoted = self.quoted_newlines
        records = quoted - np.arange(len(quoted), dtype=np.int64)
        return record_line + int(np.searchsorted(records, record_line - 1, side="left"))

    def record_start_shifts(self, header_line: int, rows: int) -> pa.Table | None:
        """For data rows whose first line is pushed down by quoted newlines in earlier rows: (row index,
        extra lines). None when the quote-parity view of the file disagrees with the parser's row count
        (a stray quote, blank lines between rows), so the caller falls back to :func:`record_line_shifts`.

        The k-th quoted newline (0-based), at newline position q, lies in line-level record q - k; every
        data row after that record starts k + 1 lines further down. Only these positions are kept, so
        memory follows the number of quoted newlines, not the size of the file."""
        quoted = self.quoted_newlines
        if not len(quoted):
            return None
        records = self.lines - len(quoted) - header_line - self.trailing_blank
        if records != rows:
            return None  # blank lines between rows, say: see record_line_shifts
        k = np.arange(len(quoted), dtype=np.int64)
        data_row = quoted - k - header_line  # 0-based data row holding the quoted newline
        if len(data_row) and data_row[0] < 0:
            return None  # a quoted newline in the title or header lines: let DuckDB count
        at_rowid = data_row + 1
        last = np.ones(len(at_rowid), dtype=bool)  # several quoted newlines in one row: keep the last total
        last[:-1] = at_rowid[1:] != at_rowid[:-1]
        keep = last & (at_rowid < rows)
        return pa.table({"at_rowid": at_rowid[keep], "shift": (k + 1)[keep]})


class _Counter:
    """The running state of :func:`scan_file` over consecutive chunks."""

    def __init__(self) -> None:
        self.lines = 0
        self.inside_quotes = 0  # parity of double quotes seen so far
        self.quoted: list[np.ndarray] = []
        self.crlf = 0
        self.bare_lf = 0
        self.last_byte = -1

    def add(self, chunk: bytes) -> bool:
        """Count one chunk; returns whether a quote in it follows '=' (an Excel formula such as ="0012")."""
        data = np.frombuffer(chunk, dtype=np.uint8)
        quotes = np.flatnonzero(data == 34)
        formula = bool(len(quotes)) and (
            (quotes[0] == 0 and self.last_byte == 61) or bool(np.any(data[quotes[quotes > 0] - 1] == 61))
        )
        newlines = np.flatnonzero(data == 10)
        outside: np.ndarray | None = None  # None: every newline of the chunk is outside quotes
        if len(quotes):
            parity = (self.inside_quotes + np.searchsorted(quotes, newlines)) & 1
            self.quoted.append(np.flatnonzero(parity) + self.lines)
            outside = parity == 0
        elif self.inside_quotes:
            self.quoted.append(np.arange(len(newlines), dtype=np.int64) + self.lines)
            outside = np.zeros(len(newlines), dtype=bool)
        self._line_ends(chunk, data, newlines, outside)
        self.inside_quotes = (self.inside_quotes + len(quotes)) & 1
        self.lines += len(newlines)
        self.last_byte = chunk[-1]
        return formula

    def _line_ends(
        self, chunk: bytes, data: np.ndarray, newlines: np.ndarray, outside: np.ndarray | None
    ) -> None:
        """Count CRLF and bare LF line ends; a chunk without CR (found at memchr speed) costs nothing more."""
        if not len(newlines):
            return
        if self.last_byte != 13 and b"\r" not in chunk:
            self.bare_lf += len(newlines) if outside is None else int(np.count_nonzero(outside))
            return
        after_cr = data[np.maximum(newlines - 1, 0)] == 13
        if newlines[0] == 0:
            after_cr[0] = self.last_byte == 13
        if outside is not None:
            crlf = int(np.count_nonzero(after_cr & outside))
            self.crlf += crlf
            self.bare_lf += int(np.count_nonzero(outside)) - crlf
        else:
            crlf = int(np.count_nonzero(after_cr))
            self.crlf += crlf
            self.bare_lf += len(newlines) - crlf


def scan_file(path: Path) -> FileScan:
    """SHA-256, line counts, quoted newlines and line-end kinds in one streaming pass. hashlib and numpy
    release the GIL, so this runs on a thread next to DuckDB's reader at little extra wall time."""
    digest = hashlib.sha256()
    counter = _Counter()
    tail = b""
    has_formula = False
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            # the counter finds '="' from the quotes' positions: a substring search cost 0.8 s per 500 MB
            has_formula = counter.add(chunk) or has_formula
            tail = (tail + chunk[-4096:])[-4096:]
    lines = counter.lines + (1 if tail and not tail.endswith(b"\n") else 0)
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
        np.concatenate(counter.quoted) if counter.quoted else np.empty(0, dtype=np.int64),
        has_formula,
        counter.crlf,
        counter.bare_lf,
    )


def record_line_shifts(path: Path, delimiter: str, header_line: int, rows: int) -> pa.Table | None:
    """The line shifts of :meth:`FileScan.record_start_shifts`, also right when blank lines sit between
    rows (an empty line or one of delimiters only, which DuckDB does not load), from a pass of its own
    over ``path`` that the caller makes only when the quick count disagrees with DuckDB's.

    A line that starts inside quotes continues the record above, and a blank line outside quotes holds
    none; every other line after the header starts the next data row. The k-th such non-starting line
    (0-based), at 0-based line e, pushes rows from e - header_line - k on down by k + 1 lines. None when
    this view disagrees with the parser's row count (a quote inside an unquoted value)."""
    separator = delimiter.encode("utf-8")
    if len(separator) != 1:
        return None
    non_starting: list[np.ndarray] = []
    lines = inside = 0
    for chunk in iter_line_chunks(read_blocks(path, 0, CHUNK)):
        data = np.frombuffer(chunk, dtype=np.uint8)
        starts = np.flatnonzero(data == 10) + 1
        starts = np.concatenate(([0], starts[starts < len(data)]))
        quotes = np.flatnonzero(data == 34)
        continues = ((inside + np.searchsorted(quotes, starts)) & 1).astype(bool)
        filled = (data != separator[0]) & (data != 10) & (data != 13)
        blank = ~np.logical_or.reduceat(filled, starts)
        non_starting.append(np.flatnonzero(continues | blank) + lines)
        inside = (inside + len(quotes)) & 1
        lines += len(starts)
    every = np.concatenate(non_starting) if non_starting else np.empty(0, dtype=np.int64)
    after_header = every[every >= header_line]
    if lines - header_line - len(after_header) != rows:
        return None
    k = np.arange(len(after_header), dtype=np.int64)
    at_rowid = after_header - header_line - k
    last = np.ones(len(at_rowid), dtype=bool)  # several lines pushing the same row: keep the last total
    last[:-1] = at_rowid[1:] != at_rowid[:-1]
    keep = last & (at_rowid < rows)
    return pa.table({"at_rowid": at_rowid[keep], "shift": (k + 1)[keep]})
