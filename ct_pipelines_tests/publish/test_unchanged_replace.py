"""A table replaced whole (no row identifier, as every aggregate) is not sent again when its rows are
the ones the portal got last time: a weekly run with the same counts changed nothing on the portal but
rewrote all of it. A changed count is sent, and the portal then holds the new table."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ct_pipelines.core.results import RunOptions
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


def test_a_replace_that_would_remove_most_published_cells_is_refused_until_allowed(
    tmp_path: Path, portal: LocalPortal
):
    """A new user's second delivery held only the 2018 snapshot where the first held 2017: the replace
    removed every 2017 cell from the portal, and the plan said 0 to delete. The cells a replace removes
    are now counted, and the delete guard refuses past its limit; a delivery that keeps them passes."""
    dataset = make_dataset(
        "placements",
        [{"source": "as_of", "type": "date"}, {"source": "town"}],
        protect={
            "mode": "aggregate",
            "aggregate": {
                "dimensions": [{"name": "as_of", "time": True}, "town"],
                "measures": [{"name": "children"}],
            },
        },
    )

    def export(rows: list[tuple[str, str]]) -> str:
        return "id,as_of,town\r\n" + "".join(f"{i},{d},{t}\r\n" for i, (d, t) in enumerate(rows, start=1))

    def cells(run) -> dict[tuple[str, str], int]:
        got = portal.socrata_client().get(run.four_by_four, limit=100)
        return {(r["as_of"][:10], r["town"]): int(r["children"]) for r in got}

    y2017 = [("06/30/2017", "Hartford")] * 12 + [("06/30/2017", "Groton")] * 9
    y2018 = [("06/30/2018", "Hartford")] * 14 + [("06/30/2018", "Groton")] * 8
    first = run_stages(tmp_path, portal, dataset, export(y2017))
    published = cells(first)
    assert published == {
        ("2017-06-30", "Hartford"): 12,
        ("2017-06-30", "Groton"): 9,
        ("2017-06-30", "Total"): 21,
    }

    only_2018 = run_stages(tmp_path, portal, dataset, export(y2018))
    guard = next(o for o in only_2018.results["publish"].outcomes if o.name == "publish_guard")
    assert not guard.passed and "it would delete 3 of the 3 rows on the portal (100%" in guard.summary
    assert only_2018.results["publish"].facts["plan"]["rows_to_delete"] == 3
    assert "a file holding one period where the last held another replaces it whole" in guard.summary
    assert cells(only_2018) == published  # the portal was not touched

    both = run_stages(tmp_path, portal, dataset, export(y2017 + y2018))  # the agency sends both years
    assert both.results["publish"].facts["plan"]["rows_to_delete"] == 0
    assert cells(both) == {
        **published,
        ("2018-06-30", "Hartford"): 14,
        ("2018-06-30", "Groton"): 8,
        ("2018-06-30", "Total"): 22,
    }

    allowed = run_stages(
        tmp_path, portal, dataset, export(y2018), options=RunOptions(allow_deletes=True, allow_shrink=True)
    )
    assert allowed.results["publish"].facts["plan"]["rows_to_delete"] == 3
    assert sorted(cells(allowed)) == [
        ("2018-06-30", "Groton"),
        ("2018-06-30", "Hartford"),
        ("2018-06-30", "Total"),
    ]
