"""Releases of one aggregate keep each unchanged cell's suppression: the run reads the pattern the portal
got last (kept when a publish succeeds) and hides, or shows, every unchanged cell as it did."""

from __future__ import annotations

from pathlib import Path

import pytest

from ct_pipelines_tests.support.catalog_run import run_and_read_portal

DATASET = """\
id: dcp_licenses_by_type
title: Licenses by town and type
description: Licenses issued by the Department of Consumer Protection, by town and license type.
agency: Department of Consumer Protection
category: Business
update_frequency: Monthly
contact: dcp.data@ct.gov
ingest: {path: licenses.csv}
columns:
  - {source: Town}
  - {source: License Type}
  - {source: Licenses, type: integer}
protect:
  mode: aggregate
  aggregate:
    dimensions: [town, license_type]
    measures: [{name: licenses, agg: sum, column: licenses}]
  suppression: {count_column: licenses, threshold: 5}
"""
FIRST = {("Hartford", "RE"): 8, ("Hartford", "HI"): 17, ("Hartford", "PH"): 21, ("Hartford", "LQ"): 17,
         ("Union", "RE"): 2, ("Union", "HI"): 19, ("Union", "PH"): 14, ("Union", "LQ"): 12,
         ("Bristol", "RE"): 20, ("Bristol", "HI"): 15, ("Bristol", "PH"): 16, ("Bristol", "LQ"): 18,
         ("Avon", "RE"): 9, ("Avon", "HI"): 7, ("Avon", "PH"): 16, ("Avon", "LQ"): 10}  # fmt: skip


def _publish(root: Path, counts: dict, monkeypatch: pytest.MonkeyPatch) -> dict[tuple, str | None]:
    lines = ["Town,License Type,Licenses", *(f"{t},{k},{n}" for (t, k), n in counts.items())]
    (root / "landing" / "licenses.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary, views = run_and_read_portal(root, root / "catalog", monkeypatch)
    assert summary.status == "ok", (summary.error, summary.failed_checks)
    ((_, rows),) = views
    return {(r["town"], r["license_type"]): r.get("licenses") for r in rows}


def test_a_corrected_delivery_hides_and_shows_every_unchanged_cell_as_the_portal_had_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    for folder in ("catalog", "landing"):
        (tmp_path / folder).mkdir()
    (tmp_path / "catalog" / "dcp_licenses_by_type.yaml").write_text(DATASET, encoding="utf-8")
    first = _publish(tmp_path, FIRST, monkeypatch)
    corrected = _publish(tmp_path, {**FIRST, ("Hartford", "RE"): 5}, monkeypatch)
    assert first[("Hartford", "RE")] == "8" and corrected[("Hartford", "RE")] is None  # now small: hidden
    changed = {("Hartford", "RE"), ("Hartford", "Total"), ("Total", "RE"), ("Total", "Total")}
    for cell, value in first.items():
        if cell not in changed:
            assert (corrected[cell] is None) == (value is None), cell  # hidden or shown, as before
    # the cells the portal showed last time cannot close Hartford's row: its total is hidden too
    hartford = [corrected[("Hartford", k)] for k in ("HI", "PH", "LQ", "Total")]
    assert hartford.count(None) >= 1 and corrected[("Hartford", "LQ")] == "17"
