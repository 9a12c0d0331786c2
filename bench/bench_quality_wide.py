"""Time the validate stage on a wide extract: many columns, each with a rule (issue 11: 3,000 x 10,000).

Usage: .venv/bin/python -m bench.bench_quality_wide [--columns 3000] [--rows 10000]
Prints one JSON line: columns, rows, rules, wall seconds, peak RSS MB of this process. The extract is
built by a child process, so the peak RSS is the validate stage's own (with its imports), not that of
DuckDB generating 30 million cells.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import tempfile
import time
from datetime import datetime
from pathlib import Path

import duckdb


def wide_dataset(columns: int):
    """Columns cycle through integer with a range, required text, allowed values and dates."""
    from ct_pipelines.catalog.models import Dataset

    kinds = [
        {"type": "integer", "min": 0, "max": 1000},
        {"required": True},
        {"allowed_values": ["A", "B", "C"]},
        {"type": "date"},
        {"type": "number"},
    ]
    return Dataset.model_validate(
        {
            "id": "wide",
            "title": "Wide extract",
            "description": "Generated columns for the wide validation benchmark.",
            "agency": "Department of Testing",
            "category": "Government",
            "update_frequency": "Monthly",
            "contact": "data.officer@ct.gov",
            "ingest": {"path": "wide.csv"},
            "columns": [{"source": f"c{i}", **kinds[i % len(kinds)]} for i in range(columns)],
        }
    )


def build(con: duckdb.DuckDBPyConnection, columns: int, rows: int) -> None:
    values = ["CAST(i % 900 AS VARCHAR)", "'x' || i", "['A','B','C'][1 + i % 3]", "'2024-01-15'", "'1,234.5'"]
    select = ", ".join(f"{values[c % len(values)]} AS c{c}" for c in range(columns))
    con.execute(
        f"CREATE TABLE ingest__wide AS SELECT i + 1 AS _row, i + 2 AS _line, {select} FROM range({rows}) r(i)"
    )


def build_file(path: str, columns: int, rows: int) -> None:
    with duckdb.connect(path) as con:
        build(con, columns, rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--columns", type=int, default=3000)
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    from ct_pipelines.validate.rules import build_rules
    from ct_pipelines.validate.validate import validate_dataset

    dataset = wide_dataset(args.columns)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "w.duckdb")
        child = multiprocessing.get_context("spawn").Process(
            target=build_file, args=(path, args.columns, args.rows)
        )
        child.start()
        child.join()
        con = duckdb.connect(path, config={"memory_limit": "1GB"})
        started = time.perf_counter()
        result = validate_dataset(
            con,
            dataset,
            "ingest__wide",
            "validate__wide",
            "quarantine__wide",
            run_id="bench",
            reports_dir=Path(tmp) / "reports",
            now=datetime(2025, 1, 1),
        )
        seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "columns": args.columns,
                "rows": args.rows,
                "rules": len(build_rules(dataset, datetime(2025, 1, 1))),
                "rows_valid": result.rows_valid,
                "seconds": round(seconds, 1),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            }
        )
    )


if __name__ == "__main__":
    main()
