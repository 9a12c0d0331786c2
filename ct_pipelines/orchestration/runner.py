"""Run every dataset's assets once, in process, and say per dataset what happened.

This is what ``ct-pipelines run`` does: the same Dagster definitions as the UI, the project's own
instance (so runs show up in ``dagster dev`` afterwards). The per-dataset summary comes from the stage
results the assets keep in each dataset's warehouse file (``meta.stage_results``), not from parsing
Dagster events.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from ct_pipelines.catalog.loader import Catalog
from ct_pipelines.core import warehouse
from ct_pipelines.core.results import RunOptions
from ct_pipelines.core.settings import Settings, load_settings
from ct_pipelines.orchestration.assets import asset_key
from ct_pipelines.orchestration.automation import PUBLISH_JOB, dataset_run_tags
from ct_pipelines.orchestration.component import build_definitions
from ct_pipelines.orchestration.terminal_log import terminal_logger
from ct_pipelines.pipeline import stages_until
from ct_pipelines.publish.changes import recorded_changes


@dataclass
class DatasetSummary:
    dataset_id: str
    rows_in: int | None = None
    rows_set_aside: int | None = None
    rows_published: int | None = None
    checks_passed: int = 0
    failed_checks: list[str] = field(default_factory=list)  # "stage: name (SEVERITY): summary"
    stages_done: list[str] = field(default_factory=list)
    error: str | None = None
    failed_stage: str | None = None
    blocked_stage: str | None = None
    dry_run_plan: Any = None
    quarantine_table: str | None = None
    rows_left_out: dict[str, int] = field(default_factory=dict)  # by the YAML's leave_out rules, by rule name
    portal_changes: dict[str, int] | None = None  # rows the publish created, updated and deleted
    publish_mode: str | None = None  # incremental, replace, upsert or resync
    rows_kept_as_published: int = 0  # rows set aside this run whose published version the portal keeps
    deleted_keys: list[str] = field(default_factory=list)  # the first row identifiers the publish deleted
    unfinished_publish: str | None = None  # a publish stopped part-way that this run did not finish
    created_dataset: str | None = None  # the portal dataset this run's publish created
    duration_s: float = 0.0

    @property
    def checks_failed(self) -> int:
        """Failed checks that stop publishing (ERROR); a failed WARN check is a warning, counted apart."""
        return len(self.blocking_summaries)

    @property
    def warnings(self) -> int:
        return sum(1 for line in self.failed_checks if "(WARN)" in line)

    @property
    def status(self) -> str:
        if self.error:
            return "FAILED"
        if self.blocked_stage:
            return "blocked"
        return "ok"

    @property
    def blocking_summaries(self) -> list[str]:
        """The failed ERROR checks that stopped publishing, each with its one-sentence summary."""
        return [line for line in self.failed_checks if "(ERROR)" in line]

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def project_instance() -> dg.DagsterInstance:
    """The instance under DAGSTER_HOME; when unset and the working folder has dagster.yaml, that folder."""
    if not os.environ.get("DAGSTER_HOME") and Path("dagster.yaml").is_file():
        os.environ["DAGSTER_HOME"] = str(Path.cwd())
    if os.environ.get("DAGSTER_HOME"):
        # Two runs starting together on a fresh instance would both create its SQLite tables (and one
        # fail with "table runs already exists"): the first to take the lock creates them.
        home = str(Path(os.environ["DAGSTER_HOME"]).resolve())
        digest = hashlib.sha256(home.encode()).hexdigest()[:16]
        lock_path = Path(tempfile.gettempdir()) / f"ct-pipelines-instance-{digest}.lock"
        with lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                return dg.DagsterInstance.get()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    return dg.DagsterInstance.ephemeral()


def run_catalog(
    catalog_dir: str | None = None,
    dataset_ids: list[str] | None = None,
    *,
    options: RunOptions = RunOptions(),
    until: str | None = None,
    settings: Settings | None = None,
    instance: dg.DagsterInstance | None = None,
    catalog: Catalog | None = None,
) -> tuple[list[DatasetSummary], dg.ExecuteInProcessResult]:
    """Materialize the catalog's assets (all, or the named datasets up to ``until``) and summarize them;
    ``catalog``, when the caller has loaded it already, is not read again."""
    settings = settings or load_settings(catalog_dir)
    # Only the named datasets' assets: the run's cost does not grow with the catalog.
    defs = build_definitions(catalog_dir, with_automation=False, catalog=catalog, only=dataset_ids)
    job = defs.resolve_job_def(PUBLISH_JOB).with_logger_defs({"console": terminal_logger})
    selection = None
    ids = list(
        dict.fromkeys(
            dataset_ids or [key.path[0] for key in defs.resolve_all_asset_keys() if len(key.path) == 2]
        )
    )
    if dataset_ids or until:
        selection = [asset_key(d, s.name) for d in ids for s in stages_until(until)]
    run_config: dict[str, Any] = {
        "loggers": {"console": {"config": {"log_level": "INFO"}}},
        "ops": {node.name: {"config": options.__dict__} for node in job.nodes},
    }
    # One dataset: the tags Dagster's run queue limits by (one run per dataset, a few per portal).
    tags = dataset_run_tags(ids[0]) if len(ids) == 1 else {}
    if dataset_ids and len(ids) > 1:
        tags["datasets"] = ",".join(ids)[:200]
    result = job.execute_in_process(
        instance=instance or project_instance(),
        raise_on_error=False,
        asset_selection=selection,
        run_config=run_config,
        tags=tags,
    )
    return summarize(settings, result, ids), result


def _unfinished_publish(settings: Settings, dataset_id: str) -> str | None:
    """A publish of this dataset that stopped part-way (killed, or the portal went away) and is still
    unfinished: the portal holds part of it. A helper's next run was blocked by a guard and said nothing,
    while 47,000 portal cells stayed half-updated."""
    with warehouse.open_recorded(settings, dataset_id) as con:
        if not warehouse.relation_exists(con, "main", "publish_runs"):
            return None
        rows = con.execute(
            "SELECT r.four_by_four, r.run_id, r.chunks, (SELECT count(*) FROM publish_ledger l WHERE "
            "l.publish_id = r.publish_id AND l.status = 'applied') FROM publish_runs r WHERE r.dataset_id = ? "
            "AND r.status = 'sending' ORDER BY r.started_at LIMIT 1",
            [dataset_id],
        ).fetchall()
    if not rows:
        return None
    four_by_four, run_id, chunks, applied = rows[0]
    return (
        f"a publish to {four_by_four} stopped part-way in run {run_id} ({applied:,} of {chunks:,} chunks sent), so "
        "the portal holds part of it; the next run that reaches publish finishes it"
    )


def _stage_rows(settings: Settings, dataset_id: str, run_id: str) -> list[tuple]:
    """The run's stage results from the dataset's own file, opened read-only and closed at once."""
    with warehouse.open_recorded(settings, dataset_id) as con:
        if not warehouse.relation_exists(con, "meta", "stage_results"):
            return []
        return con.execute(
            f"SELECT dataset_id, stage, status, message, rows_in, rows_out, rows_set_aside, checks_passed, "
            f"checks_failed, facts, seconds FROM {warehouse.STAGE_RESULTS} WHERE run_id = ? ORDER BY recorded_at",
            [run_id],
        ).fetchall()


def summarize(
    settings: Settings, result: dg.ExecuteInProcessResult, dataset_ids: list[str]
) -> list[DatasetSummary]:
    """Per dataset: counts, checks and the first failure, read from the run's stage results."""
    by_id: dict[str, DatasetSummary] = {}
    rows = [row for d in dataset_ids for row in _stage_rows(settings, d, result.run_id)]
    for (
        dataset_id,
        stage,
        status,
        message,
        rows_in,
        rows_out,
        set_aside,
        passed,
        failed,
        facts,
        seconds,
    ) in rows:
        s = by_id.setdefault(dataset_id, DatasetSummary(dataset_id))
        s.duration_s = round(s.duration_s + (seconds or 0), 2)
        s.checks_passed += passed or 0
        s.failed_checks += [f"{stage}: {line}" for line in json.loads(failed or "[]")]
        if stage == "ingest" and rows_in is not None:
            s.rows_in = rows_in
        if set_aside and stage != "ingest":  # ingest's are the rows leave_out rules left out, shown apart
            s.rows_set_aside = (s.rows_set_aside or 0) + set_aside
        facts_value = json.loads(facts or "{}")
        if stage == "ingest":
            s.rows_left_out = dict(facts_value.get("rows_left_out") or {})
        if stage == "validate":
            s.quarantine_table = facts_value.get("quarantine_table")
        if status in ("ok", "refused", "blocked"):
            s.stages_done.append(stage)
        if status == "failed" and s.error is None:
            s.error, s.failed_stage = message, stage
        if status == "blocked" and s.blocked_stage is None:
            s.blocked_stage = stage
        if stage == "publish":
            if facts_value.get("dry_run"):
                s.dry_run_plan = facts_value.get("plan")
            elif status == "ok":
                s.rows_published = rows_out
                s.portal_changes = recorded_changes(facts_value)
                s.rows_kept_as_published = int(
                    (facts_value.get("plan") or {}).get("rows_kept_as_published") or 0
                )
                s.publish_mode = facts_value.get("mode")
                s.deleted_keys = list((facts_value.get("plan") or {}).get("deleted_keys") or [])
                s.created_dataset = (facts_value.get("plan") or {}).get("created_dataset")
    for s in by_id.values():
        if s.portal_changes is None and s.dry_run_plan is None:
            s.unfinished_publish = _unfinished_publish(settings, s.dataset_id)
    for event in result.all_events:  # a step that failed before any stage recorded a result
        if event.is_step_failure and event.step_key and event.step_key not in by_id:
            data = event.step_failure_data
            by_id[event.step_key] = DatasetSummary(
                event.step_key,
                error=(
                    data.user_failure_data.description
                    if data and data.user_failure_data
                    else "the run stopped before its first stage; see the Dagster run log"
                ),
            )
    return sorted(by_id.values(), key=lambda s: s.dataset_id)
