"""Schedules, sensors and the portal-wide audit, all driven by the catalog.

One job (``publish_datasets``) serves every dataset: schedules and sensors pick the assets of the
datasets they concern through the run request, so adding a dataset adds no job.
"""

import json
import os
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import requests

from ct_pipelines.automation.alerts import landing_stale_alerts, overdue_alerts, run_failure_alert
from ct_pipelines.automation.frequency import SCHEDULE_TIMEZONE, frequency_cron, frequency_timedelta
from ct_pipelines.automation.notify import select_unsent
from ct_pipelines.catalog.models import Dataset
from ct_pipelines.core.settings import Settings, load_settings
from ct_pipelines.ingest.errors import IngestError
from ct_pipelines.ingest.landing import find_newest, settle
from ct_pipelines.orchestration.assets import asset_key, dataset_asset_keys
from ct_pipelines.orchestration.resources import NotifierResource, PortalResource, WarehouseResource
from ct_pipelines.orchestration.results import to_metadata
from ct_pipelines.publish.connection import RetryPolicy

PUBLISH_JOB = "publish_datasets"
AUDIT_KEY = dg.AssetKey(["portal_audit"])
MAX_REMEMBERED_ALERTS = 5000
#: A sensor tick must finish well inside Dagster's 60 s evaluation limit, so portal reads from sensors
#: use a short timeout and give up on a dataset (retrying next tick) instead of waiting out the
#: publisher's long retry policy.
SENSOR_PORTAL_TIMEOUT_SECONDS = 15.0
SENSOR_PORTAL_RETRIES = RetryPolicy(attempts=1, backoff_factor=0.5, backoff_max=2.0)


def _utc_now() -> datetime:
    return datetime.now(UTC)


#: The sensors' and the audit's notion of "now"; tests replace it to tick at chosen times.
clock: Callable[[], datetime] = _utc_now


def portal_tag() -> str:
    """The portal a run publishes to, as a tag value: its domain, or ``local`` for the embedded portal."""
    domain = os.environ.get("CT_PORTAL_DOMAIN") or "local"
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in domain)[:63]


def dataset_run_tags(dataset_id: str) -> dict[str, str]:
    """Tags of a single-dataset run. ``dagster.yaml`` limits runs by them: one run per ``ct/dataset`` at a
    time (two would write the same file), and a few per ``ct/portal`` (its rate limits)."""
    return {"ct/dataset": dataset_id, "ct/portal": portal_tag()}


def freshness_policy(dataset: Dataset, tolerance: float = 0.2) -> dg.FreshnessPolicy | None:
    """Fail when the portal copy is older than the declared frequency plus tolerance; warn at the frequency."""
    gap = frequency_timedelta(dataset.update_frequency)
    if gap is None:
        return None
    return dg.FreshnessPolicy.time_window(fail_window=gap * (1 + tolerance), warn_window=gap)


def publish_job() -> "dg.JobDefinition":
    """Every dataset's assets (all but the portal audit). Selecting by group would cost time in proportion
    to groups x assets when the definitions load; subtracting one key does not."""
    return dg.define_asset_job(
        PUBLISH_JOB,
        selection=dg.AssetSelection.all() - dg.AssetSelection.assets(AUDIT_KEY),
        description="Ingest, validate, standardize, protect and publish datasets.",
    )


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text.lower()).strip("_")


def frequency_schedules(datasets: list[Dataset]) -> list[dg.ScheduleDefinition]:
    """One schedule per declared frequency (at most ten), each requesting just its datasets' assets."""
    by_cron: dict[tuple[str, str], list[Dataset]] = defaultdict(list)
    for dataset in datasets:
        cron = frequency_cron(dataset.update_frequency)
        if cron:
            by_cron[(str(dataset.update_frequency), cron)].append(dataset)
    schedules = []
    for (frequency, cron), members in sorted(by_cron.items()):
        ids_here = [d.id for d in members]
        ids = ", ".join(ids_here)

        def _evaluate(
            context: dg.ScheduleEvaluationContext, ids_here: list[str] = ids_here
        ) -> Iterator[dg.RunRequest]:
            # One run per dataset: they run side by side (each writes its own file), and a slow one
            # holds up no other.
            tick = context.scheduled_execution_time.isoformat() if context.scheduled_execution_time else ""
            for dataset_id in ids_here:
                yield dg.RunRequest(
                    run_key=f"{dataset_id}:{tick}",
                    asset_selection=dataset_asset_keys(dataset_id),
                    tags={"ct/trigger": "schedule", **dataset_run_tags(dataset_id)},
                )

        schedules.append(
            dg.ScheduleDefinition(
                name=f"{_slug(frequency)}_datasets",
                cron_schedule=cron,
                execution_timezone=SCHEDULE_TIMEZONE,
                job_name=PUBLISH_JOB,
                execution_fn=_evaluate,
                description=f"Refresh datasets declared to update {frequency}: {ids}",
                default_status=dg.DefaultScheduleStatus.STOPPED,
            )
        )
    return schedules


def _load_cursor(raw: str | None) -> dict:
    return json.loads(raw) if raw else {"files": {}, "seen": {}, "alerts": []}


def _remember(cursor: dict, keys: list[str]) -> None:
    cursor["alerts"] = (cursor.get("alerts", []) + keys)[-MAX_REMEMBERED_ALERTS:]


def _landing_check(
    context: dg.SensorEvaluationContext, dataset: Dataset, settings: Settings, cursor: dict, now: datetime
) -> tuple[dg.RunRequest | None, dg.AssetObservation | None, datetime | None] | None:
    """One dataset's newest landing file (shared with ingest): a run request once that version is ready
    (settled, marked or renamed into place; see ingest/landing.py), its observation and its mtime;
    None when the folder cannot be read this tick (then no staleness alert either)."""
    try:
        found = find_newest(settings, dataset.ingest)
    except IngestError as exc:  # a path outside the landing folder, an unreachable server: next tick
        context.log.warning(f"{dataset.id}: {exc}")
        return None
    if found is None:
        cursor["seen"].pop(dataset.id, None)
        return None, None, None
    modified = datetime.fromtimestamp(found.mtime_ns / 1e9, UTC)
    observation = dg.AssetObservation(
        asset_key=asset_key(dataset.id, "ingest"),
        metadata=to_metadata(
            {
                "landing_file_path": found.location,
                "landing_file_modified": modified.isoformat(),
                "landing_file_age_hours": round((now - modified).total_seconds() / 3600, 1),
            }
        ),
    )
    ready, cursor["seen"][dataset.id] = settle(
        found, dataset.ingest, cursor["seen"].get(dataset.id), now.timestamp()
    )
    if not ready or cursor["files"].get(dataset.id) == found.version:
        return None, observation, modified
    cursor["files"][dataset.id] = found.version
    request = dg.RunRequest(
        run_key=f"{dataset.id}:{found.version}",
        asset_selection=dataset_asset_keys(dataset.id),
        tags={
            "ct/trigger": "landing_file",
            "ct/landing_file": found.name,
            **dataset_run_tags(dataset.id),
        },
    )
    return request, observation, modified


def landing_sensor(datasets: list[Dataset]) -> dg.SensorDefinition:
    """A landing file that has finished arriving starts exactly one run of its dataset's assets (run key =
    path, size and modification time), and a stale landing file raises an alert.

    "Finished" is the dataset's rule (ingest/landing.py): by default the file's size and mtime are the
    same at two ticks ``ingest.settle_seconds`` apart (the first sighting of each version is kept in the
    cursor); with ``ingest.ready_marker`` its marker file is there; ``settle_seconds: 0`` means agencies
    rename finished files into place. Local folders and remote ones (sftp://, s3://) alike."""

    @dg.sensor(
        name="landing_files",
        job_name=PUBLISH_JOB,
        minimum_interval_seconds=60,
        description="Starts a dataset's run when its landing file is new or changed and has settled.",
        default_status=dg.DefaultSensorStatus.STOPPED,
    )
    def _landing(context: dg.SensorEvaluationContext, notifier: NotifierResource) -> dg.SensorResult:
        settings = load_settings()
        cursor = _load_cursor(context.cursor)
        cursor.setdefault("seen", {})
        now = clock()
        run_requests, observations, freshness_inputs = [], [], []
        for dataset in datasets:
            checked = _landing_check(context, dataset, settings, cursor, now)
            if checked is None:
                continue
            request, observation, modified = checked
            freshness_inputs.append((dataset.id, dataset.update_frequency, modified))
            run_requests += [request] if request else []
            observations += [observation] if observation else []
        alerts = select_unsent(landing_stale_alerts(freshness_inputs, now), cursor.get("alerts", []))
        if alerts:
            report = notifier.notifier().notify(alerts)
            _remember(cursor, [a.period_key for a in report.sent])
        return dg.SensorResult(
            run_requests=run_requests, asset_events=observations, cursor=json.dumps(cursor)
        )

    return _landing


def overdue_sensor(datasets: list[Dataset]) -> dg.SensorDefinition:
    """Compares each dataset's last portal update (rowsUpdatedAt) with its declared frequency and sends
    one alert per overdue period (the keys sent are kept in the cursor)."""

    @dg.sensor(
        name="portal_overdue",
        minimum_interval_seconds=3600,
        description="Alerts when a dataset on the portal is older than its update frequency allows.",
        default_status=dg.DefaultSensorStatus.STOPPED,
    )
    def _overdue(
        context: dg.SensorEvaluationContext, portal: PortalResource, notifier: NotifierResource
    ) -> dg.SkipReason | dg.SensorResult:
        if portal.is_local:
            return dg.SkipReason(
                "No portal configured (CT_PORTAL_DOMAIN); the local portal runs only inside runs."
            )
        client = portal.connection(
            timeout=SENSOR_PORTAL_TIMEOUT_SECONDS, retries=SENSOR_PORTAL_RETRIES
        ).client
        now = clock()
        inputs, urls = [], {}
        for dataset in datasets:
            four_by_four = _published_id(context.instance, dataset)
            last = None
            if four_by_four:
                try:
                    view = client.get_metadata(four_by_four)
                except requests.RequestException as exc:
                    # One unreachable or deleted view must not hide the other datasets' alerts.
                    status = getattr(exc.response, "status_code", None)
                    context.log.warning(
                        f"{dataset.id}: could not read portal dataset {four_by_four} "
                        f"({type(exc).__name__}{f', status {status}' if status else ''}); "
                        "skipped this tick"
                    )
                    continue
                if view.get("rowsUpdatedAt"):
                    last = datetime.fromtimestamp(int(view["rowsUpdatedAt"]), UTC)
                urls[dataset.id] = f"{portal.scheme}://{portal.domain}/d/{four_by_four}"
            inputs.append((dataset.id, dataset.update_frequency, last))
        cursor = _load_cursor(context.cursor)
        alerts = select_unsent(overdue_alerts(inputs, now, urls=urls), cursor.get("alerts", []))
        if not alerts:
            return dg.SensorResult(cursor=json.dumps(cursor))
        report = notifier.notifier().notify(alerts)
        _remember(cursor, [a.period_key for a in report.sent])
        return dg.SensorResult(cursor=json.dumps(cursor))

    return _overdue


def _published_id(instance: dg.DagsterInstance, dataset: Dataset) -> str | None:
    if dataset.publish.id:
        return dataset.publish.id
    event = instance.get_latest_materialization_event(asset_key(dataset.id, "publish"))
    if event is None or event.asset_materialization is None:
        return None
    value = event.asset_materialization.metadata.get("four_by_four")
    return str(value.value) if value is not None else None


@dg.run_failure_sensor(
    name="run_failures",
    description="Sends an alert for every failed run.",
    default_status=dg.DefaultSensorStatus.STOPPED,
)
def run_failure_alerts(context: dg.RunFailureSensorContext, notifier: NotifierResource) -> None:
    run = context.dagster_run
    notifier.notifier().notify(
        [run_failure_alert(run.run_id, run.job_name, _failure_reasons(context), dataset_id=_run_dataset(run))]
    )


def _failure_reasons(context: dg.RunFailureSensorContext) -> str:
    """Why each step failed, in the words our stages wrote for people (``dg.Failure`` descriptions).

    Unexpected exceptions are named by class only: their text may quote URLs or values that do not
    belong in an e-mail, and the run's log has the full traceback."""
    reasons = []
    for event in context.get_step_failure_events():
        data = event.step_failure_data
        if data.user_failure_data and data.user_failure_data.description:
            reason = data.user_failure_data.description
        elif data.error:
            reason = f"unexpected {data.error.cls_name}; see the run's logs"
        else:
            reason = "see the run's logs"
        reasons.append(f"{event.step_key}: {reason}")
    return "; ".join(reasons) or context.failure_event.message or "see the run's logs"


def _run_dataset(run: dg.DagsterRun) -> str:
    """The dataset a run concerns: its tag, or the one asset group its selection covers."""
    if run.tags.get("ct/dataset"):
        return run.tags["ct/dataset"]
    groups = {key.path[0] for key in run.asset_selection or ()}
    return groups.pop() if len(groups) == 1 else ""


@dg.asset(
    key=AUDIT_KEY,
    group_name="portal_audit",
    kinds={"socrata", "duckdb"},
    description="Freshness against each dataset's declared update frequency, metadata completeness, agency "
    "attribution and race/ethnicity/gender disaggregation, across the whole portal catalog.",
)
def portal_audit(
    context: dg.AssetExecutionContext, portal: PortalResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    from ct_pipelines.automation.audit import run_audit

    settings = load_settings()
    settings.ensure_dirs()
    client = portal.connection().client
    with warehouse.audit_connection() as con:
        result = run_audit(client, con, Path(settings.reports_dir), context.run_id, clock())
    totals = {
        k: v for k, v in result.totals.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }
    context.log.info(f"Audited {result.totals.get('datasets', 0)} datasets; report at {result.csv_path}")
    metadata = to_metadata({**totals, "by_agency": result.totals.get("by_agency", [])[:50]})
    metadata["audit"] = dg.MetadataValue.md(result.markdown())
    metadata["report_csv_path"] = dg.MetadataValue.path(str(result.csv_path))
    return dg.MaterializeResult(metadata=metadata)


def audit_schedule() -> dg.ScheduleDefinition:
    job = dg.define_asset_job("portal_audit_job", selection=dg.AssetSelection.assets(AUDIT_KEY))
    return dg.ScheduleDefinition(
        name="daily_portal_audit",
        cron_schedule="0 7 * * *",
        job=job,
        execution_timezone=SCHEDULE_TIMEZONE,
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )
