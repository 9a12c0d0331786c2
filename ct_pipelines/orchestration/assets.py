"""The per-dataset asset graph: ingest -> validate -> standardize -> protect -> publish.

Each dataset is one subsettable multi-asset: one asset spec per stage of ``pipeline.STAGES`` with its
checks, run as one step that calls the stages in order. One op per dataset keeps Dagster's cost per
dataset below that of five bare assets (see bench/bench_ingest.py). Because the stages share a step, the
step itself enforces blocking checks, as Dagster asks of multi-assets: after a failed ERROR check no later
stage runs, and each skipped asset gets an observation saying which check stopped it.
"""

import re
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg

from ct_pipelines import pipeline
from ct_pipelines.catalog.models import Dataset
from ct_pipelines.core.budget import Budget, enforce
from ct_pipelines.core.results import RunOptions, StageError, StageResult
from ct_pipelines.core.settings import Settings
from ct_pipelines.ingest.errors import value_shape
from ct_pipelines.orchestration.resources import PortalResource, SettingsResource, WarehouseResource
from ct_pipelines.orchestration.results import check_results, check_specs, stage_metadata
from ct_pipelines.report.checks import record_check_results
from ct_pipelines.validate.gx_suite import gx_check_names
from ct_pipelines.validate.gx_worker import start_gx_worker

KINDS = {"publish": {"socrata"}}


class PublishOptions(dg.Config):
    """Run-time switches (the same as ``ct-pipelines run``'s flags)."""

    dry_run: bool = False
    full_replace: bool = False
    allow_shrink: bool = False
    allow_deletes: bool = False
    reingest: bool = False
    new_portal_dataset: bool = False


def asset_key(dataset_id: str, stage: str) -> dg.AssetKey:
    return dg.AssetKey([dataset_id, stage])


def dataset_asset_keys(dataset_id: str) -> list[dg.AssetKey]:
    return [asset_key(dataset_id, stage.name) for stage in pipeline.STAGES]


def _tag_value(text: str) -> str:
    """Dagster tag values allow letters, digits, '-', '_' and '.' only."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)[:63]


def _internal_error(settings: Settings, run_id: str, dataset_id: str, stage: str, exc: BaseException) -> str:
    """An unexpected error: the traceback goes to a log file, the summary gets one sentence naming it.

    Exception texts can quote the row being processed (DuckDB repeats values and whole lines), so the log
    keeps the frames and exception types with every message masked, and the summary says no message."""
    log_dir = settings.home / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / f"{run_id}.log"
    with path.open("a", encoding="utf-8") as log:
        log.write(f"--- {dataset_id} / {stage}\n{masked_traceback(exc)}\n")
    return f"the {stage} stage stopped on an unexpected error; the details (values masked) are in {path}"


def masked_traceback(exc: BaseException) -> str:
    """The traceback's frames and exception types; of each message only the first line, with quoted
    text and digits replaced by their shape (``'Smith'`` -> ``'Aa'``), never the values."""
    parts: list[str] = []
    current: BaseException | None = exc
    while current is not None:
        first = (str(current).strip().splitlines() or [""])[0]
        first = re.sub(r"(['\"])(.*?)\1", lambda m: m[1] + value_shape(m[2]) + m[1], first)
        first = re.sub(r"\d[\d().\-/ ]*\d|\S+@\S+", lambda m: value_shape(m[0]), first)
        parts.append(
            "".join(traceback.format_tb(current.__traceback__)) + f"{type(current).__name__}: {first}"
        )
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return "\n\nwhich was raised while handling:\n".join(parts)


def _asset_specs(dataset: Dataset, freshness: dg.FreshnessPolicy | None) -> list[dg.AssetSpec]:
    """One asset per stage, each depending on the one before; freshness is judged on the portal copy."""
    return [
        dg.AssetSpec(
            asset_key(dataset.id, stage.name),
            deps=[asset_key(dataset.id, pipeline.STAGES[index - 1].name)] if index else [],
            description=f"{dataset.title}: {stage.description}",
            group_name=dataset.id,
            kinds=KINDS.get(stage.name, {"duckdb"}),
            owners=[dataset.contact],
            tags={"agency": _tag_value(dataset.agency), "stage": stage.name},
            skippable=True,
            freshness_policy=freshness if stage.name == "publish" else None,
        )
        for index, stage in enumerate(pipeline.STAGES)
    ]


def build_dataset_assets(dataset: Dataset, freshness: dg.FreshnessPolicy | None) -> list[dg.AssetsDefinition]:
    specs_by_stage = {stage.name: stage.check_specs(dataset) for stage in pipeline.STAGES}
    all_checks = [
        spec
        for stage in pipeline.STAGES
        for spec in check_specs(asset_key(dataset.id, stage.name), specs_by_stage[stage.name])
    ]

    @dg.multi_asset(
        name=dataset.id,
        specs=_asset_specs(dataset, freshness),
        check_specs=all_checks,
        can_subset=True,
        description=dataset.description,
        op_tags={"dataset": dataset.id},
    )
    def _dataset(
        context: dg.AssetExecutionContext,
        config: PublishOptions,
        warehouse: WarehouseResource,
        portal: PortalResource,
        settings: SettingsResource,
    ) -> Iterator[dg.MaterializeResult | dg.AssetObservation | dg.AssetCheckResult]:
        resolved = settings.resolve()
        resolved.ensure_dirs()
        limits = dataset.validate.budget
        budget = Budget(
            limits.seconds or resolved.dataset_seconds,
            limits.memory or resolved.dataset_memory(len(dataset.columns)),
        )
        # The dataset's own file, closed even when a stage raises (a later run must find it free), under
        # the dataset's time and memory budget.
        with warehouse.connection(dataset.id) as con, enforce(con, budget, dataset.id) as watch:
            step = _DatasetStep(context, dataset, resolved, con, watch, portal, specs_by_stage)
            yield from step.run_selected(RunOptions(**config.model_dump()))
        if step.blocked_by:  # the run fails with the reason (not a stack trace): failure alerts see it
            raise dg.Failure(
                description=f"{dataset.id} was not published: {step.blocked_by}", allow_retries=False
            )

    return [_dataset]


@dataclass
class _DatasetStep:
    """One dataset's stages inside its Dagster step: run each selected stage in order, report it, keep
    its result in the warehouse, and after a failed blocking check mark the later stages as not run."""

    context: dg.AssetExecutionContext
    dataset: Dataset
    settings: Settings
    con: Any
    watch: Any
    portal: PortalResource
    specs_by_stage: dict[str, list]
    blocked_by: str | None = None
    stopped_at: str | None = None  # the stage whose ERROR check stopped publishing

    def run_selected(
        self, options: RunOptions
    ) -> Iterator[dg.MaterializeResult | dg.AssetObservation | dg.AssetCheckResult]:
        keys = self.context.selected_asset_keys
        if asset_key(self.dataset.id, "validate") in keys and gx_check_names(self.dataset):
            start_gx_worker()  # imports GX on the other core while ingest runs; validate needs it next
        for stage in [s for s in pipeline.STAGES if asset_key(self.dataset.id, s.name) in keys]:
            key = asset_key(self.dataset.id, stage.name)
            if self.blocked_by:
                # the reason is in the log line above and in the observation: not repeated per stage
                self.context.log.warning(
                    f"{key.to_user_string()} not run: publishing stopped at {self.stopped_at}"
                )
                self._record(stage.name, "not_run", message=self.blocked_by)
                yield dg.AssetObservation(asset_key=key, metadata={"not_run_because": self.blocked_by})
                continue
            number = pipeline.STAGE_NAMES.index(stage.name) + 1
            self.context.log.info(
                f"{self.dataset.id}: stage {number} of {len(pipeline.STAGES)} ({stage.name})"
            )
            started = time.perf_counter()
            result = self._run(stage, options)
            if stage.name == "publish":
                page = self.settings.reports_dir / "site" / "datasets" / f"{self.dataset.id}.html"
                result.links["report"] = str(page)
            yield from _report(self.context, key, self.specs_by_stage[stage.name], result, self.portal)
            self._keep(stage.name, result, time.perf_counter() - started)
            if failed := result.blocking_failures:
                self.blocked_by = (
                    f"ERROR check {', '.join(repr(o.name) for o in failed)} failed on "
                    f"{key.to_user_string()}: {failed[0].summary}"
                )
                self.stopped_at = stage.name  # the step fails with the reason once the stages are done

    def _run(self, stage: pipeline.Stage, options: RunOptions) -> StageResult:
        """The stage's result; any failure becomes one sentence (recorded) and a Dagster failure."""
        try:
            self.watch.check(stage.name)
            return stage.run(
                self.con,
                self.dataset,
                self.settings,
                run_id=self.context.run_id,
                options=options,
                progress=self.context.log.info,
                portal=self.portal.connection() if stage.name == "publish" else None,
            )
        except dg.Failure as exc:  # said in one sentence already (e.g. the portal cannot be reached)
            self._record(stage.name, "failed", message=exc.description)
            raise
        except Exception as exc:  # noqa: BLE001 - said in one sentence, traceback kept in a log file
            said = self.watch.explain_and_stop(exc, stage.name) or (
                str(exc)
                if isinstance(exc, StageError)
                else _internal_error(self.settings, self.context.run_id, self.dataset.id, stage.name, exc)
            )
            self._record(stage.name, "failed", message=said)
            # from None: the chained errors (DuckDB's text repeats rows) would go into the event log
            raise dg.Failure(description=said, allow_retries=False) from None

    def _keep(self, stage: str, result: StageResult, seconds: float) -> None:
        record_check_results(self.con, self.dataset.id, stage, self.context.run_id, result.outcomes)
        status = "blocked" if result.blocking_failures else ("refused" if result.refused else "ok")
        declared = len(self.specs_by_stage[stage])
        self._record(stage, status, result, seconds=seconds, declared_checks=declared)

    def _record(self, stage: str, status: str, result: StageResult | None = None, **fields: Any) -> None:
        pipeline.record(self.con, self.context.run_id, self.dataset.id, stage, status, result, **fields)


def _report(
    context: dg.AssetExecutionContext,
    key: dg.AssetKey,
    specs: list,
    result: StageResult,
    portal: PortalResource,
) -> Iterator[dg.MaterializeResult | dg.AssetObservation | dg.AssetCheckResult]:
    """A refused publish or a dry run left the portal as it was: its checks and plan are reported, but no
    materialization, so freshness counts from the last real update."""
    results = check_results(key, specs, result.outcomes)
    if result.refused:
        yield from results
        yield dg.AssetObservation(asset_key=key, metadata=stage_metadata(result))
        return
    if key.path[-1] == "publish" and portal.browse_url:
        result.links.setdefault("portal", portal.browse_url)
    yield dg.MaterializeResult(asset_key=key, metadata=stage_metadata(result), check_results=results)
