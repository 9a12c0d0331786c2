"""DuckDB-backed storage of the local portal: view JSON for every dataset and one typed table per
dataset, with Socrata's upsert/replace/query semantics. Usable without HTTP (benchmarks seed it
directly); the HTTP layer in ``server.py`` only parses requests and shapes answers.

Writes never make a Python object per row: DuckDB parses the request body itself (``read_json``
from a scratch file), casts each field in SQL, and applies the rows with one DELETE, one
UPDATE ... FROM and one INSERT ... SELECT. Most payloads' rows all carry the first row's keys: the
parse that validates the body also checks that, one statement stages the typed rows, and when they
only create or only update rows they go straight from the staging table to the dataset, so a
10,000-row upsert costs about 25 ms. Other payloads have every row's keys read first and their rows
sorted out in ``_final``.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import re
import secrets
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from ct_pipelines.portal import discovery, metadata_api, soql
from ct_pipelines.portal.errors import PortalError, bad_request, dataset_missing, view_missing

DEFAULT_LIMIT = 1000
NOT_ROWS = "The body must be a JSON array of row objects keyed by API field names"
FIELD_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
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
_VIEW_READ_ONLY = {
    "id",
    "createdAt",
    "rowsUpdatedAt",
    "viewLastModified",
    "owner",
    "publicationStage",
    "tableId",
}


def now_epoch() -> int:
    return int(time.time())


def new_four_by_four(taken: Mapping[str, Any]) -> str:
    while True:
        text = "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))
        candidate = f"{text[:4]}-{text[4:]}"
        if candidate not in taken:
            return candidate


def table_name(view_id: str) -> str:
    return "ds_" + view_id.replace("-", "_")


def _is_true(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "t", "yes")
    return bool(value)


def _rows_json(rows: Any) -> str:
    """Rows given as Python objects -> the JSON body they stand for (one write path for both)."""
    if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
        raise bad_request(NOT_ROWS)
    return json.dumps(rows, default=str)


def _json_path(field: str) -> str:
    return soql.quote_literal('$."' + field.replace('"', '\\"') + '"')


def _is_true_sql(value: str) -> str:
    """SQL twin of :func:`_is_true` for a JSON value (``:deleted``)."""
    return f"""coalesce(CASE json_type({value})
        WHEN 'VARCHAR' THEN lower(trim({value} ->> '$')) IN ('true', '1', 't', 'yes')
        WHEN 'BOOLEAN' THEN CAST({value} AS VARCHAR) = 'true'
        WHEN 'NULL' THEN FALSE
        WHEN 'OBJECT' THEN CAST({value} AS VARCHAR) <> '{{}}'
        WHEN 'ARRAY' THEN CAST({value} AS VARCHAR) <> '[]'
        ELSE TRY_CAST(CAST({value} AS VARCHAR) AS DOUBLE) <> 0 END, FALSE)"""


def _unknown_fields(names: Iterable[str], types: Mapping[str, str]) -> list[str]:
    """Names a payload may not use: neither the dataset's fields nor ``:deleted``/system fields."""
    return sorted(f for f in names if f not in types and f not in (":deleted", *SYSTEM_COLUMNS))


_JSON_SPACE = re.compile(r"[ \t\n\r]*")
# parses an object to its keys in order, repeats kept
_KEYS_DECODER = json.JSONDecoder(object_pairs_hook=lambda pairs: [key for key, _ in pairs])


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


def _format_sql(expression: str, soql_type: str) -> str:
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


@dataclass(frozen=True)
class _Layout:
    """What staging a payload depends on: the dataset's (field, type) pairs and row identifier."""

    types: tuple[tuple[str, str], ...]
    row_identifier: str | None


@dataclass(frozen=True)
class _Payload:
    """A validated body in a scratch file: the readers' options (file, format) as SQL, and the keys
    every row carries, in the same order, when they all do (most payloads), else None."""

    source: str
    shared_keys: list[str] | None


@dataclass(frozen=True)
class _Staged:
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


class PortalStore:
    """Datasets of the local portal in one DuckDB file under ``data_dir``; one lock serialises access
    to the shared connection and every change to a dataset (a DuckDB connection is not safe to share
    across threads unlocked). Writes stage their payloads on connections of their own, unlocked."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.data_dir / "portal.duckdb"
        self._lock = threading.RLock()
        self._con = duckdb.connect(str(self.path))
        # idle connections for writes, each staging payloads in temp tables of its own; they are
        # opened from a connection nothing else uses, so opening one never waits for the lock
        self._spawner = self._con.cursor()
        self._writers: list[duckdb.DuckDBPyConnection] = []
        self._writers_lock = threading.Lock()
        self._active_writes = 0
        self._one_thread = False  # whether writes have set DuckDB's threads to 1 (see _one_thread_per_write)
        # reads ordered by :id rely on rows coming back in insertion order (see _run_query)
        self._con.execute("SET preserve_insertion_order = true")
        # DuckDB checkpoints inside the commit that pushes its log past the threshold (16 MB by
        # default), so every ~100,000 uploaded rows one request stalled ~0.6 s while the whole file
        # was rewritten. A development portal can replay a larger log at start; it checkpoints on close.
        self._con.execute("SET checkpoint_threshold = '1GB'")
        self._con.execute("CREATE TABLE IF NOT EXISTS views (id VARCHAR PRIMARY KEY, doc VARCHAR NOT NULL)")
        self._views: dict[str, dict[str, Any]] = {
            view_id: json.loads(doc)
            for view_id, doc in self._con.execute("SELECT id, doc FROM views").fetchall()
        }
        self._tables: set[str] = {
            name
            for (name,) in self._con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name='main'"
            ).fetchall()
        }
        self._next_column_id = 1 + max(
            (c["id"] for v in self._views.values() for c in v.get("columns", [])), default=100_000
        )

    def close(self) -> None:
        with self._lock, self._writers_lock:
            for writer in [*self._writers, self._spawner]:
                writer.close()
            self._writers.clear()
            self._con.close()

    # ------------------------------------------------------------------ views
    def list_views(self) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(v) for v in self._views.values()]

    def get_view(self, view_id: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._view(view_id))

    def _view(self, view_id: str, missing: PortalError | None = None) -> dict[str, Any]:
        view = self._views.get(view_id)
        if view is None:
            raise missing or view_missing(view_id)
        return view

    def create_view(self, payload: Mapping[str, Any], owner: str = "ct-pipelines") -> dict[str, Any]:
        """``POST /api/views.json``: a working copy (``publicationStage: unpublished``) with a new 4x4."""
        with self._lock:
            view = self._build_view(payload, owner, self._views)
            self._insert_views([view])
            return copy.deepcopy(view)

    def seed_views(self, records: Iterable[Mapping[str, Any]], owner: str = "ct-pipelines") -> list[str]:
        """Create many datasets in one transaction (benchmarks: a 10,000-dataset catalog without
        10,000 HTTP calls). A record is a create payload and may also carry ``id``, ``createdAt``,
        ``rowsUpdatedAt``, ``viewLastModified``, ``publicationStage`` and ``metadata.custom_fields``."""
        with self._lock:
            pending: dict[str, dict[str, Any]] = {}
            for record in records:
                view = self._build_view(record, owner, {**self._views, **pending})
                for key in ("createdAt", "rowsUpdatedAt", "viewLastModified", "publicationStage"):
                    if key in record:
                        view[key] = record[key]
                pending[view["id"]] = view
            self._insert_views(list(pending.values()))
            return list(pending)

    def _insert_views(self, views: list[dict[str, Any]]) -> None:
        table = pa.table({"id": [v["id"] for v in views], "doc": [json.dumps(v) for v in views]})
        self._con.register("_new_views", table)
        try:
            self._con.execute("INSERT INTO views SELECT id, doc FROM _new_views")
        finally:
            self._con.unregister("_new_views")
        for view in views:
            self._views[view["id"]] = view

    def _save_view(self, view: dict[str, Any]) -> None:
        self._con.execute("UPDATE views SET doc = ? WHERE id = ?", [json.dumps(view), view["id"]])
        self._views[view["id"]] = view

    def _build_view(self, payload: Mapping[str, Any], owner: str, taken: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(payload, Mapping):
            raise bad_request("The dataset definition must be a JSON object")
        name = payload.get("name")
        if not isinstance(name, str) or not name.strip():
            raise bad_request("A dataset needs a name")
        if problem := metadata_api.category_problem(payload.get("category")):
            raise bad_request(problem, field="category")
        view_id = payload.get("id") or new_four_by_four(taken)
        if view_id in taken:
            raise bad_request(f"Dataset {view_id} already exists")
        columns = self._build_columns(payload.get("columns") or [])
        metadata = dict(payload.get("metadata") or {})
        stamp = now_epoch()
        view: dict[str, Any] = {
            "id": view_id,
            "name": name,
            "assetType": "dataset",
            "attribution": payload.get("attribution"),
            "attributionLink": payload.get("attributionLink"),
            "category": payload.get("category"),
            "createdAt": stamp,
            "description": payload.get("description") or "",
            "displayType": "table",
            "downloadCount": 0,
            "hideFromCatalog": False,
            "hideFromDataJson": False,
            "newBackend": True,
            "provenance": "official",
            "publicationStage": "unpublished",
            "publicationAppendEnabled": False,
            "rowsUpdatedAt": stamp,
            "tags": list(payload.get("tags") or []),
            "viewCount": 0,
            "viewLastModified": stamp,
            "viewType": "tabular",
            "columns": columns,
            "metadata": metadata,
            "owner": {"id": "ctpl-0wnr", "displayName": owner},
            "tableAuthor": {"id": "ctpl-0wnr", "displayName": owner},
            "isPublic": True,
        }
        for key in ("license", "licenseId", "externalId", "contactEmail"):
            if key in payload:
                view[key] = payload[key]
        self._set_row_identifier(view, metadata.get("rowIdentifier"))
        return view

    def _build_columns(self, specs: Any) -> list[dict[str, Any]]:
        if not isinstance(specs, list):
            raise bad_request("columns must be a list of {fieldName, name, dataTypeName}")
        columns = []
        for position, spec in enumerate(specs, start=1):
            if not isinstance(spec, Mapping):
                raise bad_request(f"Column {position} must be an object")
            display = spec.get("name") or spec.get("fieldName")
            field = spec.get("fieldName") or re.sub(r"[^a-z0-9_]+", "_", str(display or "").lower()).strip(
                "_"
            )
            data_type = (spec.get("dataTypeName") or "text").lower()
            if not field or not FIELD_NAME.match(field) or field.startswith("_ct_"):
                raise bad_request(
                    f"Column {position} has the field name {field!r}; use lowercase letters, digits and _",
                    column=position,
                )
            if data_type not in STORAGE_TYPES:
                raise bad_request(
                    f"Column {field!r} has the unknown type {data_type!r}; use one of {', '.join(STORAGE_TYPES)}",
                    column=field,
                )
            if any(c["fieldName"] == field for c in columns):
                raise bad_request(f"Two columns have the field name {field!r}", column=field)
            columns.append(
                {
                    "id": self._next_column_id,
                    "name": display or field,
                    "dataTypeName": data_type,
                    "description": spec.get("description") or "",
                    "fieldName": field,
                    "position": position,
                    "renderTypeName": data_type,
                    "tableColumnId": self._next_column_id,
                    "format": dict(spec.get("format") or {}),
                }
            )
            self._next_column_id += 1
        return columns

    @staticmethod
    def _set_row_identifier(view: dict[str, Any], field: str | None) -> None:
        if field in (None, ""):
            view["metadata"].pop("rowIdentifier", None)
            view.pop("rowIdentifierColumnId", None)
            return
        column = next((c for c in view["columns"] if c["fieldName"] == field), None)
        if column is None:
            raise bad_request(
                f"The row identifier {field!r} is not one of the dataset's columns", field="rowIdentifier"
            )
        view["metadata"]["rowIdentifier"] = field
        view["rowIdentifierColumnId"] = column["id"]

    def update_view(self, view_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """``PUT /api/views/{id}.json``: each top-level key sent replaces the stored one; ``columns``
        update names and descriptions by fieldName; ``metadata`` is replaced wholesale."""
        if not isinstance(fields, Mapping):
            raise bad_request("The body must be a JSON object of view fields")
        with self._lock:
            view = copy.deepcopy(self._view(view_id))
            for key, value in fields.items():
                if key in _VIEW_READ_ONLY:
                    continue
                if key == "columns":
                    self._update_columns(view, value)
                elif key == "metadata":
                    if not isinstance(value, Mapping):
                        raise bad_request("metadata must be an object")
                    view["metadata"] = dict(value)
                elif key == "category" and (problem := metadata_api.category_problem(value)):
                    raise bad_request(problem, field="category")
                else:
                    view[key] = value
            old_row_identifier = self._views[view_id]["metadata"].get("rowIdentifier")
            if "rowIdentifier" not in view["metadata"] and old_row_identifier:
                # the row identifier belongs to the columns, not the free-form metadata: keep it
                view["metadata"]["rowIdentifier"] = old_row_identifier
            if view["metadata"].get("rowIdentifier") != old_row_identifier:
                self._set_row_identifier(view, view["metadata"].get("rowIdentifier"))
                self._check_unique_row_identifier(view)
            view["viewLastModified"] = now_epoch()
            self._save_view(view)
            return copy.deepcopy(view)

    @staticmethod
    def _update_columns(view: dict[str, Any], specs: Any) -> None:
        if not isinstance(specs, list):
            raise bad_request("columns must be a list")
        by_field = {c["fieldName"]: c for c in view["columns"]}
        for spec in specs:
            field = spec.get("fieldName") if isinstance(spec, Mapping) else None
            if field not in by_field:
                raise bad_request(
                    f"Column {field!r} does not exist; columns cannot be added through /api/views",
                    column=field,
                )
            for key in ("name", "description", "format"):
                if key in spec:
                    by_field[field][key] = spec[key]

    def _check_unique_row_identifier(self, view: dict[str, Any]) -> None:
        field = view["metadata"].get("rowIdentifier")
        table = self._ensure_table(view)
        if field is None:
            return
        column = soql.quote_identifier(field)
        nulls, dupes = self._con.execute(
            f"SELECT count(*) FILTER (WHERE {column} IS NULL), count(*) - count(DISTINCT {column}) FROM {table}"
        ).fetchone()
        if nulls or dupes:
            raise bad_request(
                f"Cannot make {field!r} the row identifier: {nulls} rows have no value and {dupes} repeat one",
                field="rowIdentifier",
            )

    def publish_view(self, view_id: str) -> dict[str, Any]:
        with self._lock:
            view = copy.deepcopy(self._view(view_id))
            view["publicationStage"] = "published"
            view["publicationDate"] = now_epoch()
            view["viewLastModified"] = view["publicationDate"]
            self._save_view(view)
            return copy.deepcopy(view)

    def set_permission(self, view_id: str, value: str) -> dict[str, Any]:
        with self._lock:
            view = copy.deepcopy(self._view(view_id))
            view["isPublic"] = value.startswith("public")
            self._save_view(view)
            return copy.deepcopy(view)

    def delete_view(self, view_id: str) -> None:
        with self._lock:
            view = self._view(view_id)
            table = table_name(view["id"])
            self._con.execute(f"DROP TABLE IF EXISTS {table}")
            self._con.execute(f"DROP SEQUENCE IF EXISTS seq_{table}")
            self._tables.discard(table)
            self._con.execute("DELETE FROM views WHERE id = ?", [view_id])
            del self._views[view_id]

    # ------------------------------------------------------------------ metadata API / catalog
    def metadata_v1(self, view_id: str, base_url: str, domain: str) -> dict[str, Any]:
        with self._lock:
            return metadata_api.metadata_v1(self._view(view_id), base_url, domain)

    def patch_metadata_v1(
        self,
        view_id: str,
        patch: Any,
        base_url: str,
        domain: str,
        validate_only: bool = False,
        strict: bool = False,
    ) -> tuple[dict[str, Any], list[dict[str, str]]]:
        """Return (metadata as it is, or would be with ``validate_only``, warnings)."""
        with self._lock:
            view, warnings = metadata_api.apply_patch(self._view(view_id), patch, strict)
            if not validate_only:
                view["viewLastModified"] = now_epoch()
                self._save_view(view)
            return metadata_api.metadata_v1(view, base_url, domain), warnings

    def catalog(
        self, params: list[tuple[str, str]], base_url: str, domains: set[str], domain: str
    ) -> dict[str, Any]:
        with self._lock:
            views = list(self._views.values())
            return discovery.search_catalog(views, params, base_url, domains, domain)

    # ------------------------------------------------------------------ data
    def _ensure_table(self, view: dict[str, Any]) -> str:
        """Tables are made on first use so seeding 10,000 views does not create 10,000 tables."""
        table = table_name(view["id"])
        if table not in self._tables:
            columns = ", ".join(
                f"{soql.quote_identifier(c['fieldName'])} {STORAGE_TYPES[c['dataTypeName']]}"
                for c in view["columns"]
            )
            system = '":id" VARCHAR, ":created_at" TIMESTAMP, ":updated_at" TIMESTAMP'
            self._con.execute(f"CREATE SEQUENCE IF NOT EXISTS seq_{table}")
            self._con.execute(
                f"CREATE TABLE IF NOT EXISTS {table} ({columns + ', ' if columns else ''}{system})"
            )
            self._tables.add(table)
        return table

    def row_count(self, view_id: str) -> int:
        with self._lock:
            table = self._ensure_table(self._view(view_id, dataset_missing(view_id)))
            return self._con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

    def upsert(self, view_id: str, rows: list[Mapping[str, Any]]) -> dict[str, int]:
        """``POST /resource/{id}.json``: update or create by row identifier (or ``:id``), delete rows
        marked ``:deleted``; append when the dataset has no row identifier."""
        return self._write(view_id, _rows_json(rows), replace=False)

    def replace(self, view_id: str, rows: list[Mapping[str, Any]]) -> dict[str, int]:
        """``PUT /resource/{id}.json``: truncate, then load the payload."""
        return self._write(view_id, _rows_json(rows), replace=True)

    def upsert_json(self, view_id: str, body: str) -> dict[str, int]:
        """:meth:`upsert` of a request body as sent (a JSON array of row objects, or one object),
        parsed by DuckDB: no Python object per row, which made JSON parsing the portal's main cost."""
        return self._write(view_id, body, replace=False)

    def replace_json(self, view_id: str, body: str) -> dict[str, int]:
        """:meth:`replace` of a request body as sent."""
        return self._write(view_id, body, replace=True)

    def _write(self, view_id: str, body: str, replace: bool) -> dict[str, int]:
        """Validate and stage the payload outside the lock, on a connection of its own (its temp
        tables are its own), so concurrent writes parse their bodies in parallel; only the apply, a
        short transaction on the dataset table, holds the lock."""
        # a view is replaced, never edited in its layout, so reading it unlocked gives a consistent
        # snapshot; it is checked again under the lock before the apply
        layout = self._layout(self._view(view_id, dataset_missing(view_id)))
        with self._writers_lock:
            writer = self._writers.pop() if self._writers else self._spawner.cursor()
        try:
            with self._one_thread_per_write(writer), self._payload_file(writer, body) as payload:
                staged = self._stage_payload(writer, payload, layout)
                with self._lock:
                    view = self._view(view_id, dataset_missing(view_id))
                    table = self._ensure_table(view)
                    if self._layout(view) != layout:  # the columns changed while this body was staged
                        layout = self._layout(view)
                        self._drop_staging(writer)
                        staged = self._stage_payload(writer, payload, layout)
                    writer.execute("BEGIN TRANSACTION")
                    try:
                        if replace:
                            counts = self._apply_replace(writer, table, staged.fields, layout.row_identifier)
                        else:
                            counts = self._apply_upsert(writer, table, staged, layout.row_identifier)
                        # the dataset's rowsUpdatedAt changes in the same commit as its rows
                        touched = self._stamp_rows_updated(writer, view)
                        writer.execute("COMMIT")
                    except BaseException:
                        writer.execute("ROLLBACK")
                        raise
                    self._views[view_id] = touched
                    return counts
        finally:
            self._drop_staging(writer)
            with self._writers_lock:
                self._writers.append(writer)

    @staticmethod
    def _layout(view: dict[str, Any]) -> _Layout:
        types = tuple((c["fieldName"], c["dataTypeName"]) for c in view["columns"])
        return _Layout(types, view["metadata"].get("rowIdentifier"))

    def _stage_payload(self, con: duckdb.DuckDBPyConnection, payload: _Payload, layout: _Layout) -> _Staged:
        """Payload -> ``con``'s temp table ``_stage``. When every row carries the same known keys
        (the usual case) they are staged in one pass; any other payload needs a pass over every
        row's keys first."""
        types = dict(layout.types)
        keys = payload.shared_keys
        if keys is not None and len(set(keys)) == len(keys) and not _unknown_fields(keys, types):
            return self._stage(con, payload.source, dict.fromkeys(keys, True), layout)
        return self._stage(con, payload.source, self._payload_fields(con, payload.source, types), layout)

    @staticmethod
    def _drop_staging(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("DROP TABLE IF EXISTS _stage; DROP TABLE IF EXISTS _final")

    @contextmanager
    def _one_thread_per_write(self, con: duckdb.DuckDBPyConnection) -> Iterator[None]:
        """One request's rows are too few for a second DuckDB thread to pay for its coordination
        (measured: each statement of a 10,000-row write takes about 30% less time), and concurrent
        writes use the other cores. ``threads`` is a database-wide setting that costs a millisecond or
        two to change, so it stays at 1 across writes until a read of a whole dataset needs every
        thread (:meth:`_all_threads`)."""
        with self._writers_lock:
            self._active_writes += 1
            if not self._one_thread:
                con.execute("SET threads = 1")
                self._one_thread = True
        try:
            yield
        finally:
            with self._writers_lock:
                self._active_writes -= 1

    def _all_threads(self) -> None:
        """Give DuckDB every thread back for a read, unless a write is running."""
        with self._writers_lock:
            if self._one_thread and not self._active_writes:
                self._con.execute("RESET threads")
                self._one_thread = False

    @contextmanager
    def _payload_file(self, con: duckdb.DuckDBPyConnection, body: str) -> Iterator[_Payload]:
        """The body, validated, in a scratch file that DuckDB's JSON readers take. The body is
        validated strictly first because the readers accept a truncated array; a file is the fastest
        input DuckDB offers (unnesting a parsed value is several times slower)."""
        text = body.strip()
        if not text:
            raise bad_request(NOT_ROWS)
        data = text.encode("utf-8")
        scratch = self.data_dir / f"_ct_payload_{secrets.token_hex(8)}.json"  # one per request
        scratch.write_bytes(data)
        try:
            first_keys = _first_row_keys(text) if text[0] == "[" else None
            shared = self._validate_rows(con, text, scratch, first_keys)
            if text[0] not in "[{":
                raise bad_request(NOT_ROWS)
            fmt = "array" if text[0] == "[" else "unstructured"  # a lone object is one row
            # no row is longer than the body; a larger bound costs a larger buffer per read
            source = (
                f"{soql.quote_literal(str(scratch))}, format = '{fmt}', maximum_object_size = {len(data)}"
            )
            yield _Payload(source, first_keys if shared else None)
        finally:
            scratch.unlink(missing_ok=True)

    @staticmethod
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

    def _payload_fields(
        self, con: duckdb.DuckDBPyConnection, source: str, types: dict[str, str]
    ) -> dict[str, bool]:
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
        if unknown := _unknown_fields(rows_with, types):
            raise PortalError(
                400,
                "invalid_request",
                f"Unknown column(s) in the payload: {', '.join(unknown)}; "
                f"use the dataset's API field names: {', '.join(types)}",
                {"columns": unknown},
            )
        total = sum(rows for _, rows, _ in groups)
        return {f: rows == total for f, rows in rows_with.items()}

    def _stage(
        self,
        con: duckdb.DuckDBPyConnection,
        source: str,
        seen: dict[str, bool],
        layout: _Layout,
    ) -> _Staged:
        """Payload -> temp table ``_stage`` in one statement: typed columns, ``_ct_bad`` for cells
        that did not parse, ``_ct_key`` (the typed row identifier), ``_ct_has<i>`` where only some
        rows carry field i (absent = leave unchanged on update). ``seen`` maps each name the payload
        uses to whether every row carries it."""
        types = dict(layout.types)
        fields = [f for f in types if f in seen]
        with_deleted = ":deleted" in seen
        with_sid = ":id" in seen
        names = [":id", *fields] if with_sid or not fields else fields  # read_json needs a column
        typed = [
            f"{_is_true_sql('r.' + soql.quote_identifier(':deleted')) if with_deleted else 'FALSE'} AS _ct_deleted",
            f"{'r.' + soql.quote_identifier(':id') if with_sid else 'CAST(NULL AS VARCHAR)'} AS _ct_sid",
        ]
        failures, per_row, partial = [], [], set()
        key_sql = "NULL"
        for index, field in enumerate(fields):
            raw = f"r.{soql.quote_identifier(field)}"
            storage = STORAGE_TYPES[types[field]]
            cast = raw if storage == "VARCHAR" else f"TRY_CAST({raw} AS {storage})"
            typed.append(f"{cast} AS {soql.quote_identifier(field)}")
            if storage != "VARCHAR":
                failures.append(f"({raw} IS NOT NULL AND {cast} IS NULL)")
            if field == layout.row_identifier:
                key_sql = cast
            if not seen[field]:
                per_row.append(
                    f"list_contains(json_keys(json), {soql.quote_literal(field)}) AS _ct_has{index}"
                )
                typed.append(f"_ct_has{index}")
                partial.add(index)
        typed.append(f"{key_sql} AS _ct_key")
        typed.append(f"({' OR '.join(failures) or 'FALSE'}) AS _ct_bad")
        # the rows' own keys come from a second reader, row for row with the values
        keys_sql = (
            f" POSITIONAL JOIN (SELECT {', '.join(per_row)} FROM read_json_objects({source}))"
            if per_row
            else ""
        )
        columns = {name: "VARCHAR" for name in names} | ({":deleted": "JSON"} if with_deleted else {})
        spec = "{" + ", ".join(f"{soql.quote_literal(n)}: '{t}'" for n, t in columns.items()) + "}"
        stage_sql = f"CREATE TEMP TABLE _stage AS SELECT {', '.join(typed)} FROM "
        try:
            con.execute(f"{stage_sql}read_json({source}, records = true, columns = {spec}) r{keys_sql}")
        except duckdb.InvalidInputException:
            # read_json refuses objects with a repeated key; the slower per-path extraction does not
            extracted = [
                f"json_extract_string(json, {_json_path(n)}) AS {soql.quote_identifier(n)}" for n in names
            ]
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
        return _Staged(fields, partial, with_sid, with_deleted, rows, usable, distinct_keys)

    def _apply_upsert(
        self, con: duckdb.DuckDBPyConnection, table: str, staged: _Staged, row_identifier: str | None
    ) -> dict[str, int]:
        """Rows that only create or only update (no ``:id``, no ``:deleted``, no key twice: the
        usual upload) go straight from ``_stage`` to the table; any other payload needs ``_final``."""
        rowid_sql = soql.quote_identifier(row_identifier) if row_identifier else None
        plain = not staged.has_sid and not staged.has_deleted
        if plain and (rowid_sql is None or staged.distinct_keys == staged.usable):
            usable = "NOT _ct_bad" + (" AND _ct_key IS NOT NULL" if rowid_sql else "")
            matched = 0
            if rowid_sql and staged.usable:
                matched = con.execute(
                    f"SELECT count(DISTINCT {rowid_sql}) FROM {table} "
                    f"WHERE {rowid_sql} IN (SELECT _ct_key FROM _stage WHERE {usable})"
                ).fetchone()[0]
            if matched in (0, staged.usable):
                counts = dict.fromkeys(
                    ("Rows Created", "Rows Updated", "Rows Deleted", "By RowIdentifier", "By SID"), 0
                )
                counts["Errors"] = staged.rows - staged.usable
                if matched:
                    self._update_matched(
                        con, table, staged, "_stage s", f"{usable} AND {table}.{rowid_sql} = s._ct_key"
                    )
                    counts["Rows Updated"] = counts["By RowIdentifier"] = matched
                else:
                    counts["Rows Created"] = self._insert_new(
                        con, table, staged.fields, "(SELECT *, rowid AS _ct_n FROM _stage)", usable
                    )
                return counts
        return self._apply_through_final(con, table, staged, rowid_sql)

    def _apply_through_final(
        self, con: duckdb.DuckDBPyConnection, table: str, staged: _Staged, rowid_sql: str | None
    ) -> dict[str, int]:
        """Any upsert: the rows that count (the last of each key) with whether they exist, in
        ``_final``, then one DELETE, UPDATE and INSERT as needed."""
        kind = "CASE WHEN _ct_key IS NOT NULL THEN 'rowid' WHEN _ct_sid IS NOT NULL THEN 'sid' END"
        # existing rows are looked up with the payload's keys as the hash-join build side, so a write
        # costs one scan of the key column instead of hashing the whole dataset (EXISTS did that)
        lookups, exists = [], []
        if rowid_sql:
            lookups.append(
                f"LEFT JOIN (SELECT DISTINCT {rowid_sql} AS _ct_found FROM {table} WHERE {rowid_sql} IN "
                f"(SELECT _ct_key FROM latest WHERE _ct_kind = 'rowid')) r "
                f"ON s._ct_kind = 'rowid' AND r._ct_found = s._ct_key"
            )
            exists.append("WHEN 'rowid' THEN r._ct_found IS NOT NULL")
        if staged.has_sid:  # skip the :id lookup when no row names an :id
            lookups.append(
                f'LEFT JOIN (SELECT ":id" AS _ct_found FROM {table} WHERE ":id" IN '
                "(SELECT _ct_sid FROM latest WHERE _ct_kind = 'sid')) d "
                "ON s._ct_kind = 'sid' AND d._ct_found = s._ct_sid"
            )
            exists.append("WHEN 'sid' THEN d._ct_found IS NOT NULL")
        # without a row identifier, rows without :id are appended; with one, they are errors
        keep_unkeyed = "FALSE" if rowid_sql else "TRUE"
        con.execute(
            f"""CREATE TEMP TABLE _final AS
            WITH keyed AS (SELECT *, rowid AS _ct_n, {kind} AS _ct_kind FROM _stage WHERE NOT _ct_bad),
            usable AS (SELECT * FROM keyed WHERE _ct_kind IS NOT NULL OR {keep_unkeyed}),
            -- the last row of each key wins; a GROUP BY is much cheaper here than a window over
            -- thousands of one-row partitions
            last_of_key AS (
                SELECT max(_ct_n) AS _ct_last, count(*) - 1 AS _ct_superseded FROM usable
                WHERE _ct_kind IS NOT NULL GROUP BY _ct_kind, coalesce(CAST(_ct_key AS VARCHAR), _ct_sid)
            ),
            latest AS (
                SELECT u.*, w._ct_superseded FROM usable u JOIN last_of_key w ON u._ct_n = w._ct_last
                UNION ALL
                SELECT *, 0 AS _ct_superseded FROM usable WHERE _ct_kind IS NULL
            )
            SELECT s.*, {f"CASE s._ct_kind {' '.join(exists)} ELSE FALSE END" if exists else "FALSE"} AS _ct_exists
            FROM latest s {" ".join(lookups)}"""
        )
        final_rows, superseded, deleted, missing_deletes, sid_missing, by_rowid, by_sid, updated = (
            con.execute(
                """SELECT count(*), coalesce(sum(_ct_superseded), 0),
            count(*) FILTER (WHERE _ct_deleted AND _ct_exists),
            count(*) FILTER (WHERE _ct_deleted AND NOT _ct_exists),
            count(*) FILTER (WHERE _ct_kind = 'sid' AND NOT _ct_exists AND NOT _ct_deleted),
            count(*) FILTER (WHERE _ct_kind = 'rowid' AND _ct_exists),
            count(*) FILTER (WHERE _ct_kind = 'sid' AND _ct_exists),
            count(*) FILTER (WHERE _ct_exists AND NOT _ct_deleted)
            FROM _final"""
            ).fetchone()
        )
        if deleted:
            self._delete_matched(con, table, rowid_sql)
        if updated:
            matches = [("sid", f'{table}.":id" = s._ct_sid')] if staged.has_sid else []
            if rowid_sql:
                matches.insert(0, ("rowid", f"{table}.{rowid_sql} = s._ct_key"))
            for kind_name, condition in matches:
                self._update_matched(
                    con,
                    table,
                    staged,
                    "_final s",
                    f"s._ct_kind = '{kind_name}' AND s._ct_exists AND NOT s._ct_deleted AND {condition}",
                )
        created = self._insert_new(
            con,
            table,
            staged.fields,
            "_final",
            "NOT _ct_deleted AND NOT _ct_exists AND (_ct_kind IS NULL OR _ct_kind = 'rowid')",
        )
        return {
            "Rows Created": created,
            "Rows Updated": updated + superseded,
            "Rows Deleted": deleted,
            "By RowIdentifier": by_rowid,
            "By SID": by_sid,
            "Errors": staged.rows - final_rows - superseded + missing_deletes + sid_missing,
        }

    def _delete_matched(self, con: duckdb.DuckDBPyConnection, table: str, rowid_sql: str | None) -> None:
        matched = "_ct_deleted AND _ct_exists AND _ct_kind"
        if rowid_sql:
            con.execute(
                f"DELETE FROM {table} WHERE {rowid_sql} IN (SELECT _ct_key FROM _final WHERE {matched} = 'rowid')"
            )
        con.execute(
            f"DELETE FROM {table} WHERE \":id\" IN (SELECT _ct_sid FROM _final WHERE {matched} = 'sid')"
        )

    @staticmethod
    def _update_matched(
        con: duckdb.DuckDBPyConnection, table: str, staged: _Staged, source: str, condition: str
    ) -> None:
        """UPDATE the rows ``condition`` pairs with ``source`` (aliased ``s``); fields a row does
        not carry keep their value. Only columns where some row's value differs are written: DuckDB
        rewrites every updated cell, and a text column costs ~20x a number (5,000 scattered rows of
        a 1M-row dataset: ~0.3 s for a unique text column), so republishing a changed number column
        must not rewrite the text beside it."""
        values: dict[str, str] = {}
        for index, field in enumerate(staged.fields):
            column = soql.quote_identifier(field)
            values[column] = (
                f"CASE WHEN s._ct_has{index} THEN s.{column} ELSE {table}.{column} END"
                if index in staged.partial
                else f"s.{column}"
            )
        if values:
            differs = ", ".join(
                f"bool_or(({value}) IS DISTINCT FROM {table}.{column})" for column, value in values.items()
            )
            changed = con.execute(f"SELECT {differs} FROM {table}, {source} WHERE {condition}").fetchone()
            values = {
                column: value
                for (column, value), differ in zip(values.items(), changed, strict=True)
                if differ
            }
        assignments = [f"{column} = {value}" for column, value in values.items()]
        assignments.append('":updated_at" = now()::TIMESTAMP')
        con.execute(f"UPDATE {table} SET {', '.join(assignments)} FROM {source} WHERE {condition}")

    @staticmethod
    def _insert_new(
        con: duckdb.DuckDBPyConnection, table: str, fields: list[str], source: str, condition: str
    ) -> int:
        """Insert the chosen ``source`` rows in payload order (``_ct_n``) with new
        ``row-xxxx~xxxx.xxxx`` ids (fixed-width hex of a sequence, so ordering by ``:id`` is
        insertion order); slices of one hex number cost half of a three-argument printf."""
        columns = ", ".join(soql.quote_identifier(f) for f in fields)
        lead = f"{columns}, " if columns else ""
        sql = f"""INSERT INTO {table} ({lead}":id", ":created_at", ":updated_at")
            SELECT {lead}concat('row-', _ct_hex[2:5], '~', _ct_hex[6:9], '.', _ct_hex[10:13]),
                now()::TIMESTAMP, now()::TIMESTAMP
            FROM (SELECT *, lower(to_hex((nextval('seq_{table}') & 281474976710655) | 281474976710656)) AS _ct_hex
                  FROM (SELECT * FROM {source} WHERE {condition} ORDER BY _ct_n))"""
        return con.execute(sql).fetchone()[0]

    def _apply_replace(
        self, con: duckdb.DuckDBPyConnection, table: str, fields: list[str], row_identifier: str | None
    ) -> dict[str, int]:
        keyed = "_ct_key IS NOT NULL" if row_identifier else "TRUE"
        con.execute(
            f"""CREATE TEMP TABLE _final AS SELECT *, rowid AS _ct_n FROM _stage
            WHERE NOT _ct_bad AND NOT _ct_deleted AND {keyed}
            QUALIFY _ct_key IS NULL
                OR row_number() OVER (PARTITION BY CAST(_ct_key AS VARCHAR) ORDER BY rowid DESC) = 1"""
        )
        con.execute(f"DELETE FROM {table}")
        staged, marked_deleted, usable = con.execute(
            f"""SELECT count(*), count(*) FILTER (WHERE _ct_deleted AND NOT _ct_bad),
            count(*) FILTER (WHERE NOT _ct_bad AND NOT _ct_deleted AND {keyed}) FROM _stage"""
        ).fetchone()
        created = self._insert_new(con, table, fields, "_final", "TRUE")
        return {
            "Rows Created": created,
            "Rows Updated": usable - created,
            "Rows Deleted": 0,
            "By RowIdentifier": 0,
            "By SID": 0,
            "Errors": staged - usable - marked_deleted,
        }

    @staticmethod
    def _stamp_rows_updated(con: duckdb.DuckDBPyConnection, view: dict[str, Any]) -> dict[str, Any]:
        """The view with a new ``rowsUpdatedAt``, saved through ``con`` (inside the caller's
        transaction when it has one); the caller installs it in ``_views`` once that commits."""
        touched = {**view, "rowsUpdatedAt": now_epoch()}
        con.execute("UPDATE views SET doc = ? WHERE id = ?", [json.dumps(touched), view["id"]])
        return touched

    def _row_condition(self, view: dict[str, Any], row_key: str) -> tuple[str, list[Any]]:
        """A row named by its row identifier value or by its internal ``row-...`` id."""
        row_identifier = view["metadata"].get("rowIdentifier")
        if row_identifier is None or row_key.startswith("row-"):
            return '":id" = ?', [row_key]
        data_type = next(c["dataTypeName"] for c in view["columns"] if c["fieldName"] == row_identifier)
        return f"{soql.quote_identifier(row_identifier)} = TRY_CAST(? AS {STORAGE_TYPES[data_type]})", [
            row_key
        ]

    def delete_row(self, view_id: str, row_key: str) -> list[dict[str, str]]:
        """``DELETE /resource/{id}/{row}.json``; 404 ``row.missing`` when nothing matches."""
        with self._lock:
            view = self._view(view_id, dataset_missing(view_id))
            table = self._ensure_table(view)
            condition, params = self._row_condition(view, row_key)
            found = self._con.execute(
                f'DELETE FROM {table} WHERE {condition} RETURNING ":id"', params
            ).fetchall()
            if not found:
                raise PortalError(
                    404, "row.missing", f"Row {row_key} not found", {"id": view_id, "row": row_key}
                )
            self._views[view_id] = self._stamp_rows_updated(self._con, view)
            return [{"typ": "delete", "id": found[0][0]}]

    def get_row(self, view_id: str, row_key: str) -> dict[str, Any]:
        with self._lock:
            view = self._view(view_id, dataset_missing(view_id))
            condition, params = self._row_condition(view, row_key)
            result = self._run_query(view, {"$select": ":*, *"}, condition, params, limit=1)
            records = result.records()
            if not records:
                raise PortalError(
                    404, "row.missing", f"Row {row_key} not found", {"id": view_id, "row": row_key}
                )
            return records[0]

    def query(self, view_id: str, params: Mapping[str, str]) -> QueryResult:
        """``GET /resource/{id}.json`` with ``$select/$where/$order/$group/$limit/$offset/$q`` and
        simple ``field=value`` filters."""
        with self._lock:
            view = self._view(view_id, dataset_missing(view_id))
            return self._run_query(view, params)

    def _run_query(
        self,
        view: dict[str, Any],
        params: Mapping[str, str],
        extra_condition: str | None = None,
        extra_params: list[Any] | None = None,
        limit: int | None = None,
    ) -> QueryResult:
        self._all_threads()
        table = self._ensure_table(view)
        types = {c["fieldName"]: c["dataTypeName"] for c in view["columns"]}
        columns = {**types, **soql.SYSTEM_FIELDS}
        user_fields = list(types)
        default_select = "*" if _is_true(params.get("$$exclude_system_fields", "true")) else ":*, *"
        items = soql.compile_select(params.get("$select") or default_select, columns, user_fields)
        conditions = [f"({extra_condition})"] if extra_condition else []
        if where := params.get("$where"):
            conditions.append(soql.compile_where(where, columns))
        for key, value in params.items():
            if key.startswith("$"):
                continue
            if key not in columns:
                raise soql.no_such_column(key, key)
            conditions.append(soql.compile_where(f"`{key}` = {soql.quote_literal(value)}", columns, key))
        if q := params.get("$q"):
            texts = [f for f, t in types.items() if t == "text"] or [":id"]
            pattern = soql.quote_literal("%" + q.replace("%", "") + "%")
            conditions.append(
                "(" + " OR ".join(f"{soql.quote_identifier(f)} ILIKE {pattern}" for f in texts) + ")"
            )
        group = soql.compile_group(params["$group"], columns) if params.get("$group") else None
        aggregated = group is not None or any(item.aggregate for item in items)
        aliases = {item.name: item.sql for item in items}
        order = soql.compile_order(params["$order"], columns, aliases) if params.get("$order") else None
        if order is None and not aggregated:
            order = '":id" ASC'
        if order == '":id" ASC NULLS LAST' or order == '":id" ASC':
            # rows are appended in :id order and DuckDB keeps insertion order (preserve_insertion_order),
            # so skip a sort that would cost a full pass per page on a large dataset
            order = None
        row_limit = limit if limit is not None else self._int_param(params, "$limit", DEFAULT_LIMIT)
        offset = self._int_param(params, "$offset", 0)
        select_sql = ", ".join(
            # positional aliases: an output named like a column must not shadow it in ORDER BY
            f"{_format_sql(item.sql, item.soql_type)} AS _ct_out{index}"
            for index, item in enumerate(items)
        )
        sql = f"SELECT {select_sql} FROM {table}"
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        if group:
            sql += f" GROUP BY {group}"
        if order:
            sql += f" ORDER BY {order}"
        sql += f" LIMIT {row_limit} OFFSET {offset}"
        try:
            rows = self._con.execute(sql, extra_params or []).fetchall()
        except (duckdb.BinderException, duckdb.ConversionException, duckdb.InvalidInputException) as exc:
            message = str(exc).splitlines()[0]
            raise PortalError(
                400, "query.soql.type-mismatch", f"The query cannot run: {message}", {}
            ) from exc
        json_fields = {item.name for item in items if item.soql_type in JSON_TYPES}
        return QueryResult(
            [item.name for item in items],
            [self._output_type(item.soql_type) for item in items],
            rows,
            json_fields,
        )

    @staticmethod
    def _output_type(soql_type: str) -> str:
        return {
            "row_identifier": "row_identifier",
            "system_timestamp": "fixed_timestamp",
            "null": "text",
        }.get(soql_type, soql_type)

    @staticmethod
    def _int_param(params: Mapping[str, str], name: str, default: int) -> int:
        value = params.get(name)
        if value in (None, ""):
            return default
        try:
            number = int(value)
        except ValueError as exc:
            raise soql.malformed(f"{name} must be a whole number, got {value!r}", name) from exc
        if number < 0:
            raise soql.malformed(f"{name} cannot be negative", name)
        return number
