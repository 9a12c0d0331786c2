"""The five stages run as plain functions, without Dagster: the README's functional-core promise."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import json, sys
from pathlib import Path
import duckdb
from ct_pipelines.catalog.loader import load_catalog
from ct_pipelines.core.settings import SAMPLE_CATALOG_DIR, load_settings
from ct_pipelines.pipeline import run_stages
from ct_pipelines.portal.local import LocalPortal
from ct_pipelines.publish.connection import PortalConnection

settings = load_settings(SAMPLE_CATALOG_DIR)
settings.ensure_dirs()
dataset = load_catalog(SAMPLE_CATALOG_DIR).get("deep_fishing_licenses")
with LocalPortal(settings.portal_data_dir) as portal, duckdb.connect(str(settings.warehouse_for("deep_fishing_licenses"))) as con:
    connection = PortalConnection(portal.domain, portal.username, portal.password, app_token="local",
                                  scheme="http", timeout=30)
    results = [(stage.name, result.rows_in, result.rows_out, result.table, [o.name for o in result.outcomes
               if o.blocks]) for stage, result in run_stages(con, dataset, settings, run_id="plain", portal=connection)]
    tables = {name: con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] for name, _, _, table, _ in results
              if table}
    view = portal.store.list_views()[0]
    published = portal.store.row_count(view["id"])
print(json.dumps({"results": results, "tables": tables, "published": published,
                  "dagster_imported": any(m == "dagster" or m.startswith("dagster.") for m in sys.modules)}))
"""


def test_the_five_stages_run_in_order_without_dagster(tmp_path: Path) -> None:
    env = {"CT_PIPELINES_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    names = [r[0] for r in out["results"]]
    assert names == ["ingest", "validate", "standardize", "protect", "publish"]
    assert all(not blocking for *_, blocking in out["results"])
    # 100 licences in the sample extract: every stage reads and writes all of them, and the portal holds them.
    assert {name: (rows_in, rows_out) for name, rows_in, rows_out, _, _ in out["results"]} == {
        "ingest": (100, 100),
        "validate": (100, 100),
        "standardize": (100, 100),
        "protect": (100, 100),
        "publish": (100, 100),
    }
    assert out["tables"] == {"ingest": 100, "validate": 100, "standardize": 100, "protect": 100}
    assert out["published"] == 100
    assert out["dagster_imported"] is False
