"""Where ct-pipelines keeps its files, resolved from environment variables with local defaults.

Everything a fresh clone needs lives under one project-local folder (``data/`` by default) so that
``ct-pipelines run`` works with no configuration and nothing is written outside the checkout.
Production overrides each location with an environment variable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # ct_pipelines/
SAMPLES_DIR = PACKAGE_DIR / "samples"
SAMPLE_CATALOG_DIR = SAMPLES_DIR / "catalog"
SAMPLE_LANDING_DIR = SAMPLES_DIR / "landing"


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


@dataclass(frozen=True)
class Settings:
    """Resolved locations; build with :func:`load_settings` so environment changes are picked up."""

    home: Path
    catalog_dir: Path
    landing_dir: Path
    warehouse_path: Path
    reports_dir: Path
    portal_data_dir: Path
    sql_dir: Path
    duckdb_memory_limit: str = "1GB"
    dataset_seconds: float | None = None  # default time budget of one dataset's step (None: no limit)

    @property
    def duckdb_config(self) -> dict[str, str]:
        """DuckDB settings for the warehouse: a memory cap (DuckDB spills to disk past it), so memory
        stays flat as extracts grow instead of taking most of the machine."""
        return {"memory_limit": self.duckdb_memory_limit}

    def ensure_dirs(self) -> None:
        """Create the writable folders; called by commands and assets, never at import time."""
        for path in (self.home, self.reports_dir, self.portal_data_dir, self.warehouse_path.parent):
            path.mkdir(parents=True, exist_ok=True)


def load_settings() -> Settings:
    """Read ``CT_PIPELINES_*`` variables; defaults point at the bundled samples and ``./data``."""
    home = _env_path("CT_PIPELINES_HOME", Path.cwd() / "data")
    catalog_dir = _env_path("CT_PIPELINES_CATALOG", SAMPLE_CATALOG_DIR)
    # A catalog folder with a sibling ``landing`` folder (like the bundled samples) brings its own landing.
    sibling_landing = (catalog_dir if catalog_dir.is_dir() else catalog_dir.parent).parent / "landing"
    sql_default = Path.cwd() / "sql"
    if not sql_default.is_dir():
        sql_default = PACKAGE_DIR.parent / "sql"
    return Settings(
        home=home,
        catalog_dir=catalog_dir,
        landing_dir=_env_path(
            "CT_PIPELINES_LANDING", sibling_landing if sibling_landing.is_dir() else home / "landing"
        ),
        warehouse_path=_env_path("CT_PIPELINES_WAREHOUSE", home / "warehouse.duckdb"),
        reports_dir=_env_path("CT_PIPELINES_REPORTS", home / "reports"),
        portal_data_dir=_env_path("CT_PIPELINES_PORTAL_DATA", home / "portal"),
        sql_dir=_env_path("CT_PIPELINES_SQL", sql_default),
        duckdb_memory_limit=os.environ.get("CT_PIPELINES_DUCKDB_MEMORY", "1GB"),
        dataset_seconds=float(os.environ["CT_PIPELINES_DATASET_SECONDS"])
        if os.environ.get("CT_PIPELINES_DATASET_SECONDS")
        else None,
    )
