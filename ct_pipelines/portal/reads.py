"""SoQL reads of the local portal: ``GET /resource/{id}.json`` compiled by :mod:`soql` into one
DuckDB statement over the dataset table, and single rows by row identifier or ``:id``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import duckdb

from ct_pipelines.core.sql import quote_ident
from ct_pipelines.portal import soql
from ct_pipelines.portal.common import (
    DEFAULT_LIMIT,
    JSON_TYPES,
    STORAGE_TYPES,
    QueryResult,
    format_sql,
    is_true,
    quote_literal,
)
from ct_pipelines.portal.core import StoreCore
from ct_pipelines.portal.errors import PortalError, dataset_missing

_OUTPUT_TYPES = {"row_identifier": "row_identifier", "system_timestamp": "fixed_timestamp", "null": "text"}


def row_missing(view_id: str, row_key: str) -> PortalError:
    return PortalError(404, "row.missing", f"Row {row_key} not found", {"id": view_id, "row": row_key})


class ReadsMixin(StoreCore):
    """The ``/resource`` reads of :class:`~ct_pipelines.portal.store.PortalStore`."""

    def row_count(self, view_id: str) -> int:
        with self._lock:
            table = self._ensure_table(self._view(view_id, dataset_missing(view_id)))
            return self._con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

    def _row_condition(self, view: dict[str, Any], row_key: str) -> tuple[str, list[Any]]:
        """A row named by its row identifier value or by its internal ``row-...`` id (bound)."""
        row_identifier = view["metadata"].get("rowIdentifier")
        if row_identifier is None or row_key.startswith("row-"):
            return '":id" = ?', [row_key]
        data_type = next(c["dataTypeName"] for c in view["columns"] if c["fieldName"] == row_identifier)
        return f"{quote_ident(row_identifier)} = TRY_CAST(? AS {STORAGE_TYPES[data_type]})", [row_key]

    def get_row(self, view_id: str, row_key: str) -> dict[str, Any]:
        with self._lock:
            view = self._view(view_id, dataset_missing(view_id))
            condition, params = self._row_condition(view, row_key)
            result = self._run_query(view, {"$select": ":*, *"}, condition, params, limit=1)
            records = result.records()
            if not records:
                raise row_missing(view_id, row_key)
            return records[0]

    def query(self, view_id: str, params: Mapping[str, str]) -> QueryResult:
        """``GET /resource/{id}.json`` with ``$select/$where/$order/$group/$limit/$offset/$q`` and
        simple ``field=value`` filters."""
        with self._lock:
            view = self._view(view_id, dataset_missing(view_id))
            return self._run_query(view, params)

    def _all_threads(self) -> None:
        """Give DuckDB every thread back for a read, unless a write is running (see writes.py)."""
        with self._writers_lock:
            if self._one_thread and not self._active_writes:
                self._con.execute("RESET threads")
                self._one_thread = False

    @staticmethod
    def _conditions(params: Mapping[str, str], types: dict[str, str], columns: dict[str, str]) -> list[str]:
        """``$where``, ``field=value`` filters and ``$q`` as SQL conditions (SoQL-compiled)."""
        conditions = []
        if where := params.get("$where"):
            conditions.append(soql.compile_where(where, columns))
        for key, value in params.items():
            if key.startswith("$"):
                continue
            if key not in columns:
                raise soql.no_such_column(key, key)
            conditions.append(soql.compile_where(f"`{key}` = {quote_literal(value)}", columns, key))
        if q := params.get("$q"):
            texts = [f for f, t in types.items() if t == "text"] or [":id"]
            pattern = quote_literal("%" + q.replace("%", "") + "%")
            conditions.append("(" + " OR ".join(f"{quote_ident(f)} ILIKE {pattern}" for f in texts) + ")")
        return conditions

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
        default_select = "*" if is_true(params.get("$$exclude_system_fields", "true")) else ":*, *"
        items = soql.compile_select(params.get("$select") or default_select, columns, list(types))
        conditions = [f"({extra_condition})"] if extra_condition else []
        conditions += self._conditions(params, types, columns)
        group = soql.compile_group(params["$group"], columns) if params.get("$group") else None
        aggregated = group is not None or any(item.aggregate for item in items)
        aliases = {item.name: item.sql for item in items}
        order = soql.compile_order(params["$order"], columns, aliases) if params.get("$order") else None
        if order is None and not aggregated:
            order = '":id" ASC'
        if order in ('":id" ASC NULLS LAST', '":id" ASC'):
            # rows are appended in :id order and DuckDB keeps insertion order (preserve_insertion_order),
            # so skip a sort that would cost a full pass per page on a large dataset
            order = None
        row_limit = limit if limit is not None else _int_param(params, "$limit", DEFAULT_LIMIT)
        offset = _int_param(params, "$offset", 0)
        select_sql = ", ".join(
            # positional aliases: an output named like a column must not shadow it in ORDER BY
            f"{format_sql(item.sql, item.soql_type)} AS _ct_out{index}"
            for index, item in enumerate(items)
        )
        sql = f"SELECT {select_sql} FROM {table}"
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        if group:
            sql += f" GROUP BY {group}"
        if order:
            sql += f" ORDER BY {order}"
        # whole numbers checked by _int_param; literals keep DuckDB's top-N plan for ORDER BY + LIMIT
        sql += f" LIMIT {int(row_limit)} OFFSET {int(offset)}"
        try:
            rows = self._con.execute(sql, extra_params or []).fetchall()
        except (duckdb.BinderException, duckdb.ConversionException, duckdb.InvalidInputException) as exc:
            message = str(exc).splitlines()[0]
            raise PortalError(
                400, "query.soql.type-mismatch", f"The query cannot run: {message}", {}
            ) from exc
        return QueryResult(
            [item.name for item in items],
            [_OUTPUT_TYPES.get(item.soql_type, item.soql_type) for item in items],
            rows,
            {item.name for item in items if item.soql_type in JSON_TYPES},
        )


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
