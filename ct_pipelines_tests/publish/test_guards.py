"""Never destructive by accident: a publish that would shrink the portal's dataset or delete much of
it is refused with the portal untouched, unless the YAML or the run says so."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ct_pipelines.catalog.models import Dataset
from ct_pipelines.publish.publisher import GUARD_CHECK, PublishResult
from ct_pipelines_tests.support.faults import FaultPlan
from ct_pipelines_tests.support.publish import Harness, portal_dataset, rows_dataset

# the real extracts live next to the checkout (../shared/data/ct), never inside it
OCME = Path(__file__).resolve().parents[3] / "shared/data/ct/ct_ocme_accidental_drug_deaths_2012_2018.csv"


@pytest.fixture()
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path, FaultPlan())
    yield h
    h.close()


def guard_of(result: PublishResult):
    return next(o for o in result.outcomes if o.name == GUARD_CHECK)


def ocme_dataset(**portal: object) -> Dataset:
    return rows_dataset(
        id="ocme_drug_deaths",
        title="Accidental drug related deaths 2012-2018",
        category="Health and Human Services",
        update_frequency="Annually",
        row_identifier="case_id",
        columns=[
            {"source": "case_id", "description": "OCME case number"},
            {"source": "death_date"},
            {"source": "death_city"},
            {"source": "manner"},
        ],
        portal=portal,
    )


def load_ocme(harness: Harness) -> None:
    """The OCME extract as the agency ships it (BOM, quoted newlines in the *Geo columns), keyed by
    its case number."""
    harness.con.execute(
        f"""CREATE OR REPLACE TABLE out AS SELECT ID AS case_id, "Date" AS death_date,
            DeathCity AS death_city, MannerofDeath AS manner
        FROM read_csv('{OCME}', all_varchar = true)"""
    )


def table_cases(harness: Harness) -> dict[str, tuple]:
    rows = harness.con.execute("SELECT case_id, death_date, death_city, manner FROM out").fetchall()
    return {case: tuple(values) for case, *values in rows}


def portal_cases(harness: Harness, four_by_four: str) -> dict[str, tuple]:
    rows = harness.portal.socrata_client().get(four_by_four, order="case_id", limit=100_000)
    return {r["case_id"]: (r.get("death_date"), r.get("death_city"), r.get("manner")) for r in rows}


def test_real_extract_cut_to_61_percent_is_refused_and_portal_untouched(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CT_PIPELINES_CATALOG", raising=False)  # the bundled catalog, as `run` alone reads
    if not OCME.exists():
        pytest.skip("the real Connecticut extracts (../shared/data/ct) are not on this machine")
    load_ocme(harness)
    first = harness.publish(dataset=ocme_dataset())
    assert first.published and first.portal_row_count == 5_105
    before = portal_cases(harness, first.four_by_four)
    assert before == table_cases(harness)
    # the next export stopped after 61% of the cases, and it spells the towns in capitals
    harness.con.execute("DELETE FROM out WHERE rowid >= 3114")  # 3,114 of 5,105 rows is 61%
    harness.con.execute("UPDATE out SET death_city = upper(death_city)")
    harness.portal.request_log.clear()

    refused = harness.publish(dataset=ocme_dataset())
    only_deletes_allowed = harness.publish(dataset=ocme_dataset(), allow_deletes=True)

    for result in (refused, only_deletes_allowed):
        guard = guard_of(result)
        assert guard.blocks and not result.published and result.mode == "refused"
        assert "3,114 rows, 39% fewer than the 5,105 last published (limit 10%)" in guard.summary
        assert "publish.max_shrink_share" in guard.summary
        assert "run `ct-pipelines run --dataset ocme_drug_deaths --allow-shrink` if the drop" in guard.summary
    assert harness.writes() == []  # no write, not even a validateOnly PATCH
    assert portal_cases(harness, first.four_by_four) == before  # same rows, same values

    published = harness.publish(dataset=ocme_dataset(), allow_shrink=True)

    assert published.published and published.portal_row_count == 3_114
    assert published.rows_deleted == 1_991
    assert portal_cases(harness, first.four_by_four) == table_cases(harness)


def churn(harness: Harness, replaced: int) -> None:
    """The same number of rows, but ``replaced`` of them under new keys (a re-numbered extract)."""
    harness.con.execute(f"UPDATE out SET id = id + 10000 WHERE id < {replaced}")


def test_deletes_beyond_the_limit_are_refused_even_without_a_shrink(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command to publish past the guard names the catalog and dataset of the run: pasted as once
    printed (`ct-pipelines run --allow-deletes`), it ran the bundled sample catalog instead."""
    monkeypatch.setenv("CT_PIPELINES_CATALOG", "/srv/dph catalog")  # as `run --catalog` sets it
    harness.make_rows(100)
    first = harness.publish()
    churn(harness, 8)  # 8 deletes and 8 creates: no shrink, 8% of the portal's rows deleted
    before = harness.portal_rows(first.four_by_four)
    harness.portal.request_log.clear()

    refused = harness.publish()
    shrink_allowed = harness.publish(allow_shrink=True)  # nothing shrank, so it does not cover these

    for result in (refused, shrink_allowed):
        guard = guard_of(result)
        assert guard.blocks and not result.published
        assert "would delete 8 of the 100 rows on the portal (8%; limit 5%)" in guard.summary
        assert "publish.max_delete_share" in guard.summary
        assert (
            f"`ct-pipelines run --catalog '/srv/dph catalog' --dataset {portal_dataset().id} --allow-deletes`"
            in (guard.summary)
        )
        assert guard.metadata["rows_to_delete"] == 8 and guard.metadata["max_delete_share"] == 0.05
    assert harness.writes() == []
    assert harness.portal_rows(first.four_by_four) == before
    assert harness.con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE 'publish_pending__%'"
    ).fetchone() == (0,)  # the refused change set was dropped

    allowed = harness.publish(allow_deletes=True)

    assert allowed.published and (allowed.rows_created, allowed.rows_deleted) == (8, 8)
    assert harness.portal_rows(first.four_by_four) == harness.table_rows()


def test_limits_are_per_dataset_yaml_settings(harness: Harness) -> None:
    harness.make_rows(100)
    harness.publish()
    churn(harness, 8)
    harness.con.execute("DELETE FROM out WHERE id BETWEEN 50 AND 61")  # 12% fewer rows, 20 deletes
    relaxed = portal_dataset(max_delete_share=0.25, max_shrink=0.15)  # the shrink key's earlier name

    result = harness.publish(dataset=relaxed)

    assert result.published and (result.rows_created, result.rows_deleted) == (8, 20)
    assert guard_of(result).metadata["max_shrink_share"] == 0.15
    assert harness.portal_rows(result.four_by_four) == harness.table_rows()


def test_a_small_delete_passes_and_a_dry_run_reports_a_refusal(harness: Harness) -> None:
    harness.make_rows(100)
    first = harness.publish()
    harness.con.execute("DELETE FROM out WHERE id IN (3, 4, 5)")  # 3%: under both limits

    small = harness.publish()

    assert small.published and small.rows_deleted == 3
    churn(harness, 30)  # ids 3-5 are gone already: 27 keys change
    harness.portal.request_log.clear()
    plan = harness.publish(dry_run=True)
    assert plan.refused and "would delete 27 of the 97 rows" in guard_of(plan).summary
    assert harness.writes() == [] and len(harness.portal_rows(first.four_by_four)) == 97


@pytest.mark.parametrize("chunk_rows", [10, 1_000])  # a chunked resync, and a single PUT replace
def test_first_publish_and_full_replace_are_not_blocked_by_the_delete_guard(
    harness: Harness, chunk_rows: int
) -> None:
    harness.make_rows(60)
    first = harness.publish(dataset=portal_dataset(chunk_rows=chunk_rows))
    assert first.published and first.rows_created == 60
    churn(harness, 30)  # half the keys change: an incremental publish would delete 50%

    replaced = harness.publish(dataset=portal_dataset(chunk_rows=chunk_rows, full_replace=True))

    assert replaced.mode == ("resync" if chunk_rows == 10 else "replace")
    assert replaced.published and guard_of(replaced).passed
    assert harness.portal_rows(first.four_by_four) == harness.table_rows()


def test_chunk_progress_is_reported_to_the_callback_and_in_the_metadata(harness: Harness) -> None:
    harness.make_rows(35)  # 4 chunks of at most 10 rows
    messages: list[str] = []

    result = harness.publish(progress=messages.append)

    chunk_lines = sorted(m.split(":")[0] for m in messages if m.startswith("chunk "))
    assert chunk_lines == ["chunk 1 of 4", "chunk 2 of 4", "chunk 3 of 4", "chunk 4 of 4"]
    metadata = result.metadata()
    assert (metadata["chunks"], metadata["chunks_planned"]) == (4, 4)
    assert metadata["progress"] == "4 of 4 chunks sent"
