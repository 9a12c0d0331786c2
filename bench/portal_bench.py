"""Benchmark of the local portal (issue #6): 1M rows upserted in 100 sodapy requests, paged reads,
and a 10,000-dataset catalog audit through sodapy's ``datasets()``.

Each stage runs in its own spawned process (server thread + sodapy client together), whose peak RSS
is read from ``getrusage``. ``ratio`` = wall seconds / the stage's target from the issue.

    .venv/bin/python -m bench.portal_bench [--rows 1000000] [--datasets 10000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.harness import run_in_child

COLUMNS = [
    {"fieldName": "id", "dataTypeName": "number"},
    {"fieldName": "town", "dataTypeName": "text"},
    {"fieldName": "count", "dataTypeName": "number"},
    {"fieldName": "report_date", "dataTypeName": "calendar_date"},
    {"fieldName": "suppressed", "dataTypeName": "checkbox"},
]


def _rows(start: int, stop: int) -> list[dict]:
    return [
        {
            "id": i,
            "town": f"Town {i % 169}",
            "count": i % 97,
            "report_date": "2024-01-05",
            "suppressed": i % 5 == 0,
        }
        for i in range(start, stop)
    ]


def stage_upsert(data_dir: str, rows: int) -> dict:
    from ct_pipelines.portal.local import LocalPortal

    chunk = max(rows // 100, 1)
    with LocalPortal(Path(data_dir)) as portal:
        client = portal.socrata_client(timeout=120)
        view_id = client.create("Bench", columns=COLUMNS, row_identifier="id")["id"]
        started = time.perf_counter()
        for start in range(0, rows, chunk):
            result = client.upsert(view_id, _rows(start, min(start + chunk, rows)))
            assert result["Errors"] == 0
        # a second pass over the last 10 chunks: updates of existing rows in a full table
        for start in range(rows - 10 * chunk, rows, chunk):
            client.upsert(view_id, _rows(start, start + chunk))
        wall = time.perf_counter() - started
    return {"wall": wall, "requests": 110, "view_id": view_id}


def stage_read(data_dir: str, view_id: str, pages: int) -> dict:
    from ct_pipelines.portal.local import LocalPortal

    with LocalPortal(Path(data_dir)) as portal:
        client = portal.socrata_client(timeout=120)
        started = time.perf_counter()
        for page in range(pages):
            got = client.get(view_id, order=":id", limit=10_000, offset=page * 10_000)
            assert len(got) == 10_000
        client.get(view_id, where="count < 10 AND suppressed = false", select="count(*)")
        wall = time.perf_counter() - started
    return {"wall": wall}


def stage_catalog(data_dir: str, datasets: int) -> dict:
    from ct_pipelines.portal.local import LocalPortal

    with LocalPortal(Path(data_dir)) as portal:
        assert portal.store is not None
        started = time.perf_counter()
        portal.store.seed_views(
            {
                "name": f"Dataset {i}",
                "category": "Government",
                "tags": ["bench"],
                "columns": COLUMNS,
                "metadata": {"custom_fields": {"Publishing Details": {"Update Frequency": "Monthly"}}},
            }
            for i in range(datasets)
        )
        seeded = time.perf_counter() - started
        client = portal.socrata_client(timeout=120)
        started = time.perf_counter()
        records = client.datasets()  # pages of 100 like the real Discovery API default
        audit = time.perf_counter() - started
        assert len(records) >= datasets
        started = time.perf_counter()
        big_pages = client.datasets(limit=min(datasets, 10_000))
        big = time.perf_counter() - started
        assert len(big_pages) == min(datasets, 10_000)
    return {"seed": seeded, "wall": audit, "big": big}


def in_child(target, *args) -> dict:
    """The stage's figures plus its own peak RSS, from a spawned process."""
    run = run_in_child(target, *args)
    return {**run.value, "rss_mb": run.peak_rss_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--datasets", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        upsert = in_child(stage_upsert, str(Path(tmp) / "rows"), args.rows)
        read = in_child(stage_read, str(Path(tmp) / "rows"), upsert["view_id"], min(args.rows // 10_000, 100))
        catalog = in_child(stage_catalog, str(Path(tmp) / "catalog"), args.datasets)
    table = [
        (
            f"upsert {args.rows:,} rows in 100 requests + 10 update requests",
            upsert["wall"],
            upsert["rss_mb"],
            60,
        ),
        (
            f"read {min(args.rows // 10_000, 100)} pages of 10,000 rows ($order=:id)",
            read["wall"],
            read["rss_mb"],
            60,
        ),
        (f"seed {args.datasets:,} datasets (PortalStore.seed_views)", catalog["seed"], catalog["rss_mb"], 60),
        (
            f"catalog audit: datasets() over {args.datasets:,} (pages of 100)",
            catalog["wall"],
            catalog["rss_mb"],
            60,
        ),
        ("catalog: datasets(limit=10000) in one page", catalog["big"], catalog["rss_mb"], 60),
    ]
    print("| stage | wall seconds | peak RSS MB | ratio (wall / 60 s target) |")
    print("|---|---:|---:|---:|")
    for stage, wall, rss, target in table:
        print(f"| {stage} | {wall:.2f} | {rss:.0f} | {wall / target:.3f} |")


if __name__ == "__main__":
    main()
