"""The publisher's memory in DuckDB: targets, snapshots, the chunk ledger and the publish log.

Keeping this next to the data (not in the portal, not in files) is what makes publishing
incremental (diff against the last snapshot), resumable (skip chunks the ledger says were applied)
and auditable (one log row per publish).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import duckdb

from ct_pipelines.core.sql import quote_ident, stage_table
from ct_pipelines.core.warehouse import relation_exists

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS portal_targets (
    dataset_id VARCHAR, domain VARCHAR, four_by_four VARCHAR, created_at TIMESTAMP,
    PRIMARY KEY (dataset_id, domain));
CREATE TABLE IF NOT EXISTS publish_state (
    dataset_id VARCHAR PRIMARY KEY, domain VARCHAR, four_by_four VARCHAR, row_count BIGINT,
    publish_id VARCHAR, updated_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS publish_runs (
    publish_id VARCHAR PRIMARY KEY, run_id VARCHAR, dataset_id VARCHAR, domain VARCHAR,
    four_by_four VARCHAR, mode VARCHAR, status VARCHAR, chunks INTEGER, planned_created BIGINT,
    planned_updated BIGINT, planned_deleted BIGINT, expected_count BIGINT, key_field VARCHAR,
    started_at TIMESTAMP, finished_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS publish_chunks (
    publish_id VARCHAR, chunk_index INTEGER, first_seq BIGINT, last_seq BIGINT, row_count BIGINT,
    byte_count BIGINT, first_key VARCHAR, last_key VARCHAR, PRIMARY KEY (publish_id, chunk_index));
CREATE TABLE IF NOT EXISTS publish_ledger (
    publish_id VARCHAR, run_id VARCHAR, dataset_id VARCHAR, chunk_index INTEGER, first_key VARCHAR,
    last_key VARCHAR, row_count BIGINT, rows_created BIGINT, rows_updated BIGINT, rows_deleted BIGINT,
    errors BIGINT, request_id VARCHAR, status VARCHAR, applied_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS publish_log (
    run_id VARCHAR, publish_id VARCHAR, dataset_id VARCHAR, four_by_four VARCHAR,
    started_at TIMESTAMP, finished_at TIMESTAMP, mode VARCHAR, chunks INTEGER, chunks_resumed INTEGER,
    rows_created BIGINT, rows_updated BIGINT, rows_deleted BIGINT, errors BIGINT, duration_s DOUBLE,
    request_ids VARCHAR, status VARCHAR, message VARCHAR);
"""

LOG_COLUMNS = (
    "run_id",
    "publish_id",
    "dataset_id",
    "four_by_four",
    "started_at",
    "finished_at",
    "mode",
    "chunks",
    "chunks_resumed",
    "rows_created",
    "rows_updated",
    "rows_deleted",
    "errors",
    "duration_s",
    "request_ids",
    "status",
    "message",
)


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(SCHEMA_SQL)


def snapshot_table(dataset_id: str) -> str:
    return f"publish_snapshot__{dataset_id}"


def pending_table(dataset_id: str) -> str:
    return f"publish_pending__{dataset_id}"


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    found = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND NOT temporary", [name]
    ).fetchone()
    return bool(found and found[0])


def find_target(con: duckdb.DuckDBPyConnection, dataset_id: str, domain: str) -> str | None:
    row = con.execute(
        "SELECT four_by_four FROM portal_targets WHERE dataset_id = ? AND domain = ?", [dataset_id, domain]
    ).fetchone()
    return row[0] if row else None


def record_target(con: duckdb.DuckDBPyConnection, dataset_id: str, domain: str, four_by_four: str) -> None:
    con.execute(
        "INSERT OR REPLACE INTO portal_targets VALUES (?, ?, ?, ?)",
        [dataset_id, domain, four_by_four, datetime.now()],
    )


def published_row_count(
    con: duckdb.DuckDBPyConnection, dataset_id: str, domain: str, four_by_four: str
) -> int | None:
    """Rows in the last promoted snapshot for this exact target, or None if there is none."""
    row = con.execute(
        "SELECT row_count FROM publish_state WHERE dataset_id = ? AND domain = ? AND four_by_four = ?",
        [dataset_id, domain, four_by_four],
    ).fetchone()
    if row is None or not table_exists(con, snapshot_table(dataset_id)):
        return None
    return int(row[0])


def unfinished_publish(con: duckdb.DuckDBPyConnection, dataset_id: str) -> dict[str, Any] | None:
    """The publish that was interrupted for this dataset, if any (at most one exists)."""
    cursor = con.execute(
        "SELECT * FROM publish_runs WHERE dataset_id = ? AND status = 'sending' ORDER BY started_at LIMIT 1",
        [dataset_id],
    )
    row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cursor.description], row, strict=True))


def applied_chunks(con: duckdb.DuckDBPyConnection, publish_id: str) -> set[int]:
    rows = con.execute(
        "SELECT chunk_index FROM publish_ledger WHERE publish_id = ? AND status = 'applied'", [publish_id]
    ).fetchall()
    return {int(r[0]) for r in rows}


def _column_types(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    rows = con.execute("SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ?", [table])
    return dict(rows.fetchall())


def has_current_format(con: duckdb.DuckDBPyConnection, table: str, key_type: str) -> bool:
    """Whether ``table`` (a snapshot) holds the typed-value hashes of ``serialize.row_hash_sql``
    (UBIGINT) and the row key typed as ``key_type``, so a diff can join on the key itself. Older
    snapshots (md5 text, key JSON only) and those of a retyped key count every row as changed."""
    found = _column_types(con, table)
    return found.get("row_hash") == "UBIGINT" and found.get("key_value") == key_type


# plans that send every row as a create: their change set holds the whole new snapshot
_EVERY_ROW_MODES = ("replace", "upsert_all")


def _promotion(con: duckdb.DuckDBPyConnection, run: dict[str, Any]) -> str:
    """How ``run``'s snapshot comes about: ``adopt`` its change set as the snapshot (plans sending
    every row: dropping the send-only columns is free, a copy of 1M keys is not), ``apply`` the
    change set to the snapshot (incremental: it holds every changed key with its new hash), or
    ``rebuild`` from the change set (a resync against the portal's keys or an old-format snapshot
    made every row count as changed, so the change set holds them all)."""
    if run["mode"] in _EVERY_ROW_MODES:
        return "adopt"
    key_type = _column_types(con, pending_table(run["dataset_id"])).get("key_value")
    if (
        run["mode"] == "incremental"
        and key_type
        and has_current_format(con, snapshot_table(run["dataset_id"]), key_type)
    ):
        return "apply"
    return "rebuild"


def _snapshot_rows_sql(dataset_id: str, promotion: str) -> str:
    """The rows the snapshot holds after an ``apply`` or ``rebuild`` promotion."""
    snapshot, pending = (
        quote_ident(snapshot_table(dataset_id)),
        quote_ident(pending_table(dataset_id)),
    )
    sent = f"SELECT row_key, key_value, row_hash FROM {pending} WHERE op <> 'delete'"
    if promotion != "apply":
        return sent
    kept = f"SELECT row_key, key_value, row_hash FROM {snapshot} WHERE row_key NOT IN (SELECT row_key FROM {pending})"
    return f"{kept} UNION ALL {sent}"


def planned_snapshot(con: duckdb.DuckDBPyConnection, run: dict[str, Any]) -> str:
    """The table holding what the snapshot will be once ``run`` (interrupted) is finished; a dry run
    plans against it (a temp table)."""
    promotion = _promotion(con, run)
    planned = "publish_tmp_planned_snapshot"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {planned} AS {_snapshot_rows_sql(run['dataset_id'], promotion)}"
    )
    return planned


def _promote_rows(con: duckdb.DuckDBPyConnection, run: dict[str, Any]) -> None:
    """Turn the change set into the snapshot without copying it (every row sent) or edit the
    snapshot in place (incremental, so a 1% change writes 1% of it)."""
    dataset_id = run["dataset_id"]
    snapshot, pending = (
        quote_ident(snapshot_table(dataset_id)),
        quote_ident(pending_table(dataset_id)),
    )
    promotion = _promotion(con, run)
    if promotion == "adopt":
        con.execute(f"DROP TABLE IF EXISTS {snapshot}")
        for column in ("seq", "op", "body"):
            con.execute(f"ALTER TABLE {pending} DROP COLUMN {column}")
        con.execute(f"ALTER TABLE {pending} RENAME TO {snapshot}")
        return
    if promotion == "apply":
        con.execute(f"DELETE FROM {snapshot} WHERE row_key IN (SELECT row_key FROM {pending})")
        con.execute(
            f"INSERT INTO {snapshot} SELECT row_key, key_value, row_hash FROM {pending} WHERE op <> 'delete'"
        )
    else:
        con.execute(f"CREATE OR REPLACE TABLE {snapshot} AS {_snapshot_rows_sql(dataset_id, promotion)}")
    con.execute(f"DROP TABLE IF EXISTS {pending}")


def promote_snapshot(con: duckdb.DuckDBPyConnection, run: dict[str, Any], finished_at: datetime) -> None:
    """Make the planned state the published snapshot, in one transaction, only after every chunk."""
    dataset_id = run["dataset_id"]
    con.execute("BEGIN TRANSACTION")
    try:
        _promote_rows(con, run)
        con.execute(
            "INSERT OR REPLACE INTO publish_state VALUES (?, ?, ?, ?, ?, ?)",
            [
                dataset_id,
                run["domain"],
                run["four_by_four"],
                run["expected_count"],
                run["publish_id"],
                finished_at,
            ],
        )
        con.execute(
            "UPDATE publish_runs SET status = 'applied', finished_at = ? WHERE publish_id = ?",
            [finished_at, run["publish_id"]],
        )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def write_log(con: duckdb.DuckDBPyConnection, row: dict[str, Any]) -> None:
    values = [json.dumps(row[c]) if c == "request_ids" else row.get(c) for c in LOG_COLUMNS]
    con.execute(f"INSERT INTO publish_log VALUES ({', '.join('?' * len(LOG_COLUMNS))})", values)


def publish_log(
    con: duckdb.DuckDBPyConnection, dataset_id: str | None = None, limit: int = 20
) -> list[dict[str, Any]]:
    """Most recent publishes first, JSON-ready (timestamps as ISO text), for asset metadata and the CLI.
    Creates nothing, so a read-only connection to a dataset's warehouse file works."""
    if not table_exists(con, "publish_log"):
        return []
    where = "WHERE dataset_id = ?" if dataset_id else ""
    params: list[Any] = [dataset_id] if dataset_id else []
    rows = con.execute(
        f"SELECT {', '.join(LOG_COLUMNS)} FROM publish_log {where} ORDER BY started_at DESC LIMIT {int(limit)}",
        params,
    ).fetchall()
    result = []
    for row in rows:
        entry = dict(zip(LOG_COLUMNS, row, strict=True))
        entry["request_ids"] = json.loads(entry["request_ids"] or "[]")
        for key in ("started_at", "finished_at"):
            if entry[key] is not None:
                entry[key] = entry[key].isoformat(timespec="seconds")
        result.append(entry)
    return result


def aggregate_source_rows(
    con: duckdb.DuckDBPyConnection, dataset_id: str, four_by_four: str
) -> tuple[int | None, int | None]:
    """(rows the table to publish was built from, rows the table last published to ``four_by_four`` was
    built from): the standardized rows protect read, in this run and in the run of that publish. A helper's
    delivery with 60% of the rows was published whole, as many cells as before, each figure too low."""
    source = stage_table("standardize", dataset_id)
    if not relation_exists(con, "main", source) or not table_exists(con, "publish_log"):
        return None, None
    now = con.execute(f"SELECT count(*) FROM {quote_ident(source)}").fetchone()[0]
    try:
        row = con.execute(
            "SELECT s.rows_in FROM publish_log p JOIN meta.stage_results s ON s.run_id = p.run_id "
            "AND s.dataset_id = p.dataset_id AND s.stage = 'protect' AND s.status = 'ok' "
            "WHERE p.dataset_id = ? AND p.four_by_four = ? AND p.status = 'published' "
            "ORDER BY p.finished_at DESC LIMIT 1",
            [dataset_id, four_by_four],
        ).fetchone()
    except duckdb.CatalogException:  # no stage results recorded (the publish stage run on its own)
        row = None
    return int(now), (int(row[0]) if row and row[0] is not None else None)
