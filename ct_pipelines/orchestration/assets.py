"""The per-dataset asset graph: ingest -> validate -> standardize -> protect -> publish.

Each dataset is one subsettable multi-asset: one asset spec per stage of ``pipeline.STAGES`` with its
checks, run as one step that calls the stages in order. One op per dataset keeps Dagster's cost per
dataset below that of five bare assets (see bench/bench_ingest.py). Because the stages share a step, the
step itself enforces blocking checks, as Dagster asks of multi-assets: after a failed ERROR check no later
stage runs, and each skipped asset gets an observation saying which check stopped it.
"""

import contextlib
import time
import traceback
from collections.abc import Iterator

import dagster as dg
from dagster_duckdb import DuckDBResource

from ct_pipelines import pipeline
from ct_pipelines.catalog.models import Dataset
from ct_pipelines.core.budget import Budget, enforce
from ct_pipelines.core.results import RunOptions, StageError, StageResult
from ct_pipelines.core.settings import Settings
from ct_pipelines.orchestration.resources import PortalResource, SettingsResource
from ct_pipelines.orchestration.results import check_results, check_specs, stage_metadata
from ct_pipelines.report.checks import record_check_results

KINDS = {"publish": {"socrata"}}


class PublishOptions(dg.Config):
    """Run-time switches (the same as ``ct-pipelines run``'s flags)."""

    dry_run: bool = False
    full_replace: bool = False
    allow_shrink: bool = False
    allow_deletes: bool = False
    reingest: bool = False


def asset_key(dataset_id: str, stage: str) -> dg.AssetKey:
    return dg.AssetKey([dataset_id, stage])


def dataset_asset_keys(dataset_id: str) -> list[dg.AssetKey]:
    return [asset_key(dataset_id, stage.name) for stage in pipeline.STAGES]


def _tag_value(text: str) -> str:
    """Dagster tag values allow letters, digits, '-', '_' and '.' only."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)[:63]


def _internal_error(settings: Settings, run_id: str, dataset_id: str, stage: str, exc: BaseException) -> str:
    """An unexpected error: the traceback goes to a log file, the summary gets one sentence naming it."""
    log_dir = settings.home / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / f"{run_id}.log"
    with path.open("a", encoding="utf-8") as log:
        log.write(f"--- {dataset_id} / {stage}\n{''.join(traceback.format_exception(exc))}\n")
    first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    return f"the {stage} stage stopped on an unexpected error ({first_line}); the details are in {path}"


def build_dataset_assets(dataset: Dataset, freshness: dg.FreshnessPolicy | None) -> list[dg.AssetsDefinition]:
    specs_by_stage = {stage.name: stage.check_specs(dataset) for stage in pipeline.STAGES}
    asset_specs = [
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
    all_checks = [
        spec
        for stage in pipeline.STAGES
        for spec in check_specs(asset_key(dataset.id, stage.name), specs_by_stage[stage.name])
    ]

    @dg.multi_asset(
        name=dataset.id,
        specs=asset_specs,
        check_specs=all_checks,
        can_subset=True,
        description=dataset.description,
        op_tags={"dataset": dataset.id},
    )
    def _dataset(
        context: dg.AssetExecutionContext,
        config: PublishOptions,
        warehouse: DuckDBResource,
        portal: PortalResource,
        settings: SettingsResource,
    ) -> Iterator[dg.MaterializeResult | dg.AssetObservation | dg.AssetCheckResult]:
        resolved = settings.resolve()
        resolved.ensure_dirs()
        options = RunOptions(**config.model_dump())
        selected = [
            s for s in pipeline.STAGES if asset_key(dataset.id, s.name) in context.selected_asset_keys
        ]
        # DuckDBResource closes its connection only on success; a stage that raises must not leave the
        # warehouse open (a later run in this process would find it held), so the step closes it itself.
        limits = dataset.validate.budget
        budget = Budget(limits.seconds or resolved.dataset_seconds, limits.memory)
        with (
            warehouse.get_connection() as con,
            contextlib.closing(con),
            enforce(con, budget, dataset.id) as watch,
        ):
            con.execute("SET enable_progress_bar = false")  # progress goes to the run log, not a terminal bar
            blocked_by: str | None = None
            for stage in selected:
                key = asset_key(dataset.id, stage.name)
                if blocked_by:
                    context.log.warning(f"{key.to_user_string()} not run: {blocked_by}")
                    pipeline.record(
                        con, context.run_id, dataset.id, stage.name, "not_run", message=blocked_by
                    )
                    yield dg.AssetObservation(asset_key=key, metadata={"not_run_because": blocked_by})
                    continue
                context.log.info(
                    f"{dataset.id}: stage {pipeline.STAGE_NAMES.index(stage.name) + 1} of "
                    f"{len(pipeline.STAGES)} ({stage.name})"
                )
                started = time.perf_counter()
                try:
                    watch.check(stage.name)
                    result = stage.run(
                        con,
                        dataset,
                        resolved,
                        run_id=context.run_id,
                        options=options,
                        progress=context.log.info,
                        portal=portal.connection() if stage.name == "publish" else None,
                    )
                except StageError as exc:
                    said = watch.explain_and_stop(exc, stage.name) or str(exc)
                    pipeline.record(con, context.run_id, dataset.id, stage.name, "failed", message=said)
                    raise dg.Failure(description=said, allow_retries=False) from exc
                except Exception as exc:  # noqa: BLE001 - said in one sentence, traceback kept in a log file
                    said = watch.explain_and_stop(exc, stage.name) or _internal_error(
                        resolved, context.run_id, dataset.id, stage.name, exc
                    )
                    pipeline.record(con, context.run_id, dataset.id, stage.name, "failed", message=said)
                    raise dg.Failure(description=said, allow_retries=False) from exc
                if stage.name == "publish":
                    result.links["report"] = str(
                        resolved.reports_dir / "site" / "datasets" / f"{dataset.id}.html"
                    )
                yield from _report(context, key, specs_by_stage[stage.name], result, portal)
                record_check_results(con, dataset.id, stage.name, context.run_id, result.outcomes)
                failed = result.blocking_failures
                status = "blocked" if failed else ("refused" if result.refused else "ok")
                pipeline.record(
                    con,
                    context.run_id,
                    dataset.id,
                    stage.name,
                    status,
                    result,
                    seconds=time.perf_counter() - started,
                    declared_checks=len(specs_by_stage[stage.name]),
                )
                if failed:
                    blocked_by = (
                        f"ERROR check {', '.join(repr(o.name) for o in failed)} failed on "
                        f"{key.to_user_string()}: {failed[0].summary}"
                    )
                    context.log.error(f"{dataset.id}: publishing stopped. {blocked_by}")
        if (
            blocked_by
        ):  # the run fails with the reason (not a stack trace), so failure alerts and retries see it
            raise dg.Failure(description=f"{dataset.id} was not published: {blocked_by}", allow_retries=False)

    return [_dataset]


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
