"""One DuckDB file per dataset: where it is, the old single file refused, and waiting for another process."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from ct_pipelines.cli import main
from ct_pipelines.core import warehouse
from ct_pipelines.core.settings import load_settings

HOLD = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("CREATE TABLE IF NOT EXISTS t AS SELECT 42 AS answer")
print("holding", flush=True)
sys.stdin.readline()
con.close()
"""


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CT_PIPELINES_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CT_PIPELINES_WAREHOUSE", raising=False)
    return load_settings()


def test_each_dataset_has_its_own_file_and_the_audit_one_of_its_own(settings, tmp_path: Path):
    assert settings.warehouse_for("dmv_ev") == tmp_path / "home" / "warehouse" / "dmv_ev.duckdb"
    assert settings.audit_warehouse == tmp_path / "home" / "warehouse" / "_portal_audit.duckdb"
    with pytest.raises(ValueError, match="is not a dataset id"):
        settings.warehouse_for("../elsewhere")
    for dataset_id in ("b_ds", "a_ds"):
        with warehouse.open_dataset(settings, dataset_id) as con:
            con.execute("CREATE TABLE ingest__x AS SELECT 1 AS n")
    settings.audit_warehouse.touch()
    assert warehouse.recorded_dataset_ids(settings) == ["a_ds", "b_ds"]


def test_the_old_single_file_is_refused_with_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    old = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(old)).close()
    monkeypatch.setenv("CT_PIPELINES_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CT_PIPELINES_WAREHOUSE", str(old))
    with pytest.raises(ValueError, match="a file, but the warehouse is now a folder"):
        load_settings().ensure_dirs()
    result = CliRunner().invoke(main, ["run", "--dry-run"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"set CT_PIPELINES_WAREHOUSE to a folder (e.g. {tmp_path / 'warehouse'})" in result.output


def test_a_reader_waits_for_a_writer_in_another_process_then_says_so(settings):
    path = settings.warehouse_for("held_ds")
    path.parent.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(warehouse.WarehouseBusy, match="is held by another process .* try again"):
            warehouse.connect(path, settings, read_only=True, wait=0.3)
        # A writer that keeps trying gets the file once the other process lets go.
        answers: list = []

        def open_when_free() -> None:
            with warehouse.open_dataset(settings, "held_ds", wait=120) as con:
                answers.append(con.execute("SELECT answer FROM t").fetchone()[0])

        waiter = threading.Thread(target=open_when_free)
        waiter.start()
        holder.stdin.write("release\n")
        holder.stdin.flush()
        waiter.join(timeout=150)
        assert answers == [42]
    finally:
        holder.kill()
        holder.wait()


def test_a_dagster_home_that_is_not_a_folder_is_refused_with_what_to_do(settings, tmp_path, monkeypatch):
    missing = tmp_path / "no_such_dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(missing))
    result = CliRunner().invoke(main, ["run", "--dry-run"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert (
        f"DAGSTER_HOME is {missing}, which is not a folder; create it (mkdir -p {missing})" in result.output
    )


PROGRESS = """
import duckdb, sys
from ct_pipelines.core import warehouse
from ct_pipelines.core.settings import load_settings
settings = load_settings()
setting = "SELECT current_setting('enable_progress_bar'), current_setting('memory_limit')"
print(duckdb.connect().execute(setting).fetchone()[0])  # a plain connection outside pytest: the bar is on
with duckdb.connect(config={"memory_limit": settings.duckdb_memory_limit}) as plain:
    print(plain.execute(setting).fetchone()[1])
for read_only in (False, True):
    with warehouse.open_dataset(settings, "capped", read_only=read_only) as con:
        print(*con.execute(setting).fetchone())
"""


def test_every_warehouse_connection_has_the_memory_cap_and_no_terminal_progress_bar(settings):
    """The bar is a session setting, so each connection turns it off; a report build's bar once broke into
    the run summary. Checked in a process of its own: under pytest DuckDB starts with the bar off."""
    out = subprocess.run(
        [sys.executable, "-c", PROGRESS], capture_output=True, text=True, check=True, timeout=60
    ).stdout.splitlines()
    cap = out[1]
    assert out == ["True", cap, f"False {cap}", f"False {cap}"]


def test_a_checkpoint_leaves_deleted_rows_as_marks_instead_of_rewriting_the_table(settings):
    """Validation deletes the rows it sets aside; a vacuum at the closing checkpoint rewrote the rest of
    the table, seconds for a table the next run replaces anyway."""
    with warehouse.open_dataset(settings, "vacuum") as con:
        con.execute("SET threads = 1")  # full row groups, which a vacuum would merge
        con.execute("CREATE TABLE valid AS SELECT range AS _row, 'value ' || range AS v FROM range(500000)")
        con.execute("CHECKPOINT")
        groups = "SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('valid')"
        before = con.execute(groups).fetchone()[0]
        con.execute("DELETE FROM valid WHERE _row % 10 < 6")
        con.execute("CHECKPOINT")
        assert con.execute(groups).fetchone()[0] == before == 5
        assert con.execute("SELECT count(*), sum(_row % 10) FROM valid").fetchone() == (200_000, 1_500_000)
        con.execute("DELETE FROM valid WHERE _row < 122880")  # the whole first row group
        con.execute("CHECKPOINT")
        assert con.execute(groups).fetchone()[0] == 4
