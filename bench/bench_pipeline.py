"""End to end: `ct-pipelines run` on one generated extract, against DuckDB's read_csv floor and a naive pipeline.

    python -m bench.bench_pipeline --rows 1000000 [--repeat 3] [--skip-naive]

Every variant runs as its own fresh Python process (wall time includes interpreter start and imports; peak
RSS from wait4): `ct-pipelines run` as a user runs it (fresh home, fresh Dagster instance, local portal);
DuckDB's `read_csv` of the same file into a table (the floor); and the naive pipeline from the named
packages (pandas read_csv, pandera on pandas, GX 1.x on pandas, a dict for REL, pandas groupby with small
counts masked, sodapy upsert to a local portal). Per-stage seconds come from `meta.stage_results`. The
fixed cost is the same run on a 10-row extract. Nothing here is asserted by tests.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import yaml

from bench.generate_extract import generate

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
STAGES = ["ingest", "validate", "standardize", "protect", "publish"]
EXPECTATIONS = [
    {"expectation": "expect_column_values_to_not_be_null", "kwargs": {"column": "record_id"}},
    {"expectation": "expect_column_values_to_be_between", "kwargs": {"column": "age", "min_value": 0, "max_value": 120}},
    {"expectation": "expect_column_values_to_be_in_set", "kwargs": {"column": "status", "value_set": ["Open", "Closed", "Pending"]}},
]  # fmt: skip


def catalog_entry() -> dict:
    """Rules on every column, REL on race/ethnicity and language, an aggregate by town and group, suppressed."""
    return {
        "id": "bench_extract",
        "title": "Benchmark extract",
        "description": "Generated rows for the end-to-end benchmark; not real figures.",
        "agency": "Office of Policy and Management",
        "category": "Government",
        "update_frequency": "Monthly",
        "contact": "bench@ct.gov",
        "ingest": {"path": "bench_extract.csv"},
        "columns": [
            {"source": "Record ID", "required": True, "unique": True, "pattern": "^R[0-9]{9}$"},
            {"source": "Event Date", "type": "date", "required": True, "not_in_future": True},
            {"source": "Town", "required": True, "checks": ["ct_town"]},
            {"source": "Age", "type": "integer", "min": 0, "max": 120},
            {"source": "Sex", "allowed_values": ["F", "M", "Female", "Male", "U"]},
            {"source": "Race/Ethnicity", "field_name": "race_ethnicity", "required": True},
            {"source": "Primary Language", "required": True},
            {"source": "Amount", "type": "number", "min": 0, "max": 10000},
            {"source": "Visits", "type": "integer", "min": 0, "max": 100},
            {"source": "Status", "allowed_values": ["Open", "Closed", "Pending"]},
            {"source": "Notes", "pii": True},
        ],
        "validate": {"expectations": EXPECTATIONS, "max_quarantine_share": 0.5},
        "standardize": {
            "source": "bench",
            "columns": [
                {"column": "race_ethnicity", "field": "race_ethnicity"},
                {"column": "primary_language", "field": "language"},
            ],
            "reporting_rule": "ct_dph",
            "max_unmapped_share": 0.5,
        },
        "protect": {
            "mode": "aggregate",
            "aggregate": {"dimensions": ["town", "rel_reporting_group"], "measures": [{"name": "count"}]},
            "suppression": {"count_column": "count", "threshold": 5, "method": "heuristic"},
        },
    }


def measured(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MB, stdout) of one fresh process; fails loudly if it fails."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode not in (0, 1):  # 1: a dataset failed its checks, which the summary shows
        raise SystemExit(f"{command[-3:]} failed ({process.returncode}): {stderr.strip()[-2000:]}")
    return wall, usage.ru_maxrss / 1024, stdout


def prepare(workdir: Path, rows: int) -> Path:
    """A catalog folder with a sibling landing folder holding the generated extract."""
    (workdir / "catalog").mkdir(parents=True)
    (workdir / "landing").mkdir()
    generate(workdir / "landing" / "bench_extract.csv", rows)
    text = yaml.safe_dump(catalog_entry(), sort_keys=False)
    (workdir / "catalog" / "bench_extract.yaml").write_text(text, encoding="utf-8")
    return workdir / "landing" / "bench_extract.csv"


def run_ours(workdir: Path, label: str) -> dict:
    """`ct-pipelines run` in a fresh home and Dagster instance; stage seconds from the warehouse."""
    home, dagster_home = workdir / f"home_{label}", workdir / f"dagster_{label}"
    dagster_home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "CT_PIPELINES_HOME": str(home),
        "DAGSTER_HOME": str(dagster_home),
    }
    env.pop("CT_PIPELINES_LANDING", None)
    command = [
        PYTHON,
        "-c",
        "from ct_pipelines.cli import main; main()",
        "run",
        "--catalog",
        str(workdir / "catalog"),
    ]
    wall, rss, stdout = measured(command, env, workdir)
    with duckdb.connect(str(home / "warehouse" / "bench_extract.duckdb"), read_only=True) as con:
        stages = dict(
            con.execute("SELECT stage, sum(seconds) FROM meta.stage_results GROUP BY stage").fetchall()
        )
        published = con.execute(
            "SELECT rows_out, status FROM meta.stage_results WHERE stage = 'publish'"
        ).fetchone()
    return {"wall": wall, "rss": rss, "stages": stages, "published": published, "summary": stdout.strip()}


FLOOR = "import duckdb, sys; con = duckdb.connect(sys.argv[1]); con.execute('SET enable_progress_bar = false'); con.execute(\"CREATE TABLE t AS SELECT * FROM read_csv(?, all_varchar=true)\", [sys.argv[2]]); print(con.execute('SELECT count(*) FROM t').fetchone()[0])"  # noqa: E501


def run_floor(workdir: Path, extract: Path) -> dict:
    target = workdir / "floor.duckdb"
    target.unlink(missing_ok=True)
    wall, rss, out = measured([PYTHON, "-c", FLOOR, str(target), str(extract)], dict(os.environ), workdir)
    return {"wall": wall, "rss": rss, "rows": int(out.strip().splitlines()[-1])}


def run_naive(workdir: Path, extract: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [PYTHON, "-m", "bench.naive_pipeline", str(extract), str(workdir / "naive_portal")]
    shutil.rmtree(workdir / "naive_portal", ignore_errors=True)
    wall, rss, out = measured(command, env, ROOT)
    return {"wall": wall, "rss": rss, "note": out.strip().splitlines()[-1] if out.strip() else ""}


def median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def report(rows: int, ours: list[dict], fixed: list[dict], floor: list[dict], naive: list[dict]) -> None:
    ours_s, floor_s = median(ours, "wall"), median(floor, "wall")
    print(
        f"\n## End to end, {rows:,} rows ({os.cpu_count()} cores, shared machine; medians of {len(ours)} run(s))\n"
    )
    print("| variant | wall s | peak RSS MB | vs ct-pipelines run |")
    print("|---|---:|---:|---|")
    print(f"| ct-pipelines run | {ours_s:.1f} | {median(ours, 'rss'):.0f} | 1.00 |")
    print(
        f"| DuckDB read_csv floor | {floor_s:.1f} | {median(floor, 'rss'):.0f} | run is {ours_s / floor_s:.2f}x the floor |"
    )
    if naive:
        naive_s = median(naive, "wall")
        print(
            f"| naive pandas/pandera/GX/sodapy | {naive_s:.1f} | {median(naive, 'rss'):.0f} | run is {naive_s / ours_s:.2f}x faster |"
        )
    print(f"| fixed cost: 10-row run | {median(fixed, 'wall'):.1f} | {median(fixed, 'rss'):.0f} | |")
    each = {"ct-pipelines run": ours, "floor": floor, "naive": naive, "10-row run": fixed}
    print(
        "\neach run (wall s / peak MB): "
        + "; ".join(
            f"{name} " + ", ".join(f"{r['wall']:.1f}/{r['rss']:.0f}" for r in runs)
            for name, runs in each.items()
            if runs
        )
    )
    print("\n| stage | seconds (median) |\n|---|---:|")
    for stage in STAGES:
        print(f"| {stage} | {statistics.median(r['stages'].get(stage, 0) or 0 for r in ours):.2f} |")
    stage_sum = statistics.median(sum(v or 0 for v in r["stages"].values()) for r in ours)
    print(f"| before/between stages (wall - stages) | {ours_s - stage_sum:.2f} |")
    print(
        f"\npublished (rows, status): {ours[0]['published']}; naive: {naive[0]['note'] if naive else 'skipped'}"
    )
    print(f"\n```\n{ours[0]['summary']}\n```")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the extract (1M, 5M, 20M)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each variant, reported as medians")
    parser.add_argument("--skip-naive", action="store_true", help="skip the slow pandas pipeline")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_pipeline_") as tmp:
        big, small = Path(tmp) / "big", Path(tmp) / "small"
        extract = prepare(big, args.rows)
        prepare(small, 10)
        ours, fixed, floor, naive = [], [], [], []
        for n in range(args.repeat):
            fixed.append(run_ours(small, f"r{n}"))
            floor.append(run_floor(big, extract))
            ours.append(run_ours(big, f"r{n}"))
            if not args.skip_naive:
                naive.append(run_naive(big, extract))
        report(args.rows, ours, fixed, floor, naive)


if __name__ == "__main__":
    main()
