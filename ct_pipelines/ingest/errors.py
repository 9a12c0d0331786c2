"""Ingest errors that tell an agency what went wrong, where, and what to do about it, in one sentence:
``<file>, line 7: expected 9 fields as in the header, found 10; quote fields that contain the delimiter,
or remove the extra delimiter on that line.`` A message never quotes a value from the file (it may be
personal data): it names the line, column or byte, and describes a row by its shape (``record_shape``)."""

from __future__ import annotations

from pathlib import Path


class IngestError(Exception):
    """A problem with one extract; names the file, the line, byte, sheet, row or column, and the fix.

    ``problem`` and ``fix`` are clauses without a full stop (the message joins them with a semicolon);
    ``fix`` starts with what to do (``set ingest.header_row to ...``)."""

    def __init__(
        self,
        path: Path | str,
        problem: str,
        fix: str,
        *,
        line: int | None = None,
        byte: int | None = None,
        column: str | None = None,
        sheet: str | None = None,
        row: int | None = None,
    ) -> None:
        self.path = str(path)
        self.problem = problem
        self.fix = fix
        self.line = line
        self.byte = byte
        self.column = column
        self.sheet = sheet
        self.row = row  # a workbook's row (lines are a text file's)
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path
        if self.line is not None:
            where += f", line {self.line}"
        if self.byte is not None:
            where += f", byte {self.byte}"
        if self.sheet is not None:
            where += f", sheet '{self.sheet}'"
        if self.row is not None:
            where += f", row {self.row}"
        if self.column is not None:
            where += f", column '{self.column}'"
        return f"{where}: {self.problem.rstrip(' .')}; {self.fix.rstrip(' .')}."


def value_shape(value: str | None) -> str:
    """A value's shape without its content (``Smith`` -> ``Aa``, ``860-555-1234`` -> ``9-9-9``), so
    messages about a row can describe it without printing personal data."""
    if value is None or not str(value).strip():
        return "(empty)"
    out: list[str] = []
    for char in str(value).strip():
        kind = "9" if char.isdigit() else ("A" if char.isupper() else "a") if char.isalpha() else char
        if kind == " ":
            kind = "_"
        if not out or out[-1] != kind or kind not in "9aA_":
            out.append(kind)
    return "".join(out)[:12]


def record_shape(cells: list[str | None], limit: int = 8) -> str:
    """``3 fields: 1 Aa, 2 9, 3 (empty)``: positions and shapes only, never the values."""
    parts = [f"{i + 1} {value_shape(c)}" for i, c in enumerate(cells[:limit])]
    more = f", ... ({len(cells) - limit} more)" if len(cells) > limit else ""
    return f"{len(cells)} fields: {', '.join(parts)}{more}"
