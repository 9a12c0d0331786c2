"""Run a catalog folder whose extracts sit in its sibling landing/ folder, as `ct-pipelines run --catalog`
does, and read back what reached the local portal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


def run_and_read_portal(
    tmp_path: Path, catalog: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, list[tuple[dict, list[dict]]]]:
    """The one dataset's summary, and each portal view with its rows (none when nothing was published)."""
    import dagster as dg

    from ct_pipelines.orchestration.runner import run_catalog
    from ct_pipelines.portal.store import PortalStore

    monkeypatch.setenv("CT_PIPELINES_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CT_PIPELINES_CATALOG", str(catalog))  # as `run --catalog` does
    monkeypatch.delenv("CT_PIPELINES_LANDING", raising=False)  # the catalog's sibling landing/ is used
    monkeypatch.delenv("CT_PORTAL_DOMAIN", raising=False)
    (summary,), _ = run_catalog(str(catalog), instance=dg.DagsterInstance.ephemeral())
    store = PortalStore(tmp_path / "home" / "portal")
    try:
        return summary, [(v, store.query(v["id"], {"$limit": "1000"}).records()) for v in store.list_views()]
    finally:
        store.close()
