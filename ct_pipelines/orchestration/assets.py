"""The per-dataset asset graph: raw -> validated -> standardized -> published_table -> portal.

Each dataset is one subsettable multi-asset: five asset specs with their checks, run as one step that
calls ``ct_pipelines.pipeline`` stage by stage. One op per dataset keeps Dagster's cost per dataset below
that of five bare assets (see bench/bench_ingest.py). Because the stages share a step, the step itself
enforces blocking checks, as Dagster asks of multi-assets: after a failed ERROR check no later stage
runs, and each skipped asset gets an observation saying which check stopped it.
"""

from collections.abc import Callable, Iterator

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from ct_pipelines import pipeline
from ct_pipelines.catalog.models import Dataset
from ct_pipelines.ingest.errors import IngestError
from ct_pipelines.orchestration.resources import PortalResource
from ct_pipelines.orchestration.results import check_results, check_specs, to_metadata
from ct_pipelines.settings import Settings, load_settings

STAGE_DESCRIPTIONS = {
    "raw": "The newest landing file, loaded as text with lineage (file, SHA-256, rows).",
    "validated": "Rows that passed the column rules, typed; failing rows are set aside in quarantine.",
    "standardized": "Race, ethnicity and language mapped to Connecticut's REL standards; raw labels kept.",
    "published_table": "The table the portal will receive: no PII, aggregated and suppressed as configured.",
    "portal": "The dataset on the open data portal, updated incrementally with metadata in sync.",
}
KINDS = {"portal": {"socrata"}}


class PublishOptions(dg.Config):
    """Run-time switches for the publish stage."""

    dry_run: bool = False
    full_replace: bool = False
    allow_shrink: bool = False


def asset_key(dataset_id: str, stage: str) -> dg.AssetKey:
    return dg.AssetKey([dataset_id, stage])


def dataset_asset_keys(dataset_id: str) -> list[dg.AssetKey]:
    return [asset_key(dataset_id, stage) for stage in pipeline.STAGES]


def _tag_value(text: str) -> str:
    """Dagster tag values allow letters, digits, '-', '_' and '.' only."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)[:63]


StageRunner = Callable[[duckdb.DuckDBPyConnection, Settings, str, Callable[[str], None]], pipeline.StageResult]


def build_dataset_assets(dataset: Dataset, freshness: dg.FreshnessPolicy | None) -> list[dg.AssetsDefinition]:
    specs_by_stage = {stage: pipeline.stage_check_specs(dataset, stage) for stage in pipeline.STAGES}
    asset_specs = []
    for index, stage in enumerate(pipeline.STAGES):
        asset_specs.append(dg.AssetSpec(
            asset_key(dataset.id, stage),
            deps=[asset_key(dataset.id, pipeline.STAGES[index - 1])] if index else [],
            description=f"{dataset.title}: {STAGE_DESCRIPTIONS[stage]}",
            group_name=dataset.id,
            kinds=KINDS.get(stage, {"duckdb"}),
            owners=[dataset.contact],
            tags={"agency": _tag_value(dataset.agency), "stage": stage},
            skippable=True,
            freshness_policy=freshness if stage == "portal" else None,
        ))
    all_checks = [spec for stage in pipeline.STAGES
                  for spec in check_specs(asset_key(dataset.id, stage), specs_by_stage[stage])]

    @dg.multi_asset(name=dataset.id, specs=asset_specs, check_specs=all_checks, can_subset=True,
                    description=dataset.description)
    def _dataset(context: dg.AssetExecutionContext, config: PublishOptions, warehouse: DuckDBResource,
                 portal: PortalResource) -> Iterator[dg.MaterializeResult | dg.AssetObservation | dg.AssetCheckResult]:
        settings = load_settings()
        settings.ensure_dirs()
        log = context.log.info
        runners: dict[str, StageRunner] = {
            "raw": lambda con, s, r, p: pipeline.run_ingest_stage(con, dataset, s, r, p),
            "validated": lambda con, s, r, p: pipeline.run_validate(con, dataset, s, r, p),
            "standardized": lambda con, s, r, p: pipeline.run_standardize(con, dataset, s, r, p),
            "published_table": lambda con, s, r, p: pipeline.run_protect(con, dataset, s, r, p),
            "portal": lambda con, s, r, p: pipeline.run_publish(
                con, dataset, s, r, p, portal=portal.connection(), dry_run=config.dry_run,
                full_replace=config.full_replace, allow_shrink=config.allow_shrink),
        }
        selected = [stage for stage in pipeline.STAGES if asset_key(dataset.id, stage) in context.selected_asset_keys]
        blocked_by: str | None = None
        with warehouse.get_connection() as con:
            con.execute("SET enable_progress_bar = false")  # progress goes to the run log, not a terminal bar
            for stage in selected:
                key = asset_key(dataset.id, stage)
                if blocked_by:
                    context.log.warning(f"{key.to_user_string()} not run: {blocked_by}")
                    yield dg.AssetObservation(asset_key=key, metadata={"not_run_because": blocked_by})
                    continue
                log(f"{dataset.id}: stage {pipeline.STAGES.index(stage) + 1} of {len(pipeline.STAGES)} ({stage})")
                try:
                    result = runners[stage](con, settings, context.run_id, log)
                except (IngestError, pipeline.StageError) as exc:
                    raise dg.Failure(description=str(exc), allow_retries=False) from exc
                failed = [o for o in result.outcomes if o.blocks]
                results = check_results(key, specs_by_stage[stage], result.outcomes)
                if stage == "portal" and (failed or config.dry_run):
                    # A refused publish or a dry run left the portal as it was: report the checks and the
                    # plan, but no new materialization, so freshness counts from the last real update.
                    yield from results
                    yield dg.AssetObservation(asset_key=key, metadata=to_metadata(result.metadata))
                else:
                    if stage == "portal" and portal.browse_url:
                        result.metadata.setdefault("portal_url", portal.browse_url)
                    yield dg.MaterializeResult(asset_key=key, metadata=to_metadata(result.metadata),
                                               check_results=results)
                if failed:
                    blocked_by = (f"ERROR check {', '.join(repr(o.name) for o in failed)} failed on "
                                  f"{key.to_user_string()}: {failed[0].summary}")
                    context.log.error(f"{dataset.id}: publishing stopped. {blocked_by}")

    return [_dataset]
