"""What every reader returns, and the small SQL and message helpers the readers share."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa

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
    # Delimited rows with fewer fields than the header (at_rowid 0-based, fields): validation sets them aside
    short_rows: pa.Table | None = None


def unwrap_formula_sql(expr: str) -> str:
    """SQL that turns Excel's ``="0012345"`` (used to keep leading zeros) into ``0012345``, and '' into NULL."""
    return (
        f"CASE WHEN starts_with({expr}, '=\"') AND ends_with({expr}, '\"') AND length({expr}) >= 3 "
        f"THEN NULLIF(substr({expr}, 3, length({expr}) - 3), '') WHEN {expr} = '' THEN NULL ELSE {expr} END"
    )


def first_line(exc: Exception) -> str:
    """DuckDB's reason in plain words: its first line without the error category (``Invalid Input
    Error:``), file paths or quoted text (which can be a value from the file)."""
    text = (str(exc).strip().splitlines() or [""])[0]
    text = re.sub(r"^(\w+ )*\w*(Error|Exception): ", "", text)
    text = re.sub(r"(?:in file )?([\"']).*?\1,? ?", "", text)
    text = re.split(r"(?<=[.!?])\s+(?=[A-Z])", text)[0]  # one sentence: the message adds the fix after it
    text = text.strip(" .,:")
    return text or "the reader could not parse it"
