"""The local Dagster instance's storage: Dagster's SQLite storage, without a disk flush per event.

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
from collections.abc import Mapping
from typing import Any

from dagster._core.storage.local_compute_log_manager import LocalComputeLogManager
from dagster._core.storage.root import LocalArtifactStorage
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage, SqliteStorageConfig
from dagster._serdes import ConfigurableClassData
from sqlalchemy import event
from sqlalchemy.engine import Engine

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


class LocalSqliteStorage(DagsterSqliteStorage):
    """``DagsterSqliteStorage`` (runs, event logs, schedules under ``base_dir``) writing without flushes."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        skip_flush_under(base_dir)
        super().__init__(base_dir, inst_data)

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
