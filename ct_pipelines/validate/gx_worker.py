"""Great Expectations in a process of its own, started while the run starts up.

Why: importing GX takes 2-3 s of Python work (pydantic models for every datasource and expectation it
ships). Python work holds the GIL, so importing it in a thread gains only while the run waits, and a
small dataset's run hardly waits: the import was most of its validate stage. A second process imports it
on the other core while the run starts Dagster and ingests.

DuckDB lets one process open the warehouse read-write, so the worker never opens it: its SQLAlchemy
engine sends each statement back over a pipe to a cursor of the run's own connection, which runs it and
returns the rows (:class:`RemoteConnection`). GX thus reads exactly the committed tables, as it does in
process, and :func:`~ct_pipelines.validate.gx_suite.run_gx_suite` is the same function either way. If
the worker cannot answer (it failed to start, died, or raised), validation runs GX in process instead,
where an error is reported as any stage error is (the worker sends back only the exception's type, since
its message could quote a value).
"""

from __future__ import annotations

import atexit
import logging
import pickle
import subprocess
import sys
import threading
from multiprocessing.connection import Connection, Pipe
from pathlib import Path
from typing import Any

import duckdb

from ct_pipelines.catalog.models import Dataset
from ct_pipelines.core.outcomes import CheckOutcome

log = logging.getLogger(__name__)

_LOCK = threading.Lock()
_WORKER: GxWorker | None = None
#: Cursor methods the worker may call on the run's side besides ``execute`` (duckdb-engine's wrappers).
_CALLS = frozenset({"begin", "commit", "rollback", "close"})


class GxWorkerError(RuntimeError):
    """The worker could not run the suite; the caller runs it in process."""


class GxWorker:
    """A child process that imports GX at once and then runs suites on the caller's connection."""

    def __init__(self) -> None:
        ours, theirs = Pipe()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "ct_pipelines.validate.gx_worker", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,  # its output goes where the run's goes, as GX's log did in process
        )
        theirs.close()
        self._pipe = ours
        self._lock = threading.Lock()

    def run(
        self,
        con: duckdb.DuckDBPyConnection,
        dataset: Dataset,
        schema: str,
        table: str,
        docs_dir: Path,
        run_id: str,
    ) -> tuple[list[CheckOutcome], Path | None]:
        """What ``run_gx_suite`` returns, computed in the worker on ``con``'s tables.

        A suite the worker reports as failed leaves it ready for the next; anything else (it died, or a
        message could not be sent) stops it, since the two ends may no longer agree on what comes next."""
        with self._lock:
            if self._process.poll() is not None:
                raise GxWorkerError("the worker stopped")
            try:
                self._pipe.send(("run", dataset, schema, table, str(docs_dir), run_id))
                return _serve(self._pipe, con)
            except GxWorkerError:
                raise
            except Exception as exc:  # noqa: BLE001 - EOF, a broken pipe, a value that does not pickle
                self.stop()
                raise GxWorkerError(f"the worker stopped ({type(exc).__name__})") from exc

    def stop(self) -> None:
        """End the worker at once: between suites it holds nothing (each suite's Data Docs are written before
        its result is sent), and it may still be importing GX, which would hold a run's exit for seconds."""
        if not self._pipe.closed:
            self._pipe.close()
        self._process.kill()
        self._process.wait()


def start_gx_worker() -> GxWorker | None:
    """Start this process's worker unless one runs or GX is imported here already (then in process is free)."""
    global _WORKER
    with _LOCK:
        if _WORKER is None and "great_expectations" not in sys.modules:
            try:
                _WORKER = GxWorker()
            except OSError as exc:  # e.g. no process slots left: validation imports GX itself
                log.warning("could not start the Great Expectations worker: %s", exc)
                return None
            atexit.register(_WORKER.stop)
        return _WORKER


def running_gx_worker() -> GxWorker | None:
    """The worker :func:`start_gx_worker` started, if any."""
    return _WORKER


def _serve(pipe: Connection, con: duckdb.DuckDBPyConnection) -> tuple[list[CheckOutcome], Path | None]:
    """Answer the worker's SQL on cursors of ``con`` until it sends the suite's result."""
    cursors: dict[int, duckdb.DuckDBPyConnection] = {}
    try:
        while True:
            message = pipe.recv()
            kind = message[0]
            if kind == "result":
                outcomes, docs = message[1]
                return outcomes, Path(docs) if docs else None
            if kind == "failed":  # only the exception's type: its message could quote a value
                raise GxWorkerError(f"{message[1]} in the worker")
            pipe.send(_answer(message, con, cursors))
    finally:
        for cursor in cursors.values():
            cursor.close()


def _answer(
    message: tuple, con: duckdb.DuckDBPyConnection, cursors: dict[int, duckdb.DuckDBPyConnection]
) -> tuple:
    kind = message[0]
    try:
        if kind == "cursor":
            cursor_id = len(cursors) + 1
            cursors[cursor_id] = con.cursor()
            return ("ok", cursor_id)
        cursor = cursors[message[1]]
        if kind == "execute":
            _, _, sql, parameters = message
            cursor.execute(sql, parameters) if parameters is not None else cursor.execute(sql)
            description = cursor.description
            rows = cursor.fetchall() if description else []
            # DuckDB's type objects do not pickle; SQLAlchemy reads only the names from a description
            described = [(d[0], str(d[1]), *d[2:]) for d in description] if description else None
            return ("ok", (described, rows))
        if kind == "call" and message[2] in _CALLS:
            getattr(cursor, message[2])()
            return ("ok", None)
        raise ValueError(f"unknown request {kind!r}")
    except Exception as exc:  # noqa: BLE001 - raised again on the worker's side, where GX handles it
        return ("raise", _portable(exc))


def _portable(exc: Exception) -> Exception:
    """The exception itself when it pickles (DuckDB's do, with their type), else a duckdb.Error saying it."""
    try:
        pickle.dumps(exc)
        return exc
    except Exception:  # noqa: BLE001
        return duckdb.Error(str(exc))


class RemoteConnection:
    """The run's DuckDB connection as the worker sees it: ``cursor()`` opens a cursor on the run's side."""

    def __init__(self, pipe: Connection) -> None:
        self._pipe = pipe

    def ask(self, *request: Any) -> Any:
        self._pipe.send(request)
        status, value = self._pipe.recv()
        if status == "raise":
            raise value
        return value

    def cursor(self) -> RemoteCursor:
        return RemoteCursor(self, self.ask("cursor"))


class RemoteCursor:
    """A DB-API cursor whose statements run on the run's side; rows come back whole and are read here.

    It offers what duckdb-engine's wrappers call on a DuckDB connection: execute, the fetch methods,
    description, begin, commit, rollback and close."""

    arraysize = 1
    rowcount = -1

    def __init__(self, connection: RemoteConnection, cursor_id: int) -> None:
        self._connection = connection
        self._id = cursor_id
        self.description: list[tuple] | None = None
        self._rows: list[tuple] = []
        self._at = 0

    def execute(self, sql: str, parameters: Any = None) -> RemoteCursor:
        params = list(parameters) if isinstance(parameters, tuple) else parameters
        self.description, self._rows = self._connection.ask("execute", self._id, sql, params)
        self._at = 0
        return self

    def fetchone(self) -> tuple | None:
        if self._at >= len(self._rows):
            return None
        self._at += 1
        return self._rows[self._at - 1]

    def fetchmany(self, size: int | None = None) -> list[tuple]:
        size = self.arraysize if size is None else size
        rows = self._rows[self._at : self._at + size]
        self._at += len(rows)
        return rows

    def fetchall(self) -> list[tuple]:
        rows = self._rows[self._at :]
        self._at = len(self._rows)
        return rows

    def begin(self) -> None:
        self._connection.ask("call", self._id, "begin")

    def commit(self) -> None:
        self._connection.ask("call", self._id, "commit")

    def rollback(self) -> None:
        self._connection.ask("call", self._id, "rollback")

    def close(self) -> None:
        self._connection.ask("call", self._id, "close")


def _main(fd: int) -> None:
    """The worker: import GX now, then run each suite asked for until told to stop or the run goes."""
    pipe = Connection(fd)
    try:
        from ct_pipelines.core.imports import import_great_expectations

        import_great_expectations()  # first: it keeps scipy.stats and altair out, which GX's engine imports
        from ct_pipelines.validate import gx_duckdb  # noqa: F401 - SQLAlchemy and GX's engine
    except Exception as exc:  # noqa: BLE001 - said when the first suite is asked for
        import_failure: str | None = type(exc).__name__
    else:
        import_failure = None
    while True:
        try:
            message = pipe.recv()
            if message[0] != "run":
                return
            pipe.send(_suite_reply(message, pipe, import_failure))
        except (EOFError, OSError):  # the run has gone
            return


def _suite_reply(message: tuple, pipe: Connection, import_failure: str | None) -> tuple:
    """The worker's answer to one suite: its result, or the type of what failed (the caller retries).

    If the run has gone, the pipe's own error ends the worker when this answer is sent."""
    if import_failure:
        return ("failed", import_failure)
    from ct_pipelines.validate.gx_suite import run_gx_suite

    _, dataset, schema, table, docs_dir, run_id = message
    try:
        outcomes, docs = run_gx_suite(
            RemoteConnection(pipe),  # type: ignore[arg-type] - a DB-API stand-in for the connection
            dataset,
            schema,
            table,
            Path(docs_dir),
            run_id,
        )
        reply = ("result", (outcomes, str(docs) if docs else None))
        pickle.dumps(reply)  # what does not pickle is said here, not by a failed send
        return reply
    except Exception as exc:  # noqa: BLE001 - the caller runs the suite in process and raises there
        return ("failed", type(exc).__name__)


if __name__ == "__main__":
    _main(int(sys.argv[1]))
