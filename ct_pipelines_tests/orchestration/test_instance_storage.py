"""The local instance's SQLite files are written without a flush per commit; other SQLite files keep it."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from ct_pipelines.orchestration.instance_storage import LocalSqliteStorage
from ct_pipelines_tests.support.served import REPO


def _synchronous(path: Path) -> int:
    engine = sa.create_engine(f"sqlite:///{path}", poolclass=sa.pool.NullPool)
    with engine.connect() as con:
        return con.execute(sa.text("PRAGMA synchronous")).scalar_one()


def test_project_instance_uses_the_unflushed_storage_only_for_its_own_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    (tmp_path / "home").mkdir()
    (tmp_path / "work").mkdir()
    shutil.copy(REPO / "dagster.yaml", tmp_path / "home" / "dagster.yaml")  # as the CLI advises
    monkeypatch.chdir(tmp_path / "work")  # a command started from another folder
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    with dg.DagsterInstance.get() as instance:
        storage = instance.get_ref().storage_data
        assert storage.class_name == LocalSqliteStorage.__name__
        assert storage.module_name == LocalSqliteStorage.__module__
        run = instance.create_run_for_job(dg.GraphDefinition("noop").to_job(), run_id="a" * 32)
        assert instance.get_run_by_id(run.run_id) is not None
        compute_logs = Path(instance.compute_log_manager._base_dir)
        artifacts = Path(instance.storage_directory())
    home = tmp_path / "home" / ".dagster"  # the relative base_dirs of dagster.yaml, under DAGSTER_HOME
    assert _synchronous(home / "storage" / "history" / "runs.db") == 0  # OFF
    assert (compute_logs, artifacts.parent) == (home / "compute_logs", home / "artifacts")
    assert not (tmp_path / "work" / ".dagster").exists()  # once the runs were stored here
    assert _synchronous(tmp_path / "elsewhere.db") == 2  # FULL, SQLite's default, outside the storage


def test_event_log_keeps_one_engine_per_file_and_every_event_reaches_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from ct_pipelines.orchestration.instance_storage import ENGINES_KEPT, LocalEventLogStorage

    (tmp_path / "home").mkdir()
    shutil.copy(REPO / "dagster.yaml", tmp_path / "home" / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))

    @dg.asset(check_specs=[dg.AssetCheckSpec("positive", asset="numbers")])
    def numbers():
        yield dg.Output(3)
        yield dg.AssetCheckResult(passed=True, check_name="positive")

    job = dg.Definitions(assets=[numbers]).resolve_implicit_global_asset_job_def()
    runs = ENGINES_KEPT + 2
    with dg.DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        assert isinstance(storage, LocalEventLogStorage)
        for _ in range(runs):
            assert job.execute_in_process(instance=instance).success
        assert len(storage._engines) == ENGINES_KEPT  # the index and the latest runs, not one per run
    with dg.DagsterInstance.get() as reader:  # another instance reads what this one wrote
        records = reader.fetch_materializations(dg.AssetKey("numbers"), limit=runs + 1).records
        checks = reader.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(dg.AssetKey("numbers"), "positive"), limit=runs + 1
        )
    assert len(records) == runs
    assert len(checks) == runs and all(c.status.value == "SUCCEEDED" for c in checks)
