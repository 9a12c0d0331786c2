"""A table replaced whole (no row identifier, as every aggregate) is not sent again when its rows are
the ones the portal got last time: a weekly run with the same counts changed nothing on the portal but
rewrote all of it. A changed count is sent, and the portal then holds the new table."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ct_pipelines.portal.local import LocalPortal
from ct_pipelines_tests.support.stages import make_dataset, run_stages


@pytest.fixture
def portal(tmp_path: Path) -> Iterator[LocalPortal]:
    with LocalPortal(tmp_path / "portal") as local:
        yield local


def visits(towns: list[str]) -> str:
    """An agency export: CRLF, one row per clinic visit."""
    return "id,town\r\n" + "".join(f"{i},{town}\r\n" for i, town in enumerate(towns, start=1))


def by_town(portal: LocalPortal, four_by_four: str | None) -> dict[str, int]:
    return {r["town"]: int(r["visits"]) for r in portal.socrata_client().get(four_by_four, limit=100)}


def test_the_same_aggregate_is_not_sent_again_and_a_changed_one_is(tmp_path: Path, portal: LocalPortal):
    dataset = make_dataset(
        "clinic_visits",
        [{"source": "town"}],
        protect={
            "mode": "aggregate",
            "aggregate": {"dimensions": ["town"], "measures": [{"name": "visits"}]},
        },
    )
    towns = ["Hartford"] * 12 + ["Groton"] * 7
    first = run_stages(tmp_path, portal, dataset, visits(towns))
    assert by_town(portal, first.four_by_four) == {"Hartford": 12, "Groton": 7, "Total": 19}
    assert (first.results["publish"].facts["mode"], first.results["publish"].facts["rows_created"]) == (
        "replace",
        3,
    )

    again = run_stages(tmp_path, portal, dataset, visits(towns))
    facts = again.results["publish"].facts
    assert (facts["mode"], facts["rows_created"], facts["rows_sent"], facts["portal_row_count"]) == (
        "unchanged",
        0,
        0,
        3,
    )
    assert by_town(portal, again.four_by_four) == {"Hartford": 12, "Groton": 7, "Total": 19}
    assert again.con.execute(
        "SELECT mode, status, rows_created FROM publish_log ORDER BY finished_at DESC LIMIT 1"
    ).fetchone() == ("unchanged", "published", 0)

    changed = run_stages(tmp_path, portal, dataset, visits(towns + ["Groton"]))
    assert changed.results["publish"].facts["mode"] == "replace"
    assert by_town(portal, changed.four_by_four) == {"Hartford": 12, "Groton": 8, "Total": 20}
