"""Issue 14.2: runs of different datasets at the same moment, in separate processes, never meet a lock.

Each dataset writes its own DuckDB file, so two ``ct-pipelines run --dataset`` processes started
together (as two Dagster runs would be) both publish, to one served portal, and the project's Dagster
instance (SQLite, from ``dagster.yaml``) takes both runs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import pytest

from ct_pipelines.core.settings import SAMPLE_CATALOG_DIR
from ct_pipelines.portal.store import PortalStore
from ct_pipelines_tests.support.served import REPO, clean_env, served_portal, start_run

LOCK_ERROR = re.compile(r"lock on file|database is locked|conflicting lock|is held by another process", re.I)
#: The two bundled CSV samples and the rows each publishes (rows mode; aggregated counts).
PUBLISHED = {"deep_fishing_licenses": 100, "dss_interpreter_requests": 143}


@pytest.mark.timeout(600)
def test_two_datasets_run_at_once_in_two_processes_without_lock_errors(tmp_path: Path):
    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")  # the project's SQLite instance
    with served_portal(tmp_path / "portal") as portal_env:
        env = clean_env(
            **portal_env,
            DAGSTER_HOME=str(tmp_path),
            CT_PIPELINES_HOME=str(tmp_path / "home"),
            CT_PIPELINES_CATALOG=str(SAMPLE_CATALOG_DIR),
        )
        runs = {d: start_run(d, env, tmp_path, tmp_path / f"{d}.log") for d in PUBLISHED}
        codes = {d: process.wait(timeout=540) for d, process in runs.items()}
    logs = {d: (tmp_path / f"{d}.log").read_text() for d in PUBLISHED}
    for dataset_id, code in codes.items():
        assert code == 0, logs[dataset_id][-3000:]
        assert not LOCK_ERROR.search(logs[dataset_id]), logs[dataset_id][-3000:]
        assert re.search(rf"^{dataset_id}\s+ok\s", logs[dataset_id], re.M), logs[dataset_id][-3000:]

    store = PortalStore(tmp_path / "portal")
    try:
        views = {v["name"]: v["id"] for v in store.list_views()}
        counts = sorted(store.row_count(view_id) for view_id in views.values())
    finally:
        store.close()
    assert counts == sorted(PUBLISHED.values())

    # Each dataset's file holds its own tables and state, and nothing of the other dataset.
    for dataset_id, rows in PUBLISHED.items():
        path = tmp_path / "home" / "warehouse" / f"{dataset_id}.duckdb"
        with duckdb.connect(str(path), read_only=True) as con:
            tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
            stages = con.execute(
                "SELECT DISTINCT dataset_id, stage, status FROM meta.stage_results ORDER BY stage"
            ).fetchall()
            published = con.execute(f"SELECT count(*) FROM protect__{dataset_id}").fetchone()[0]
        other = next(d for d in PUBLISHED if d != dataset_id)
        assert not any(other in name for name in tables), tables
        assert {s[1] for s in stages} == {"ingest", "validate", "standardize", "protect", "publish"}
        assert {(s[0], s[2]) for s in stages} == {(dataset_id, "ok")}
        assert published == rows


HOLD_PORTAL = """
import sys
from pathlib import Path
from ct_pipelines.portal.store import PortalStore
store = PortalStore(Path(sys.argv[1]))
print("holding", flush=True)
sys.stdin.readline()
store.close()
"""


def test_a_run_waits_for_the_local_portals_data_held_by_another_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Without CT_PORTAL_DOMAIN each run starts the embedded portal on one data folder: a second run
    waits for the first to let go of it instead of failing on its lock."""
    from ct_pipelines.core.settings import load_settings
    from ct_pipelines.orchestration.resources import PortalResource

    monkeypatch.setenv("CT_PIPELINES_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CT_PIPELINES_PORTAL_DATA", str(tmp_path / "portal"))
    (tmp_path / "portal").mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_PORTAL, str(tmp_path / "portal")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    portals: list = []
    try:
        assert holder.stdout.readline().strip() == "holding"
        waiter = threading.Thread(
            target=lambda: portals.append(PortalResource._wait_for_local_store(load_settings()))
        )
        waiter.start()
        holder.stdin.write("release\n")
        holder.stdin.flush()
        waiter.join(timeout=300)
        assert len(portals) == 1 and portals[0].store.list_views() == []
    finally:
        for portal in portals:
            portal.stop()
        holder.kill()
        holder.wait()


def test_the_warehouse_resource_hands_each_dataset_its_file_and_closes_it_when_a_stage_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from ct_pipelines.orchestration.resources import WarehouseResource

    monkeypatch.setenv("CT_PIPELINES_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CT_PIPELINES_WAREHOUSE", raising=False)
    resource = WarehouseResource()
    with pytest.raises(RuntimeError, match="stage failed"), resource.connection("first_ds") as con:
        con.execute("CREATE TABLE ingest__first_ds AS SELECT 7 AS n")
        raise RuntimeError("stage failed")
    with pytest.raises(duckdb.ConnectionException):
        con.execute("SELECT 1")  # closed by the resource
    with resource.connection("second_ds") as other:
        other.execute("CREATE TABLE ingest__second_ds AS SELECT 8 AS n")
    # Read-only here would be refused if the process still had the file open read-write.
    for dataset_id, n in [("first_ds", 7), ("second_ds", 8)]:
        path = tmp_path / "home" / "warehouse" / f"{dataset_id}.duckdb"
        with duckdb.connect(str(path), read_only=True) as check:
            assert check.execute(f"SELECT n FROM ingest__{dataset_id}").fetchall() == [(n,)]
