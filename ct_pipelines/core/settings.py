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
#: DuckDB's memory cap per dataset. Past a few million rows a run fills whatever cap it has with cached
#: blocks, so the cap sets the peak: at 512 MB the 5M- and 20M-row benches ran as fast as at 768 MB and
#: peaked at 850 and 961 MB (768 MB: 923 and 1,204 MB).
DEFAULT_DUCKDB_MEMORY = "512MB"
#: An instant (a time with an offset, a Parquet timestamp with a zone) is published as the wall time in
#: this zone, since the portal keeps floating times. Named, not the machine's zone, so a server in UTC
#: publishes what a desktop in Hartford does (a helper's re-run in another zone rewrote every row).
PUBLISHED_TIME_ZONE = "America/New_York"
#: A wide extract needs more: DuckDB's reader keeps each column's vectors for every thread, and a
#: 3,000-column file needs 640 MB to load. Datasets declaring this many columns get WIDE_DUCKDB_MEMORY,
#: unless their YAML (validate.budget.memory) or CT_PIPELINES_DUCKDB_MEMORY sets the cap.
WIDE_COLUMNS = 200
WIDE_DUCKDB_MEMORY = "768MB"


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


@dataclass(frozen=True)
class Settings:
    """Resolved locations; build with :func:`load_settings` so environment changes are picked up."""

    home: Path
    catalog_dir: Path
    landing_dir: Path
    warehouse_dir: Path  # one DuckDB file per dataset (see core/warehouse.py), so runs never share a file
    reports_dir: Path
    portal_data_dir: Path
    sql_dir: Path
    duckdb_memory_limit: str = DEFAULT_DUCKDB_MEMORY
    duckdb_memory_from_env: bool = False  # CT_PIPELINES_DUCKDB_MEMORY set: every dataset gets that cap
    #: Remote folders (fsspec URLs such as sftp://host/landing) that ``ingest.path`` may read from: a URL
    #: ``CT_PIPELINES_LANDING`` (then also the base of relative paths) and ``CT_PIPELINES_REMOTE_LANDING``.
    remote_roots: tuple[str, ...] = ()
    landing_url: str | None = None
    dataset_seconds: float | None = None  # default time budget of one dataset's step (None: no limit)

    @property
    def duckdb_config(self) -> dict[str, str]:
        """DuckDB settings for the warehouse: a memory cap (DuckDB spills to disk past it), so memory
        stays flat as extracts grow instead of taking most of the machine; and no vacuum at checkpoints.
        Validation deletes the rows it sets aside from a table the next run replaces; merging what is
        left rewrote the whole table when the run closed (3.2 s of a 5M-row run). Deleted rows stay as
        marks instead, and fully deleted row groups are still freed."""
        return {"memory_limit": self.duckdb_memory_limit, "max_vacuum_tasks": "0"}

    def dataset_memory(self, columns: int) -> str | None:
        """The cap of one dataset's step when its YAML sets none: WIDE_DUCKDB_MEMORY for a dataset of
        ``columns`` >= WIDE_COLUMNS, unless the environment set the cap; None keeps the connection's."""
        if self.duckdb_memory_from_env or columns < WIDE_COLUMNS:
            return None
        return WIDE_DUCKDB_MEMORY

    def warehouse_for(self, dataset_id: str) -> Path:
        """The DuckDB file holding one dataset's stage tables and its own state (ingest log, publish
        ledger, stage and check results): runs of different datasets never write the same file."""
        if not dataset_id or dataset_id.startswith((".", "_")) or any(c in dataset_id for c in "/\\:"):
            raise ValueError(f"'{dataset_id}' is not a dataset id (letters, digits and '_', a letter first)")
        return self.warehouse_dir / f"{dataset_id}.duckdb"

    @property
    def audit_warehouse(self) -> Path:
        """The portal audit's snapshots: its own file (a leading '_' no dataset id can have)."""
        return self.warehouse_dir / "_portal_audit.duckdb"

    def ensure_dirs(self) -> None:
        """Create the writable folders; called by commands and assets, never at import time."""
        from ct_pipelines.core.legacy_warehouse import split_legacy_warehouse

        check_warehouse_dir(self.warehouse_dir)
        split_legacy_warehouse(self.warehouse_dir)
        for path in (self.home, self.reports_dir, self.portal_data_dir, self.warehouse_dir):
            path.mkdir(parents=True, exist_ok=True)


def check_warehouse_dir(folder: Path) -> None:
    """Refuse a warehouse setting that still names the old single DuckDB file, saying what to do."""
    if folder.is_file():
        raise ValueError(
            f"CT_PIPELINES_WAREHOUSE is {folder}, a file, but the warehouse is now a folder with one DuckDB "
            f"file per dataset; set CT_PIPELINES_WAREHOUSE to a folder (e.g. {folder.with_suffix('')})."
        )


def load_settings(catalog_dir: Path | str | None = None) -> Settings:
    """Read ``CT_PIPELINES_*`` variables; defaults point at the bundled samples and ``./data``. A given
    ``catalog_dir`` wins over ``CT_PIPELINES_CATALOG`` (and brings its sibling ``landing/`` folder)."""
    home = _env_path("CT_PIPELINES_HOME", Path.cwd() / "data")
    catalog_dir = (
        Path(catalog_dir).expanduser().resolve()
        if catalog_dir
        else _env_path("CT_PIPELINES_CATALOG", SAMPLE_CATALOG_DIR)
    )
    # A catalog folder with a sibling ``landing`` folder (like the bundled samples) brings its own landing.
    sibling_landing = (catalog_dir if catalog_dir.is_dir() else catalog_dir.parent).parent / "landing"
    landing_url = os.environ.get("CT_PIPELINES_LANDING", "").strip() or None
    if landing_url and "://" not in landing_url:
        landing_url = None
    extra_roots = os.environ.get("CT_PIPELINES_REMOTE_LANDING", "").replace(",", " ").split()
    sql_default = Path.cwd() / "sql"
    if not sql_default.is_dir():
        sql_default = PACKAGE_DIR.parent / "sql"
    return Settings(
        home=home,
        catalog_dir=catalog_dir,
        landing_dir=home / "landing"
        if landing_url
        else _env_path(
            "CT_PIPELINES_LANDING", sibling_landing if sibling_landing.is_dir() else home / "landing"
        ),
        warehouse_dir=_env_path("CT_PIPELINES_WAREHOUSE", home / "warehouse"),
        reports_dir=_env_path("CT_PIPELINES_REPORTS", home / "reports"),
        portal_data_dir=_env_path("CT_PIPELINES_PORTAL_DATA", home / "portal"),
        sql_dir=_env_path("CT_PIPELINES_SQL", sql_default),
        duckdb_memory_limit=os.environ.get("CT_PIPELINES_DUCKDB_MEMORY") or DEFAULT_DUCKDB_MEMORY,
        duckdb_memory_from_env=bool(os.environ.get("CT_PIPELINES_DUCKDB_MEMORY")),
        remote_roots=tuple(([landing_url] if landing_url else []) + extra_roots),
        landing_url=landing_url,
        dataset_seconds=float(os.environ["CT_PIPELINES_DATASET_SECONDS"])
        if os.environ.get("CT_PIPELINES_DATASET_SECONDS")
        else None,
    )
