"""Many datasets at once (issue 14.2): a burst of landing files, one run per dataset, 1, 2 and 4 at a time.

Each run is its own process (``ct-pipelines run --dataset ID``), as Dagster's run launcher starts one
process per run, sharing the project's Dagster instance (SQLite, from ``dagster.yaml``) and publishing
to ONE served local portal (``ct-pipelines portal serve``; runs starting their own embedded portal on
one data folder would take turns on its DuckDB file). Every concurrency level starts from empty
folders and a fresh portal; the portal's final state (view names, row counts, columns) must be the
same at every level.

    python -m bench.bench_concurrency                      # 40 datasets, 1, 2 and 4 at a time
    python -m bench.bench_concurrency --datasets 12 --concurrency 1 2
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ct_pipelines.core.settings import SAMPLE_CATALOG_DIR, SAMPLE_LANDING_DIR
from ct_pipelines.portal.store import PortalStore
from ct_pipelines_tests.support.served import REPO, clean_env, served_portal, start_run

SOURCE = "deep_fishing_licenses"
LOCK_ERROR = re.compile(r"lock on file|database is locked|conflicting lock|is held by another process", re.I)


@dataclass
class Level:
    concurrency: int
    seconds: float = 0.0
    failed: list[str] = field(default_factory=list)
    lock_errors: list[str] = field(default_factory=list)
    portal: list[tuple] = field(default_factory=list)


def make_catalog(root: Path, count: int) -> list[str]:
    """``count`` small datasets: the bundled fishing-licenses sample (100 rows) under new ids and files."""
    (root / "catalog").mkdir(parents=True)
    (root / "landing").mkdir()
    yaml_text = (SAMPLE_CATALOG_DIR / f"{SOURCE}.yaml").read_text(encoding="utf-8")
    ids = [f"burst_{n:03d}" for n in range(count)]
    for dataset_id in ids:
        text = yaml_text.replace(f"id: {SOURCE}", f"id: {dataset_id}")
        text = text.replace("path: deep_fishing_licenses_2024*.csv", f"path: {dataset_id}.csv")
        text = text.replace(
            "title: Fishing Licenses Sold by Town, 2024", f"title: Fishing licenses {dataset_id}"
        )
        (root / "catalog" / f"{dataset_id}.yaml").write_text(text, encoding="utf-8")
        shutil.copy(
            SAMPLE_LANDING_DIR / "deep_fishing_licenses_2024.csv", root / "landing" / f"{dataset_id}.csv"
        )
    return ids


def portal_state(data_dir: Path) -> list[tuple]:
    """What a reader of the portal sees, without the random 4x4 ids: name, rows, columns per view."""
    store = PortalStore(data_dir)
    try:
        views = store.list_views()
        return sorted(
            (
                v["name"],
                store.row_count(v["id"]),
                tuple(c["fieldName"] for c in store.get_view(v["id"]).get("columns", [])),
            )
            for v in views
        )
    finally:
        store.close()


def run_level(root: Path, ids: list[str], concurrency: int) -> Level:
    """Start every dataset's run, at most ``concurrency`` at a time, from empty folders and a fresh portal."""
    work = root / f"c{concurrency}"
    (work / "logs").mkdir(parents=True)
    shutil.copy(REPO / "dagster.yaml", work / "dagster.yaml")
    level = Level(concurrency)
    with served_portal(work / "portal") as portal_env:
        env = clean_env(
            **portal_env,
            DAGSTER_HOME=str(work),
            CT_PIPELINES_HOME=str(work / "home"),
            CT_PIPELINES_CATALOG=str(root / "catalog"),
            CT_PIPELINES_LANDING=str(root / "landing"),
        )
        waiting, running = list(ids), {}
        started = time.perf_counter()
        while waiting or running:
            while waiting and len(running) < concurrency:
                dataset_id = waiting.pop(0)
                running[dataset_id] = start_run(dataset_id, env, work, work / "logs" / f"{dataset_id}.log")
            for dataset_id, process in list(running.items()):
                if process.poll() is not None:
                    del running[dataset_id]
                    if process.returncode:
                        level.failed.append(dataset_id)
            time.sleep(0.05)
        level.seconds = time.perf_counter() - started
    for dataset_id in ids:
        if LOCK_ERROR.search((work / "logs" / f"{dataset_id}.log").read_text(errors="replace")):
            level.lock_errors.append(dataset_id)
    level.portal = portal_state(work / "portal")
    return level


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", type=int, default=40)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--keep", action="store_true", help="keep the work folder (its path is printed)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ct_bench_concurrency_"))
    load_before = os.getloadavg()[0]
    try:
        ids = make_catalog(root, args.datasets)
        levels = [run_level(root, ids, c) for c in sorted(set(args.concurrency))]
    finally:
        if args.keep:
            print(f"work folder: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    base = levels[0]
    print(
        f"{args.datasets} datasets of 100 rows, one `ct-pipelines run --dataset` process per run, "
        f"one served portal; {os.cpu_count()} cores; load average before: {load_before:.1f}, after: {os.getloadavg()[0]:.1f}\n"
    )
    print(
        "| runs at a time | wall s | per dataset s | speed-up vs first row | failed runs | lock errors | portal state |"
    )
    print("|---|---|---|---|---|---|---|")
    for level in levels:
        same = "same" if level.portal == base.portal else "DIFFERENT"
        print(
            f"| {level.concurrency} | {level.seconds:.1f} | {level.seconds / len(ids):.2f} | "
            f"{base.seconds / level.seconds:.2f}x | {len(level.failed)} | {len(level.lock_errors)} | "
            f"{same} ({len(level.portal)} views, {sum(v[1] for v in level.portal):,} rows) |"
        )
    problems = [lv for lv in levels if lv.failed or lv.lock_errors or lv.portal != base.portal]
    for level in problems:
        print(
            f"\nconcurrency {level.concurrency}: failed {level.failed[:5]}, lock errors {level.lock_errors[:5]}"
        )
    if problems:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
