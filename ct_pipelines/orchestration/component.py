"""The Dagster component that turns the dataset catalog (a folder of YAML files) into definitions.

One ``defs.yaml`` instantiates it for the whole catalog rather than one per dataset: dataset files stay
plain YAML that agencies can write (and validate with ``ct-pipelines catalog validate``), and a broken
file is reported and skipped instead of failing the whole code location.
"""

from __future__ import annotations

from collections.abc import Collection

import dagster as dg

from ct_pipelines.catalog.loader import Catalog, load_catalog
from ct_pipelines.catalog.models import Dataset
from ct_pipelines.core.private import private_by_default
from ct_pipelines.core.settings import load_settings
from ct_pipelines.orchestration.assets import build_dataset_assets
from ct_pipelines.orchestration.automation import (
    audit_schedule,
    frequency_schedules,
    freshness_policy,
    landing_sensor,
    overdue_sensor,
    portal_audit,
    publish_job,
    run_failure_alerts,
)
from ct_pipelines.orchestration.resources import (
    NotifierResource,
    PortalResource,
    SettingsResource,
    warehouse_resource,
)


def build_definitions(
    catalog_dir: str | None = None,
    *,
    with_automation: bool = True,
    catalog: Catalog | None = None,
    only: Collection[str] | None = None,
) -> dg.Definitions:
    """Definitions for every valid dataset in the catalog; invalid files are logged, not fatal.

    ``catalog`` saves loading it again; ``only`` (dataset ids) builds just those datasets' assets, so a
    run of one dataset costs the same in a catalog of a thousand (datasets never depend on one another)."""
    private_by_default()  # `dagster dev` started directly: the instance and warehouse stay owner-only
    logger = dg.get_dagster_logger()
    if catalog is None:
        catalog = load_catalog(load_settings(catalog_dir).catalog_dir)
        for error in catalog.errors:
            logger.error(f"Dataset file skipped: {error}")
    assets: list[dg.AssetsDefinition] = [portal_audit]
    datasets: list[Dataset] = []
    for dataset in catalog.datasets:
        if only is not None and dataset.id not in only:
            continue
        try:
            assets.extend(build_dataset_assets(dataset, freshness_policy(dataset)))
        except ValueError as exc:  # a rule that cannot work (unknown custom check, min on text, ...)
            logger.error(f"Dataset file skipped: {catalog.sources[dataset.id]}: {exc}")
            continue
        datasets.append(dataset)
    jobs = [publish_job()]
    schedules: list[dg.ScheduleDefinition] = []
    sensors: list[dg.SensorDefinition] = []
    if with_automation:
        schedules = [*frequency_schedules(datasets), audit_schedule()]
        sensors = [landing_sensor(datasets), overdue_sensor(datasets), run_failure_alerts]
    return dg.Definitions(
        assets=assets,
        jobs=jobs,
        schedules=schedules,
        sensors=sensors,
        resources={
            "warehouse": warehouse_resource(),
            "portal": PortalResource.from_env(),
            "notifier": NotifierResource(),
            "settings": SettingsResource(catalog_dir=catalog_dir),
        },
        executor=dg.in_process_executor,
    )


class DatasetCatalogComponent(dg.Component, dg.Model, dg.Resolvable):
    """Builds one asset graph per dataset YAML in ``catalog_dir`` (default: ``CT_PIPELINES_CATALOG``, or
    the bundled samples), plus the shared publish job, schedules, sensors and the portal audit."""

    catalog_dir: str | None = None

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        return build_definitions(self.catalog_dir)
