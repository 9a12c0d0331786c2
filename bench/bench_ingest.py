"""Ingest and catalog-load figures (Foundation issue): our ingest vs DuckDB's own read_csv vs pandas,
and loading a 1,000-dataset catalog vs Dagster's time for the same number of bare assets."""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from bench.generate_extract import generate
from bench.harness import Measure, markdown, measure


def ours(path: str, db: str) -> str:
    import duckdb

    from ct_pipelines.catalog.models import Dataset
    from ct_pipelines.core.settings import load_settings
    from ct_pipelines.ingest.ingest import ingest_dataset

    dataset = Dataset.model_validate(
        {
            "id": "bench",
            "title": "Bench extract",
            "description": "Generated benchmark extract.",
            "agency": "Bench",
            "category": "Government",
            "update_frequency": "Daily",
            "contact": "b@ct.gov",
            "ingest": {"path": Path(path).name},
        }
    )
    con = duckdb.connect(db, config=load_settings().duckdb_config)
    con.execute("SET enable_progress_bar = false")
    result = ingest_dataset(
        con, dataset, Path(path).parent, run_id="bench", workdir=Path(db).parent, force=True
    )
    return f"{result.rows:,} rows"


def duckdb_read_csv(path: str, db: str) -> str:
    import duckdb

    con = duckdb.connect(db)
    con.execute("SET enable_progress_bar = false")
    con.execute(f"CREATE OR REPLACE TABLE t AS SELECT * FROM read_csv('{path}')")
    return f"{con.execute('SELECT count(*) FROM t').fetchone()[0]:,} rows"


def pandas_read_csv(path: str, db: str) -> str:
    import pandas as pd

    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return f"{len(frame):,} rows"


def _catalog(folder: Path, n: int) -> None:
    from ct_pipelines.core.settings import SAMPLE_CATALOG_DIR

    template = (SAMPLE_CATALOG_DIR / "dss_interpreter_requests.yaml").read_text(encoding="utf-8")
    for i in range(n):
        (folder / f"d{i:04d}.yaml").write_text(
            template.replace("id: dss_interpreter_requests", f"id: dataset_{i:04d}"), encoding="utf-8"
        )


def load_catalog_defs(folder: str) -> str:
    # The modules the check specs need are imported first: a fixed cost, not one
    # that grows with the catalog; the process time in the table still includes it.
    import ct_pipelines.protect.specs  # noqa: F401
    import ct_pipelines.publish.specs  # noqa: F401
    import ct_pipelines.standardize.specs  # noqa: F401
    import ct_pipelines.validate.specs  # noqa: F401
    from ct_pipelines.orchestration.component import build_definitions

    started = time.perf_counter()
    defs = build_definitions(folder)
    graph = defs.resolve_asset_graph()
    defs.resolve_job_def("publish_datasets")
    return f"{len(list(graph.get_all_asset_keys()))} assets, {time.perf_counter() - started:.2f}s in-process"


def load_bare_assets(n: int) -> str:
    import dagster as dg

    started = time.perf_counter()
    assets = []
    for i in range(n // 5):
        previous = None
        for stage in ("raw", "validated", "standardized", "published_table", "portal"):
            key = dg.AssetKey([f"dataset_{i:04d}", stage])

            @dg.asset(key=key, deps=[previous] if previous else [], group_name=f"dataset_{i:04d}")
            def _bare() -> None:
                return None

            assets.append(_bare)
            previous = key
    defs = dg.Definitions(assets=assets, jobs=[dg.define_asset_job("all", selection=dg.AssetSelection.all())])
    defs.resolve_asset_graph()
    defs.resolve_job_def("all")
    return f"{len(assets)} assets, {time.perf_counter() - started:.2f}s in-process"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--datasets", type=int, default=1000)
    parser.add_argument("--skip-naive", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ct-bench-"))
    try:
        extract = generate(work / "extract.csv", args.rows)
        results: list[Measure] = [
            measure(
                "ingest", "duckdb read_csv (baseline)", duckdb_read_csv, str(extract), str(work / "a.duckdb")
            ),
            measure("ingest", "ct-pipelines", ours, str(extract), str(work / "b.duckdb")),
        ]
        if not args.skip_naive:
            results.append(measure("ingest", "naive pandas read_csv", pandas_read_csv, str(extract), ""))
        folder = work / "catalog"
        folder.mkdir()
        _catalog(folder, args.datasets)
        results += [
            measure("catalog load", "dagster bare assets (baseline)", load_bare_assets, args.datasets * 5),
            measure("catalog load", "ct-pipelines catalog", load_catalog_defs, str(folder)),
        ]
        print(f"### Ingest ({args.rows:,} rows) and catalog load ({args.datasets:,} datasets)\n")
        print(markdown(results), end="\n\n")
        for stage in ("ingest", "catalog load"):
            base = next(m for m in results if m.stage == stage and "baseline" in m.variant)
            ours_m = next(m for m in results if m.stage == stage and m.variant.startswith("ct-pipelines"))
            print(
                f"- {stage}: ct-pipelines takes {ours_m.seconds / base.seconds:.2f}x the baseline's time "
                f"(whole process), peak RSS {ours_m.peak_rss_mb:.0f} MB"
            )
        in_process = [
            float(m.note.split(", ")[1].removesuffix("s in-process"))
            for m in results
            if m.stage == "catalog load"
        ]
        print(
            f"- catalog load, definitions only (libraries already imported): "
            f"{in_process[1] / in_process[0]:.2f}x Dagster's time for the same number of bare assets"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
