"""The per-dataset asset graph: raw -> validated -> standardized -> published_table -> portal.

Built from the catalog with one small factory; every asset is a thin call into ``ct_pipelines.pipeline``
and reports its checks from the asset itself (no separate check ops), which keeps Dagster's cost per
dataset low. ERROR checks are blocking, so a failed gate stops the downstream assets and publishing.
"""


from collections.abc import Callable

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


class PublishOptions(dg.Config):
    """Run-time switches for the publish step."""

    dry_run: bool = False
    full_replace: bool = False
    allow_shrink: bool = False


def asset_key(dataset_id: str, stage: str) -> dg.AssetKey:
    return dg.AssetKey([dataset_id, stage])


def dataset_asset_keys(dataset_id: str) -> list[dg.AssetKey]:
    return [asset_key(dataset_id, stage) for stage in pipeline.STAGES]


def _failure(exc: Exception) -> dg.Failure:
    return dg.Failure(description=str(exc), allow_retries=False)


StageFn = Callable[[duckdb.DuckDBPyConnection, Dataset, Settings, str, Callable[[str], None]], pipeline.StageResult]


def _stage_asset(dataset: Dataset, stage: str, run_stage: StageFn, freshness: dg.FreshnessPolicy | None = None
                 ) -> dg.AssetsDefinition:
    key = asset_key(dataset.id, stage)
    specs = pipeline.stage_check_specs(dataset, stage)
    upstream = pipeline.STAGES[pipeline.STAGES.index(stage) - 1] if stage != "raw" else None

    @dg.asset(
        key=key,
        group_name=dataset.id,
        deps=[asset_key(dataset.id, upstream)] if upstream else [],
        description=f"{dataset.title}: {STAGE_DESCRIPTIONS[stage]}",
        kinds={"duckdb"},
        owners=[dataset.contact],
        tags={"agency": _tag_value(dataset.agency), "stage": stage},
        check_specs=check_specs(key, specs),
    )
    def _stage(context: dg.AssetExecutionContext, warehouse: DuckDBResource) -> dg.MaterializeResult:
        settings = load_settings()
        settings.ensure_dirs()
        with warehouse.get_connection() as con:
            try:
                result = run_stage(con, dataset, settings, context.run_id, context.log.info)
            except (IngestError, pipeline.StageError) as exc:
                raise _failure(exc) from exc
        return dg.MaterializeResult(metadata=to_metadata(result.metadata),
                                    check_results=check_results(key, specs, result.outcomes))

    return _stage


def _portal_asset(dataset: Dataset, freshness: dg.FreshnessPolicy | None) -> dg.AssetsDefinition:
    key = asset_key(dataset.id, "portal")
    specs = pipeline.stage_check_specs(dataset, "portal")

    @dg.asset(
        key=key,
        group_name=dataset.id,
        deps=[asset_key(dataset.id, "published_table")],
        description=f"{dataset.title}: {STAGE_DESCRIPTIONS['portal']}",
        kinds={"socrata"},
        owners=[dataset.contact],
        tags={"agency": _tag_value(dataset.agency), "stage": "portal"},
        check_specs=check_specs(key, specs),
        freshness_policy=freshness,
    )
    def _publish(context: dg.AssetExecutionContext, config: PublishOptions, warehouse: DuckDBResource,
                 portal: PortalResource) -> dg.MaterializeResult:
        settings = load_settings()
        with warehouse.get_connection() as con:
            try:
                result = pipeline.run_publish(con, dataset, settings, context.run_id, context.log.info,
                                              portal=portal.connection(), dry_run=config.dry_run,
                                              full_replace=config.full_replace, allow_shrink=config.allow_shrink)
            except pipeline.StageError as exc:
                raise _failure(exc) from exc
        if portal.browse_url:
            result.metadata.setdefault("portal_url", portal.browse_url)
        return dg.MaterializeResult(metadata=to_metadata(result.metadata),
                                    check_results=check_results(key, specs, result.outcomes))

    return _publish


def _tag_value(text: str) -> str:
    """Dagster tag values allow letters, digits, '-', '_' and '.' only."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)[:63]


def build_dataset_assets(dataset: Dataset, freshness: dg.FreshnessPolicy | None) -> list[dg.AssetsDefinition]:
    return [
        _stage_asset(dataset, "raw", pipeline.run_ingest_stage),
        _stage_asset(dataset, "validated", pipeline.run_validate),
        _stage_asset(dataset, "standardized", pipeline.run_standardize),
        _stage_asset(dataset, "published_table", pipeline.run_protect),
        _portal_asset(dataset, freshness),
    ]
