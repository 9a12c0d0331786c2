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
    shutil.copy(REPO / "dagster.yaml", tmp_path / "home" / "dagster.yaml")
    monkeypatch.chdir(tmp_path)  # the storage folder in dagster.yaml is relative
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    with dg.DagsterInstance.get() as instance:
        storage = instance.get_ref().storage_data
        assert storage.class_name == LocalSqliteStorage.__name__
        assert storage.module_name == LocalSqliteStorage.__module__
        run = instance.create_run_for_job(dg.GraphDefinition("noop").to_job(), run_id="a" * 32)
        assert instance.get_run_by_id(run.run_id) is not None
    assert _synchronous(tmp_path / ".dagster" / "storage" / "history" / "runs.db") == 0  # OFF
    assert _synchronous(tmp_path / "elsewhere.db") == 2  # FULL, SQLite's default, outside the storage
