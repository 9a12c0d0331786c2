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
