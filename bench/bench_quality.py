"""Benchmark the validate stage on a generated extract (5M rows by default).

Compares, each in its own child process (so peak RSS is the stage's own):
  * ours:      validate_dataset (one SQL scan on DuckDB, checked by pandera, + SQL quarantine + GX on DuckDB)
  * plain_sql: the same row rules hand-written as DuckDB SQL (the floor we compare against)
  * naive:     pandas read of the whole table + pandera on pandas + GX on pandas (skip with --skip-naive)

Usage: .venv/bin/python bench/bench_quality.py [--rows 5000000] [--skip-naive]
Prints a markdown table: stage, wall seconds, peak RSS MB, ratio to plain SQL.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

RACES = [
    "White",
    "Black or African American",
    "Asian",
    "American Indian or Alaska Native",
    "Other",
    "Unknown",
]
TOWNS = ["Hartford", "New Haven", "Bridgeport", "Stamford", "Waterbury", "Norwalk", "Danbury", "Springfield"]
NOW = datetime(2025, 1, 1)
MEMORY_LIMIT: str | None = None  # set from --memory-limit, in parent and children


def dataset():
    from ct_pipelines.catalog.models import Dataset

    return Dataset.model_validate(
        {
            "id": "bench",
            "title": "Benchmark extract",
            "description": "Generated rows for the quality benchmark.",
            "agency": "Department of Testing",
            "category": "Health and Human Services",
            "update_frequency": "Monthly",
            "contact": "data.officer@ct.gov",
            "ingest": {"path": "bench.csv"},
            "columns": [
                {"source": "record_id", "type": "integer", "required": True, "unique": True},
                {"source": "event_date", "type": "date", "not_in_future": True},
                {"source": "town", "checks": ["ct_town"], "severity": "WARN"},
                {"source": "age", "type": "integer", "min": 0, "max": 120},
                {"source": "sex", "allowed_values": ["F", "M", "U"]},
                {"source": "race", "allowed_values": RACES},
                {"source": "amount", "type": "number"},
                {"source": "zip", "pattern": r"06[0-9]{3}"},
                {"source": "notes", "pii": True},
            ],
            "validate": {
                "expectations": [
                    {"expectation": "expect_column_values_to_not_be_null", "kwargs": {"column": "record_id"}},
                    {"expectation": "expect_column_values_to_be_unique", "kwargs": {"column": "record_id"}},
                    {
                        "expectation": "expect_column_values_to_be_between",
                        "kwargs": {"column": "age", "min_value": 0, "max_value": 120},
                    },
                    {
                        "expectation": "expect_column_values_to_be_in_set",
                        "kwargs": {"column": "sex", "value_set": ["F", "M", "U"]},
                    },
                    {
                        "expectation": "expect_column_values_to_match_regex",
                        "kwargs": {"column": "zip", "regex": "^06[0-9]{3}$"},
                    },
                    {"expectation": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}},
                ]
            },
        }
    )


def build(path: Path, rows: int) -> None:
    """Deterministic rows (hash of the row number, so the same --rows gives the same table), ~0.1% defects."""
    import duckdb

    races = "[" + ", ".join(f"'{r}'" for r in RACES) + "]"
    towns = "[" + ", ".join(f"'{t}'" for t in TOWNS) + "]"
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute(
        f"""CREATE OR REPLACE TABLE raw.bench AS
        WITH g AS (SELECT range + 1 AS n, hash(range) AS h FROM range({rows}))
        SELECT
          CASE WHEN h % 1000 = 1 THEN '' WHEN h % 1000 = 2 THEN CAST(n - 1 AS VARCHAR) ELSE CAST(n AS VARCHAR) END AS record_id,
          CASE WHEN h % 1000 = 3 THEN '13/45/2020' WHEN h % 1000 = 4 THEN '01/01/2031'
               ELSE strftime(DATE '2015-01-01' + CAST(h % 3000 AS INTEGER), '%m/%d/%Y') END AS event_date,
          list_extract({towns}, CAST(h % 8 + 1 AS INTEGER)) AS town,
          CASE WHEN h % 1000 = 5 THEN '150' ELSE CAST(h % 100 AS VARCHAR) END AS age,
          CASE WHEN h % 1000 = 6 THEN 'X' ELSE list_extract(['F', 'M', 'U'], CAST(h % 3 + 1 AS INTEGER)) END AS sex,
          list_extract({races}, CAST((h >> 8) % 6 + 1 AS INTEGER)) AS race,
          format('{{:,.2f}}', CAST(h % 1000000 AS DOUBLE) / 7) AS amount,
          CASE WHEN h % 1000 = 7 THEN '6103' ELSE '06' || lpad(CAST(h % 1000 AS VARCHAR), 3, '0') END AS zip,
          'note about case ' || CAST(h % 99991 AS VARCHAR) AS notes,
          n AS _row, n + 1 AS _line
        FROM g"""
    )
    con.close()


def connect(path: Path):
    """The pipeline's connection; MEMORY_LIMIT (from --memory-limit) makes DuckDB spill instead of growing."""
    import duckdb

    con = duckdb.connect(str(path))
    if MEMORY_LIMIT:
        con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    return con


def stage_ours(path: Path, workdir: Path) -> dict:
    from ct_pipelines.validate.validate import validate_dataset

    con = connect(path)
    result = validate_dataset(
        con, dataset(), "raw.bench", "valid.bench", "quarantine.bench",
        run_id=f"bench-{time.time_ns()}", reports_dir=workdir / "reports", now=NOW,
    )  # fmt: skip
    return {"valid": result.rows_valid, "quarantined": result.rows_quarantined}


def stage_plain_sql(path: Path, workdir: Path) -> dict:
    """The same row rules as hand-written SQL: typed CTAS, failure rows, anti-join."""
    from ct_pipelines.validate.custom_checks import CT_TOWNS

    towns = ", ".join("'" + t.lower().replace("'", "''") + "'" for t in CT_TOWNS)
    races = ", ".join(f"'{r}'" for r in RACES)
    con = connect(path)
    con.execute(
        """CREATE OR REPLACE TEMP TABLE t AS SELECT
          NULLIF(trim(record_id), '') AS record_id_text,
          TRY_CAST(NULLIF(trim(record_id), '') AS BIGINT) AS record_id,
          NULLIF(trim(event_date), '') AS event_date_text,
          CAST(try_strptime(NULLIF(trim(event_date), ''), '%m/%d/%Y') AS DATE) AS event_date,
          town, TRY_CAST(age AS BIGINT) AS age, age AS age_text, sex, race,
          TRY_CAST(replace(amount, ',', '') AS DOUBLE) AS amount, zip, notes, _row, _line
        FROM raw.bench"""
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE f AS
        SELECT _row, 'required' AS rule FROM t WHERE record_id_text IS NULL
        UNION ALL SELECT _row, 'unique' FROM (SELECT _row, record_id_text,
            row_number() OVER (PARTITION BY record_id ORDER BY _row) AS k FROM t) WHERE record_id_text IS NOT NULL AND k > 1
        UNION ALL SELECT _row, 'type' FROM t WHERE event_date_text IS NOT NULL AND event_date IS NULL
        UNION ALL SELECT _row, 'future' FROM t WHERE event_date > DATE '2025-01-01'
        UNION ALL SELECT _row, 'range' FROM t WHERE age < 0 OR age > 120
        UNION ALL SELECT _row, 'sex' FROM t WHERE sex NOT IN ('F', 'M', 'U')
        UNION ALL SELECT _row, 'race' FROM t WHERE race NOT IN ({races})
        UNION ALL SELECT _row, 'zip' FROM t WHERE NOT regexp_full_match(zip, '06[0-9]{{3}}')
        UNION ALL SELECT _row, 'town' FROM t WHERE lower(town) NOT IN ({towns})"""
    )
    con.execute("CREATE SCHEMA IF NOT EXISTS valid")
    con.execute(
        "CREATE OR REPLACE TABLE valid.bench_sql AS SELECT * FROM t WHERE NOT EXISTS "
        "(SELECT 1 FROM f WHERE f._row = t._row AND f.rule <> 'town')"
    )
    counts = con.execute("SELECT rule, count(*) FROM f GROUP BY 1").fetchall()
    return {
        "valid": con.execute("SELECT count(*) FROM valid.bench_sql").fetchone()[0],
        "failures": dict(counts),
    }


def stage_naive(path: Path, workdir: Path) -> dict:
    """What a first attempt looks like: whole table into pandas, pandera and GX on the DataFrame."""
    import duckdb
    import pandas as pd
    import pandera.pandas as pa

    from bench.harness import naive_pandas_checks
    from ct_pipelines.validate.custom_checks import CT_TOWNS

    con = duckdb.connect(str(path), read_only=True)
    frame = con.sql("SELECT * FROM raw.bench").df()
    frame["record_id"] = pd.to_numeric(frame["record_id"].replace("", None), errors="coerce").astype("Int64")
    frame["event_date"] = pd.to_datetime(frame["event_date"], format="%m/%d/%Y", errors="coerce")
    frame["age"] = pd.to_numeric(frame["age"], errors="coerce")
    frame["amount"] = pd.to_numeric(frame["amount"].str.replace(",", ""), errors="coerce")
    towns = {t.lower() for t in CT_TOWNS}
    schema = pa.DataFrameSchema(
        {
            "record_id": pa.Column("Int64", nullable=False, unique=True),
            "event_date": pa.Column("datetime64[ns]", pa.Check.le(pd.Timestamp(NOW)), nullable=True),
            "age": pa.Column(float, pa.Check.in_range(0, 120), nullable=True),
            "sex": pa.Column(str, pa.Check.isin(["F", "M", "U"])),
            "race": pa.Column(str, pa.Check.isin(RACES)),
            "zip": pa.Column(str, pa.Check.str_matches(r"^06[0-9]{3}$")),
            "town": pa.Column(str, pa.Check(lambda s: s.str.lower().isin(towns))),
        }
    )
    expectations = [(e.expectation, e.kwargs) for e in dataset().validate.expectations]
    failures, success = naive_pandas_checks(frame, schema, expectations)
    return {"pandera_failure_cases": failures, "gx_success": success}


STAGES = {"ours": stage_ours, "plain_sql": stage_plain_sql, "naive": stage_naive}


def child(stage: str, path: Path, workdir: Path) -> None:
    # Library imports (pandas, pandera, GX: a few seconds, once per process) are not part of a stage's cost.
    import great_expectations  # noqa: F401
    import pandera.pandas  # noqa: F401

    import ct_pipelines.validate.validate  # noqa: F401

    started = time.perf_counter()
    details = STAGES[stage](path, workdir)
    wall = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"wall": wall, "rss_mb": peak_mb, "details": details}, default=str))


def run_stage(stage: str, path: Path, workdir: Path) -> dict:
    """Fresh interpreter per stage so each peak RSS belongs to that stage alone."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.bench_quality", "--child", stage, "--db", str(path), "--workdir",
         str(workdir), "--memory-limit", MEMORY_LIMIT or ""],
        capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--skip-naive", action="store_true", help="skip the slow pandas baseline")
    parser.add_argument(
        "--memory-limit",
        default="1GB",
        help="DuckDB memory_limit for the DuckDB stages ('' for DuckDB's default)",
    )
    parser.add_argument("--child", choices=sorted(STAGES), help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    global MEMORY_LIMIT
    MEMORY_LIMIT = args.memory_limit or None
    if args.child:
        child(args.child, args.db, args.workdir)
        return
    with tempfile.TemporaryDirectory(prefix="bench_quality_") as tmp:
        workdir = Path(tmp)
        db = workdir / "bench.duckdb"
        started = time.perf_counter()
        build(db, args.rows)
        print(f"Built {args.rows:,} raw rows in {time.perf_counter() - started:.1f} s\n", file=sys.stderr)
        stages = ["plain_sql", "ours"] + ([] if args.skip_naive else ["naive"])
        results = {stage: run_stage(stage, db, workdir) for stage in stages}
    base = results["plain_sql"]["wall"]
    print(
        f"Validate stage on {args.rows:,} rows (2-core machine, DuckDB memory_limit={MEMORY_LIMIT or 'default'})\n"
    )
    print("| stage | wall seconds | peak RSS MB | ratio to plain SQL |")
    print("|---|---:|---:|---:|")
    for stage, r in results.items():
        print(f"| {stage} | {r['wall']:.2f} | {r['rss_mb']:.0f} | {r['wall'] / base:.1f}x |")
    print()
    for stage, r in results.items():
        print(f"- {stage}: {json.dumps(r['details'])}")


if __name__ == "__main__":
    main()
