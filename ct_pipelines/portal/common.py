"""Helpers shared by the local portal's store modules: Socrata's types and ids, the one way a
dataset's table is named and quoted in SQL, Socrata's JSON formatting of values, and the private
file modes of everything the portal writes."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ct_pipelines.core.sql import quote_ident
from ct_pipelines.portal.errors import PortalError, bad_request
from ct_pipelines.portal.soql import quote_literal

__all__ = ["quote_literal"]

DEFAULT_LIMIT = 1000
NOT_ROWS = "The body must be a JSON array of row objects keyed by API field names"
FIELD_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
# Socrata's dataset id ("4x4"): the only shape a dataset id may take anywhere in the portal, so an
# id can never carry SQL, a path or markup (issue 17.4)
FOUR_BY_FOUR = re.compile(r"^[a-z0-9]{4}-[a-z0-9]{4}$")
_ID_ALPHABET = "23456789abcdefghijkmnpqrstuvwxyz"
# dataTypeName -> DuckDB storage type; the types in JSON_TYPES hold JSON text
STORAGE_TYPES = {
    "text": "VARCHAR",
    "number": "DOUBLE",
    "double": "DOUBLE",
    "money": "DOUBLE",
    "percent": "DOUBLE",
    "calendar_date": "TIMESTAMP",
    "date": "TIMESTAMP",
    "checkbox": "BOOLEAN",
    "email": "VARCHAR",
    "phone": "VARCHAR",
    "url": "VARCHAR",
    "point": "VARCHAR",
    "location": "VARCHAR",
    "multipoint": "VARCHAR",
    "line": "VARCHAR",
    "multiline": "VARCHAR",
    "polygon": "VARCHAR",
    "multipolygon": "VARCHAR",
}
JSON_TYPES = {"url", "point", "location", "multipoint", "line", "multiline", "polygon", "multipolygon"}
NUMBER_TYPES = {"number", "double", "money", "percent"}
SYSTEM_COLUMNS = (":id", ":created_at", ":updated_at")
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def now_epoch() -> int:
    """Seconds since the epoch; tests pin it by patching this one function."""
    return int(time.time())


def is_four_by_four(view_id: object) -> bool:
    return isinstance(view_id, str) and FOUR_BY_FOUR.match(view_id) is not None


def new_four_by_four(taken: Mapping[str, Any]) -> str:
    while True:
        text = "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))
        candidate = f"{text[:4]}-{text[4:]}"
        if candidate not in taken:
            return candidate


def table_name(view_id: str) -> str:
    """The dataset table's bare name (as ``duckdb_tables()`` lists it); refuses anything but a 4x4."""
    if not is_four_by_four(view_id):
        raise PortalError(404, "dataset.missing", "Not found", {"id": str(view_id)[:64]})
    return "ds_" + view_id.replace("-", "_")


def table_sql(view_id: str) -> str:
    """The dataset table as a quoted SQL identifier."""
    return quote_ident(table_name(view_id))


def sequence_name(view_id: str) -> str:
    """The bare name of the sequence that numbers the dataset's rows."""
    return "seq_" + table_name(view_id)


def is_true(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "t", "yes")
    return bool(value)


def format_sql(expression: str, soql_type: str) -> str:
    """SQL giving Socrata's JSON value for a column: numbers as strings without a trailing .0,
    floating timestamps with milliseconds, system timestamps in UTC with Z."""
    if soql_type in NUMBER_TYPES:
        return (
            f"CASE WHEN isfinite(CAST({expression} AS DOUBLE)) AND {expression} = trunc({expression}) "
            f"AND abs({expression}) < 1e15 THEN CAST(CAST({expression} AS BIGINT) AS VARCHAR) "
            f"ELSE CAST({expression} AS VARCHAR) END"
        )
    if soql_type in ("calendar_date", "date"):
        return f"strftime({expression}, '%Y-%m-%dT%H:%M:%S.%g')"
    if soql_type == "system_timestamp":
        return f"strftime({expression}, '%Y-%m-%dT%H:%M:%S.%gZ')"
    return expression


def parse_csv_rows(text: str) -> list[dict[str, Any]]:
    """CSV body -> row objects; header = API field names, empty cell = null (Socrata since 2014)."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        return []
    rows = []
    for line_number, record in enumerate(reader, start=2):
        if not record:
            continue
        if len(record) != len(header):
            raise bad_request(
                f"CSV line {line_number} has {len(record)} cells but the header has {len(header)}; "
                "quote cells that contain commas",
                line=line_number,
            )
        rows.append({name: (cell if cell != "" else None) for name, cell in zip(header, record, strict=True)})
    return rows


@dataclass
class QueryResult:
    fields: list[str]
    types: list[str]
    rows: list[tuple[Any, ...]]
    json_fields: set[str]

    def records(self) -> list[dict[str, Any]]:
        """Row objects as Socrata's JSON: nulls omitted, JSON-typed cells parsed."""
        out = []
        for row in self.rows:
            record = {}
            for field, value in zip(self.fields, row, strict=True):
                if value is None:
                    continue
                if field in self.json_fields and isinstance(value, str) and value[:1] in "{[":
                    value = json.loads(value)
                record[field] = value
            out.append(record)
        return out


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) readable by the owner only; an existing folder keeps
    its mode, since it may be a shared one the portal was pointed at."""
    path = Path(path)
    if not path.exists():
        path.mkdir(parents=True, mode=PRIVATE_DIR)
        os.chmod(path, PRIVATE_DIR)  # mkdir's mode is masked by the umask
    return path


def make_private(*paths: Path) -> None:
    """Set owner-only mode on the files that exist among ``paths`` (DuckDB creates its WAL with
    the umask's mode, and removes and recreates it at checkpoints)."""
    for path in paths:
        try:
            if os.stat(path).st_mode & 0o077:
                os.chmod(path, PRIVATE_FILE)
        except FileNotFoundError:
            continue


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a new owner-only file (created 0600, never world-readable in between)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
