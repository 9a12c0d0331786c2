"""Aggregates over values the source suppressed: an EdSight-style enrollment export ('*' for counts of 1-5)
summed by race would be published too low, so the run stops before the portal and says what to do; the
same export without '*' publishes sums equal to the file."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from ct_pipelines_tests.support.catalog_run import run_and_read_portal

RACES = ["Asian", "Black or African American", "White"]
DISTRICTS = [
    ("Andover School District", "0010011", ["*", "12", "208"]),
    ("Ansonia School District", "0020011", ["42", "*", "951"]),
    ("Ashford School District", "0030011", ["9", "17", "330"]),
    ("Avon School District", "0040011", ["301", "88", "2402"]),
]

CATALOG = """\
id: enrollment_by_race
title: Enrollment by race, all districts
description: Student counts by district and race from the EdSight export, for tests.
agency: Department of Education
category: Education
update_frequency: Annually
contact: sde.data@ct.gov
source:
  path: enrollment.csv
  header_row: 4
  leave_out: [{name: footer total, column: District, equals: Total, max_rows: 1}]
  unpivot: {columns: [Asian, Black or African American, White], name: race, value: count}
columns:
- {source: District, required: true}
- {source: District Code, type: code, width: 7, required: true}
- {source: race, required: true}
- {source: count, type: integer, suppressed_values: ['*']}
protect:
  mode: aggregate
  aggregate:
    dimensions: [race]
    measures: [{name: students, agg: sum, column: count}]
  suppression: {count_column: students, threshold: 5}
"""


def edsight_export(rows: list[tuple[str, str, list[str]]]) -> str:
    """Title lines, a blank line, codes written as Excel formulas, a Total row: as EdSight writes it."""
    out = io.StringIO()
    out.write("Student Counts by District and Race\r\n2016-17\r\n\r\n")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["District", "District Code", *RACES])
    for district, code, counts in rows:
        writer.writerow([district, f'="{code}"', *counts])
    totals = [sum(int(r[2][i]) for r in rows if r[2][i] != "*") for i in range(len(RACES))]
    writer.writerow(["Total", "", *totals])
    return out.getvalue()


def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: list[tuple[str, str, list[str]]]):
    for folder in ("landing", "catalog"):
        (tmp_path / folder).mkdir()
    (tmp_path / "landing" / "enrollment.csv").write_text(edsight_export(rows), encoding="utf-8")
    (tmp_path / "catalog" / "enrollment.yaml").write_text(CATALOG, encoding="utf-8")
    summary, published = run_and_read_portal(tmp_path, tmp_path / "catalog", monkeypatch)
    return summary, [records for _, records in published]


def test_a_sum_over_cells_the_source_suppressed_is_refused_and_nothing_reaches_the_portal(
    tmp_path, monkeypatch
):
    summary, published = run(tmp_path, monkeypatch, DISTRICTS)
    assert not summary.ok and published == []
    assert summary.rows_in == 5  # four districts and the Total row, which its rule leaves out
    assert "measure 'students' is the sum of 'count'" in summary.error
    assert "the source suppressed 2 of its values" in summary.error
    assert "publish the rows as they are (remove protect.aggregate" in summary.error


def test_the_same_export_without_suppressed_cells_publishes_sums_equal_to_the_file(tmp_path, monkeypatch):
    rows = [(d, c, [n.replace("*", "3") for n in counts]) for d, c, counts in DISTRICTS]
    summary, (records,) = run(tmp_path, monkeypatch, rows)
    assert summary.ok, summary.error
    assert (summary.rows_in, summary.rows_set_aside, summary.rows_published) == (5, None, 4)
    assert sum(summary.rows_left_out.values()) == 1  # the footer total, left out by rule, not set aside
    # Two new users read the footer's "set aside 1" in the run's table as a row that failed a check.
    from ct_pipelines.cli import format_summary

    header, _, line = format_summary([summary]).splitlines()[:3]
    cells = dict(zip(re.split(r"  +", header.rstrip()), re.split(r"  +", line.rstrip()), strict=True))
    assert (cells["rows in"], cells["left out"], cells["set aside"], cells["rows published"]) == (
        "5",
        "1",
        "-",
        "4",
    )
    expected = {race: sum(int(r[2][i]) for r in rows) for i, race in enumerate(RACES)}
    expected["Total"] = sum(expected.values())
    assert {r["race"]: int(r["students"]) for r in records} == expected  # 3 + 9 >= 5: nothing hidden


def _births(con, rows: list[tuple]) -> str:
    con.execute(
        "CREATE OR REPLACE TABLE births (town VARCHAR, hispanic BIGINT, white BIGINT, black BIGINT, total BIGINT, "
        "hispanic_suppressed BOOLEAN, white_suppressed BOOLEAN, black_suppressed BOOLEAN)"
    )
    for town, *counts, total in rows:
        flags = [c is None for c in counts]
        con.execute("INSERT INTO births VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [town, *counts, total, *flags])
    return "births"


def test_a_total_column_beside_one_hidden_count_in_a_row_stops_the_publish():
    """A helper's births by town carried the file's Total column: Canaan's 2,368 less its shown groups gave
    3 Black mothers the source had hidden as '*'; 5 of 13 hidden cells came back."""
    import duckdb

    from ct_pipelines.protect.published import source_suppression_outcome

    con = duckdb.connect()
    rows = [("Canaan", 768, 818, None, 1589), ("Bethel", 36, None, None, 939), ("Ansonia", None, 12, 40, 55)]
    outcome = source_suppression_outcome(con, _births(con, rows))
    assert not outcome.passed and outcome.blocks
    assert "(2 from column 'total', which totals hispanic, white, black)" in outcome.summary
    assert "leave the total column out of the dataset's columns" in outcome.summary
    two_hidden = [("Canaan", 768, None, None, 1589), ("Bethel", None, 36, None, 939)]
    assert source_suppression_outcome(con, _births(con, two_hidden)).passed


def test_a_statewide_row_above_one_hidden_count_in_a_group_stops_the_publish():
    """A helper's ED visits by town, year and race: the Statewide row less the shown towns gave back Union's
    4 Black visits in 2021. In 2022 two towns hide a count, and neither can be worked out."""
    import duckdb

    from ct_pipelines.protect.published import source_suppression_outcome

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE visits (town VARCHAR, year BIGINT, race VARCHAR, visits BIGINT, visits_suppressed BOOLEAN)"
    )
    data = [
        ("Hartford", 2021, "Black", 40), ("Union", 2021, "Black", None), ("Statewide", 2021, "Black", 44),
        ("Hartford", 2022, "Black", None), ("Union", 2022, "Black", None), ("Statewide", 2022, "Black", 50),
        ("Hartford", 2021, "White", 70), ("Union", 2021, "White", 9), ("Statewide", 2021, "White", 79),
    ]  # fmt: skip
    con.executemany("INSERT INTO visits VALUES (?, ?, ?, ?, ?)", [(*r, r[3] is None) for r in data])
    outcome = source_suppression_outcome(con, "visits")
    assert not outcome.passed
    assert "(1 in column 'visits', from the 'Statewide' rows of town)" in outcome.summary
