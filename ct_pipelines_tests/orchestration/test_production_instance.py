"""Issue 14: the production instance (deploy/dagster.production.yaml) on a real PostgreSQL server.

A sample dataset is materialized through the runner, and a schedule and a sensor are ticked the way the
daemon ticks them; every run, materialization, tick and queued run is then read back from Postgres."""

from __future__ import annotations

import json
import logging
import shutil
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster._core.test_utils import InProcessTestWorkspaceLoadTarget, freeze_time
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._daemon.sensor import execute_sensor_iteration
from dagster._scheduler.scheduler import launch_scheduled_runs
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from ct_pipelines.core.settings import SAMPLES_DIR
from ct_pipelines.orchestration.assets import asset_key
from ct_pipelines.orchestration.runner import run_catalog
from ct_pipelines_tests.support.postgres import PostgresServer, query

REPO_ROOT = Path(__file__).resolve().parents[2]
STAGES = ["ingest", "validate", "standardize", "protect", "publish"]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Project folders under tmp_path, the sample catalog, and an empty landing folder."""
    for name in ("CT_PORTAL_DOMAIN", "CT_ALERT_WEBHOOK_URL", "CT_ALERT_SMTP_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CT_PIPELINES_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CT_PIPELINES_CATALOG", str(SAMPLES_DIR / "catalog"))
    monkeypatch.setenv("CT_PIPELINES_LANDING", str(tmp_path / "landing"))
    (tmp_path / "landing").mkdir()
    return tmp_path


def test_production_yaml_stores_everything_in_postgres_and_queues_runs(pg_instance: dg.DagsterInstance):
    assert isinstance(pg_instance.run_storage, PostgresRunStorage)
    assert isinstance(pg_instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(pg_instance.schedule_storage, PostgresScheduleStorage)
    coordinator = pg_instance.run_coordinator
    assert isinstance(coordinator, QueuedRunCoordinator)
    config = coordinator.inst_data.config_dict  # type: ignore[union-attr]
    assert config["max_concurrent_runs"] == 8  # runs of different datasets go side by side
    limits = {limit["key"]: limit for limit in config["tag_concurrency_limits"]}
    assert limits["ct/dataset"] == {
        "key": "ct/dataset",
        "value": {"applyLimitPerUniqueValue": True},
        "limit": 1,
    }
    assert limits["ct/portal"]["limit"] == 4


def test_materialization_is_recorded_in_postgres(
    project: Path, pg_instance: dg.DagsterInstance, pg_database: PostgresServer
):
    shutil.copy(SAMPLES_DIR / "landing" / "deep_fishing_licenses_2024.csv", project / "landing")
    summaries, result = run_catalog(
        str(SAMPLES_DIR / "catalog"), ["deep_fishing_licenses"], instance=pg_instance
    )
    assert result.success
    assert [(s.dataset_id, s.rows_in, s.rows_published) for s in summaries] == [
        ("deep_fishing_licenses", 100, 100)
    ]

    [(status, job_name)] = query(
        pg_database, "SELECT status, pipeline_name FROM runs WHERE run_id = %s", (result.run_id,)
    )
    assert (status, job_name) == ("SUCCESS", "publish_datasets")
    keys = query(
        pg_database,
        "SELECT asset_key FROM event_logs WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION'",
        (result.run_id,),
    )
    assert sorted(json.loads(k)[-1] for (k,) in keys) == sorted(STAGES)
    assert all(json.loads(k)[0] == "deep_fishing_licenses" for (k,) in keys)
    # Read back through Dagster too: the publish materialization carries the rows sent to the portal.
    event = pg_instance.get_latest_materialization_event(asset_key("deep_fishing_licenses", "publish"))
    assert event is not None and event.run_id == result.run_id
    print(f"postgres runs=1 materializations={len(keys)}")


def _workspace(instance: dg.DagsterInstance) -> WorkspaceProcessContext:
    """The code location loaded in process, as the daemon would load it from workspace.yaml."""
    origin = LoadableTargetOrigin(module_name="ct_pipelines.definitions", working_directory=str(REPO_ROOT))
    target = InProcessTestWorkspaceLoadTarget(
        InProcessCodeLocationOrigin(origin, location_name="ct_pipelines")
    )
    return WorkspaceProcessContext(instance, target)


def test_schedule_and_sensor_ticks_are_stored_in_postgres(
    project: Path,
    pg_instance: dg.DagsterInstance,
    pg_database: PostgresServer,
    monkeypatch: pytest.MonkeyPatch,
):
    from ct_pipelines.orchestration import automation

    logger = logging.getLogger("ct_pipelines_tests.daemon")
    started = datetime(2026, 3, 8, 12, 0, tzinfo=UTC)  # a Sunday; the weekly schedule fires Monday 06:00 ET
    with _workspace(pg_instance) as workspace:
        location = next(iter(workspace.create_request_context().get_code_location_entries().values()))
        assert location.code_location, location.load_error
        repo = location.code_location.get_repository("__repository__")
        with freeze_time(started):
            pg_instance.start_schedule(repo.get_schedule("weekly_datasets"))
            pg_instance.start_sensor(repo.get_sensor("landing_files"))
        with freeze_time(datetime(2026, 3, 9, 12, 0, tzinfo=UTC)):
            list(launch_scheduled_runs(workspace, logger, datetime(2026, 3, 9, 12, 0, tzinfo=UTC), {}))
            for name in ("deep_fishing_licenses_2024.csv", "dss_interpreter_requests.csv"):
                shutil.copy(SAMPLES_DIR / "landing" / name, project / "landing")
            monkeypatch.setattr(automation, "clock", lambda: datetime(2026, 3, 9, 12, 0, tzinfo=UTC))
            list(execute_sensor_iteration(workspace, logger, None, None))  # first sighting: settling
        with freeze_time(datetime(2026, 3, 9, 12, 2, tzinfo=UTC)):  # unchanged past settle_seconds (60 s)
            monkeypatch.setattr(automation, "clock", lambda: datetime(2026, 3, 9, 12, 2, tzinfo=UTC))
            list(execute_sensor_iteration(workspace, logger, None, None))

    ticks = query(pg_database, "SELECT type, status, timestamp FROM job_ticks ORDER BY type, timestamp")
    assert [(kind, status) for kind, status, _ in ticks] == [
        ("SCHEDULE", "SUCCESS"),
        ("SENSOR", "SKIPPED"),
        ("SENSOR", "SUCCESS"),
    ]
    runs = query(pg_database, "SELECT run_id, status, run_body FROM runs ORDER BY create_timestamp")
    assert len(runs) == 3 and {status for _, status, _ in runs} == {"QUEUED"}
    tags = [json.loads(body)["tags"] for _, _, body in runs]
    assert [t.get("ct/trigger") for t in tags] == ["schedule", "landing_file", "landing_file"]
    assert sorted(t["ct/dataset"] for t in tags[1:]) == ["deep_fishing_licenses", "dss_interpreter_requests"]
    scheduled = pg_instance.get_run_by_id(runs[0][0])
    assert scheduled is not None and {k.path[0] for k in scheduled.asset_selection or ()} == {
        "dss_interpreter_requests"
    }
    [(running,)] = query(pg_database, "SELECT count(*) FROM instigators WHERE status = 'RUNNING'")
    assert running == 2
    states = {s.name: s.status.value for s in pg_instance.all_instigator_state()}
    assert states == {"landing_files": "RUNNING", "weekly_datasets": "RUNNING"}
    print(f"postgres ticks={len(ticks)} queued_runs={len(runs)}")
