"""Decode an extract line by line when it is not (entirely) UTF-8.

Agency systems append to files over years: one export can hold UTF-8 rows and rows written by an
older Windows tool in cp1252. Deciding one encoding for the whole file turns every UTF-8 accent into
mojibake (``ZoÃ«``), so each line is read as UTF-8 where it is valid UTF-8 and with the single-byte
fallback (cp1252, or latin-1 for the bytes cp1252 leaves undefined) elsewhere. The lines read with the
fallback are counted so lineage can say how much of the file was not UTF-8.

Valid chunks are checked by CPython's C decoder and written unchanged; only lines holding an invalid
byte take a Python step (an error handler), so a clean file costs one decode pass.
"""

from __future__ import annotations

import codecs
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ct_pipelines.ingest.errors import IngestError
from ct_pipelines.ingest.newlines import normalised_blocks, read_blocks

CHUNK = 16 * 1024 * 1024
HIGH_BYTES = bytes(range(0x80, 0x100))
#: Code pages (Python's names) that read bytes 0xA0-0xFF as latin-1 does.
LATIN1_READS_HIGH_BYTES = {"cp1252", "iso8859-1"}


def is_single_byte_ascii(codec: str) -> bool:
    """True for code pages such as cp1252 or latin-1, which can be mixed with UTF-8 line by line."""
    try:
        info = codecs.lookup(codec)
    except LookupError:
        return False
    if info.name.startswith(("utf", "utf_")):
        return False
    try:
        if bytes(range(128)).decode(info.name) != bytes(range(128)).decode("ascii"):
            return False
        encoded = "\n".encode(info.name)
    except (UnicodeDecodeError, UnicodeEncodeError):
        return False
    return encoded == b"\n"


def _has_utf8_sequence(data: np.ndarray, high: np.ndarray) -> bool:
    """Whether any high byte starts a well-formed multi-byte UTF-8 sequence (lead byte + continuations)."""
    lead = data[high]
    for low, top, length in ((0xC2, 0xDF, 2), (0xE0, 0xEF, 3), (0xF0, 0xF4, 4)):
        starts = high[(lead >= low) & (lead <= top) & (high + length <= len(data))]
        ok = np.ones(len(starts), dtype=bool)
        for k in range(1, length):
            follow = data[starts + k]
            ok &= (follow >= 0x80) & (follow <= 0xBF)
        if ok.any():
            return True
    return False


class _Rewind(Exception):
    """A line holds valid multi-byte UTF-8 before an invalid byte: its start was already decoded as UTF-8."""


_ACTIVE = threading.local()  # the LineDecoder whose chunk the C decoder is working on, per thread
HANDLER = "ct_pipelines_line_fallback"


def _on_invalid_utf8(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    decoder: LineDecoder = _ACTIVE.decoder
    return decoder._rest_of_line(exc.object, exc.start)


codecs.register_error(HANDLER, _on_invalid_utf8)


@dataclass
class LineDecoder:
    """Per-line UTF-8-or-fallback decoding over consecutive chunks that end at a newline.

    CPython's C decoder reads each chunk as UTF-8 and calls an error handler at an invalid byte; the
    handler decodes the rest of that line with the fallback and resumes at the next line. A line whose
    earlier part was non-ASCII UTF-8 cannot be re-read that way, so such (rare) chunks go line by line."""

    path: Path
    fallback: str = "cp1252"
    strict_fallback: bool = False  # a declared code page: refuse a line it cannot decode
    strict_utf8: bool = False  # source.encoding says utf-8: refuse the first line that is not
    utf8_seen: bool = False  # some line holds non-ASCII UTF-8
    fallback_lines: int = 0
    first_fallback_line: int | None = None
    codecs_used: set[str] = field(default_factory=set)
    _line: int = 1  # line number at the start of the current chunk
    _counted_to: int = 0  # offset in the current chunk up to which newlines are counted into _at_line
    _at_line: int = 1
    _fallback_high: int = 0  # high bytes of the current chunk that the fallback decoded

    def decode(self, chunk: bytes) -> bytes:
        """The chunk as UTF-8 bytes; a chunk must end at a newline unless it is the file's last."""
        if chunk.isascii():
            self._line += chunk.count(b"\n")
            return chunk
        if not self.strict_utf8:
            whole = self._whole_chunk_fallback(chunk)
            if whole is not None:
                self._line += chunk.count(b"\n")
                return whole
        self._counted_to, self._at_line, self._fallback_high = 0, self._line, 0
        before = self.fallback_lines
        _ACTIVE.decoder = self
        try:
            text = chunk.decode("utf-8", HANDLER)
        except _Rewind:
            out = self._by_line(chunk)
        else:
            high = len(chunk) - len(chunk.translate(None, HIGH_BYTES))
            self.utf8_seen = self.utf8_seen or high > self._fallback_high
            out = chunk if self.fallback_lines == before else text.encode("utf-8")
        finally:
            _ACTIVE.decoder = None
        self._line += chunk.count(b"\n")
        return out

    def read_in_place(self) -> bool:
        """Whether DuckDB's own latin-1 reader gives the text the UTF-8 copy would: no line holds UTF-8,
        the fallback reads bytes 0xA0-0xFF as latin-1 does (cp1252, latin-1), and no byte is in
        0x80-0x9F (DuckDB refuses them; cp1252 reads them as other characters). Counts the fallback
        lines as ``decode`` would when it says yes. One numpy pass (1.5 s for 500 MB) instead of the
        copy: decoding, encoding and writing 500 MB took 5 s of a 14 s ingest."""
        if self.strict_utf8 or codecs.lookup(self.fallback).name not in LATIN1_READS_HIGH_BYTES:
            return False
        line, fallback_lines, first = self._line, 0, None
        for chunk in iter_line_chunks(read_blocks(self.path, 0, CHUNK)):
            if not chunk.isascii():
                data = np.frombuffer(chunk, dtype=np.uint8)
                high = np.flatnonzero(data >= 0x80)
                if data[high].min() < 0xA0 or _has_utf8_sequence(data, high):
                    return False
                lines = np.searchsorted(np.flatnonzero(data == 10), high)
                first = line + int(lines[0]) if first is None else first
                fallback_lines += 1 + int(np.count_nonzero(np.diff(lines)))
            line += chunk.count(b"\n")
        if first is not None:
            self._note_fallback(first, self.fallback)
            self.fallback_lines += fallback_lines - 1
        self._line = line
        return True

    def _whole_chunk_fallback(self, chunk: bytes) -> bytes | None:
        """A chunk with no multi-byte UTF-8 sequence at all (a cp1252 export): every line holding a high
        byte is the fallback's, so the chunk is decoded in one call instead of line by line."""
        data = np.frombuffer(chunk, dtype=np.uint8)
        high = np.flatnonzero(data >= 0x80)
        if _has_utf8_sequence(data, high):
            return None
        try:
            text = chunk.decode(self.fallback)
        except UnicodeDecodeError:
            return None  # bytes the fallback leaves undefined: line by line, those lines as latin-1
        if len(high):  # line index of each high byte, ascending: count the distinct ones
            lines = np.searchsorted(np.flatnonzero(data == 10), high)
            self._note_fallback(self._line + int(lines[0]), self.fallback)
            self.fallback_lines += int(np.count_nonzero(np.diff(lines)))
        return text.encode("utf-8")

    def _rest_of_line(self, data: bytes, start: int) -> tuple[str, int]:
        """Error handler step: the fallback's text from ``start`` to the end of the line, and where to resume."""
        line_start = data.rfind(b"\n", 0, start) + 1
        if not data[line_start:start].isascii():
            raise _Rewind
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        self._at_line += data.count(b"\n", self._counted_to, line_start)
        self._counted_to = line_start
        raw = data[start:end]
        self._fallback_high += len(raw) - len(raw.translate(None, HIGH_BYTES))
        return self._decode_line(raw, self._at_line), end

    def _by_line(self, chunk: bytes) -> bytes:
        out: list[bytes] = []
        for number, raw in enumerate(chunk.split(b"\n"), start=self._line):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                out.append(self._decode_line(raw, number).encode("utf-8"))
                continue
            self.utf8_seen = self.utf8_seen or not raw.isascii()
            out.append(raw)
        return b"\n".join(out)

    def _decode_line(self, raw: bytes, line: int) -> str:
        if self.strict_utf8:
            raise IngestError(
                self.path,
                "this line holds bytes that are not valid UTF-8, as ingest.encoding (utf-8) requires",
                "set ingest.encoding to auto (UTF-8 lines stay UTF-8, others "
                "are read as cp1252), or ask the agency to re-export the file as UTF-8",
                line=line,
            )
        for codec in (self.fallback, "latin-1"):
            try:
                text = raw.decode(codec)
            except UnicodeDecodeError:
                if self.strict_fallback:
                    raise IngestError(
                        self.path,
                        f"this line is neither valid UTF-8 nor valid {self.fallback} (ingest.encoding)",
                        "set ingest.encoding to the code page the agency "
                        "system uses (for example latin-1), or to auto",
                        line=line,
                    ) from None
                continue
            self._note_fallback(line, codec)
            return text
        raise AssertionError("latin-1 decodes every byte")

    def _note_fallback(self, line: int, codec: str) -> None:
        self.fallback_lines += 1
        self.codecs_used.add(codec)
        if self.first_fallback_line is None or line < self.first_fallback_line:
            self.first_fallback_line = line

    def label(self, bom: bool) -> str:
        """The encoding as lineage reports it: utf-8, cp1252, latin-1, or utf-8+cp1252 for a mixed file."""
        utf8 = "utf-8-sig" if bom else "utf-8"
        if not self.fallback_lines:
            return utf8
        used = "+".join(sorted(self.codecs_used, key=lambda c: c != self.fallback))
        return f"{utf8}+{used}" if self.utf8_seen or bom else used


def iter_line_chunks(blocks: Iterable[bytes]) -> Iterator[bytes]:
    """Re-cut consecutive blocks into chunks that end at a newline (the last one may not)."""
    rest = b""
    for block in blocks:
        block = rest + block
        cut = block.rfind(b"\n") + 1
        if cut == 0:
            rest = block
            continue
        rest = block[cut:]
        yield block[:cut]
    if rest:
        yield rest


def transcode_lines(
    path: Path, out: Path, decoder: LineDecoder, *, skip: int = 0, normalise: bool = False
) -> None:
    """Write ``path`` (after ``skip`` BOM bytes) as UTF-8 into ``out``, one source line per output line;
    with ``normalise`` every line end outside quotes is written as LF first (see ``newlines``)."""
    blocks = read_blocks(path, skip, CHUNK)
    with out.open("wb") as dst:
        for chunk in iter_line_chunks(normalised_blocks(blocks) if normalise else blocks):
            dst.write(decoder.decode(chunk))


def decode_sample(raw: bytes, decoder: LineDecoder) -> str:
    """A sample (complete lines) decoded the same way as the file, for layout detection."""
    return decoder.decode(raw).decode("utf-8")
