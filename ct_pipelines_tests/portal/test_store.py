"""PortalStore without HTTP: SoQL edge cases, write semantics, the CLI guard rails, browse pages and
a performance sanity check."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from ct_pipelines.portal import staging
from ct_pipelines.portal.cli import is_loopback
from ct_pipelines.portal.cli import portal as portal_group
from ct_pipelines.portal.errors import PortalError
from ct_pipelines.portal.local import LocalPortal
from ct_pipelines.portal.store import PortalStore, parse_csv_rows

COLUMNS = [
    {"fieldName": "id", "dataTypeName": "number"},
    {"fieldName": "name", "dataTypeName": "text"},
    {"fieldName": "score", "dataTypeName": "number"},
    {"fieldName": "active", "dataTypeName": "checkbox"},
]
PEOPLE = [
    {"id": 1, "name": "O'Brien", "score": 10.25, "active": True},
    {"id": 2, "name": "Nguyen", "score": None, "active": False},
    {"id": 3, "name": "Garcia", "score": 30},
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[PortalStore]:
    opened = PortalStore(tmp_path)
    yield opened
    opened.close()


@pytest.fixture
def people(store: PortalStore) -> str:
    view_id = store.create_view({"name": "People", "columns": COLUMNS, "metadata": {"rowIdentifier": "id"}})[
        "id"
    ]
    store.upsert(view_id, PEOPLE)
    return view_id


def names(store: PortalStore, view_id: str, **params: str) -> list[str]:
    return [r["name"] for r in store.query(view_id, {"$order": "id", **params}).records()]


def test_where_operators(store: PortalStore, people: str) -> None:
    assert names(store, people, **{"$where": "name = 'O''Brien'"}) == ["O'Brien"]
    assert names(store, people, **{"$where": "score IS NULL"}) == ["Nguyen"]
    assert names(store, people, **{"$where": "NOT (score IS NULL) AND active != true"}) == []
    assert names(store, people, **{"$where": "score IS NOT NULL AND name NOT IN ('Garcia')"}) == ["O'Brien"]
    assert names(store, people, **{"$where": "starts_with(name, 'Ng') OR score > 20"}) == ["Nguyen", "Garcia"]
    assert names(store, people, **{"$where": "upper(name) like '%CIA'"}) == ["Garcia"]
    assert names(store, people, **{"$q": "brien"}) == ["O'Brien"]


def test_quotes_cannot_escape_a_literal(store: PortalStore, people: str) -> None:
    assert names(store, people, **{"$where": "name = 'x'' OR 1=1 --'"}) == []
    with pytest.raises(PortalError) as caught:
        store.query(people, {"$where": "name = 'x'; DROP TABLE views; --'"})
    assert caught.value.code == "query.compiler.malformed"
    assert store.get_view(people)["name"] == "People"


def test_numbers_and_nulls_are_shaped_like_socrata(store: PortalStore, people: str) -> None:
    rows = store.query(people, {"$order": "id"}).records()
    assert rows[0] == {"id": "1", "name": "O'Brien", "score": "10.25", "active": True}
    assert rows[1] == {"id": "2", "name": "Nguyen", "active": False}  # null score omitted
    result = store.query(
        people, {"$select": "active, sum(score) AS total", "$group": "active", "$order": "total"}
    )
    assert result.fields == ["active", "total"]
    assert result.records() == [{"active": True, "total": "10.25"}, {"total": "30"}, {"active": False}]


def test_id_order_survives_updates_deletes_and_replaces(store: PortalStore) -> None:
    view_id = store.create_view({"name": "Order", "columns": COLUMNS, "metadata": {"rowIdentifier": "id"}})[
        "id"
    ]
    store.upsert(view_id, [{"id": i, "name": f"n{i}"} for i in range(3_000)])
    store.upsert(view_id, [{"id": i, "name": "changed"} for i in range(0, 3_000, 7)])
    store.upsert(view_id, [{"id": i, ":deleted": True} for i in range(0, 3_000, 5)])
    store.upsert(view_id, [{"id": -i, "name": "late"} for i in range(1, 500)])
    params = {"$select": ":id, id", "$limit": "100000"}
    default_order = store.query(view_id, params).records()
    explicit = sorted(default_order, key=lambda r: r[":id"])
    assert default_order == explicit and len(default_order) == 3_000 - 600 + 499
    paged = [
        r
        for page in range(0, 2_899, 1000)
        for r in store.query(
            view_id, {**params, "$order": ":id", "$limit": "1000", "$offset": str(page)}
        ).records()
    ]
    assert paged == explicit
    descending = store.query(view_id, {**params, "$order": ":id DESC"}).records()
    assert descending == explicit[::-1]


def test_limit_and_offset_validation(store: PortalStore, people: str) -> None:
    assert names(store, people, **{"$limit": "1", "$offset": "1"}) == ["Nguyen"]
    with pytest.raises(PortalError) as caught:
        store.query(people, {"$limit": "many"})
    assert caught.value.status == 400


def test_replace_counts_rows_without_identifier_as_errors(store: PortalStore, people: str) -> None:
    result = store.replace(people, [{"id": 9, "name": "New"}, {"name": "no id"}, {"id": 9, "name": "Newer"}])
    assert result["Rows Created"] == 1 and result["Errors"] == 1
    assert names(store, people) == ["Newer"]


def test_row_identifier_change_requires_unique_values(store: PortalStore, people: str) -> None:
    store.upsert(people, [{"id": 4, "name": "Garcia"}])
    with pytest.raises(PortalError) as caught:
        store.update_view(people, {"metadata": {"rowIdentifier": "name"}})
    assert "repeat" in caught.value.message
    store.upsert(people, [{"id": 4, ":deleted": True}])
    view = store.update_view(people, {"metadata": {"rowIdentifier": "name"}})
    assert view["rowIdentifierColumnId"] == next(c["id"] for c in view["columns"] if c["fieldName"] == "name")
    assert store.upsert(people, [{"name": "Garcia", "score": 1}])["Rows Updated"] == 1


def test_create_rejects_bad_definitions(store: PortalStore) -> None:
    bad = [
        {"columns": COLUMNS},
        {"name": "x", "columns": [{"fieldName": "Bad Name"}]},
        {"name": "x", "columns": [{"fieldName": "a", "dataTypeName": "blob"}]},
        {"name": "x", "columns": COLUMNS, "metadata": {"rowIdentifier": "missing"}},
        {"name": "x", "category": "Sports"},
    ]
    for payload in bad:
        with pytest.raises(PortalError) as caught:
            store.create_view(payload)
        assert caught.value.status == 400
    assert store.list_views() == []


def test_csv_rows_report_the_broken_line() -> None:
    assert parse_csv_rows("a,b\n1,\n") == [{"a": "1", "b": None}]
    with pytest.raises(PortalError) as caught:
        parse_csv_rows("a,b\n1,2\n3,4,5\n")
    assert "line 3" in caught.value.message


def test_a_failed_write_leaves_the_table_unchanged(store: PortalStore, people: str) -> None:
    with pytest.raises(PortalError):
        store.upsert(people, [{"id": 1, "name": "changed"}, {"id": 5, "unknown": 1}])
    assert names(store, people) == ["O'Brien", "Nguyen", "Garcia"]


def test_upsert_of_100k_rows_is_fast(tmp_path: Path) -> None:
    with LocalPortal(tmp_path) as portal:
        client = portal.socrata_client(timeout=60)
        view_id = client.create("Big", columns=COLUMNS, row_identifier="id")["id"]
        rows = [
            {"id": i, "name": f"person {i}", "score": i / 4, "active": i % 2 == 0} for i in range(100_000)
        ]
        started = time.perf_counter()
        assert client.upsert(view_id, rows)["Rows Created"] == 100_000
        assert client.upsert(view_id, rows[:50_000])["Rows Updated"] == 50_000
        elapsed = time.perf_counter() - started
        assert elapsed < 10, f"150k upserted rows took {elapsed:.1f} s"
        assert client.get(view_id, select="count(*)") == [{"count": "100000"}]


def test_browse_pages_list_and_show_datasets(tmp_path: Path) -> None:
    with LocalPortal(tmp_path) as portal:
        client = portal.socrata_client()
        view_id = client.create("Bridges <&>", columns=COLUMNS)["id"]
        client.upsert(view_id, [{"name": "Arrigoni"}])
        home = requests.get(portal.url + "/", timeout=5)
        assert (
            home.status_code == 200 and f"/d/{view_id}" in home.text and "Bridges &lt;&amp;&gt;" in home.text
        )
        page = requests.get(f"{portal.url}/d/{view_id}", timeout=5)
        assert "Arrigoni" in page.text
        assert requests.get(f"{portal.url}/d/none-none", timeout=5).status_code == 404


def test_catalog_limit_is_capped(tmp_path: Path) -> None:
    with LocalPortal(tmp_path) as portal:
        answer = requests.get(f"{portal.url}/api/catalog/v1?limit=10001", timeout=5)
        assert answer.status_code == 400 and answer.json()["error"] is True


def test_serve_refuses_a_remote_host_without_allow_remote(tmp_path: Path) -> None:
    result = CliRunner().invoke(portal_group, ["serve", "--host", "0.0.0.0", "--data", str(tmp_path)])
    assert result.exit_code != 0
    assert "--allow-remote" in result.output and "Traceback" not in result.output
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("10.0.0.5")


def test_local_portal_never_shows_its_password(tmp_path: Path) -> None:
    portal = LocalPortal(tmp_path)
    try:
        assert portal.password and portal.password not in repr(portal)
        other = LocalPortal(tmp_path / "other")
        other.stop()
        assert other.password != portal.password
    finally:
        portal.stop()


# ---------------------------------------------------------------- request bodies parsed by DuckDB


def scores(store: PortalStore, view_id: str) -> dict[str, str | None]:
    return {r["name"]: r.get("score") for r in store.query(view_id, {"$order": "id"}).records()}


def test_json_body_rejects_truncated_and_non_row_payloads(store: PortalStore, people: str) -> None:
    bad_bodies = {
        '[{"id": 7, "name": "x"}, ': "not valid JSON",
        '[{"id": 7} {"id": 8}]': "not valid JSON",
        "": "JSON array of row objects",
        "5": "JSON array of row objects",
        '[{"id": 7}, 5]': "JSON array of row objects",
        '[{"id": 7}, ["id", 8]]': "JSON array of row objects",
    }
    for body, message in bad_bodies.items():
        with pytest.raises(PortalError) as caught:
            store.upsert_json(people, body)
        assert caught.value.status == 400 and message in caught.value.message, body
    assert store.row_count(people) == 3  # nothing was applied


def test_json_body_single_object_duplicates_and_last_wins(store: PortalStore, people: str) -> None:
    assert store.upsert_json(people, '{"id": 4, "name": "Single"}')["Rows Created"] == 1
    # two rows for one key in a payload: the later one wins and counts as an update
    result = store.upsert_json(people, '[{"id": 5, "name": "first"}, {"id": 5, "name": "second"}]')
    assert (result["Rows Created"], result["Rows Updated"], result["Errors"]) == (1, 1, 0)
    # an object repeating a key is still accepted (read_json refuses it; the fallback reader does not)
    assert store.upsert_json(people, '[{"id": 6, "name": "dup", "name": "dup"}]')["Rows Created"] == 1
    assert names(store, people)[3:] == ["Single", "second", "dup"]


def test_json_values_are_coerced_per_column_type(store: PortalStore, people: str) -> None:
    result = store.upsert_json(
        people,
        '[{"id": "10", "name": 12.5, "score": "3.25", "active": "true"},'
        ' {"id": 11, "name": {"nested": [1, 2]}, "score": 1e2, "active": 1},'
        ' {"id": 12, "name": "bad score", "score": "lots"},'
        ' {"id": 13, "name": true, "score": null}]',
    )
    assert result["Rows Created"] == 3 and result["Errors"] == 1
    rows = {r["id"]: r for r in store.query(people, {"$where": "id >= 10"}).records()}
    assert rows["10"] == {"id": "10", "name": "12.5", "score": "3.25", "active": True}
    assert rows["11"]["name"] == '{"nested":[1,2]}' and rows["11"]["score"] == "100" and rows["11"]["active"]
    assert rows["13"] == {"id": "13", "name": "true"}


def test_absent_fields_stay_unchanged_but_explicit_nulls_clear(store: PortalStore, people: str) -> None:
    result = store.upsert_json(
        people, '[{"id": 1, "name": "O\'Brien"}, {"id": 3, "name": "Garcia", "score": null}]'
    )
    assert result["Rows Updated"] == 2
    assert scores(store, people) == {"O'Brien": "10.25", "Nguyen": None, "Garcia": None}


def test_uniform_payloads_count_like_mixed_ones(store: PortalStore, people: str) -> None:
    """Rows sharing the first row's keys take a shorter path; its counters must match the general
    one's: bad cells and missing keys are errors, and new rows mixed with existing ones."""
    body = (
        '[{"id": 4, "score": 1}, {"id": null, "score": 2}, {"id": 5, "score": "lots"}, {"id": 6, "score": 3}]'
    )
    first = store.upsert_json(people, body)
    assert (first["Rows Created"], first["Rows Updated"], first["Errors"]) == (2, 0, 2)
    again = store.upsert_json(people, body)
    assert (again["Rows Created"], again["Rows Updated"], again["By RowIdentifier"], again["Errors"]) == (
        0,
        2,
        2,
        2,
    )
    mixed = store.upsert_json(people, '[{"id": 6, "name": "Six"}, {"id": 7, "name": "Seven"}]')
    assert (mixed["Rows Created"], mixed["Rows Updated"], mixed["By RowIdentifier"]) == (1, 1, 1)
    # rows that do not name the row identifier at all are errors (this once failed with a 500)
    assert store.upsert_json(people, '[{"name": "nobody"}]')["Errors"] == 1
    # the same keys in another order are the same fields
    reordered = store.upsert_json(people, '[{"id": 7, "score": 8}, {"score": 9, "id": 6}]')
    assert reordered["Rows Updated"] == 2
    rows = {r["id"]: r for r in store.query(people, {"$where": "id >= 4"}).records()}
    assert rows == {
        "4": {"id": "4", "score": "1"},
        "6": {"id": "6", "name": "Six", "score": "9"},
        "7": {"id": "7", "name": "Seven", "score": "8"},
    }


def test_deleted_flag_accepts_socrata_truthy_values(store: PortalStore, people: str) -> None:
    body = '[{"id": 1, ":deleted": "TRUE"}, {"id": 2, ":deleted": 0}, {"id": 3, ":deleted": "yes"}]'
    result = store.upsert_json(people, body)
    assert result["Rows Deleted"] == 2 and result["Rows Updated"] == 1
    assert names(store, people) == ["Nguyen"]


def test_unknown_columns_are_named_in_the_error(store: PortalStore, people: str) -> None:
    with pytest.raises(PortalError) as caught:
        store.upsert_json(people, '[{"id": 1}, {"id": 2, "zeta": 1, "alpha": 2}]')
    assert caught.value.data == {"columns": ["alpha", "zeta"]}
    assert "alpha, zeta" in caught.value.message


def test_raw_json_body_over_http_matches_the_python_path(tmp_path: Path) -> None:
    with LocalPortal(tmp_path) as portal:
        client = portal.socrata_client()
        view_id = client.create("Raw", columns=COLUMNS, row_identifier="id")["id"]
        url, auth = f"{portal.url}/resource/{view_id}.json", (portal.username, portal.password)
        answer = requests.post(
            url, data=b'\xef\xbb\xbf[{"id": 1, "name": "BOM first"}]', auth=auth, timeout=10
        ).json()
        assert answer["Rows Created"] == 1
        truncated = requests.post(url, data=b'[{"id": 2}, ', auth=auth, timeout=10)
        assert truncated.status_code == 400 and "not valid JSON" in truncated.json()["message"]
        latin1 = requests.post(url, data='[{"name": "caf\xe9"}]'.encode("latin-1"), auth=auth, timeout=10)
        assert latin1.status_code == 400
        assert client.get(view_id) == [{"id": "1", "name": "BOM first"}]


@contextmanager
def upload_staged_while_store_busy(
    store: PortalStore, view_id: str, body: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[dict[str, int]]]:
    """Hold the store as another request would, start an upsert of ``body`` in a thread and hand over
    once its body is staged; the upsert's answer lands in the yielded list after the block."""
    staged = threading.Event()
    stage = staging.stage_payload

    def stage_and_signal(*args: Any) -> staging.Staged:
        result = stage(*args)
        staged.set()
        return result

    monkeypatch.setattr(staging, "stage_payload", stage_and_signal)
    answers: list[dict[str, int]] = []
    with store._lock:  # another request is busy inside the store
        writer = threading.Thread(target=lambda: answers.append(store.upsert_json(view_id, body)))
        writer.start()
        assert staged.wait(10), "the body was not staged while the store was busy"
        yield answers
    writer.join(10)


def test_a_write_stages_its_body_while_another_holds_the_store(
    store: PortalStore, people: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parsing a body must not wait for the lock (so two uploads overlap); only the apply does."""
    with upload_staged_while_store_busy(store, people, '[{"id": 4, "name": "Khan"}]', monkeypatch) as answers:
        time.sleep(0.05)
        assert answers == []  # but it is not applied until the store is free
    assert answers[0]["Rows Created"] == 1
    assert names(store, people) == ["O'Brien", "Nguyen", "Garcia", "Khan"]
    assert not list(store.data_dir.glob("_ct_payload*"))  # scratch files are removed


def test_a_write_staged_before_the_row_identifier_changed_uses_the_new_one(
    store: PortalStore, people: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = '[{"id": 9, "name": "Nguyen", "score": 5}]'
    with upload_staged_while_store_busy(store, people, body, monkeypatch) as answers:
        store.update_view(people, {"metadata": {"rowIdentifier": "name"}})
    # keyed by name, the row updates Nguyen (keyed by id it would have created row 9)
    assert (answers[0]["Rows Created"], answers[0]["Rows Updated"]) == (0, 1)
    rows = store.query(people, {"$order": "name"}).records()
    assert [(r["name"], r["id"]) for r in rows] == [("Garcia", "3"), ("Nguyen", "9"), ("O'Brien", "1")]


def test_concurrent_uploads_to_one_dataset_all_land(tmp_path: Path) -> None:
    with LocalPortal(tmp_path) as portal:
        setup = portal.socrata_client()
        view_id = setup.create("Concurrent", columns=COLUMNS, row_identifier="id")["id"]

        def upload(start: int) -> dict[str, int]:
            client = portal.socrata_client()  # one session per thread
            try:
                rows = [{"id": i, "name": f"n{i}", "score": i / 2} for i in range(start, start + 500)]
                return client.upsert(view_id, rows)
            finally:
                client.close()

        with ThreadPoolExecutor(max_workers=4) as pool:
            answers = list(pool.map(upload, range(0, 8000, 500)))
        assert sum(a["Rows Created"] for a in answers) == 8000
        assert all(a["Errors"] == 0 for a in answers)
        assert setup.get(view_id, select="count(*) AS n, sum(score) AS s")[0] == {
            "n": "8000",
            "s": str(sum(i / 2 for i in range(8000))).removesuffix(".0"),
        }
        assert not list(tmp_path.glob("_ct_payload*"))


def test_empty_objects_append_empty_rows_without_a_row_identifier(store: PortalStore) -> None:
    view_id = store.create_view({"name": "Log", "columns": COLUMNS})["id"]
    assert store.upsert_json(view_id, "[{}, {}]")["Rows Created"] == 2
    assert store.upsert_json(view_id, '[{"name": "x"}, {}]')["Rows Created"] == 2
    assert store.row_count(view_id) == 4


def test_updates_write_changed_columns_and_stamp_every_matched_row(store: PortalStore, people: str) -> None:
    """Only columns with a differing value are rewritten, but every matched row counts as updated
    and gets a new :updated_at, in the uniform and the mixed (with a delete) paths alike."""
    before = {r["id"]: r for r in store.query(people, {"$select": ":id, :updated_at, id, name"}).records()}
    time.sleep(0.01)
    same_names = store.upsert_json(
        people, '[{"id": 1, "name": "O\'Brien", "score": 11}, {"id": 2, "name": "Nguyen"}]'
    )
    assert same_names["Rows Updated"] == 2
    mixed = store.upsert_json(
        people, '[{"id": 2, "name": "Nguyen-Smith"}, {"id": 3, ":deleted": true}, {"id": 9, "name": "New"}]'
    )
    assert (mixed["Rows Updated"], mixed["Rows Deleted"], mixed["Rows Created"]) == (1, 1, 1)
    after = {
        r["id"]: r for r in store.query(people, {"$select": ":id, :updated_at, id, name, score"}).records()
    }
    assert {k: (r.get("name"), r.get("score")) for k, r in after.items()} == {
        "1": ("O'Brien", "11"),
        "2": ("Nguyen-Smith", None),
        "9": ("New", None),
    }
    for key in ("1", "2"):
        assert (
            after[key][":id"] == before[key][":id"] and after[key][":updated_at"] > before[key][":updated_at"]
        )


def test_rows_updated_at_moves_with_applied_writes_only(
    store: PortalStore, people: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ct_pipelines.portal.common.now_epoch", lambda: 2_000_000_000)
    with pytest.raises(PortalError):
        store.upsert_json(people, '[{"id": 9, "nickname": "unknown column"}]')
    assert store.get_view(people)["rowsUpdatedAt"] != 2_000_000_000  # a refused write changes nothing
    store.upsert_json(people, '[{"id": 9, "name": "Nine"}]')
    assert store.get_view(people)["rowsUpdatedAt"] == 2_000_000_000
    monkeypatch.setattr("ct_pipelines.portal.common.now_epoch", lambda: 2_000_000_100)
    store.delete_row(people, "9")
    reopened = PortalStore(store.data_dir)  # saved, not only held in memory
    assert reopened.get_view(people)["rowsUpdatedAt"] == 2_000_000_100
    reopened.close()
