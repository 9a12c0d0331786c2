"""A second delivery whose row breaks a rule: the row is set aside and the portal keeps what it had for
that key, instead of deleting a row the agency still sends. A row the agency removed is still deleted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ct_pipelines.portal.local import LocalPortal
from ct_pipelines_tests.support.stages import make_dataset, portal_rows, run_stages


@pytest.fixture
def portal(tmp_path: Path) -> Iterator[LocalPortal]:
    with LocalPortal(tmp_path / "portal") as local:
        yield local


def deliveries(dates: dict[int, str]) -> str:
    """An agency export: CRLF, US dates, one row per death."""
    return "id,date,town\r\n" + "".join(f"{i},{d},Hartford\r\n" for i, d in sorted(dates.items()))


def test_a_row_set_aside_keeps_its_published_values_and_a_removed_row_is_deleted(tmp_path, portal):
    dataset = make_dataset("deaths", [{"source": "date", "type": "date"}, {"source": "town"}])
    dates = {i: f"01/{i:02d}/2024" for i in range(1, 21)}
    first = run_stages(tmp_path, portal, dataset, deliveries(dates))
    assert len(portal_rows(portal, first.four_by_four)) == 20

    dates[7] = "13/45/2024"  # a typo in the second delivery
    dates[8] = "02/08/2024"  # a correction
    second = run_stages(tmp_path, portal, dataset, deliveries(dates))
    assert second.results["validate"].rows_set_aside == 1
    plan = second.results["publish"].facts
    rows = {int(r["id"]): r["date"][:10] for r in portal_rows(portal, second.four_by_four)}
    assert len(rows) == 20  # once 19: row 7 was deleted from the portal
    assert rows[7] == "2024-01-07" and rows[8] == "2024-02-08"
    assert (plan["rows_updated"], plan["rows_deleted"], plan["portal_row_count"]) == (1, 0, 20)
    assert plan["plan"]["expected_row_count"] == 20  # the verification counts the row kept

    del dates[7]  # the agency removes the row: now it goes
    third = run_stages(tmp_path, portal, dataset, deliveries(dates))
    rows = {int(r["id"]): r["date"][:10] for r in portal_rows(portal, third.four_by_four)}
    assert sorted(rows) == [i for i in range(1, 21) if i != 7]
    assert third.results["publish"].facts["plan"]["deleted_keys"] == ["7"]


def test_the_run_names_the_rows_a_publish_deleted(tmp_path, portal):
    """A helper blanked one OCME ID in a later delivery: the row was set aside and, its ID unknown, the
    published record 17-0888 was deleted under "rows 5 updated, 1 deleted" alone. The run names it."""
    from ct_pipelines.cli import format_summary
    from ct_pipelines.orchestration.runner import DatasetSummary
    from ct_pipelines.publish.changes import recorded_changes

    dataset = make_dataset("deaths", [{"source": "date", "type": "date"}, {"source": "town"}])
    dates = {i: f"01/{1 + i % 28:02d}/2024" for i in range(1, 61)}
    run_stages(tmp_path, portal, dataset, deliveries(dates))
    del dates[33]
    second = run_stages(tmp_path, portal, dataset, deliveries(dates))
    facts = second.results["publish"].facts
    assert facts["plan"]["deleted_keys"] == ["33"] and facts["rows_deleted"] == 1
    assert len(portal_rows(portal, second.four_by_four)) == 59
    summary = DatasetSummary(
        "deaths",
        portal_changes=recorded_changes(facts),
        publish_mode=facts["mode"],
        deleted_keys=facts["plan"]["deleted_keys"],
    )
    assert "deaths: on the portal, rows 1 deleted (deleted: 33)" in format_summary([summary])
