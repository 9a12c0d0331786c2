"""The publisher against the local portal over real HTTP on 127.0.0.1: faults, crashes and resume,
incremental sends, guards, dry runs, metadata and secrets."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from ct_pipelines.publish import metadata as publish_metadata
from ct_pipelines.publish import state
from ct_pipelines.publish.connection import PortalConnection, PublishError
from ct_pipelines.publish.publisher import GUARD_CHECK, publish_table
from ct_pipelines_tests.support.faults import FaultPlan, FaultRule
from ct_pipelines_tests.support.publish import APP_TOKEN, PASSWORD, QUICK, Harness
from ct_pipelines_tests.support.publish import portal_dataset as make_dataset


@pytest.fixture()
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path, FaultPlan())
    yield h
    h.close()


class Killed(Exception):
    """Stands in for the process dying between two chunks."""


@pytest.mark.parametrize("in_flight", [1, 2])
def test_faults_and_a_crash_still_converge_to_exact_rows(harness: Harness, in_flight: int) -> None:
    harness.make_rows(95)  # 10 chunks of at most 10 rows
    first = harness.publish(dataset=make_dataset(chunk_rows=95))  # one replace creates a baseline
    four_by_four = first.four_by_four
    # change most rows so the next publish is a long chunked upsert, then break it in every way
    harness.con.execute("UPDATE out SET amount = amount + 1000 WHERE id % 10 != 0")
    harness.con.execute("DELETE FROM out WHERE id IN (5, 15)")
    harness.con.execute(
        "INSERT INTO out SELECT 1000 + i, 'New town', 1.0, DATE '2025-01-01' FROM range(12) r(i)"
    )
    resource = f"/resource/{four_by_four}.json"
    for kind, at in (
        ("429", [2]),
        ("500", [4]),
        ("503", [6]),
        ("reset", [8]),
        ("reset_after_apply", [10]),
        ("202", [12]),
    ):
        harness.faults.add(FaultRule(kind=kind, at=at, methods=["POST"], path_prefix=resource, retry_after=0))

    recorded: list[int] = []

    def crash_after_three(index: int) -> None:
        recorded.append(index)
        if len(recorded) == 3:
            raise Killed

    dataset = make_dataset(max_in_flight=in_flight)
    with pytest.raises(Killed):
        harness.publish(dataset=dataset, after_chunk=crash_after_three)
    interrupted = state.unfinished_publish(harness.con, "portal_rows")
    assert interrupted is not None and interrupted["chunks"] == 10
    # chunks in flight at the crash are not recorded (they are sent again on resume)
    assert state.applied_chunks(harness.con, interrupted["publish_id"]) == set(recorded)
    if in_flight == 1:
        assert recorded == [0, 1, 2]
    # the extract changes again before the restart: the restart must finish the old plan, then send this
    harness.con.execute("UPDATE out SET town = 'Moved' WHERE id = 90")
    harness.portal.request_log.clear()
    second = harness.publish(dataset=dataset)

    assert harness.faults.fired >= 5
    assert second.published and second.chunks_resumed > 0
    assert harness.portal_rows(four_by_four) == harness.table_rows()  # none missing, none duplicated
    assert second.portal_row_count == len(harness.table_rows())
    applied = harness.con.execute(
        "SELECT publish_id, chunk_index, count(*) FROM publish_ledger WHERE status = 'applied' GROUP BY ALL "
        "HAVING count(*) > 1"
    ).fetchall()
    assert applied == []  # each chunk recorded once
    assert state.unfinished_publish(harness.con, "portal_rows") is None


def test_four_chunks_in_flight_with_random_faults_and_crashes_land_exactly(harness: Harness) -> None:
    harness.make_rows(400)  # 40 chunks of 10 rows
    dataset = make_dataset(max_in_flight=4)
    resource = "/resource/"
    for seed, kind in enumerate(("429", "500", "503", "reset", "reset_after_apply", "202")):
        harness.faults.add(
            FaultRule(
                kind=kind, probability=0.06, seed=seed, methods=["POST"], path_prefix=resource, retry_after=0
            )
        )
    progress: list[str] = []
    crashes = 0

    def crash_every_twelfth(index: int) -> None:
        nonlocal crashes
        if len(progress) % 12 == 11 and crashes < 2:
            crashes += 1
            raise Killed

    for _ in range(2):
        with pytest.raises(Killed):
            harness.publish(dataset=dataset, progress=progress.append, after_chunk=crash_every_twelfth)
    result = harness.publish(dataset=dataset, progress=progress.append)

    assert result.published and harness.faults.fired > 0
    assert harness.portal_rows(result.four_by_four) == harness.table_rows()
    assert result.portal_row_count == 400
    ledger = harness.con.execute(
        "SELECT chunk_index, count(*) FROM publish_ledger WHERE status = 'applied' GROUP BY chunk_index"
    ).fetchall()
    assert sorted(index for index, _ in ledger) == list(range(40))  # every chunk recorded ...
    assert {count for _, count in ledger} == {1}  # ... exactly once
    assert sum(message.startswith("chunk ") and " of 40: " in message for message in progress) == 40
    # the last run only resumed what was left, then found nothing new to send
    assert result.mode == "incremental" and result.chunks_resumed == result.chunks


def test_small_replace_survives_a_reset_after_apply(harness: Harness) -> None:
    harness.make_rows(8)
    harness.faults.add(FaultRule(kind="reset_after_apply", at=[1], methods=["PUT"], path_prefix="/resource/"))
    result = harness.publish()
    assert result.mode == "replace" and result.published
    assert harness.portal_rows(result.four_by_four) == harness.table_rows()
    assert harness.faults.fired == 1


def test_second_publish_sends_only_changes(harness: Harness) -> None:
    harness.make_rows(50)
    first = harness.publish()
    assert first.mode == "upsert_all" and first.rows_created == 50
    harness.con.execute("UPDATE out SET town = 'Changed' WHERE id IN (3, 30)")
    harness.con.execute("DELETE FROM out WHERE id = 7")
    harness.con.execute("INSERT INTO out VALUES (500, 'Added', 2.0, DATE '2024-06-01')")
    harness.portal.request_log.clear()

    second = harness.publish()

    assert second.mode == "incremental"
    assert (second.rows_created, second.rows_updated, second.rows_deleted) == (1, 2, 1)
    assert second.rows_sent == 4
    assert len(harness.data_writes()) == 1
    assert harness.portal_rows(first.four_by_four) == harness.table_rows()
    log = state.publish_log(harness.con, "portal_rows")
    assert [e["mode"] for e in log] == ["incremental", "upsert_all"]
    assert log[0]["rows_deleted"] == 1 and log[0]["request_ids"]


def test_unchanged_table_sends_no_rows(harness: Harness) -> None:
    harness.make_rows(20)
    harness.publish()
    harness.portal.request_log.clear()
    again = harness.publish()
    assert again.rows_sent == 0 and harness.data_writes() == []
    assert again.published and again.portal_row_count == 20


@pytest.mark.parametrize("keep", [0, 10])
def test_empty_or_truncated_extract_is_refused_and_portal_untouched(harness: Harness, keep: int) -> None:
    harness.make_rows(50)
    first = harness.publish()
    harness.con.execute(f"DELETE FROM out WHERE id >= {keep}")
    harness.portal.request_log.clear()

    refused = harness.publish()

    guard = next(o for o in refused.outcomes if o.name == GUARD_CHECK)
    assert guard.blocks and not refused.published
    assert ("empty" if keep == 0 else "80% fewer than the 50 last published") in guard.summary
    assert harness.writes() == []
    assert len(harness.portal_rows(first.four_by_four)) == 50
    overridden = harness.publish(allow_shrink=True)
    assert overridden.published and len(harness.portal_rows(first.four_by_four)) == keep


def test_dry_run_writes_nothing(harness: Harness) -> None:
    harness.make_rows(30)
    first = harness.publish()
    harness.con.execute("UPDATE out SET amount = -1 WHERE id < 12")
    snapshot_before = harness.con.execute(
        "SELECT * FROM publish_snapshot__portal_rows ORDER BY row_key"
    ).fetchall()
    harness.portal.request_log.clear()

    plan = harness.publish(dry_run=True)

    assert plan.dry_run and not plan.published
    assert plan.plan["rows_to_update"] == 12 and plan.plan["chunks"] == 2
    assert [r for r in harness.portal.request_log if r[0] in ("POST", "PUT", "DELETE")] == []
    assert [m for m, _, _ in harness.portal.request_log].count("PATCH") == 1  # the validateOnly check
    after = harness.con.execute("SELECT * FROM publish_snapshot__portal_rows ORDER BY row_key").fetchall()
    assert after == snapshot_before
    assert harness.portal_rows(first.four_by_four)[0][2] == 0.0  # amount of id 0 unchanged on the portal
    assert harness.publish().rows_updated == 12  # the real run still sends what the dry run showed


def test_metadata_is_applied_with_column_descriptions(harness: Harness) -> None:
    harness.make_rows(5)
    result = harness.publish()
    dataset = make_dataset()
    dataset.columns[1].description = "Connecticut town where it happened"
    harness.publish(dataset=dataset)
    view = harness.portal.socrata_client().get_metadata(result.four_by_four)
    assert view["category"] == "Health and Human Services"
    assert view["metadata"]["custom_fields"]["Publishing Details"]["Update Frequency"] == "Weekly"
    assert view["metadata"]["custom_fields"]["Dataset Information"]["Agency"] == "Department of Testing"
    descriptions = {c["fieldName"]: c.get("description") for c in view["columns"]}
    assert descriptions["town"] == "Connecticut town where it happened"
    assert descriptions["id"] == "Row number"


def test_portal_rejection_of_metadata_is_reported_readably(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.make_rows(5)
    first = harness.publish()
    monkeypatch.setattr(publish_metadata, "handbook_problems", lambda dataset: [])  # let the portal judge it
    bad = make_dataset().model_copy(update={"category": "Fun Stuff"})
    harness.con.execute("UPDATE out SET town = 'Other' WHERE id = 1")
    harness.portal.request_log.clear()

    result = harness.publish(dataset=bad)

    outcome = next(o for o in result.outcomes if o.name == "portal_metadata")
    assert outcome.blocks and "Fun Stuff" in outcome.summary and "not one of" in outcome.summary
    assert not result.published and harness.data_writes() == []
    assert (
        harness.portal.socrata_client().get_metadata(first.four_by_four)["category"]
        == "Health and Human Services"
    )


def test_schema_drift_is_refused(harness: Harness) -> None:
    harness.make_rows(5)
    harness.publish()
    harness.con.execute("ALTER TABLE out ADD COLUMN extra VARCHAR")
    harness.portal.request_log.clear()
    result = harness.publish()
    drift = next(o for o in result.outcomes if o.name == "portal_schema_drift")
    assert drift.blocks and "(in the table but not on the portal: extra)" in drift.summary
    assert harness.data_writes() == []


def test_a_column_type_changed_after_the_first_publish_is_refused_saying_which_side_has_which(
    harness: Harness,
) -> None:
    """A district code first published as a number, then declared a code: the message once said
    'district_code (text vs number)' and 'add the columns', which fits neither side nor the change."""
    harness.make_rows(5)
    first = harness.publish()
    harness.con.execute("ALTER TABLE out ALTER COLUMN amount TYPE VARCHAR")
    harness.portal.request_log.clear()
    result = harness.publish()
    drift = next(o for o in result.outcomes if o.name == "portal_schema_drift")
    assert drift.blocks and drift.summary == (
        f"The portal dataset {first.four_by_four} does not match the table to publish (of another type: "
        "amount (text in the table, number on the portal)), so nothing was published; a replace of the rows "
        "(--full-replace) does not change the portal's columns. Change the portal dataset's columns to the "
        "table's (on Socrata, in the dataset's schema editor), or change the dataset YAML back to what the "
        "portal has, or publish to a new portal dataset: `ct-pipelines run --dataset portal_rows "
        "--new-portal-dataset` (the old one keeps its columns and rows)."
    )
    assert harness.data_writes() == []


def test_secrets_never_leak(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    harness.make_rows(25)
    result = harness.publish()
    harness.con.execute("UPDATE out SET amount = 0")
    harness.faults.add(FaultRule(kind="500", methods=["POST"], path_prefix="/resource/"))  # always fails
    with pytest.raises(PublishError) as caught:
        harness.publish()
    texts = [
        str(caught.value),
        repr(caught.value),
        str(caught.value.__cause__),
        str(caught.value.__context__),
        json.dumps(result.metadata()),
        json.dumps(result.log_row),
        json.dumps(state.publish_log(harness.con)),
        caplog.text,
        repr(harness.connection),
    ]
    assert "500" in str(caught.value) and "chunk 1 of" in str(caught.value)
    for text in texts:
        assert PASSWORD not in text and APP_TOKEN not in text
    assert state.publish_log(harness.con)[0]["status"] == "failed"


def test_first_publish_to_an_existing_dataset_resyncs_it(harness: Harness) -> None:
    client = harness.portal.socrata_client()
    columns = [
        {"fieldName": "id", "name": "id", "dataTypeName": "number"},
        {"fieldName": "town", "name": "town", "dataTypeName": "text"},
        {"fieldName": "amount", "name": "amount", "dataTypeName": "number"},
        {"fieldName": "day", "name": "day", "dataTypeName": "calendar_date"},
    ]
    four_by_four = client.create("Existing", columns=columns, row_identifier="id")["id"]
    client.publish(four_by_four)
    stale = [{"id": i, "town": "Stale", "amount": 9, "day": "2020-01-01T00:00:00.000"} for i in range(15, 40)]
    client.upsert(four_by_four, stale)
    harness.make_rows(25)

    result = harness.publish(dataset=make_dataset(id=four_by_four))

    assert result.mode == "resync"
    assert (result.rows_created, result.rows_updated, result.rows_deleted) == (15, 10, 15)
    assert harness.portal_rows(four_by_four) == harness.table_rows()


def test_dry_run_during_an_interrupted_incremental_publish_plans_from_where_it_will_end(
    harness: Harness,
) -> None:
    harness.make_rows(40)
    first = harness.publish()
    harness.con.execute("UPDATE out SET amount = -1 WHERE id < 25")  # 3 chunks of at most 10 rows

    def crash_after_first(index: int) -> None:
        raise Killed

    with pytest.raises(Killed):
        harness.publish(dataset=make_dataset(max_in_flight=1), after_chunk=crash_after_first)
    harness.con.execute("UPDATE out SET town = 'Moved' WHERE id = 39")

    plan = harness.publish(dry_run=True)

    assert plan.plan["interrupted_publish"]["chunks_applied"] == 1
    assert (plan.rows_created, plan.rows_updated, plan.rows_deleted) == (0, 1, 0)  # only id 39 is new
    resumed = harness.publish()
    assert resumed.chunks_resumed == 2 and resumed.rows_updated == 15 + 1
    assert harness.portal_rows(first.four_by_four) == harness.table_rows()
    assert harness.publish().rows_sent == 0  # the snapshot edited in place matches the table


@pytest.mark.parametrize(
    "older_columns",
    [
        "row_key, md5(row_key) AS row_hash",  # md5 text of the row JSON
        "row_key, row_hash",  # typed-value hashes, but no typed key to join on
    ],
)
def test_snapshot_in_an_older_format_resends_every_row_once(harness: Harness, older_columns: str) -> None:
    harness.make_rows(30)
    first = harness.publish()
    harness.con.execute(
        "CREATE OR REPLACE TABLE publish_snapshot__portal_rows AS "
        f"SELECT {older_columns} FROM publish_snapshot__portal_rows"
    )  # what earlier versions kept
    harness.con.execute("DELETE FROM out WHERE id = 4")

    upgraded = harness.publish()

    assert upgraded.mode == "incremental"
    assert (upgraded.rows_created, upgraded.rows_updated, upgraded.rows_deleted) == (0, 29, 1)
    assert harness.portal_rows(first.four_by_four) == harness.table_rows()
    assert state.has_current_format(harness.con, "publish_snapshot__portal_rows", "BIGINT")
    assert harness.publish().rows_sent == 0


def test_a_retyped_key_resends_every_row_once_and_deletes_by_the_old_key(harness: Harness) -> None:
    harness.make_rows(20)
    first = harness.publish()
    # same numbers on the portal, but the snapshot's typed key no longer matches the table's
    harness.con.execute("CREATE OR REPLACE TABLE out AS SELECT id::INTEGER AS id, town, amount, day FROM out")
    harness.con.execute("DELETE FROM out WHERE id = 7")

    retyped = harness.publish()

    assert (retyped.rows_created, retyped.rows_updated, retyped.rows_deleted) == (0, 19, 1)
    assert harness.portal_rows(first.four_by_four) == harness.table_rows()
    assert state.has_current_format(harness.con, "publish_snapshot__portal_rows", "INTEGER")
    assert harness.publish().rows_sent == 0


def test_unchanged_metadata_is_validated_but_not_rewritten(harness: Harness) -> None:
    harness.make_rows(5)
    first = harness.publish()
    harness.portal.request_log.clear()

    again = harness.publish()

    patches = [method for method, _, _ in harness.portal.request_log if method == "PATCH"]
    assert patches == ["PATCH"]  # validated (validateOnly), not written again
    outcome = next(o for o in again.outcomes if o.name == publish_metadata.METADATA_CHECK)
    assert outcome.passed and outcome.metadata["metadata_written"] is False
    changed = make_dataset()
    changed.description = "A new description."
    harness.portal.request_log.clear()
    harness.publish(dataset=changed)
    assert [m for m, _, _ in harness.portal.request_log if m == "PATCH"] == ["PATCH", "PATCH"]
    view = harness.portal.socrata_client().get_metadata(first.four_by_four)
    assert view["description"] == "A new description."


def publish_in_child(warehouse: str, domain: str, username: str) -> None:
    """A publishing process the test kills with SIGKILL: no ``finally`` block, no ledger flush."""
    con = duckdb.connect(warehouse)
    connection = PortalConnection(
        domain, username, PASSWORD, APP_TOKEN, scheme="http", timeout=10, retries=QUICK
    )
    publish_table(con, make_dataset(max_in_flight=2), "out", connection, run_id="killed")


def test_a_publishing_process_killed_mid_run_resumes_to_exact_rows(tmp_path: Path) -> None:
    harness = Harness(tmp_path, FaultPlan())
    try:
        harness.make_rows(600)
        first = harness.publish(dataset=make_dataset(chunk_rows=600))  # one replace creates a baseline
        harness.con.execute("UPDATE out SET amount = -amount WHERE id % 3 <> 0")  # 400 updates
        harness.con.execute("DELETE FROM out WHERE id % 50 = 7")  # 12 deletes
        harness.con.execute(
            "INSERT INTO out SELECT 1000 + i, 'New', 1.0, DATE '2025-01-01' FROM range(30) r(i)"
        )
        expected = harness.table_rows()
        harness.con.close()  # the child process takes the warehouse's file lock
        resource = f"/resource/{first.four_by_four}.json"
        harness.faults.add(FaultRule(kind="slow", delay=0.05, methods=["POST"], path_prefix=resource))
        harness.portal.request_log.clear()
        child = multiprocessing.get_context("spawn").Process(
            target=publish_in_child,
            args=(str(tmp_path / "warehouse.duckdb"), harness.portal.domain, harness.portal.username),
        )
        child.start()
        deadline = time.monotonic() + 60
        while sum(r[1] == resource for r in harness.portal.request_log) < 10 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
        assert child.exitcode == -signal.SIGKILL  # killed mid-run, not finished
        landed_before_restart = sum(r[1] == resource for r in harness.portal.request_log)
        assert 10 <= landed_before_restart < 45  # 45 chunks were planned

        harness.faults.clear()
        harness.con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
        resumed = harness.publish()

        assert resumed.published and resumed.chunks_resumed > 0
        assert harness.portal_rows(first.four_by_four) == expected  # none missing, none duplicated
        assert resumed.portal_row_count == len(expected)
        twice = harness.con.execute(
            "SELECT chunk_index FROM publish_ledger WHERE status = 'applied' GROUP BY publish_id, chunk_index "
            "HAVING count(*) > 1"
        ).fetchall()
        assert twice == [] and state.unfinished_publish(harness.con, "portal_rows") is None
        assert harness.publish().rows_sent == 0  # the snapshot matches what the portal holds
    finally:
        harness.close()
