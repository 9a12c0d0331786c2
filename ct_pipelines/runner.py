"""Run every dataset's assets once, in process, and summarize what happened per dataset.

This is what ``ct-pipelines run`` does: the same Dagster definitions as the UI, the project's own
instance (so runs show up in ``dagster dev`` afterwards), and a table a person can read at a glance.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from ct_pipelines.orchestration.automation import PUBLISH_JOB
from ct_pipelines.orchestration.component import build_definitions


@dataclass
class DatasetSummary:
    dataset_id: str
    rows_in: int | None = None
    rows_quarantined: int | None = None
    rows_published: int | None = None
    checks_passed: int = 0
    checks_failed: int = 0
    failed_checks: list[str] = field(default_factory=list)
    blocking_summaries: list[str] = field(default_factory=list)
    failed_step: str | None = None
    error: str | None = None
    stages_done: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    portal_url: str | None = None
    dry_run_plan: dict | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not any(c.endswith("(ERROR)") for c in self.failed_checks) \
            and ("portal" in self.stages_done or self.dry_run_plan is not None)


def project_instance() -> dg.DagsterInstance:
    """The instance under DAGSTER_HOME; when unset and the working folder has dagster.yaml, that folder."""
    if not os.environ.get("DAGSTER_HOME") and Path("dagster.yaml").is_file():
        os.environ["DAGSTER_HOME"] = str(Path.cwd())
    if os.environ.get("DAGSTER_HOME"):
        return dg.DagsterInstance.get()
    return dg.DagsterInstance.ephemeral()


def _value(entry: Any) -> Any:
    return getattr(entry, "value", entry)


def run_catalog(catalog_dir: str | None = None, dataset_ids: list[str] | None = None, *, dry_run: bool = False,
                instance: dg.DagsterInstance | None = None) -> tuple[list[DatasetSummary], dg.ExecuteInProcessResult]:
    defs = build_definitions(catalog_dir, with_automation=False)
    job = defs.resolve_job_def(PUBLISH_JOB)
    selection = None
    if dataset_ids:
        selection = [dg.AssetKey([d, s]) for d in dataset_ids
                     for s in ("raw", "validated", "standardized", "published_table", "portal")]
    run_config: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    instance = instance or project_instance()
    started = time.perf_counter()
    if dry_run:
        run_config["ops"] = {node.name: {"config": {"dry_run": True}} for node in job.nodes}
    result = job.execute_in_process(instance=instance, raise_on_error=False, asset_selection=selection,
                                    run_config=run_config)
    summaries = summarize(result)
    for summary in summaries:
        summary.duration_s = summary.duration_s or round(time.perf_counter() - started, 2)
    return summaries, result


def summarize(result: dg.ExecuteInProcessResult) -> list[DatasetSummary]:
    by_id: dict[str, DatasetSummary] = {}
    step_times: dict[str, float] = defaultdict(float)

    def summary(dataset_id: str) -> DatasetSummary:
        return by_id.setdefault(dataset_id, DatasetSummary(dataset_id))

    for event in result.get_asset_observation_events():
        observation = event.event_specific_data.asset_observation  # type: ignore[union-attr]
        dry_run = observation.metadata.get("dry_run")
        if observation.asset_key.path[-1] == "portal" and dry_run is not None and _value(dry_run):
            summary(observation.asset_key.path[0]).dry_run_plan = _value(observation.metadata["plan"])
    for event in result.all_events:
        if event.is_step_success and event.step_key:
            duration = getattr(event.event_specific_data, "duration_ms", None)
            if duration:
                step_times[event.step_key] += duration / 1000
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization  # type: ignore[union-attr]
        if materialization is None:
            continue
        path = materialization.asset_key.path
        if len(path) != 2:
            continue
        dataset_id, stage = path
        s = summary(dataset_id)
        s.stages_done.append(stage)
        meta = materialization.metadata
        if stage == "raw" and "rows" in meta:
            s.rows_in = int(_value(meta["rows"]))
        if stage == "validated" and "rows_quarantined" in meta:
            s.rows_quarantined = int(_value(meta["rows_quarantined"]))
        if stage == "portal":
            if "rows_published" in meta:
                s.rows_published = int(_value(meta["rows_published"]))
            if "portal_url" in meta:
                s.portal_url = str(_value(meta["portal_url"]))
    for evaluation in result.get_asset_check_evaluations():
        path = evaluation.asset_key.path
        if len(path) != 2:
            continue
        s = summary(path[0])
        if evaluation.passed:
            s.checks_passed += 1
        else:
            s.checks_failed += 1
            s.failed_checks.append(f"{path[1]}.{evaluation.check_name} ({evaluation.severity.value})")
            if evaluation.severity == dg.AssetCheckSeverity.ERROR:
                said = evaluation.metadata.get("summary")
                s.blocking_summaries.append(f"{path[1]}.{evaluation.check_name}: {_value(said) if said else ''}")
    for event in result.all_events:
        if event.is_step_failure and event.step_key and not _blocked_by_checks(event):
            dataset_id = event.step_key
            s = summary(dataset_id)
            if s.error is None:
                s.failed_step = event.step_key
                data = event.step_failure_data
                s.error = (data.user_failure_data.description if data and data.user_failure_data
                           and data.user_failure_data.description else
                           (data.error.message.strip() if data and data.error else "step failed"))
    for step_key, seconds in step_times.items():
        dataset_id = step_key
        if dataset_id in by_id:
            by_id[dataset_id].duration_s += seconds
    for s in by_id.values():
        s.duration_s = round(s.duration_s, 2)
    return sorted(by_id.values(), key=lambda s: s.dataset_id)


def _blocked_by_checks(event: dg.DagsterEvent) -> bool:
    """Dagster fails the step of a multi-asset whose blocking checks failed; that is a block, not an error."""
    data = event.step_failure_data
    return bool(data and data.error and "DagsterAssetCheckFailedError" in (data.error.cls_name or ""))


def format_summary(summaries: list[DatasetSummary]) -> str:
    headers = ["dataset", "status", "rows in", "quarantined", "rows published", "checks passed", "checks failed",
               "seconds"]
    rows = []
    for s in summaries:
        status = "ok" if s.ok else ("blocked" if s.checks_failed and not s.error else "FAILED")
        rows.append([s.dataset_id, status, _n(s.rows_in), _n(s.rows_quarantined), _n(s.rows_published),
                     str(s.checks_passed), str(s.checks_failed), f"{s.duration_s:.1f}"])
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    for s in summaries:
        if s.dry_run_plan is not None:
            out.append(f"\n{s.dataset_id}: dry run, nothing sent; the plan: {s.dry_run_plan}")
        if s.error:
            out.append(f"\n{s.dataset_id}: {s.failed_step} failed: {s.error}")
        if s.blocking_summaries:
            out.append(f"\n{s.dataset_id}: not published; these ERROR checks failed:")
            out.extend(f"  - {line}" for line in s.blocking_summaries)
        warnings = [c for c in s.failed_checks if c.endswith("(WARN)")]
        if warnings:
            out.append(f"\n{s.dataset_id}: warnings: {', '.join(warnings)}")
    return "\n".join(out)


def _n(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"
