"""Line endings: find files that mix them, and rewrite such files with LF only, quoted values untouched.

An agency that concatenates exports from different tools, or edits one file in different editors, sends
lines ending partly in CRLF and partly in LF, and an old Mac export ends its lines in a lone CR. DuckDB's
strict CSV reader refuses a file that mixes them (it would otherwise leave a CR at the end of the last
column), so such a file is streamed once into a copy whose line ends are all LF. Every CRLF, LF or lone CR
outside double quotes counts as one line end, as an editor shows it, so the copy has the same lines and
the line numbers quarantine reports stay those of the agency's file. Inside quotes nothing is changed:
a value written with a CRLF in it keeps it.

Ordinary files (one kind of line end) never take this path: the sample is checked before reading, and the
rest of the file only when DuckDB's reader has refused it (or the byte scan alongside saw CRLF and LF).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CHUNK = 16 * 1024 * 1024
CR, LF, QUOTE = 13, 10, 34


@dataclass
class LineEnds:
    """Line ends outside double quotes, by kind."""

    crlf: int = 0
    lf: int = 0  # LF not preceded by CR
    cr: int = 0  # CR not followed by LF

    @property
    def mixed(self) -> bool:
        """True when DuckDB cannot read the file as it is: more than one kind, or lone CRs (which are
        read as LF in the copy so the byte scan counts the lines an editor shows)."""
        return self.cr > 0 or (self.crlf > 0 and self.lf > 0)

    def add(self, other: LineEnds) -> None:
        self.crlf += other.crlf
        self.lf += other.lf
        self.cr += other.cr


def _outside(positions: np.ndarray, quotes: np.ndarray, inside: int) -> np.ndarray:
    """The positions not inside double quotes, given the quote parity at the start of the block."""
    if not len(quotes) or not len(positions):
        return positions if not inside else positions[:0]
    return positions[((inside + np.searchsorted(quotes, positions)) & 1) == 0]


def _block_ends(data: np.ndarray, inside: int) -> tuple[LineEnds, np.ndarray, np.ndarray, int]:
    """Counts for one block, the CR positions (outside quotes) that end a CRLF and those that stand
    alone, and the number of quotes. A CR as the block's last byte is lone: blocks are cut after it
    only at the end of the data."""
    quotes = np.flatnonzero(data == QUOTE)
    crs = _outside(np.flatnonzero(data == CR), quotes, inside)
    lfs = _outside(np.flatnonzero(data == LF), quotes, inside)
    after = crs + 1
    paired = np.zeros(len(crs), dtype=bool)
    inner = after < len(data)
    paired[inner] = data[after[inner]] == LF
    pairs = int(paired.sum())
    ends = LineEnds(crlf=pairs, lf=len(lfs) - pairs, cr=len(crs) - pairs)
    return ends, crs[paired], crs[~paired], len(quotes)


def sample_line_ends(raw: bytes) -> LineEnds:
    """Line ends in a sample (its first bytes; a CR as its last byte is taken as lone only if the sample
    is the whole file, which the caller cannot know, so it is left out)."""
    ends, _, _, _ = _block_ends(np.frombuffer(raw.removesuffix(b"\r"), dtype=np.uint8), 0)
    return ends


def file_line_ends(path: Path) -> LineEnds:
    """Line ends in the whole file (one streamed pass; used only after DuckDB refused the file)."""
    total = LineEnds()
    for _, _, _, ends in _blocks(read_blocks(path)):
        total.add(ends)
    return total


def read_blocks(path: Path, skip: int = 0, size: int = CHUNK) -> Iterator[bytes]:
    """The file's bytes after ``skip`` (a BOM), in blocks of ``size``."""
    with path.open("rb") as handle:
        handle.seek(skip)
        while block := handle.read(size):
            yield block


def _blocks(blocks: Iterable[bytes]) -> Iterator[tuple[bytes, np.ndarray, np.ndarray, LineEnds]]:
    """Blocks re-cut so that only the last can end in a CR (a CR and its LF stay together), each with
    the positions of CRs that end a CRLF and of lone CRs, and its line-end counts."""
    inside, held = 0, b""
    for raw in blocks:
        block, held = held + raw, b""
        if block.endswith(b"\r"):
            block, held = block[:-1], b"\r"
        if block:
            ends, pairs, lone, quotes = _block_ends(np.frombuffer(block, dtype=np.uint8), inside)
            yield block, pairs, lone, ends
            inside = (inside + quotes) & 1
    if held:
        ends, pairs, lone, _ = _block_ends(np.frombuffer(held, dtype=np.uint8), inside)
        yield held, pairs, lone, ends


def normalised_blocks(blocks: Iterable[bytes]) -> Iterator[bytes]:
    """The bytes with every line end outside double quotes written as LF (CRLF loses its CR, a lone CR
    becomes LF). Works on UTF-8 and on single-byte code pages, where CR, LF and '"' are single bytes."""
    for block, pairs, lone, _ in _blocks(blocks):
        if not len(pairs) and not len(lone):
            yield block
            continue
        out = np.frombuffer(block, dtype=np.uint8).copy()
        out[lone] = LF
        yield np.delete(out, pairs).tobytes()
