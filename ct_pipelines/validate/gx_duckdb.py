"""Make Great Expectations 1.x run on DuckDB, scoped to a ``with`` block.

Two GX problems on the duckdb-engine SQLAlchemy dialect (see /work/shared/reference/gx-duckdb.md):

1. ``SqlAlchemyExecutionEngine.execute_query`` returns the cursor result *after* its ``with
   self.get_connection()`` block has released the connection. Drivers that buffer rows client-side
   (psycopg2, sqlite3) still answer ``fetchall()``; DuckDB's does not, so every metric comes back
   empty and GX raises ``MetricResolutionError: list index out of range``. We buffer the rows with
   ``result.freeze()`` while the connection is still held.
2. ``get_dialect_regex_expression`` has no DuckDB branch, so regex expectations fail with
   "Regex is not supported for dialect duckdb" and return no unexpected count. We add DuckDB's
   ``regexp_matches`` (search semantics, as GX's pandas engine uses).

Both are patched only while :func:`duckdb_patches` is active (a lock serialises nested/parallel use),
so GX behaves as shipped everywhere else in the process. :func:`cached_templates` is a third, unrelated
to DuckDB: GX's Data Docs compile their Jinja templates afresh in every run (about half a second).
:func:`counted_render_failures` is a fourth: when one of GX's Data Docs renderers raises (its results
table does for a failed ``expect_column_distinct_values_to_be_in_set``), GX logs a traceback, which
would reach the run's terminal; the check results do not depend on the rendering.

Connection choice: DuckDB allows one read-write process per database file, and a second
``duckdb.connect(path)`` in the same process with different settings conflicts with the open one.
So GX does not open the file itself: :func:`engine_kwargs` hands SQLAlchemy a ``creator`` that
returns a *cursor* of the pipeline's own connection (``con.cursor()`` is a new connection to the
same database instance). GX thus sees exactly the committed tables the pipeline wrote, including
in-memory databases used by tests, with no file locking or snapshot copy.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import duckdb
import sqlalchemy as sa
from duckdb_engine import ConnectionWrapper
from great_expectations.execution_engine.sqlalchemy_execution_engine import SqlAlchemyExecutionEngine

# Modules that import get_dialect_regex_expression by name, so each binding must be patched.
_REGEX_USERS = (
    "great_expectations.expectations.metrics.util",
    "great_expectations.expectations.metrics.column_map_metrics.column_values_match_regex",
    "great_expectations.expectations.metrics.column_map_metrics.column_values_not_match_regex",
    "great_expectations.expectations.metrics.column_map_metrics.column_values_match_regex_list",
    "great_expectations.expectations.metrics.column_map_metrics.column_values_not_match_regex_list",
    "great_expectations.expectations.metrics.column_aggregate_metrics.column_values_match_regex_values",
    "great_expectations.expectations.metrics.column_aggregate_metrics.column_values_not_match_regex_values",
)
_PATCH_LOCK = threading.RLock()
_TEMPLATE_CACHE: Any = None

#: GX modules that log a Data Docs renderer's exception, with its traceback, at ERROR.
_RENDER_LOGGERS = (
    "great_expectations.render.renderer.content_block.validation_results_table_content_block",
    "great_expectations.render.renderer.content_block.content_block",
    "great_expectations.render.renderer.column_section_renderer",
    "great_expectations.render.renderer.site_index_page_renderer",
    "great_expectations.render.renderer.site_builder",
)
_RENDER_FAILURE = "An unexpected Exception occurred during data docs rendering"

BUG_REPORT_TITLE = (
    "SqlAlchemyExecutionEngine.execute_query returns an unbuffered result after releasing the connection"
)


def _buffered_execute_query(self: SqlAlchemyExecutionEngine, query: Any) -> Any:
    """Same as GX's execute_query, but the rows are fetched before the connection goes back to the pool."""
    with self.get_connection() as connection:
        result = self._execute_query_with_recovery(connection, query)
        return result.freeze()()


def _is_duckdb(dialect: Any) -> bool:
    name = getattr(dialect, "name", None) or getattr(getattr(dialect, "dialect", None), "name", None)
    return name == "duckdb"


def _with_duckdb_regex(original: Any) -> Any:
    def get_dialect_regex_expression(column: Any, regex: str, dialect: Any, positive: bool = True) -> Any:
        expression = original(column, regex, dialect, positive)
        if expression is None and _is_duckdb(dialect):
            matches = sa.func.regexp_matches(column, sa.literal(regex))
            return matches if positive else sa.not_(matches)
        return expression

    return get_dialect_regex_expression


@contextmanager
def duckdb_patches() -> Iterator[None]:
    """Apply the two fixes above for the duration of the block, then restore GX exactly."""
    with _PATCH_LOCK:
        saved: list[tuple[Any, str, Any]] = [
            (SqlAlchemyExecutionEngine, "execute_query", SqlAlchemyExecutionEngine.__dict__["execute_query"])
        ]
        SqlAlchemyExecutionEngine.execute_query = _buffered_execute_query  # type: ignore[method-assign]
        util = importlib.import_module(_REGEX_USERS[0])
        patched = _with_duckdb_regex(util.get_dialect_regex_expression)
        for module_name in _REGEX_USERS:
            module = importlib.import_module(module_name)
            saved.append((module, "get_dialect_regex_expression", module.get_dialect_regex_expression))
            module.get_dialect_regex_expression = patched
        try:
            yield
        finally:
            for owner, attribute, value in reversed(saved):
                setattr(owner, attribute, value)


@contextmanager
def cached_templates() -> Iterator[None]:
    """Give GX's Data Docs views Jinja's bytecode cache while the block runs.

    Each view makes a new Jinja environment, so every run compiled the same ~50 templates again. Jinja's
    file cache keys each template by name and source checksum (a GX upgrade recompiles) and keeps its
    files in a per-user folder of the temporary directory that it creates owner-only and checks.
    """
    from great_expectations.render.view.view import DefaultJinjaView
    from jinja2 import FileSystemBytecodeCache

    global _TEMPLATE_CACHE
    with _PATCH_LOCK:
        if _TEMPLATE_CACHE is None:
            _TEMPLATE_CACHE = FileSystemBytecodeCache()
        original = DefaultJinjaView.__dict__["__init__"]

        def init(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            self.env.bytecode_cache = _TEMPLATE_CACHE

        DefaultJinjaView.__init__ = init  # type: ignore[method-assign]
        try:
            yield
        finally:
            DefaultJinjaView.__init__ = original  # type: ignore[method-assign]


def engine_kwargs(con: duckdb.DuckDBPyConnection, schema: str) -> dict[str, Any]:
    """SQLAlchemy ``create_engine`` arguments that reuse ``con``'s database with ``schema`` on the search path.

    The search path matters: GX's column-type metric ignores the asset's ``schema_name`` and queries the
    bare table name, so the table must resolve without a schema prefix.
    """

    def creator() -> ConnectionWrapper:
        cursor = con.cursor()
        cursor.execute(f"SET search_path = '{schema}'")
        return ConnectionWrapper(cursor)

    return {"creator": creator}


class RenderFailures(logging.Filter):
    """Counts GX's Data Docs rendering failures and keeps them out of the log (other records pass)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().lstrip().startswith(_RENDER_FAILURE):
            self.count += 1
            return False
        return True


@contextmanager
def counted_render_failures() -> Iterator[RenderFailures]:
    """While the block runs, GX's Data Docs rendering failures are counted instead of logged."""
    failures = RenderFailures()
    loggers = [logging.getLogger(name) for name in _RENDER_LOGGERS]
    for logger in loggers:
        logger.addFilter(failures)
    try:
        yield failures
    finally:
        for logger in loggers:
            logger.removeFilter(failures)
