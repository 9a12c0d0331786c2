"""The state every part of the local portal's store shares: one DuckDB file under ``data_dir``,
the view documents, and the lock that serialises access to the shared connection (a DuckDB
connection is not safe to share across threads unlocked)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import duckdb

from ct_pipelines.core.sql import quote_ident
from ct_pipelines.portal import common
from ct_pipelines.portal.applying import Target
from ct_pipelines.portal.common import STORAGE_TYPES
from ct_pipelines.portal.errors import PortalError, view_missing


class StoreCore:
    """Opening and closing the database, finding a view, and making a dataset's table on first use."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = common.private_dir(Path(data_dir))
        self.path = self.data_dir / "portal.duckdb"
        self._lock = threading.RLock()
        self._con = duckdb.connect(str(self.path))
        # idle connections for writes, each staging payloads in temp tables of its own; they are
        # opened from a connection nothing else uses, so opening one never waits for the lock
        self._spawner = self._con.cursor()
        self._writers: list[duckdb.DuckDBPyConnection] = []
        self._writers_lock = threading.Lock()
        self._active_writes = 0
        self._one_thread = False  # whether writes have set DuckDB's threads to 1 (see writes.py)
        # reads ordered by :id rely on rows coming back in insertion order (see reads.py)
        self._con.execute("SET preserve_insertion_order = true")
        # DuckDB checkpoints inside the commit that pushes its log past the threshold (16 MB by
        # default), so every ~100,000 uploaded rows one request stalled ~0.6 s while the whole file
        # was rewritten. A development portal can replay a larger log at start; it checkpoints on close.
        self._con.execute("SET checkpoint_threshold = '1GB'")
        self._con.execute("CREATE TABLE IF NOT EXISTS views (id VARCHAR PRIMARY KEY, doc VARCHAR NOT NULL)")
        self._con.execute(
            "CREATE TABLE IF NOT EXISTS attachments (asset_id VARCHAR PRIMARY KEY, view_id VARCHAR NOT NULL, "
            "filename VARCHAR NOT NULL, content_type VARCHAR NOT NULL, created_at BIGINT, content BLOB)"
        )
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
        self._protect()

    def _protect(self) -> None:
        """Owner-only modes on the database and its log (the log is recreated after checkpoints)."""
        common.make_private(self.path, self.path.with_name(self.path.name + ".wal"))

    def close(self) -> None:
        with self._lock, self._writers_lock:
            for writer in [*self._writers, self._spawner]:
                writer.close()
            self._writers.clear()
            self._con.close()
            self._protect()

    def _view(self, view_id: str, missing: PortalError | None = None) -> dict[str, Any]:
        view = self._views.get(view_id)
        if view is None:
            raise missing or view_missing(view_id)
        return view

    def _target(self, view: dict[str, Any]) -> Target:
        """The view's table, created on first use so seeding 10,000 views does not create 10,000 tables."""
        name = common.table_name(view["id"])
        sequence = common.sequence_name(view["id"])
        target = Target.of(name, sequence)
        if name not in self._tables:
            columns = ", ".join(
                f"{quote_ident(c['fieldName'])} {STORAGE_TYPES[c['dataTypeName']]}" for c in view["columns"]
            )
            system = '":id" VARCHAR, ":created_at" TIMESTAMP, ":updated_at" TIMESTAMP'
            self._con.execute(f"CREATE SEQUENCE IF NOT EXISTS {quote_ident(sequence)}")
            self._con.execute(
                f"CREATE TABLE IF NOT EXISTS {target.table} ({columns + ', ' if columns else ''}{system})"
            )
            self._tables.add(name)
            self._protect()
        return target

    def _ensure_table(self, view: dict[str, Any]) -> str:
        """The view's table as quoted SQL (see :meth:`_target`)."""
        return self._target(view).table
