"""The directory's per-dataset records are kept beside the site and reused only while the file is unchanged."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import duckdb

from ct_pipelines.report.warehouse import (
    CheckRow,
    Recorded,
    RunRow,
    SetAsideRule,
    file_state,
    keep_recorded,
    load_recorded,
    settled,
)


def _recorded() -> Recorded:
    return Recorded(
        last_ingest={"path": "/landing/x.csv", "rows": 10, "ingested_at": datetime(2026, 1, 2, 3, 4, 5)},
        last_publish={"finished_at": datetime(2026, 1, 2, 3, 5), "duration_s": 1.5, "share": Decimal("0.25")},
        portal_rows=10,
        four_by_four="abcd-1234",
        last_run_id="r1",
        checks=[CheckRow("validate", "not_null_id", False, "ERROR", "2 rows are empty.", 2)],
        set_aside_rows=2,
        set_aside_rules=[SetAsideRule("required", "required", "id", "empty", 2)],
        runs=[RunRow("r1", datetime(2026, 1, 2, 3, 4), rows_in=10, set_aside=2, checks_failed=1, warnings=2)],
        failed_stage="publish",
        failure="Reading the columns of abcd-1234 failed: 404 Client Error",
    )


def test_a_kept_record_reads_back_equal_while_the_file_is_unchanged(tmp_path: Path):
    warehouse = tmp_path / "x.duckdb"
    duckdb.connect(str(warehouse)).execute("CREATE TABLE t AS SELECT 1 AS a").close()
    cache = tmp_path / "reports" / ".recorded" / "x.json"
    state = file_state(warehouse)
    keep_recorded(cache, state, _recorded())
    assert load_recorded(cache, file_state(warehouse)) == _recorded()

    with duckdb.connect(str(warehouse)) as con:  # a run writes the dataset's file: the record is read again
        con.execute("INSERT INTO t VALUES (2)")
    assert load_recorded(cache, file_state(warehouse)) is None


def test_a_missing_or_unreadable_record_is_read_from_the_file(tmp_path: Path):
    cache = tmp_path / "x.json"
    assert load_recorded(cache, [1, 2, 3, -1, -1, -1]) is None
    cache.write_text("{not json", encoding="utf-8")
    assert load_recorded(cache, [1, 2, 3, -1, -1, -1]) is None
    assert file_state(tmp_path / "never_ran.duckdb") is None


def test_a_file_written_in_the_last_moments_is_not_kept(tmp_path: Path):
    warehouse = tmp_path / "x.duckdb"
    duckdb.connect(str(warehouse)).execute("CREATE TABLE t AS SELECT 1 AS a").close()
    state = file_state(warehouse)
    assert state is not None
    assert not settled(state, state[2] + 1_000_000)  # 1 ms after the write
    assert settled(state, state[2] + 5_000_000_000)
