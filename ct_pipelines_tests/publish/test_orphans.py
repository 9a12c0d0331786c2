"""No orphans: when the create call's answer is lost or the publication call fails, or the warehouse
that recorded the 4x4 is lost later, the rerun finds the dataset the portal already holds by its marker
tag instead of creating a second one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from ct_pipelines.publish import state
from ct_pipelines.publish.connection import PublishError
from ct_pipelines.publish.publisher import DRIFT_CHECK, METADATA_CHECK, PublishResult
from ct_pipelines.publish.target import marker_tag
from ct_pipelines_tests.support.faults import FaultPlan, FaultRule
from ct_pipelines_tests.support.publish import Harness, portal_dataset

MARKER = marker_tag("portal_rows")


@pytest.fixture()
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path, FaultPlan())
    yield h
    h.close()


def views(harness: Harness) -> list[dict]:
    assert harness.portal.store is not None
    return harness.portal.store.list_views()


def creates(harness: Harness) -> int:
    return sum(
        method == "POST" and path == "/api/views.json" for method, path, _ in harness.portal.request_log
    )


def test_a_lost_create_answer_does_not_make_a_second_dataset(harness: Harness) -> None:
    harness.make_rows(25)
    # the portal creates the view, then the connection drops before the answer reaches us
    harness.faults.add(
        FaultRule(kind="reset_after_apply", at=[1], methods=["POST"], path_prefix="/api/views.json")
    )

    with pytest.raises(PublishError) as lost:
        harness.publish()

    assert "Creating dataset 'Rows for portal tests'" in str(lost.value) and MARKER in str(lost.value)
    [orphan] = views(harness)
    assert MARKER in orphan["tags"] and orphan["publicationStage"] == "unpublished"
    assert state.find_target(harness.con, "portal_rows", harness.connection.target) is None

    rerun = harness.publish()

    assert [v["id"] for v in views(harness)] == [orphan["id"]]  # exactly one dataset
    assert creates(harness) == 1
    assert (
        rerun.published
        and rerun.four_by_four == orphan["id"]
        and rerun.plan["adopted_dataset"] == orphan["id"]
    )
    assert harness.portal_rows(orphan["id"]) == harness.table_rows()
    view = harness.portal.socrata_client().get_metadata(orphan["id"])
    assert view["publicationStage"] == "published"
    assert MARKER in view["tags"]  # the metadata sync keeps it
    assert harness.publish().rows_sent == 0 and len(views(harness)) == 1


def test_a_failed_publication_call_is_finished_on_the_same_dataset(harness: Harness) -> None:
    harness.make_rows(25)
    # every publication call fails (after the client's retries) until the portal recovers
    harness.faults.add(FaultRule(kind="500", methods=["POST"], path_prefix="/api/views/"))

    with pytest.raises(PublishError) as failed:
        harness.publish()

    assert "Publishing the new dataset" in str(failed.value) and "Run the publish again" in str(failed.value)
    [draft] = views(harness)
    assert draft["publicationStage"] == "unpublished"
    assert state.find_target(harness.con, "portal_rows", harness.connection.target) == draft["id"]
    harness.faults.clear()

    rerun = harness.publish()

    assert [v["id"] for v in views(harness)] == [draft["id"]] and creates(harness) == 1
    assert rerun.published and rerun.four_by_four == draft["id"]
    assert views(harness)[0]["publicationStage"] == "published"
    assert harness.portal_rows(draft["id"]) == harness.table_rows()


def test_two_marked_datasets_are_refused_before_anything_is_created(harness: Harness) -> None:
    client = harness.portal.socrata_client()
    columns = [{"fieldName": "id", "name": "id", "dataTypeName": "number"}]
    made = sorted(client.create(f"Copy {n}", columns=columns, tags=[MARKER])["id"] for n in (1, 2))
    harness.make_rows(5)
    harness.portal.request_log.clear()

    with pytest.raises(PublishError) as refused:
        harness.publish()

    message = str(refused.value)
    assert f"2 datasets on {harness.portal.domain} carry the marker tag '{MARKER}'" in message
    assert all(four_by_four in message for four_by_four in made) and "publish.id" in message
    assert creates(harness) == 0 and len(views(harness)) == 2


def test_a_draft_someone_else_made_is_not_published_for_them(harness: Harness) -> None:
    client = harness.portal.socrata_client()
    columns = [
        {"fieldName": "id", "name": "id", "dataTypeName": "number"},
        {"fieldName": "town", "name": "town", "dataTypeName": "text"},
        {"fieldName": "amount", "name": "amount", "dataTypeName": "number"},
        {"fieldName": "day", "name": "day", "dataTypeName": "calendar_date"},
    ]
    draft = client.create("Someone's draft", columns=columns, row_identifier="id")["id"]
    harness.make_rows(5)

    result = harness.publish(dataset=portal_dataset(id=draft))

    assert result.published and harness.portal_rows(draft) == harness.table_rows()
    assert harness.portal.store is not None
    assert harness.portal.store.get_view(draft)["publicationStage"] == "unpublished"
    assert not harness.portal.store.get_view(draft)["tags"]  # the YAML names it: it is not marked as ours


def outcome(result: PublishResult, name: str):
    return next(o for o in result.outcomes if o.name == name)


def test_the_marker_outlives_every_metadata_sync_and_a_lost_warehouse(
    harness: Harness, tmp_path: Path
) -> None:
    dataset = portal_dataset()
    dataset.tags = ["health", "weekly counts"]
    harness.make_rows(25)
    created = harness.publish(dataset=dataset)
    four_by_four = created.four_by_four
    assert created.published and creates(harness) == 1
    assert sorted(views(harness)[0]["tags"]) == sorted(["health", "weekly counts", MARKER])

    dataset.tags = ["health", "hospital visits"]  # the YAML's tags change: the sync writes them
    changed = harness.publish(dataset=dataset)
    assert outcome(changed, METADATA_CHECK).metadata["metadata_written"] is True
    assert sorted(views(harness)[0]["tags"]) == sorted(["health", "hospital visits", MARKER])
    again = harness.publish(dataset=dataset)
    assert outcome(again, METADATA_CHECK).metadata["metadata_written"] is False  # the marker is no change
    assert outcome(again, DRIFT_CHECK).passed

    # the warehouse is lost (a new server, a restore from before the first publish): no record of the 4x4
    harness.con.close()
    harness.con = duckdb.connect(str(tmp_path / "rebuilt.duckdb"))
    harness.make_rows(27)

    rerun = harness.publish(dataset=dataset)

    assert (
        rerun.published
        and rerun.four_by_four == four_by_four
        and rerun.plan["adopted_dataset"] == four_by_four
    )
    assert [v["id"] for v in views(harness)] == [four_by_four] and creates(harness) == 1
    assert harness.portal_rows(four_by_four) == harness.table_rows() and len(harness.table_rows()) == 27
    assert MARKER in views(harness)[0]["tags"]
    assert outcome(rerun, METADATA_CHECK).metadata["metadata_written"] is False
    assert state.find_target(harness.con, "portal_rows", harness.connection.target) == four_by_four
