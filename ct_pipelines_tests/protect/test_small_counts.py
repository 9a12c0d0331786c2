"""An agency's own table of counts published row by row: its counts of 1-5 would reach the portal as they
are. A DCF-style placement export (title line, CRLF, counts per date, region and race) warns and names
the column; the same export published as an aggregate with suppression shows no count from 1 to 5."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ct_pipelines.cli import main
from ct_pipelines_tests.support.catalog_run import run_and_read_portal

COUNTS = {  # (region, race) -> children in placement on the snapshot date
    ("Region 1", "Black"): 212,
    ("Region 1", "Hispanic"): 3,
    ("Region 1", "White"): 340,
    ("Region 2", "Black"): 97,
    ("Region 2", "Hispanic"): 151,
    ("Region 2", "White"): 2,
}

HEAD = """\
id: dcf_placement
title: Children in placement by region and race
description: DCF counts of children in placement, for tests.
agency: Department of Children and Families
category: Health and Human Services
update_frequency: Monthly
contact: dcf.data@ct.gov
ingest: {path: placement.csv, header_row: 2}
columns:
- {source: Snapshot Date, type: date}
- {source: Region}
- {source: Race/Ethnicity}
- {source: TOTAL_CIP, type: integer}
"""

AGGREGATE = """\
protect:
  mode: aggregate
  aggregate:
    dimensions: [region, race_ethnicity]
    measures: [{name: children, agg: sum, column: total_cip}]
  suppression: {count_column: children, threshold: 5}
"""


def _project(tmp_path: Path, yaml_text: str) -> Path:
    (tmp_path / "catalog").mkdir()
    (tmp_path / "landing").mkdir()
    (tmp_path / "catalog" / "dcf_placement.yaml").write_text(yaml_text, encoding="utf-8")
    lines = [
        "Children in Placement (CIP) by region and race/ethnicity",
        "Snapshot Date,Region,Race/Ethnicity,TOTAL_CIP",
    ]
    lines += [f"07/01/2018,{region},{race},{n}" for (region, race), n in COUNTS.items()]
    (tmp_path / "landing" / "placement.csv").write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1252"))
    return tmp_path / "catalog"


def test_a_table_of_counts_published_row_by_row_warns_and_names_the_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    summary, views = run_and_read_portal(tmp_path, _project(tmp_path, HEAD), monkeypatch)
    assert summary.status == "ok" and summary.rows_published == 6
    ((_, rows),) = views
    assert sorted(int(r["total_cip"]) for r in rows) == sorted(COUNTS.values())
    (warning,) = [line for line in summary.failed_checks if "small_counts_unsuppressed" in line]
    assert (
        "(WARN)" in warning and "values from 1 to 5, published as they are (total_cip: 2 row(s))" in warning
    )
    assert "protect.mode: aggregate, a measure with agg: sum and column: total_cip" in warning


def test_the_same_counts_as_a_suppressed_aggregate_show_no_small_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    summary, views = run_and_read_portal(tmp_path, _project(tmp_path, HEAD + AGGREGATE), monkeypatch)
    assert summary.status == "ok", summary.failed_checks
    assert not [line for line in summary.failed_checks if "small_counts" in line]
    ((_, rows),) = views
    shown = [int(r["children"]) for r in rows if r.get("children") is not None]
    assert shown and not [n for n in shown if 1 <= n <= 5]
    total = next(r for r in rows if r["region"] == "Total" and r["race_ethnicity"] == "Total")
    assert int(total["children"]) == sum(COUNTS.values())
    # The staff report says what is published in words (it once printed the YAML model's Python text).
    built = CliRunner().invoke(main, ["report", "build", "--catalog", str(tmp_path / "catalog")])
    assert built.exit_code == 0, built.output
    page = (tmp_path / "home" / "reports" / "site" / "datasets" / "dcf_placement.html").read_text(
        encoding="utf-8"
    )
    assert "What is published: one row per combination of region, race_ethnicity, with children.</li>" in page
    dictionary = (
        tmp_path / "home" / "reports" / "site" / "datasets" / "dcf_placement_dictionary.csv"
    ).read_text(encoding="utf-8")
    assert "children,,integer,The sum of 'total_cip' over this group's rows where it is given," in dictionary
