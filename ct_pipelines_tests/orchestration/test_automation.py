"""Issue #7 acceptance at the Dagster level: schedules, sensors, freshness policies and the portal audit,
evaluated against definitions built from a catalog folder written in each test, with a loopback
portal, SMTP receiver and webhook receiver."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
import pytest
import yaml
from dagster._utils.schedules import cron_string_iterator

from ct_pipelines.automation.catalog_generator import generate_catalog_views
from ct_pipelines.automation.frequency import frequency_timedelta
from ct_pipelines.orchestration import automation
from ct_pipelines.orchestration.assets import dataset_asset_keys
from ct_pipelines.orchestration.component import build_definitions
from ct_pipelines.orchestration.resources import NotifierResource, PortalResource, WarehouseResource
from ct_pipelines.portal.local import LocalPortal
from ct_pipelines_tests.support.receivers import SmtpInbox, WebhookServer, smtp_server, webhook_server
from ct_pipelines_tests.support.sftp import PASSWORD as SFTP_PASSWORD
from ct_pipelines_tests.support.sftp import USERNAME as SFTP_USERNAME
from ct_pipelines_tests.support.sftp import sftp_server

REPO_ROOT = Path(__file__).resolve().parents[2]
NEW_YORK = ZoneInfo("America/New_York")
T0 = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)  # a Wednesday
LATE_VIEW, MONTHLY_VIEW, ADHOC_VIEW, MISSING_VIEW = "late-wk01", "mont-hl01", "adho-c001", "gone-0001"


# ----------------------------------------------------------------------------------------- helpers
def _dataset(
    dataset_id: str, frequency: str, source_path: str, portal_id: str | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": dataset_id,
        "title": f"Test dataset {dataset_id}",
        "description": "A dataset written by an orchestration test.",
        "agency": "Department of Testing",
        "category": "Government",
        "update_frequency": frequency,
        "contact": "tester@ct.gov",
        "source": {"path": source_path},
        "columns": [{"source": "Town", "description": "Town name"}],
    }
    if portal_id:
        data["portal"] = {"id": portal_id}
    return data


def _write_catalog(folder: Path, datasets: list[dict[str, Any]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for data in datasets:
        (folder / f"{data['id']}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return folder


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Project folders under tmp_path, read at call time by ``load_settings``; no alert or portal
    settings leak in from the machine running the tests."""
    for name in list(os.environ):
        if name.startswith(("CT_ALERT_", "CT_PORTAL_", "CT_PIPELINES_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CT_PIPELINES_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CT_PIPELINES_CATALOG", str(tmp_path / "catalog"))
    monkeypatch.setenv("CT_PIPELINES_LANDING", str(tmp_path / "landing"))
    (tmp_path / "landing").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


def _set_clock(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    monkeypatch.setattr(automation, "clock", lambda: moment)


@pytest.fixture
def receivers(env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SmtpInbox, WebhookServer]]:
    """A loopback SMTP server and webhook, wired into the notifier through the CT_ALERT_* variables."""
    inbox = SmtpInbox()
    with smtp_server(inbox) as port, webhook_server() as hook:
        monkeypatch.setenv("CT_ALERT_WEBHOOK_URL", hook.url("/hooks/T0KEN"))
        monkeypatch.setenv("CT_ALERT_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("CT_ALERT_SMTP_PORT", str(port))
        monkeypatch.setenv("CT_ALERT_EMAIL_TO", "data.officer@ct.gov")
        monkeypatch.setenv("CT_ALERT_EMAIL_FROM", "ct-pipelines@ct.gov")
        yield inbox, hook


def _sensor(defs: dg.Definitions, name: str) -> dg.SensorDefinition:
    return defs.get_repository_def().get_sensor_def(name)


def _portal_resource(portal: LocalPortal) -> PortalResource:
    return PortalResource(
        domain=portal.domain, scheme="http", username=portal.username, password=portal.password
    )


# --------------------------------------------------------------------------------------- schedules
def test_schedules_follow_each_datasets_frequency_and_share_one_job(env: Path):
    catalog = _write_catalog(
        env / "catalog",
        [
            _dataset("weekly_requests", "Weekly", "weekly_requests*.csv"),
            _dataset("weekly_visits", "Weekly", "weekly_visits.csv"),
            _dataset("daily_counts", "Daily", "daily_counts.csv"),
            _dataset("adhoc_survey", "As needed", "adhoc_survey.csv"),
            _dataset("old_census", "Not updated (historical only)", "old_census.csv"),
        ],
    )
    defs = build_definitions(str(catalog))
    repo = defs.get_repository_def()
    schedules = {s.name: s for s in repo.schedule_defs}
    dataset_schedules = {name: s for name, s in schedules.items() if s.job_name == automation.PUBLISH_JOB}
    assert set(dataset_schedules) == {"weekly_datasets", "daily_datasets"}
    assert all(s.execution_timezone == "America/New_York" for s in schedules.values())

    start = datetime(2026, 3, 4, 12, 0, tzinfo=NEW_YORK)  # Wednesday noon
    expectations = {
        "weekly_datasets": (["weekly_requests", "weekly_visits"], timedelta(weeks=1)),
        "daily_datasets": (["daily_counts"], timedelta(days=1)),
    }
    for name, (dataset_ids, spacing) in expectations.items():
        schedule = schedules[name]
        fires = list(
            islice(cron_string_iterator(start.timestamp(), schedule.cron_schedule, "America/New_York"), 4)
        )
        assert all(b - a == spacing for a, b in zip(fires, fires[1:], strict=False)), fires
        assert all(f.astimezone(NEW_YORK).hour == 6 for f in fires)
        data = schedule.evaluate_tick(dg.build_schedule_context(scheduled_execution_time=fires[0]))
        # One run per dataset, tagged so the run queue keeps one run per dataset and a few per portal.
        assert [r.tags["ct/dataset"] for r in data.run_requests] == dataset_ids
        for request, dataset_id in zip(data.run_requests, dataset_ids, strict=True):
            assert set(request.asset_selection) == set(dataset_asset_keys(dataset_id))
            assert request.tags["ct/portal"] == "local" and request.run_key.startswith(f"{dataset_id}:")
            # The selection must be runnable by the shared job (a key outside it would fail at launch).
            repo.get_job(automation.PUBLISH_JOB).get_subset(asset_selection=set(request.asset_selection))
    weekly_fires = list(
        islice(
            cron_string_iterator(
                start.timestamp(), schedules["weekly_datasets"].cron_schedule, "America/New_York"
            ),
            2,
        )
    )
    assert [f.astimezone(NEW_YORK).strftime("%a") for f in weekly_fires] == ["Mon", "Mon"]

    # Not one job per dataset: five datasets, one publishing job, which every dataset schedule targets.
    job_names = {job.name for job in repo.get_all_jobs() if not job.name.startswith("__")}
    print(f"datasets=5 dataset_schedules={len(dataset_schedules)} jobs={sorted(job_names)}")
    assert job_names == {automation.PUBLISH_JOB, "portal_audit_job"}
    assert {s.job_name for s in dataset_schedules.values()} == {automation.PUBLISH_JOB}


# ---------------------------------------------------------------------------------- landing sensor
def _landing_ticker(
    sensor: dg.SensorDefinition, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> Callable[[datetime], dg.SensorResult]:
    """Evaluate the sensor at a chosen time, carrying the cursor from tick to tick."""
    cursor: list[str | None] = [None]

    def tick(moment: datetime) -> dg.SensorResult:
        _set_clock(monkeypatch, moment)
        context = dg.build_sensor_context(
            cursor=cursor[0], instance=instance, resources={"notifier": NotifierResource()}
        )
        result = sensor.evaluate_tick(context)
        cursor[0] = result.cursor
        return result

    return tick


def _land(path: Path, text: str, moment: datetime) -> None:
    path.write_text(text)
    os.utime(path, (moment.timestamp(), moment.timestamp()))


def test_landing_file_starts_one_run_per_settled_file_version(
    env: Path, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
):
    catalog = _write_catalog(
        env / "catalog",
        [
            _dataset("weekly_requests", "Weekly", "weekly_requests*.csv"),
            _dataset("adhoc_survey", "As needed", "adhoc_survey.csv"),
        ],
    )
    tick = _landing_ticker(_sensor(build_definitions(str(catalog)), "landing_files"), instance, monkeypatch)
    landed = env / "landing" / "weekly_requests_2026-03.csv"
    _land(landed, "Town\nHartford\n", T0 - timedelta(hours=2))

    first = tick(T0)  # first sighting: not yet known to be settled
    assert first.run_requests == []
    (observation,) = first.asset_events
    assert isinstance(observation, dg.AssetObservation)
    assert observation.asset_key == dg.AssetKey(["weekly_requests", "ingest"])
    assert observation.metadata["landing_file_age_hours"].value == 2.0

    second = tick(T0 + timedelta(seconds=60))  # same size and mtime a settle interval later
    (request,) = second.run_requests
    size, mtime_ns = landed.stat().st_size, landed.stat().st_mtime_ns
    assert request.run_key == f"weekly_requests:weekly_requests_2026-03.csv:{size}:{mtime_ns}"
    assert set(request.asset_selection) == set(dataset_asset_keys("weekly_requests"))
    assert request.tags["ct/landing_file"] == "weekly_requests_2026-03.csv"

    third = tick(T0 + timedelta(seconds=120))
    assert third.run_requests == []
    assert len(third.asset_events) == 1  # freshness is still observed on every tick

    _land(landed, "Town\nHartford\nNew Haven\n", T0 + timedelta(seconds=150))
    assert tick(T0 + timedelta(seconds=180)).run_requests == []
    (changed,) = tick(T0 + timedelta(seconds=240)).run_requests
    assert changed.run_key != request.run_key
    assert tick(T0 + timedelta(seconds=300)).run_requests == []


def test_a_file_still_growing_is_not_picked_up_until_it_settles(
    env: Path, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
):
    data = _dataset("weekly_requests", "Weekly", "weekly_requests*.csv")
    data["source"]["settle_seconds"] = 120
    catalog = _write_catalog(env / "catalog", [data])
    tick = _landing_ticker(_sensor(build_definitions(str(catalog)), "landing_files"), instance, monkeypatch)
    landed = env / "landing" / "weekly_requests.csv"
    rows = "Town\n"
    for second in (0, 60, 120, 180):  # an upload that grows a little at every tick
        rows += "Hartford\n" * 1000
        _land(landed, rows, T0 + timedelta(seconds=second - 1))
        assert tick(T0 + timedelta(seconds=second)).run_requests == []
    assert tick(T0 + timedelta(seconds=240)).run_requests == []  # unchanged for 60 s only: not 120 yet
    (request,) = tick(T0 + timedelta(seconds=300)).run_requests
    assert request.run_key.endswith(f":{len(rows)}:{landed.stat().st_mtime_ns}")
    assert [tick(T0 + timedelta(seconds=s)).run_requests for s in (360, 420)] == [[], []]


def test_a_ready_marker_or_an_atomic_rename_starts_the_run_at_once(
    env: Path, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
):
    marked = _dataset("marked_counts", "Weekly", "marked_*.csv")
    marked["source"]["ready_marker"] = ".done"
    renamed = _dataset("renamed_counts", "Weekly", "renamed.csv")
    renamed["source"]["settle_seconds"] = 0
    catalog = _write_catalog(env / "catalog", [marked, renamed])
    tick = _landing_ticker(_sensor(build_definitions(str(catalog)), "landing_files"), instance, monkeypatch)
    landing = env / "landing"
    _land(landing / "marked_01.csv", "Town\nHartford\n", T0 - timedelta(seconds=1))
    assert tick(T0).run_requests == []  # no marker yet, however long it waits
    assert tick(T0 + timedelta(hours=1)).run_requests == []
    _land(landing / "marked_01.csv.done", "", T0 + timedelta(hours=1))
    # An agency writes under a name the glob does not match, then renames the finished file in.
    _land(landing / "renamed.csv.part", "Town\nBristol\n", T0 + timedelta(hours=1))
    (landing / "renamed.csv.part").rename(landing / "renamed.csv")
    requests = tick(T0 + timedelta(hours=1, seconds=1)).run_requests
    assert sorted(r.tags["ct/dataset"] for r in requests) == ["marked_counts", "renamed_counts"]
    assert all(":marked_01.csv.done:" not in r.run_key for r in requests)  # the marker is not data
    assert tick(T0 + timedelta(hours=2)).run_requests == []


def test_the_landing_sensor_settles_files_on_a_remote_sftp_folder(
    env: Path, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
):
    served = env / "served"
    (served / "landing").mkdir(parents=True)
    catalog = _write_catalog(env / "catalog", [_dataset("remote_counts", "Weekly", "x*.csv")])
    tick = _landing_ticker(_sensor(build_definitions(str(catalog)), "landing_files"), instance, monkeypatch)
    with sftp_server(served) as server:
        monkeypatch.setenv("CT_PIPELINES_LANDING", server.url("/landing"))
        monkeypatch.setenv("CT_LANDING_SFTP_USERNAME", SFTP_USERNAME)
        monkeypatch.setenv("CT_LANDING_SFTP_PASSWORD", SFTP_PASSWORD)
        monkeypatch.setenv("CT_LANDING_SFTP_HOST_KEY", server.fingerprint)
        uploading = served / "landing" / "x_2026-03.csv"
        _land(uploading, "Town\n" + "Hartford\n" * 500, T0 - timedelta(seconds=1))
        assert tick(T0).run_requests == []
        _land(uploading, "Town\n" + "Hartford\n" * 1000, T0 + timedelta(seconds=59))  # still growing
        assert tick(T0 + timedelta(seconds=60)).run_requests == []
        (request,) = tick(T0 + timedelta(seconds=120)).run_requests
        size, mtime = uploading.stat().st_size, int(uploading.stat().st_mtime) * 1_000_000_000
        assert request.run_key == f"remote_counts:x_2026-03.csv:{size}:{mtime}"
        assert tick(T0 + timedelta(seconds=180)).run_requests == []
        monkeypatch.setenv("CT_LANDING_SFTP_PASSWORD", "wrong")  # an unreachable folder: no run, no alert
        assert tick(T0 + timedelta(seconds=240)).run_requests == []


# ---------------------------------------------------------------------------------- overdue sensor
def test_overdue_dataset_alerts_once_per_overdue_period(
    receivers, env: Path, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
):
    inbox, hook = receivers
    catalog = _write_catalog(
        env / "catalog",
        [
            _dataset("late_weekly", "Weekly", "late.csv", LATE_VIEW),  # deadline: 7 days x 1.2 = 8.4 days
            _dataset("on_time_monthly", "Monthly", "monthly.csv", MONTHLY_VIEW),
            _dataset("adhoc_survey", "As needed", "adhoc.csv", ADHOC_VIEW),
            _dataset("deleted_on_portal", "Weekly", "gone.csv", MISSING_VIEW),
        ],
    )
    sensor = _sensor(build_definitions(str(catalog)), "portal_overdue")
    updated = {
        LATE_VIEW: T0 - timedelta(days=10),
        MONTHLY_VIEW: T0 - timedelta(days=2),
        ADHOC_VIEW: T0 - timedelta(days=400),
    }
    with LocalPortal(env / "portal") as portal:
        portal.store.seed_views(
            [
                {"id": view_id, "name": view_id, "rowsUpdatedAt": int(moment.timestamp())}
                for view_id, moment in updated.items()
            ]
        )
        resources = {"portal": _portal_resource(portal), "notifier": NotifierResource()}
        cursor, delivered = None, []
        # (tick time, alerts expected at that tick): period 0 at T0, period 1 a week later.
        for moment, expected in [
            (T0, 1),
            (T0 + timedelta(hours=1), 0),
            (T0 + timedelta(days=7), 1),
            (T0 + timedelta(days=7, hours=1), 0),
        ]:
            _set_clock(monkeypatch, moment)
            before = len(hook.bodies)
            # PortalResource is a context-manager resource, so the context must be entered.
            with dg.build_sensor_context(cursor=cursor, instance=instance, resources=resources) as context:
                result = sensor.evaluate_tick(context)
            cursor = result.cursor
            assert len(hook.bodies) - before == expected, moment
            delivered.extend(hook.bodies[before:])

    assert len(inbox.messages) == 2 and len(hook.bodies) == 2
    assert {body["dataset_id"] for body in delivered} == {"late_weekly"}
    assert len({body["period_key"] for body in delivered}) == 2
    assert {m["X-CT-Alert-Key"] for m in inbox.messages} == {body["period_key"] for body in delivered}
    assert all(body["url"].endswith(f"/d/{LATE_VIEW}") for body in delivered)
    assert all(m["To"] == "data.officer@ct.gov" and "late_weekly" in m["Subject"] for m in inbox.messages)


def test_overdue_sensor_skips_without_a_configured_portal(env: Path, instance: dg.DagsterInstance):
    catalog = _write_catalog(env / "catalog", [_dataset("late_weekly", "Weekly", "late.csv", LATE_VIEW)])
    sensor = _sensor(build_definitions(str(catalog)), "portal_overdue")
    with dg.build_sensor_context(
        instance=instance, resources={"portal": PortalResource(), "notifier": NotifierResource()}
    ) as context:
        result = sensor.evaluate_tick(context)
    assert result.run_requests == [] and "CT_PORTAL_DOMAIN" in (result.skip_message or "")


# ------------------------------------------------------------------------------ run-failure sensor
def test_failed_run_sends_one_alert(receivers, env: Path, instance: dg.DagsterInstance):
    inbox, hook = receivers
    catalog = _write_catalog(env / "catalog", [_dataset("weekly_requests", "Weekly", "weekly_requests*.csv")])
    defs = build_definitions(str(catalog), with_automation=False)
    # No landing file: the raw asset fails with an ingest error, the way a real run fails.
    result = defs.resolve_job_def(automation.PUBLISH_JOB).execute_in_process(
        instance=instance, raise_on_error=False, asset_selection=[dg.AssetKey(["weekly_requests", "ingest"])]
    )
    assert not result.success
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failures",
        dagster_event=result.get_run_failure_event(),
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources={"notifier": NotifierResource()},
    ).for_run_failure()
    automation.run_failure_alerts(context)

    (body,) = hook.bodies
    assert body["kind"] == "run_failure" and body["dataset_id"] == "weekly_requests"
    assert result.run_id in body["message"] and automation.PUBLISH_JOB in body["title"]
    # The alert says why, in the stage's own words: the landing file pattern that matched nothing.
    assert "weekly_requests:" in body["message"] and "weekly_requests*.csv" in body["message"]
    (message,) = inbox.messages
    assert message["X-CT-Alert-Key"] == f"run_failure:{result.run_id}"


# ---------------------------------------------------------------------------------- portal audit
def test_portal_audit_asset_reports_the_generators_exact_totals(env: Path, monkeypatch: pytest.MonkeyPatch):
    views, expected = generate_catalog_views(120, seed=5, now=T0)
    _set_clock(monkeypatch, T0)
    with LocalPortal(env / "portal") as portal:
        portal.store.seed_views(views)
        result = dg.materialize(
            [automation.portal_audit],
            resources={
                "portal": _portal_resource(portal),
                "warehouse": WarehouseResource(),
            },
        )
    assert result.success
    # The audit's snapshots live in a file of their own, beside (never inside) the datasets' files.
    with duckdb.connect(str(env / "home" / "warehouse" / "_portal_audit.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM audit_snapshots").fetchone()[0] == 1
    (materialization,) = result.asset_materializations_for_node("portal_audit")
    metadata = {key: value.value for key, value in materialization.metadata.items()}
    counts = {key: value for key, value in expected.items() if key != "by_agency"}
    assert {key: metadata[key] for key in counts} == counts
    by_agency = {
        row["agency"]: {k: row[k] for k in ("datasets", "up_to_date", "metadata_complete")}
        for row in metadata["by_agency"]
    }
    assert by_agency == expected["by_agency"]

    csv_path = Path(metadata["report_csv_path"])
    assert csv_path.is_relative_to(env / "home" / "reports") and csv_path.is_file()
    assert len(csv_path.read_text().splitlines()) == 1 + expected["datasets"]


# ------------------------------------------------------------------------- freshness and instance
def test_portal_assets_with_a_cadence_have_a_freshness_policy_with_20pct_tolerance(env: Path):
    frequencies = {
        "weekly_requests": "Weekly",
        "daily_counts": "Daily",
        "monthly_ev": "Monthly",
        "weekday_feed": "Every weekday",
        "adhoc_survey": "As needed",
        "vague": "Other",
    }
    catalog = _write_catalog(env / "catalog", [_dataset(i, f, f"{i}.csv") for i, f in frequencies.items()])
    graph = build_definitions(str(catalog)).get_repository_def().asset_graph
    for dataset_id, frequency in frequencies.items():
        keys = dataset_asset_keys(dataset_id)
        assert all(graph.get(key).freshness_policy is None for key in keys[:-1])
        policy_ = graph.get(keys[-1]).freshness_policy
        gap = frequency_timedelta(frequency)
        if gap is None:
            assert policy_ is None, dataset_id
            continue
        assert policy_.fail_window.to_timedelta() == gap * 1.2, dataset_id
        assert policy_.warn_window.to_timedelta() == gap, dataset_id


def test_instance_config_runs_schedules_sensors_and_freshness(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """dagster.yaml's keys are accepted by this Dagster version and start the daemons we rely on."""
    (tmp_path / "dagster_home").mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", tmp_path / "dagster_home" / "dagster.yaml")
    monkeypatch.chdir(tmp_path)  # the storage folders in dagster.yaml are relative
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    with dg.DagsterInstance.get() as configured:
        daemons = set(configured.get_required_daemon_types())
        assert {"SCHEDULER", "SENSOR", "FRESHNESS_DAEMON", "QUEUED_RUN_COORDINATOR"} <= daemons
        queue = configured.run_coordinator.get_run_queue_config()
        # No global one-run slot: runs of different datasets go together, one per dataset, a few per portal.
        assert queue.max_concurrent_runs == 4
        limits = {limit["key"]: limit for limit in queue.tag_concurrency_limits}
        assert limits["ct/dataset"] == {
            "key": "ct/dataset",
            "value": {"applyLimitPerUniqueValue": True},
            "limit": 1,
        }
        assert limits["ct/portal"]["limit"] == 4 and limits["ct/portal"]["value"] == {
            "applyLimitPerUniqueValue": True
        }


def test_definitions_validate_for_the_workspace(tmp_path: Path):
    """``dagster definitions validate`` loads the real code location (bundled sample catalog)."""
    (tmp_path / "dagster_home").mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", tmp_path / "dagster_home" / "dagster.yaml")
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("CT_", "DAGSTER_"))}
    child_env |= {"DAGSTER_HOME": str(tmp_path / "dagster_home"), "CT_PIPELINES_HOME": str(tmp_path / "home")}
    dagster_cli = Path(sys.executable).with_name("dagster")
    completed = subprocess.run(
        [str(dagster_cli), "definitions", "validate", "-w", str(REPO_ROOT / "workspace.yaml")],
        cwd=tmp_path,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    assert "All code locations passed validation" in completed.stdout + completed.stderr
