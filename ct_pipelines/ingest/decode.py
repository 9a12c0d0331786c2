"""Decode an extract line by line when it is not (entirely) UTF-8.

Agency systems append to files over years: one export can hold UTF-8 rows and rows written by an
older Windows tool in cp1252. Deciding one encoding for the whole file turns every UTF-8 accent into
mojibake (``ZoÃ«``), so each line is read as UTF-8 where it is valid UTF-8 and with the single-byte
fallback (cp1252, or latin-1 for the bytes cp1252 leaves undefined) elsewhere. The lines read with the
fallback are counted so lineage can say how much of the file was not UTF-8.

Valid chunks are checked by CPython's C decoder and written unchanged; only lines holding an invalid
byte take a Python step, so a clean file costs one decode pass.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ct_pipelines.ingest.errors import IngestError

CHUNK = 16 * 1024 * 1024
# A valid multi-byte UTF-8 sequence; a chunk without one has no UTF-8 text beyond ASCII.
MULTIBYTE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
HIGH_LINE = re.compile(rb"^[^\n\x80-\xff]*[\x80-\xff]", re.MULTILINE)


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


@dataclass
class LineDecoder:
    """Per-line UTF-8-or-fallback decoding state over consecutive chunks that end at a newline."""

    path: Path
    fallback: str = "cp1252"
    strict_fallback: bool = False  # a declared code page: refuse a line it cannot decode
    strict_utf8: bool = False  # source.encoding says utf-8: refuse the first line that is not
    utf8_seen: bool = False  # some line holds non-ASCII UTF-8
    fallback_lines: int = 0
    first_fallback_line: int | None = None
    codecs_used: set[str] = field(default_factory=set)
    _line: int = 1  # line number at the start of the next chunk

    def decode(self, chunk: bytes) -> bytes:
        """The chunk as UTF-8 bytes; a chunk must end at a newline unless it is the file's last."""
        try:
            text = codecs.utf_8_decode(chunk, "strict", True)[0]
        except UnicodeDecodeError:
            pass
        else:
            self.utf8_seen = self.utf8_seen or len(text) != len(chunk)
            self._line += chunk.count(b"\n")
            return chunk
        if self.strict_utf8:
            return self._mixed(chunk)  # raises at the first bad line
        if not MULTIBYTE.search(chunk):
            whole = self._decode_fallback_chunk(chunk)
            if whole is not None:
                return whole
        return self._mixed(chunk)

    def _decode_fallback_chunk(self, chunk: bytes) -> bytes | None:
        """Fast path: no UTF-8 sequence at all, so every line with a high byte is the fallback's."""
        try:
            text = chunk.decode(self.fallback)
        except UnicodeDecodeError:
            return None
        lines = HIGH_LINE.findall(chunk)
        if lines:
            first = HIGH_LINE.search(chunk)
            assert first is not None
            self._note_fallback(self._line + chunk.count(b"\n", 0, first.start()), self.fallback)
            self.fallback_lines += len(lines) - 1
        self._line += chunk.count(b"\n")
        return text.encode("utf-8")

    def _mixed(self, chunk: bytes) -> bytes:
        out: list[bytes] = []
        view = memoryview(chunk)
        pos = 0
        counted_to, line = 0, self._line
        while pos < len(chunk):
            try:
                text = codecs.utf_8_decode(view[pos:], "strict", True)[0]
            except UnicodeDecodeError as exc:
                bad = pos + exc.start
            else:
                self.utf8_seen = self.utf8_seen or len(text) != len(chunk) - pos
                out.append(chunk[pos:])
                break
            start = chunk.rfind(b"\n", 0, bad) + 1
            end = chunk.find(b"\n", bad)
            end = len(chunk) if end < 0 else end
            line += chunk.count(b"\n", counted_to, start)
            counted_to = start
            if start > pos:
                self.utf8_seen = self.utf8_seen or MULTIBYTE.search(chunk, pos, start) is not None
                out.append(chunk[pos:start])
            out.append(self._decode_line(chunk[start:end], line))
            pos = end
        self._line += chunk.count(b"\n")
        return b"".join(out)

    def _decode_line(self, raw: bytes, line: int) -> bytes:
        if self.strict_utf8:
            raise IngestError(
                self.path,
                "this line holds bytes that are not valid UTF-8, as source.encoding (utf-8) requires",
                "set source.encoding to auto (UTF-8 lines stay UTF-8, others "
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
                        f"this line is neither valid UTF-8 nor valid {self.fallback} (source.encoding)",
                        "set source.encoding to the code page the agency "
                        "system uses (for example latin-1), or to auto",
                        line=line,
                    ) from None
                continue
            self._note_fallback(line, codec)
            return text.encode("utf-8")
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


def iter_line_chunks(handle: BinaryIO, size: int = CHUNK) -> Iterator[bytes]:
    """Yield chunks of about ``size`` bytes that end at a newline (the last one may not)."""
    rest = b""
    while block := handle.read(size):
        block = rest + block
        cut = block.rfind(b"\n") + 1
        if cut == 0:
            rest = block
            continue
        rest = block[cut:]
        yield block[:cut]
    if rest:
        yield rest


def transcode_lines(path: Path, out: Path, decoder: LineDecoder, *, skip: int = 0) -> None:
    """Write ``path`` (after ``skip`` BOM bytes) as UTF-8 into ``out``, one source line per output line."""
    with path.open("rb") as src, out.open("wb") as dst:
        src.seek(skip)
        for chunk in iter_line_chunks(src):
            dst.write(decoder.decode(chunk))


def decode_sample(raw: bytes, decoder: LineDecoder) -> str:
    """A sample (complete lines) decoded the same way as the file, for layout detection."""
    return decoder.decode(raw).decode("utf-8")
