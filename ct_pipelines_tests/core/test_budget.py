"""The per-dataset budget stops a runaway query with one sentence and leaves the connection usable."""

from __future__ import annotations

import duckdb
import pytest

from ct_pipelines.core.budget import Budget, BudgetExceeded, enforce

ENDLESS = "SELECT count(*) FROM range(1000000000000) a, range(1000) b WHERE a.range + b.range < 0"


def test_time_budget_interrupts_a_running_query_and_names_the_fix():
    con = duckdb.connect()
    with (
        pytest.raises(duckdb.InterruptException) as caught,
        enforce(con, Budget(seconds=0.3), "slow_ds") as watch,
    ):
        con.execute(ENDLESS)
    message = watch.explain(caught.value, "validate")
    assert message is not None and message.count(". ") == 0
    assert "'slow_ds'" in message and "validate stage" in message and "validate.budget.seconds" in message
    assert con.execute("SELECT 41 + 1").fetchone()[0] == 42  # the connection still works afterwards


def test_time_budget_stops_python_work_at_the_next_query_and_between_stages():
    con = duckdb.connect()
    with enforce(con, Budget(seconds=0.05), "ds") as watch:
        watch.expired.wait(5)  # a stage busy in Python past its budget
        with pytest.raises(duckdb.InterruptException):
            con.execute(ENDLESS)
        with pytest.raises(BudgetExceeded, match="'ds' was stopped in the publish stage"):
            watch.check("publish")


def test_memory_budget_fails_with_one_sentence_and_is_restored():
    con = duckdb.connect()
    con.execute("SET memory_limit = '500MB'")
    before = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    with pytest.raises(duckdb.OutOfMemoryException) as caught, enforce(con, Budget(memory="20MB"), "big"):
        con.execute("SELECT list(range || 'some padding text') FROM range(5000000)").fetchall()
    with enforce(con, Budget(memory="20MB"), "big") as watch:
        message = watch.explain(caught.value, "standardize")
    assert message and "memory budget of 20MB" in message and "validate.budget.memory" in message
    restored = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert restored[:3] == before[:3]  # DuckDB rounds the limit it reports


def test_no_budget_changes_nothing_and_explains_nothing():
    con = duckdb.connect()
    with enforce(con, Budget(), "ds") as watch:
        assert con.execute("SELECT count(*) FROM range(1000)").fetchone()[0] == 1000
    assert watch.explain(ValueError("unrelated"), "ingest") is None
    watch.check("ingest")
