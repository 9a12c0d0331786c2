"""The local Dagster instance's storage: Dagster's SQLite storage, without a disk flush per event and
with one SQLAlchemy engine per event log file (``LocalEventLogStorage``).

Dagster's SQLite storage opens a new connection for every event it stores (109 for one dataset's run)
and SQLite flushes the write-ahead log to disk (``fdatasync``) at each commit and again when the last
connection closes: about 1,500 flushes for a 10-row run, which took 2-3 s of it on the development
machines while other work was using the disk. This storage asks SQLite not to flush (``PRAGMA synchronous = OFF``) for the files under its own
``base_dir`` only: a crashed process loses nothing, and only a power cut or an operating-system crash
in the middle of a run can damage the local run history (delete ``.dagster/`` to start a fresh one).
Production keeps its run history in PostgreSQL (``deploy/dagster.production.yaml``), which this does
not touch.

``dagster.yaml`` names it under ``storage: custom:`` with the same ``base_dir`` as ``storage: sqlite:``.
It and the artifact and compute-log classes here take a relative ``base_dir`` under DAGSTER_HOME.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME, SqliteEventLogStorage
from dagster._core.storage.local_compute_log_manager import LocalComputeLogManager
from dagster._core.storage.root import LocalArtifactStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage, SqliteStorageConfig
from dagster._serdes import ConfigurableClassData
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

ENGINES_KEPT = 8  # event log files whose SQLAlchemy engine is kept (the index and the runs being written)
_UNFLUSHED: set[str] = set()  # absolute base_dirs whose SQLite files skip the flush
_LOCK = threading.Lock()


def _connect_without_flush(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
    """SQLAlchemy's ``do_connect`` hook: a SQLite file under a local storage is opened without flushes;
    anything else is left to SQLAlchemy (None)."""
    if getattr(dialect, "name", None) != "sqlite" or not cargs or not isinstance(cargs[0], str):
        return None
    path = os.path.abspath(cargs[0])
    if not any(path.startswith(base + os.sep) for base in _UNFLUSHED):
        return None
    connection = dialect.connect(*cargs, **cparams)
    connection.execute("PRAGMA synchronous = OFF")
    return connection


def skip_flush_under(base_dir: str) -> None:
    """SQLite files under ``base_dir``, opened from now on through SQLAlchemy, are written without flushing."""
    with _LOCK:
        if not event.contains(Engine, "do_connect", _connect_without_flush):
            event.listen(Engine, "do_connect", _connect_without_flush)
        _UNFLUSHED.update({os.path.abspath(base_dir), os.path.realpath(base_dir)})


class LocalEventLogStorage(SqliteEventLogStorage):
    """Dagster's SQLite event log, with one SQLAlchemy engine per file instead of one per event.

    Dagster builds an engine for every event it stores and again for every asset check result, to ask
    whether the check table exists: 1.0 of a 10-row run's 5.9 s went to its 109 events, 0.45 s with an
    engine per file. The engines keep NullPool, so each use still opens and closes its own SQLite
    connection, as Dagster's do (nothing is held between events, and other processes see every write)."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        super().__init__(base_dir, inst_data)
        self._engines: dict[str, Engine] = {}
        self._engines_lock = threading.Lock()
        self._tables: set[str] = set()

    def _engine(self, shard: str) -> Engine:
        """The shard's engine; a long-lived process (the webserver) keeps those of the last few runs."""
        with self._engines_lock:
            engine = self._engines.pop(shard, None)
            if engine is None:
                engine = create_engine(
                    self.conn_string_for_shard(shard),
                    poolclass=NullPool,
                    connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
                )
            self._engines[shard] = engine  # the most recent last
            while len(self._engines) > ENGINES_KEPT:
                self._engines.pop(next(iter(self._engines))).dispose()
            return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def has_table(self, table_name: str) -> bool:
        """Dagster never drops its tables, so a table once found is there for the life of the process."""
        if table_name not in self._tables:
            engine = self._engine(INDEX_SHARD_NAME)
            with engine.connect() as conn:
                if not engine.dialect.has_table(conn, table_name):
                    return False
            self._tables.add(table_name)
        return True


class LocalSqliteStorage(DagsterSqliteStorage):
    """``DagsterSqliteStorage`` (runs, event logs, schedules under ``base_dir``) writing without flushes."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        skip_flush_under(base_dir)
        super().__init__(base_dir, inst_data)
        self._event_log_storage = LocalEventLogStorage(self._event_log_storage._base_dir)

    @classmethod
    def from_config_value(  # ty: ignore[invalid-method-override]
        cls, inst_data: ConfigurableClassData, config_value: SqliteStorageConfig
    ) -> LocalSqliteStorage:
        return cls.from_local(inst_data=inst_data, **_under_home(config_value))


def under_dagster_home(base_dir: str) -> str:
    """A relative ``base_dir`` in dagster.yaml, under DAGSTER_HOME (the folder holding the file). Dagster
    takes it from the working folder: an instance copied to its own DAGSTER_HOME, as the CLI advises,
    stored its runs wherever the command was started, and runs of two homes shared one history."""
    home = os.environ.get("DAGSTER_HOME")
    return base_dir if os.path.isabs(base_dir) or not home else os.path.join(home, base_dir)


def _under_home(config_value: Mapping[str, Any]) -> dict[str, Any]:
    return {**config_value, "base_dir": under_dagster_home(config_value["base_dir"])}


class _UnderHome:
    """``from_config_value`` of a Dagster local storage class, with a relative ``base_dir`` under DAGSTER_HOME."""

    @classmethod
    def from_config_value(  # ty: ignore[invalid-method-override]
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> Any:
        return cls(inst_data=inst_data, **_under_home(config_value))  # ty: ignore[unknown-argument]


class HomeArtifactStorage(_UnderHome, LocalArtifactStorage):
    """Dagster's local artifact storage, with a relative ``base_dir`` under DAGSTER_HOME."""


class HomeComputeLogManager(_UnderHome, LocalComputeLogManager):
    """Dagster's local compute log manager, with a relative ``base_dir`` under DAGSTER_HOME."""
