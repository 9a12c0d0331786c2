"""A run of some datasets builds only their assets, so its cost does not grow with the catalog."""

from __future__ import annotations

from ct_pipelines.catalog.loader import load_catalog
from ct_pipelines.core.settings import SAMPLE_CATALOG_DIR
from ct_pipelines.orchestration.component import build_definitions


def test_only_the_named_datasets_get_assets_and_the_catalog_is_not_changed():
    catalog = load_catalog(SAMPLE_CATALOG_DIR)
    ids = [d.id for d in catalog.datasets]
    defs = build_definitions(str(SAMPLE_CATALOG_DIR), with_automation=False, catalog=catalog, only=ids[:1])
    groups = {key.path[0] for key in defs.resolve_all_asset_keys() if len(key.path) == 2}
    assert groups == {ids[0]}
    assert [d.id for d in catalog.datasets] == ids
    everything = build_definitions(str(SAMPLE_CATALOG_DIR), with_automation=False)
    assert {key.path[0] for key in everything.resolve_all_asset_keys() if len(key.path) == 2} == set(ids)
