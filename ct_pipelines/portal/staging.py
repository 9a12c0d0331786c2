"""Staging a write's body: DuckDB parses the request body itself (``read_json`` from a scratch
file) and casts each field in SQL into the temp table ``_stage``, so no Python object is made per
row. Most payloads' rows all carry the first row's keys: the parse that validates the body also
checks that, and one statement stages the typed rows. Other payloads have every row's keys read
first. Every function works on the caller's own connection (temp tables are per connection).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from ct_pipelines.core.sql import quote_ident
from ct_pipelines.portal.common import (
    NOT_ROWS,
    STORAGE_TYPES,
    SYSTEM_COLUMNS,
    quote_literal,
    write_private,
)
from ct_pipelines.portal.errors import PortalError, bad_request

_JSON_SPACE = re.compile(r"[ \t\n\r]*")
# parses an object to its keys in order, repeats kept
_KEYS_DECODER = json.JSONDecoder(object_pairs_hook=lambda pairs: [key for key, _ in pairs])


@dataclass(frozen=True)
class Layout:
    """What staging a payload depends on: the dataset's (field, type) pairs and row identifier."""

    types: tuple[tuple[str, str], ...]
    row_identifier: str | None

    @classmethod
    def of(cls, view: dict[str, Any]) -> Layout:
        types = tuple((c["fieldName"], c["dataTypeName"]) for c in view["columns"])
        return cls(types, view["metadata"].get("rowIdentifier"))


@dataclass(frozen=True)
class Payload:
    """A validated body in a scratch file: the readers' options (file, format) as SQL, and the keys
    every row carries, in the same order, when they all do (most payloads), else None."""

    source: str
    shared_keys: list[str] | None


@dataclass(frozen=True)
class Staged:
    """What staging learned about ``_stage``: the dataset fields named (in the dataset's order),
    indexes of those only some rows carry, whether any row names an ``:id`` or ``:deleted``, the
    rows, the usable ones (cells parsed; keyed, where the dataset has a row identifier) and the
    distinct row identifier values among the parsed rows."""

    fields: list[str]
    partial: set[int]
    has_sid: bool
    has_deleted: bool
    rows: int
    usable: int
    distinct_keys: int


def rows_json(rows: Any) -> str:
    """Rows given as Python objects -> the JSON body they stand for (one write path for both)."""
    if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
        raise bad_request(NOT_ROWS)
    return json.dumps(rows, default=str)


def _json_path(field: str) -> str:
    return quote_literal('$."' + field.replace('"', '\\"') + '"')


def is_true_sql(value: str) -> str:
    """SQL twin of :func:`common.is_true` for a JSON value (``:deleted``)."""
    return f"""coalesce(CASE json_type({value})
        WHEN 'VARCHAR' THEN lower(trim({value} ->> '$')) IN ('true', '1', 't', 'yes')
        WHEN 'BOOLEAN' THEN CAST({value} AS VARCHAR) = 'true'
        WHEN 'NULL' THEN FALSE
        WHEN 'OBJECT' THEN CAST({value} AS VARCHAR) <> '{{}}'
        WHEN 'ARRAY' THEN CAST({value} AS VARCHAR) <> '[]'
        ELSE TRY_CAST(CAST({value} AS VARCHAR) AS DOUBLE) <> 0 END, FALSE)"""


def unknown_fields(names: Iterable[str], types: Mapping[str, str]) -> list[str]:
    """Names a payload may not use: neither the dataset's fields nor ``:deleted``/system fields."""
    return sorted(f for f in names if f not in types and f not in (":deleted", *SYSTEM_COLUMNS))


def _first_row_keys(text: str) -> list[str] | None:
    """Keys of an array body's first row, parsing only that row; None when it is not an object."""
    start = _JSON_SPACE.match(text, 1).end()
    if not text.startswith("{", start):
        return None
    try:
        keys, _ = _KEYS_DECODER.raw_decode(text, start)
    except ValueError:  # DuckDB accepts a few things Python's parser does not (NaN, say)
        return None
    return keys


def _first_line(exc: Exception) -> str:
    """DuckDB's parse error without its prefix and without the echo of the body."""
    message = str(exc).splitlines()[0].split("  Input:")[0]
    return message.removeprefix("Conversion Error: ").removeprefix("Invalid Input Error: ")


def drop_staging(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("DROP TABLE IF EXISTS _stage; DROP TABLE IF EXISTS _final")


@contextmanager
def payload_file(con: duckdb.DuckDBPyConnection, data_dir: Path, body: str) -> Iterator[Payload]:
    """The body, validated, in a scratch file (owner-only) that DuckDB's JSON readers take. The
    body is validated strictly first because the readers accept a truncated array; a file is the
    fastest input DuckDB offers (unnesting a parsed value is several times slower)."""
    text = body.strip()
    if not text:
        raise bad_request(NOT_ROWS)
    data = text.encode("utf-8")
    scratch = data_dir / f"_ct_payload_{secrets.token_hex(8)}.json"  # one per request
    write_private(scratch, data)
    try:
        first_keys = _first_row_keys(text) if text[0] == "[" else None
        shared = _validate_rows(con, text, scratch, first_keys)
        if text[0] not in "[{":
            raise bad_request(NOT_ROWS)
        fmt = "array" if text[0] == "[" else "unstructured"  # a lone object is one row
        # a table function's file must be a literal here (the source is spliced into several
        # statements); the path is the portal's own, escaped by quote_literal
        # no row is longer than the body; a larger bound costs a larger buffer per read
        source = f"{quote_literal(str(scratch))}, format = '{fmt}', maximum_object_size = {len(data)}"
        yield Payload(source, first_keys if shared else None)
    finally:
        scratch.unlink(missing_ok=True)


def _validate_rows(
    con: duckdb.DuckDBPyConnection, text: str, scratch: Path, first_keys: list[str] | None
) -> bool:
    """Check the body is strict JSON (400 otherwise); returns whether every row has the first
    row's keys in the same order. One parse of the file answers both when the first row is an
    object with keys (about a third of a JSON validation plus a per-row key pass)."""
    try:
        if first_keys:
            differing = con.execute(
                "SELECT len(list_filter(json_keys(content, '$[*]'), lambda k: k <> ?::VARCHAR[])) "
                "FROM read_text(?)",
                [first_keys, str(scratch)],
            ).fetchone()[0]
            return differing == 0
        if con.execute("SELECT json_valid(?)", [text]).fetchone()[0]:
            return False
        con.execute("SELECT CAST(? AS JSON)", [text]).fetchone()  # only for DuckDB's description
    except (duckdb.ConversionException, duckdb.InvalidInputException) as exc:
        raise bad_request(f"The body is not valid JSON: {_first_line(exc)}") from exc
    raise bad_request("The body is not valid JSON")


def stage_payload(con: duckdb.DuckDBPyConnection, payload: Payload, layout: Layout) -> Staged:
    """Payload -> ``con``'s temp table ``_stage``. When every row carries the same known keys
    (the usual case) they are staged in one pass; any other payload needs a pass over every
    row's keys first."""
    types = dict(layout.types)
    keys = payload.shared_keys
    if keys is not None and len(set(keys)) == len(keys) and not unknown_fields(keys, types):
        return _stage(con, payload.source, dict.fromkeys(keys, True), layout)
    return _stage(con, payload.source, _payload_fields(con, payload.source, types), layout)


def _payload_fields(con: duckdb.DuckDBPyConnection, source: str, types: dict[str, str]) -> dict[str, bool]:
    """For every name the payload uses, whether all rows carry it. Rows that are not objects
    and unknown names are a 400."""
    # read_json_objects gives each row's own text, so an object is one that starts with "{"
    groups = con.execute(
        "SELECT json_keys(json) AS keys, count(*), bool_and(starts_with(json, '{')) "
        f"FROM read_json_objects({source}) GROUP BY keys"
    ).fetchall()
    if not all(is_object for _, _, is_object in groups):
        raise bad_request(NOT_ROWS)
    rows_with: dict[str, int] = {}
    for keys, rows, _ in groups:
        for key in set(keys):
            rows_with[key] = rows_with.get(key, 0) + rows
    if unknown := unknown_fields(rows_with, types):
        raise PortalError(
            400,
            "invalid_request",
            f"Unknown column(s) in the payload: {', '.join(unknown)}; "
            f"use the dataset's API field names: {', '.join(types)}",
            {"columns": unknown},
        )
    total = sum(rows for _, rows, _ in groups)
    return {f: rows == total for f, rows in rows_with.items()}


@dataclass
class _StageColumns:
    """The SELECT list of the staging statement and what it tells about the payload."""

    typed: list[str]
    per_row: list[str]
    partial: set[int]


def _stage_columns(fields: list[str], seen: dict[str, bool], layout: Layout) -> _StageColumns:
    """Typed columns, ``_ct_bad`` for cells that did not parse, ``_ct_key`` (the typed row
    identifier), ``_ct_has<i>`` where only some rows carry field i (absent = leave unchanged)."""
    types = dict(layout.types)
    with_deleted, with_sid = ":deleted" in seen, ":id" in seen
    typed = [
        f"{is_true_sql('r.' + quote_ident(':deleted')) if with_deleted else 'FALSE'} AS _ct_deleted",
        f"{'r.' + quote_ident(':id') if with_sid else 'CAST(NULL AS VARCHAR)'} AS _ct_sid",
    ]
    failures: list[str] = []
    columns = _StageColumns(typed, [], set())
    key_sql = "NULL"
    for index, field in enumerate(fields):
        raw = f"r.{quote_ident(field)}"
        storage = STORAGE_TYPES[types[field]]
        cast = raw if storage == "VARCHAR" else f"TRY_CAST({raw} AS {storage})"
        typed.append(f"{cast} AS {quote_ident(field)}")
        if storage != "VARCHAR":
            failures.append(f"({raw} IS NOT NULL AND {cast} IS NULL)")
        if field == layout.row_identifier:
            key_sql = cast
        if not seen[field]:
            columns.per_row.append(
                f"list_contains(json_keys(json), {quote_literal(field)}) AS _ct_has{index}"
            )
            typed.append(f"_ct_has{index}")
            columns.partial.add(index)
    typed.append(f"{key_sql} AS _ct_key")
    typed.append(f"({' OR '.join(failures) or 'FALSE'}) AS _ct_bad")
    return columns


def _stage(con: duckdb.DuckDBPyConnection, source: str, seen: dict[str, bool], layout: Layout) -> Staged:
    """Payload -> temp table ``_stage`` in one statement. ``seen`` maps each name the payload uses
    to whether every row carries it."""
    fields = [f for f, _ in layout.types if f in seen]
    with_deleted, with_sid = ":deleted" in seen, ":id" in seen
    names = [":id", *fields] if with_sid or not fields else fields  # read_json needs a column
    columns = _stage_columns(fields, seen, layout)
    # the rows' own keys come from a second reader, row for row with the values
    keys_sql = (
        f" POSITIONAL JOIN (SELECT {', '.join(columns.per_row)} FROM read_json_objects({source}))"
        if columns.per_row
        else ""
    )
    spec_types = {name: "VARCHAR" for name in names} | ({":deleted": "JSON"} if with_deleted else {})
    spec = "{" + ", ".join(f"{quote_literal(n)}: '{t}'" for n, t in spec_types.items()) + "}"
    stage_sql = f"CREATE TEMP TABLE _stage AS SELECT {', '.join(columns.typed)} FROM "
    try:
        con.execute(f"{stage_sql}read_json({source}, records = true, columns = {spec}) r{keys_sql}")
    except duckdb.InvalidInputException:
        # read_json refuses objects with a repeated key; the slower per-path extraction does not
        extracted = [f"json_extract_string(json, {_json_path(n)}) AS {quote_ident(n)}" for n in names]
        if with_deleted:
            extracted.append(f'json_extract(json, {_json_path(":deleted")}) AS ":deleted"')
        con.execute(
            f"{stage_sql}(SELECT {', '.join(extracted)} FROM read_json_objects({source})) r{keys_sql}"
        )
    keyed = "_ct_key IS NOT NULL" if layout.row_identifier else "TRUE"
    rows, usable, distinct_keys = con.execute(
        f"""SELECT count(*), count(*) FILTER (WHERE NOT _ct_bad AND {keyed}),
        count(DISTINCT _ct_key) FILTER (WHERE NOT _ct_bad) FROM _stage"""
    ).fetchone()
    return Staged(fields, columns.partial, with_sid, with_deleted, rows, usable, distinct_keys)
