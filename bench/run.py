"""Run every stage's benchmark in one go and print their markdown tables, one section per stage.

    python -m bench.run                 # full size (5M-row extract, 1,000-dataset catalog, ...)
    python -m bench.run --scale 0.1     # a tenth of the rows, for a quick look

Each script measures its stage and a baseline in fresh processes (wall time, peak RSS, ratio);
nothing here is asserted by tests.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# script, issue, arguments that take the row count, full-size rows
STAGES = [
    ("bench_ingest", "ingest and catalog load (Foundation)", ["--rows"], 5_000_000),
    ("bench_quality", "validation: pandera + GX in DuckDB (Quality gates)", ["--rows"], 5_000_000),
    ("bench_rel", "REL standardization (set-based)", ["--rows"], 5_000_000),
    ("bench_suppression", "suppression + audit, PII scan (Privacy)", ["--rows"], 1_000_000),
    ("bench_publish", "publishing to the local portal (Publishing)", ["--rows"], 1_000_000),
    ("bench_audit", "portal-wide audit of a 10,000-dataset catalog (Automation)", [], 0),
    (
        "bench_concurrency",
        "many datasets at once: runs 1, 2 and 4 at a time (issue 14.2)",
        ["--datasets"],
        40,
    ),
    (
        "bench_pipeline",
        "end to end: ct-pipelines run vs DuckDB read_csv and a naive pipeline",
        ["--rows"],
        5_000_000,
    ),
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full row counts")
    parser.add_argument("--only", nargs="*", help="run only these scripts (e.g. bench_ingest)")
    parser.add_argument("--skip-naive", action="store_true", help="skip the slow pandas baselines")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    print(f"# ct-pipelines benchmarks (scale {args.scale:g}, {os.cpu_count()} cores)\n")
    for script, title, row_args, full_rows in STAGES:
        if args.only and script not in args.only:
            continue
        command = [sys.executable, "-m", f"bench.{script}"]
        if row_args:
            least = 4 if row_args[0] == "--datasets" else 1000  # a few datasets, or a thousand rows
            command += [row_args[0], str(max(least, int(full_rows * args.scale)))]
        if args.skip_naive and script in ("bench_ingest", "bench_quality", "bench_pipeline"):
            command.append("--skip-naive")
        print(f"## {title}\n\n`{' '.join(command[1:])}`\n", flush=True)
        started = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        print(done.stdout.strip() or "(no output)")
        if done.returncode:
            print(f"\n**failed (exit {done.returncode})**: {done.stderr.strip().splitlines()[-1:]}")
        print(f"\n_{time.perf_counter() - started:.0f} s_\n", flush=True)


if __name__ == "__main__":
    main()
