"""Publish SQL runs confined: one SELECT that reads only the dataset's PII-free view and declared tables.

Two layers, so a gap in one is caught by the other:

1. ``check_sql`` parses the statement with DuckDB's own parser (``json_serialize_sql``) and refuses any
   table or table function that is not allowed, naming it, before anything runs.
2. ``run_confined`` runs the query on a separate in-memory DuckDB connection that holds copies of only
   the allowed tables, and only the columns the query names (so memory stays close to what the query
   needs), with external access disabled and the configuration locked: no ``ingest__`` table, file or
   network address exists there to be read.

Binder errors are rewritten to name the missing column and list the columns that exist.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb

from ct_pipelines.core.sql import quote_qualified
from ct_pipelines.protect.errors import PublishConfigError

ALLOWED_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})
#: Functions whose result leaves out the rows validation set aside: a sum, mean or count of them is too low.
AGGREGATES = frozenset(
    {"sum", "fsum", "sumkahan", "kahan_sum", "sum_no_overflow", "avg", "mean", "favg", "count", "count_star"}
)
_BATCH_ROWS = 100_000
_QUOTED = re.compile(r'"([^"]+)"')


@dataclass
class SqlShape:
    """What a checked query reads: allowed tables (lowercase name -> name) and the names it refers to."""

    tables: dict[str, str]
    names: set[str] = field(default_factory=set)  # every part of every column reference, lowercase
    relations: set[str] = field(default_factory=set)  # table names and aliases, lowercase
    whole_rows: bool = False  # a *, NATURAL join or positional reference: every column is needed
    aggregates: bool = False  # the query sums or counts rows (an aggregate function outside a window)
    aggregated: set[str] = field(default_factory=set)  # columns inside those functions, lowercase

    def columns_needed(self, columns: Sequence[str]) -> list[str]:
        """The columns of a table the query can use; all of them when that cannot be told from names."""
        if self.whole_rows or self.names & self.relations:
            return list(columns)
        needed = [c for c in columns if c.lower() in self.names]
        return needed or list(columns[:1])  # count(*) alone still needs the rows


def _table_key(schema: str, table: str) -> str:
    return f"{schema}.{table}".lower() if schema and schema.lower() not in ("main", "temp") else table.lower()


def _allowed_keys(allowed_tables: Iterable[str]) -> dict[str, str]:
    keys = {}
    for name in allowed_tables:
        schema, _, table = name.rpartition(".")
        keys[_table_key(schema, table)] = name
    return keys


def check_sql(sql: str, allowed_tables: Iterable[str], label: str = "publish SQL") -> SqlShape:
    """Refuse anything but one SELECT reading only ``allowed_tables``; the error names what was refused."""
    parser = duckdb.connect()
    try:
        try:
            statements = parser.extract_statements(sql)
        except duckdb.Error as exc:
            raise PublishConfigError(f"{label}: the SQL does not parse: {_first_line(exc)}") from exc
        if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
            raise PublishConfigError(
                f"{label}: write exactly one SELECT statement (found {len(statements)} statement(s)"
                + (f", the first a {statements[0].type.name}" if statements else "")
                + ")"
            )
        tree = json.loads(parser.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()[0])
    finally:
        parser.close()
    if tree.get("error"):
        raise PublishConfigError(
            f"{label}: only a plain SELECT statement is allowed ({tree.get('error_message', 'not a SELECT')})"
        )
    shape = SqlShape(tables={})
    allowed = _allowed_keys(allowed_tables)
    refused: list[str] = []
    _walk(tree["statements"], frozenset(), shape, allowed, refused)
    if refused:
        raise PublishConfigError(
            f"{label}: the query may read only {', '.join(sorted(allowed.values()))}"
            f"{' (as {{ source }})' if len(allowed) == 1 else ''}; it also reads {', '.join(refused)}. "
            "Use the {{ source }} placeholder, or declare a reference table in protect.reference_tables."
        )
    return shape


def _walk(
    node: Any, ctes: frozenset[str], shape: SqlShape, allowed: dict[str, str], refused: list[str]
) -> None:
    """Collect table references (honouring CTE scopes), table functions and column names."""
    if isinstance(node, list):
        for item in node:
            _walk(item, ctes, shape, allowed, refused)
        return
    if not isinstance(node, dict):
        return
    cte_map = node.get("cte_map")
    if isinstance(cte_map, dict) and cte_map.get("map"):
        ctes = ctes | {str(entry["key"]).lower() for entry in cte_map["map"]}
    kind, cls = node.get("type"), node.get("class")
    if kind == "BASE_TABLE" and cls is None:
        _base_table(node, ctes, shape, allowed, refused)
    elif kind == "TABLE_FUNCTION" and cls is None:
        name = str(node.get("function", {}).get("function_name", "?"))
        if name.lower() not in ALLOWED_TABLE_FUNCTIONS:
            refused.append(f"table function {name}()")
        if node.get("alias"):
            shape.relations.add(str(node["alias"]).lower())
    elif kind in ("SUBQUERY", "EXPRESSION_LIST", "PIVOT") and cls is None and node.get("alias"):
        shape.relations.add(str(node["alias"]).lower())
    if cls == "COLUMN_REF":
        shape.names.update(str(part).lower() for part in node.get("column_names", []))
    elif cls == "FUNCTION" and str(node.get("function_name")).lower() in AGGREGATES:  # a window is WINDOW
        shape.aggregates = True
        shape.aggregated.update(_column_names(node))
    elif cls in ("STAR", "POSITIONAL_REFERENCE") or (kind == "JOIN" and node.get("ref_type") == "NATURAL"):
        shape.whole_rows = True
    if kind == "JOIN" and cls is None:
        shape.names.update(str(c).lower() for c in node.get("using_columns", []))
    for value in node.values():
        if isinstance(value, dict | list):
            _walk(value, ctes, shape, allowed, refused)


def _column_names(node: Any) -> set[str]:
    """The last part of every column reference under ``node`` (``t.fee`` is fee), lowercase."""
    if isinstance(node, list):
        return set().union(*(_column_names(item) for item in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    found = {str(node["column_names"][-1]).lower()} if node.get("class") == "COLUMN_REF" else set()
    for value in node.values():
        if isinstance(value, dict | list):
            found |= _column_names(value)
    return found


def _base_table(
    node: dict, ctes: frozenset[str], shape: SqlShape, allowed: dict[str, str], refused: list[str]
) -> None:
    catalog, schema, table = node.get("catalog_name", ""), node.get("schema_name", ""), node["table_name"]
    shape.relations.add(str(node.get("alias") or table).lower())
    if not catalog and not schema and table.lower() in ctes:
        return
    key = _table_key(schema, table)
    if catalog or key not in allowed:
        shown = ".".join(part for part in (catalog, schema, table) if part)
        if f"table {shown}" not in refused:
            refused.append(f"table {shown}")
        return
    shape.tables[key] = allowed[key]


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [row[0] for row in con.execute(f"DESCRIBE {quote_qualified(table)}").fetchall()]


def run_confined(
    con: duckdb.DuckDBPyConnection,
    query: str,
    shape: SqlShape,
    target_table: str,
    label: str,
    pii_fields: Sequence[str] = (),
) -> None:
    """Run a checked query in a locked in-memory connection; its result becomes ``target_table`` in ``con``."""
    available = {name: table_columns(con, name) for name in shape.tables.values()}
    try:
        _run_in_sandbox(con, query, shape, target_table, available, prune=True)
    except duckdb.BinderException:
        # Column names are collected from the parse tree; if that missed one, retry with whole tables
        # before blaming the query.
        try:
            _run_in_sandbox(con, query, shape, target_table, available, prune=False)
        except duckdb.Error as exc:
            raise PublishConfigError(explain_sql_error(exc, label, available, pii_fields)) from exc
    except duckdb.Error as exc:
        raise PublishConfigError(explain_sql_error(exc, label, available, pii_fields)) from exc


def _run_in_sandbox(
    con: duckdb.DuckDBPyConnection,
    query: str,
    shape: SqlShape,
    target_table: str,
    available: Mapping[str, list[str]],
    prune: bool,
) -> None:
    memory = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    spill = tempfile.mkdtemp(prefix="ct_sql_sandbox_")
    sandbox = duckdb.connect(":memory:", config={"memory_limit": memory, "temp_directory": spill})
    try:
        for name, columns in available.items():
            kept = shape.columns_needed(columns) if prune else columns
            schema, _, _ = name.rpartition(".")
            if schema:
                sandbox.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_qualified(schema)}")
            select = ", ".join(quote_qualified(c) for c in kept)
            reader = con.sql(f"SELECT {select} FROM {quote_qualified(name)}").to_arrow_reader(_BATCH_ROWS)
            sandbox.register("_ct_incoming", reader)
            sandbox.execute(f"CREATE TABLE {quote_qualified(name)} AS SELECT * FROM _ct_incoming")
            sandbox.unregister("_ct_incoming")
        sandbox.execute("SET enable_external_access = false")
        sandbox.execute("SET lock_configuration = true")
        result = sandbox.sql(query).to_arrow_reader(_BATCH_ROWS)
        con.register("_ct_confined_result", result)
        try:
            con.execute(
                f"CREATE OR REPLACE TABLE {quote_qualified(target_table)} AS SELECT * FROM _ct_confined_result"
            )
        finally:
            con.unregister("_ct_confined_result")
    finally:
        sandbox.close()
        shutil.rmtree(spill, ignore_errors=True)


def explain_sql_error(
    exc: BaseException, label: str, available: Mapping[str, list[str]], pii_fields: Sequence[str] = ()
) -> str:
    """One sentence naming the missing column (and the columns that exist) instead of a binder message."""
    message = str(exc)
    first = _first_line(exc).removeprefix("Binder Error: ")
    quoted = _QUOTED.findall(first)
    columns = sorted({c for cols in available.values() for c in cols})
    listing = f"the columns that exist are: {', '.join(columns)}" if columns else "no columns are available"
    pii = [name for name in quoted if name in pii_fields]
    pii_note = (
        f" Column(s) {', '.join(pii)} are marked pii and are never available to published tables."
        if pii
        else ""
    )
    if quoted and ("not found in FROM clause" in message or "does not have a column named" in message):
        missing = quoted[0] if "not found in FROM clause" in message else quoted[-1]
        return f"{label}: column '{missing}' does not exist; {listing}.{pii_note}"
    if quoted and "aliases cannot be used as part of an expression" in message:
        return (
            f"{label}: the GROUP BY uses '{quoted[0]}' inside an expression, but '{quoted[0]}' is only a name "
            f"given in the SELECT list, not a column; repeat the expression or group by position "
            f"({listing}).{pii_note}"
        )
    if quoted and "must appear in the GROUP BY clause" in message:
        return (
            f"{label}: column '{quoted[0]}' is selected but neither grouped nor aggregated; add it to the "
            f"GROUP BY or wrap it in an aggregate ({listing})."
        )
    if "file system operations are disabled" in message or "Permission Error" in message:
        return f"{label}: publish SQL cannot read files or network addresses ({first})."
    return f"{label}: the query failed: {first} ({listing}).{pii_note}"
