"""An aggregate whose delivery lost rows: its cells do not shrink (every combination is published, 0 where
no row is), so the shrink guard also weighs the rows it was built from."""

from __future__ import annotations

from pathlib import Path

import pytest

from ct_pipelines_tests.support.catalog_run import run_and_read_portal

DATASET = """\
id: dcp_license_counts
title: Licenses issued by town, month and type
description: Licenses issued by the Department of Consumer Protection, counted by town, month and type.
agency: Department of Consumer Protection
category: Business
update_frequency: Monthly
contact: dcp.data@ct.gov
ingest: {path: licenses.csv}
columns:
  - {source: License ID}
  - {source: Town}
  - {source: Month}
  - {source: License Type}
protect:
  mode: aggregate
  aggregate:
    dimensions: [town, {name: month, time: true}, license_type]
    measures: [{name: licenses, agg: count}]
  suppression: {count_column: licenses, threshold: 5}
"""
TOWNS, MONTHS, TYPES = ["Hartford", "Union", "Bristol"], ["2025-01", "2025-02"], ["Liquor", "Pharmacy"]


def _deliver(root: Path, share: float) -> None:
    """Every town, month and type with 20 licenses each, of which the first ``share`` reach the file (an
    export cut by rows, each combination still present)."""
    lines = ["License ID,Town,Month,License Type"]
    n = 0
    for town in TOWNS:
        for month in MONTHS:
            for kind in TYPES:
                for _ in range(int(20 * share)):
                    n += 1
                    lines.append(f"L{n:05d},{town},{month},{kind}")
    (root / "landing" / "licenses.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_a_delivery_with_fewer_rows_is_refused_though_its_aggregate_has_as_many_cells(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    for folder in ("catalog", "landing"):
        (tmp_path / folder).mkdir()
    (tmp_path / "catalog" / "dcp_license_counts.yaml").write_text(DATASET, encoding="utf-8")
    _deliver(tmp_path, 1.0)
    summary, ((_, rows),) = run_and_read_portal(tmp_path, tmp_path / "catalog", monkeypatch)
    assert summary.status == "ok" and summary.rows_in == 240
    first = {(r["town"], r["month"], r["license_type"]): r["licenses"] for r in rows}
    assert first[("Total", "2025-01", "Total")] == "120" and len(first) == 4 * 2 * 3

    _deliver(tmp_path, 0.6)  # 144 rows: the same 24 combinations, each figure 40% too low
    summary, ((_, rows),) = run_and_read_portal(tmp_path, tmp_path / "catalog", monkeypatch)
    assert summary.status == "blocked" and summary.rows_in == 144
    (refusal,) = [line for line in summary.failed_checks if "publish_guard" in line]
    assert "it was built from 144 rows, 40% fewer than the 240 rows of the table last published" in refusal
    assert "--allow-shrink" in refusal
    assert {(r["town"], r["month"], r["license_type"]): r["licenses"] for r in rows} == first  # unchanged
