"""What `ct-pipelines run` says it did to the portal: a resend that changes nothing, and a delivery that
changes rows, read the same in the summary table, so a line under it says which it was."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ct_pipelines.cli import main

CATALOG = """\
id: licenses
title: Fishing licenses sold
description: One row per license sold, for tests.
agency: Department of Energy and Environmental Protection
category: Environment and Natural Resources
update_frequency: Weekly
contact: deep.data@ct.gov
ingest: {path: licenses.csv}
row_identifier: license_id
columns:
- {source: License ID, type: code, required: true, unique: true}
- {source: Town}
"""


def test_the_run_says_whether_the_portal_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for folder in ("catalog", "landing"):
        (tmp_path / folder).mkdir()
    (tmp_path / "catalog" / "licenses.yaml").write_text(CATALOG, encoding="utf-8")
    monkeypatch.setenv("CT_PIPELINES_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CT_PIPELINES_LANDING", raising=False)
    monkeypatch.delenv("CT_PORTAL_DOMAIN", raising=False)
    extract = tmp_path / "landing" / "licenses.csv"

    def deliver(towns: list[str], *options: str) -> str:
        extract.write_text(
            "License ID,Town\r\n" + "".join(f"L{i:04d},{t}\r\n" for i, t in enumerate(towns)),
            encoding="utf-8",
        )
        result = CliRunner().invoke(main, ["run", "--catalog", str(tmp_path / "catalog"), *options])
        assert result.exit_code == 0, result.output
        return result.output

    towns = ["Hartford", "Mystic", "Groton", "Salem"]
    first = deliver(towns)
    assert "licenses: the portal's rows were replaced by the 4 sent" in first
    assert "Published to the local portal in" in first
    assert "licenses: nothing changed on the portal; it held these rows" in deliver(towns)
    changed = [*towns[:3], "Old Lyme", "Lyme"]
    assert "licenses: on the portal, rows 1 created, 1 updated" in deliver(changed)
    dry = deliver(changed[:4] + ["Essex"], "--dry-run")
    assert "licenses: dry run, nothing sent" in dry and "Published to" not in dry
