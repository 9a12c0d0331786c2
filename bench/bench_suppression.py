"""Benchmark: suppression + LP audit of town x category tables, and the PII scan on a large table.

Each stage runs in a fresh 'spawn' child so its peak RSS is its own. Prints a markdown table.
Run: .venv/bin/python -m bench.bench_suppression [--rows 1000000]
"""

from __future__ import annotations

import argparse
import time

from bench.harness import run_in_child


def realistic_cells(towns: int, categories: int, seed: int):
    """Town sizes are skewed (a few cities, many small towns) so many cells fall at or below 5."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    sizes = rng.lognormal(7, 1.3, size=towns)
    shares = rng.dirichlet(
        [8, 2, 3, 1, 0.3, 0.2, 0.5, 0.6][:categories] + [0.5] * max(0, categories - 8), size=towns
    )
    counts = rng.poisson(sizes[:, None] * shares / 20)
    return pd.DataFrame(
        [
            {"town": f"town{t}", "race": f"cat{c}", "n": int(counts[t, c])}
            for t in range(towns)
            for c in range(categories)
        ]
    )


def suppress_stage(towns: int, categories: int, seed: int) -> tuple[float, str]:
    from ct_pipelines.protect.suppression import suppress

    cells = realistic_cells(towns, categories, seed)
    started = time.perf_counter()
    result = suppress(cells, ["town", "race"], "n", threshold=5)
    elapsed = time.perf_counter() - started
    return (
        elapsed,
        f"{result.primary_count} primary, {result.complementary_count} complementary, "
        f"{result.lp_solves} LPs, audit {'passed' if result.audit_passed else 'FAILED'}",
    )


def pii_scan_stage(rows: int) -> tuple[float, str]:
    import duckdb

    from ct_pipelines.protect.pii import scan_for_pii

    con = duckdb.connect()
    con.execute(
        f"""CREATE TABLE t AS SELECT 'Town ' || (i % 169) AS town,
        'Visit note ' || i || CASE WHEN i = {rows // 2} THEN ' SSN 078-05-1120' ELSE ' no issues' END AS notes,
        'code-' || (i % 1000) AS program
        FROM range({rows}) r(i)"""
    )
    started = time.perf_counter()
    hits = scan_for_pii(con, "t")
    return time.perf_counter() - started, f"{len(hits)} hit(s) over {rows:,} rows x 3 text columns"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows for the PII scan stage")
    args = parser.parse_args()
    stages = [
        ("suppress 169 towns x 8 categories (seed 1)", suppress_stage, (169, 8, 1)),
        ("suppress 169 towns x 8 categories (seed 2)", suppress_stage, (169, 8, 2)),
        ("suppress 169 towns x 16 categories", suppress_stage, (169, 16, 3)),
        (f"PII scan {args.rows:,} rows", pii_scan_stage, (args.rows,)),
    ]
    print("| stage | wall seconds | peak RSS MB | ratio | notes |")
    print("|---|---|---|---|---|")
    baseline = None
    for name, target, stage_args in stages:
        run = run_in_child(target, *stage_args)  # stages time their own work, without building inputs
        (elapsed, note), peak = run.value, run.peak_rss_mb
        baseline = baseline or elapsed
        print(f"| {name} | {elapsed:.2f} | {peak:.0f} | {elapsed / baseline:.1f} | {note} |")


if __name__ == "__main__":
    main()
