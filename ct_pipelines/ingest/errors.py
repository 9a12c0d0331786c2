"""Ingest errors that tell an agency what went wrong, where, and what to do about it."""

from __future__ import annotations

from pathlib import Path


class IngestError(Exception):
    """A problem with one extract; names the file, the line or byte, and the fix."""

    def __init__(self, path: Path | str, problem: str, fix: str, *, line: int | None = None,
                 byte: int | None = None, column: str | None = None) -> None:
        self.path = str(path)
        self.problem = problem
        self.fix = fix
        self.line = line
        self.byte = byte
        self.column = column
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path
        if self.line is not None:
            where += f", line {self.line}"
        if self.byte is not None:
            where += f", byte {self.byte}"
        if self.column is not None:
            where += f", column '{self.column}'"
        return f"{where}: {self.problem}. Fix: {self.fix}"
