"""A realistic messy agency extract of N rows (default 5,000,000), generated inside DuckDB in seconds.

Columns: ids, dates in US format, Connecticut towns, age, sex, race/ethnicity and language labels in
many spellings, amounts, and free text with commas, quotes and the occasional embedded newline.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb

from ct_pipelines.samples.generate import LANGUAGES, RACE_LABELS, TOWNS

FREE_TEXT = [
    "",
    "",
    "called back",
    "left voicemail, no answer",
    'client said "later"',
    "referred to clinic\nsecond visit booked",
    "needs interpreter; Spanish",
    "n/a",
]


def _list(values: list[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def generate(path: Path, rows: int = 5_000_000, seed: float = 0.42) -> Path:
    towns = [t for t, _ in TOWNS]
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute(f"SELECT setseed({seed})")
    con.execute(f"""
        COPY (
          SELECT
            'R' || lpad(CAST(i AS VARCHAR), 9, '0') AS "Record ID",
            strftime(DATE '2015-01-01' + CAST(floor(random() * 3650) AS INTEGER), '%m/%d/%Y') AS "Event Date",
            list_element({_list(towns)}, 1 + CAST(floor(random() * {len(towns)}) AS INTEGER)) AS "Town",
            CAST(floor(random() * 100) AS INTEGER) AS "Age",
            list_element(['F', 'M', 'Female', 'Male', 'U', ''], 1 + CAST(floor(random() * 6) AS INTEGER)) AS "Sex",
            list_element({_list(RACE_LABELS)}, 1 + CAST(floor(random() * {len(RACE_LABELS)}) AS INTEGER))
              AS "Race/Ethnicity",
            list_element({_list(LANGUAGES)}, 1 + CAST(floor(random() * {len(LANGUAGES)}) AS INTEGER))
              AS "Primary Language",
            round(random() * 5000, 2) AS "Amount",
            CAST(floor(random() * 20) AS INTEGER) AS "Visits",
            list_element({_list(["Open", "Closed", "Pending"])}, 1 + CAST(floor(random() * 3) AS INTEGER)) AS "Status",
            list_element({_list(FREE_TEXT)}, 1 + CAST(floor(random() * {len(FREE_TEXT)}) AS INTEGER)) AS "Notes"
          FROM range(1, {rows} + 1) t(i)
        ) TO '{path}' (HEADER, DELIMITER ',')""")
    con.close()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", type=Path)
    parser.add_argument("--rows", type=int, default=5_000_000)
    args = parser.parse_args()
    generate(args.path, args.rows)
    print(f"wrote {args.rows:,} rows to {args.path} ({args.path.stat().st_size / 1e6:.0f} MB)")


if __name__ == "__main__":
    main()
