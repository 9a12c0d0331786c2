"""Benchmark: auditing a 10,000-dataset catalog vs merely reading it from the local portal.

Seeds a local portal with a generated catalog in one bulk call, then runs each stage in its own
spawned process (so peak RSS is that stage's alone) and prints a markdown table. The target is
fetch + audit <= 2x fetch.

    .venv/bin/python bench/bench_audit.py [--datasets 10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _client(domain: str, username: str, password: str) -> Any:
    from requests.adapters import HTTPAdapter
    from sodapy import Socrata

    adapter = {"prefix": "http://", "adapter": HTTPAdapter()}
    return Socrata(
        domain, "bench", username=username, password=password, session_adapter=adapter, timeout=300
    )


def _stage(name: str, domain: str, username: str, password: str, workdir: str, queue: mp.Queue) -> None:
    import duckdb

    from ct_pipelines.automation.audit import fetch_catalog, run_audit

    client = _client(domain, username, password)
    started = time.perf_counter()
    if name == "fetch":
        count = len(fetch_catalog(client))
    else:
        con = duckdb.connect(str(Path(workdir) / "warehouse.duckdb"))
        result = run_audit(client, con, Path(workdir) / "reports", f"bench-{time.time_ns()}", NOW)
        count = result.totals["datasets"]
        con.close()
    seconds = time.perf_counter() - started
    # ru_maxrss of this process is what the parent would read from RUSAGE_CHILDREN for it (KiB on Linux).
    queue.put((seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, count))


def _run(name: str, portal: Any, workdir: str) -> tuple[float, float, int]:
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(
        target=_stage, args=(name, portal.domain, portal.username, portal.password, workdir, queue)
    )
    process.start()
    outcome = queue.get(timeout=600)
    process.join()
    return outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from ct_pipelines.automation.catalog_generator import generate_catalog_views
    from ct_pipelines.portal.local import LocalPortal

    views, expected = generate_catalog_views(args.datasets, seed=2026, now=NOW)
    with tempfile.TemporaryDirectory() as workdir, LocalPortal(Path(workdir) / "portal") as portal:
        seed_started = time.perf_counter()
        portal.store.seed_views(views)
        seed_seconds = time.perf_counter() - seed_started
        results: dict[str, list[tuple[float, float, int]]] = {"fetch": [], "fetch + audit": []}
        for _ in range(args.repeats):
            for name in results:  # interleaved so both stages see the same machine load
                results[name].append(_run(name, portal, workdir))

    fetch_seconds = statistics.median(r[0] for r in results["fetch"])
    print(
        f"Catalog of {args.datasets} datasets seeded in bulk in {seed_seconds:.2f} s; median of {args.repeats} runs.\n"
    )
    print("| stage | wall seconds | peak RSS MB | ratio |")
    print("|---|---|---|---|")
    ok = True
    for name, runs in results.items():
        seconds = statistics.median(r[0] for r in runs)
        rss = max(r[1] for r in runs)
        ok &= all(r[2] == expected["datasets"] for r in runs)
        print(f"| {name} | {seconds:.2f} | {rss:.0f} | {seconds / fetch_seconds:.2f} |")
    ratio = statistics.median(r[0] for r in results["fetch + audit"]) / fetch_seconds
    print(
        f"\nfetch + audit / fetch = {ratio:.2f} (target <= 2.0); dataset counts {'match' if ok else 'DIFFER'}."
    )
    return 0 if ok and ratio <= 2.0 else 1


if __name__ == "__main__":
    sys.exit(main())
