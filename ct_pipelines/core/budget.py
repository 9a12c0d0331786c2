"""A per-dataset time and memory budget for one dataset's step (issue 17.6).

One runaway extract must not hold the warehouse, or the machine, for the whole run: each dataset's step
runs under a wall-clock limit and a DuckDB memory limit. When the clock runs out a timer thread interrupts
the DuckDB connection (``con.interrupt()``), again every ``poll`` seconds until the step ends, so a stage
between queries is stopped at its next query. Going over either limit fails that dataset with one sentence;
the other datasets still run. Plain Python over a DuckDB connection, so the catalog and Dagster stay out.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import duckdb


@dataclass(frozen=True)
class Budget:
    """``seconds`` of wall-clock time (None: no limit) and a DuckDB ``memory`` limit such as ``'1GB'``."""

    seconds: float | None = None
    memory: str | None = None


class BudgetExceeded(RuntimeError):
    """A dataset went over its budget; the message is the one sentence shown to the user."""


class Watch:
    """The running budget of one step: says whether it ran out, and words an error caused by it."""

    def __init__(self, budget: Budget, dataset_id: str, poll: float = 0.05) -> None:
        self.budget = budget
        self.dataset_id = dataset_id
        self.poll = poll
        self.expired = threading.Event()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self.started = time.perf_counter()

    def _interrupt_when_due(self, con: duckdb.DuckDBPyConnection) -> None:
        if self._done.wait(self.budget.seconds):
            return
        self.expired.set()
        while not self._done.is_set():  # a stage between queries is stopped at its next one
            with self._lock:
                if not self._done.is_set():
                    con.interrupt()
            self._done.wait(self.poll)

    def stop(self) -> None:
        """No interrupt after this returns, so the failure itself can be recorded on the connection."""
        with self._lock:
            self._done.set()

    def time_message(self, stage: str) -> str:
        return (
            f"dataset '{self.dataset_id}' was stopped in the {stage} stage after its time budget of "
            f"{self.budget.seconds:g} s ran out; raise validate.budget.seconds in its YAML (or "
            "CT_PIPELINES_DATASET_SECONDS for every dataset) if the extract really needs longer"
        )

    def memory_message(self, stage: str) -> str:
        return (
            f"dataset '{self.dataset_id}' needed more than its memory budget of {self.budget.memory} in the "
            f"{stage} stage and was stopped; raise validate.budget.memory in its YAML (or "
            "CT_PIPELINES_DUCKDB_MEMORY for every dataset), or ask the agency for a smaller extract"
        )

    def explain(self, exc: BaseException, stage: str) -> str | None:
        """The budget sentence when ``exc`` (or what caused it) came from running out, else None."""
        chain: BaseException | None = exc
        while chain is not None:
            if isinstance(chain, BudgetExceeded):
                return str(chain)
            if self.expired.is_set() and isinstance(chain, duckdb.InterruptException):
                return self.time_message(stage)
            if self.budget.memory and isinstance(chain, duckdb.OutOfMemoryException):
                return self.memory_message(stage)
            chain = chain.__cause__ or chain.__context__
        return self.time_message(stage) if self.expired.is_set() else None

    def explain_and_stop(self, exc: BaseException, stage: str) -> str | None:
        """:meth:`explain`, and stop interrupting once the budget is known to be the cause."""
        said = self.explain(exc, stage)
        if said:
            self.stop()
        return said

    def check(self, stage: str) -> None:
        """Raise :class:`BudgetExceeded` if the time ran out (called between stages)."""
        if self.expired.is_set():
            raise BudgetExceeded(self.time_message(stage))


@contextlib.contextmanager
def enforce(con: duckdb.DuckDBPyConnection, budget: Budget, dataset_id: str) -> Iterator[Watch]:
    """Run the block under ``budget`` on ``con``; the memory limit is restored and the timer stopped after."""
    watch = Watch(budget, dataset_id)
    before = con.execute("SELECT current_setting('memory_limit')").fetchone()[0] if budget.memory else None
    if budget.memory:
        con.execute("SET memory_limit = ?", [budget.memory])
    timer = None
    if budget.seconds is not None:
        timer = threading.Thread(target=watch._interrupt_when_due, args=(con,), daemon=True)
        timer.start()
    try:
        yield watch
    finally:
        watch.stop()
        if timer is not None:
            timer.join()
        if before is not None:
            with contextlib.suppress(duckdb.Error):  # a closed connection keeps nothing to restore
                con.execute("SET memory_limit = ?", [before])
