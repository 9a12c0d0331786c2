"""Publisher pieces that need no portal: serialization, chunking, guards, dry run, secrets."""

from __future__ import annotations

import json

import duckdb
import pytest
import requests

from ct_pipelines.catalog.models import Dataset
from ct_pipelines.publish import state
from ct_pipelines.publish.connection import PortalConnection, PublishError, RetryPolicy
from ct_pipelines.publish.metadata import desired_metadata, handbook_problems
from ct_pipelines.publish.plan import Plan, build_plan, cut_chunks
from ct_pipelines.publish.publisher import GUARD_CHECK, publish_check_specs, publish_table
from ct_pipelines.publish.send import read_counters
from ct_pipelines.publish.serialize import row_hash_sql, row_json_sql, table_columns
from ct_pipelines_tests.support.publish import rows_dataset


def make_dataset(**portal: object) -> Dataset:
    return rows_dataset(
        id="test_rows",
        title="Test rows for publishing",
        category="Government",
        update_frequency="Daily",
        columns=[
            {"source": "id", "type": "integer", "description": "Row number"},
            {"source": "name", "description": "A made-up name"},
            {"source": "ssn", "pii": True},
        ],
        portal=portal,
    )


@pytest.fixture()
def con() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    yield connection
    connection.close()


# An unreachable portal: any request it makes fails, so tests prove the portal was not contacted.
OFFLINE = PortalConnection("127.0.0.1:9", "user", "pw-secret-123", "token-secret-456", scheme="http")


def rows_json(con: duckdb.DuckDBPyConnection, table: str) -> list[dict]:
    sql = row_json_sql(table_columns(con, table))
    return [json.loads(r[0]) for r in con.execute(f"SELECT {sql} FROM {table}").fetchall()]


def test_values_are_serialized_as_socrata_accepts(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """CREATE TABLE t AS SELECT * FROM (VALUES
           (1, 'nan'::DOUBLE, DATE '2024-02-29', TIMESTAMP '2024-03-01 13:45:10.250', true, 'say "hi"'),
           (2, 'inf'::DOUBLE, 'infinity'::DATE, NULL, false, NULL),
           (3, 2.5, NULL, TIMESTAMP '1999-12-31 00:00:00', NULL, 'ümlaut')) v(id, x, d, ts, flag, s)"""
    )
    first, second, third = rows_json(con, "t")
    assert first == {
        "id": 1,
        "x": None,
        "d": "2024-02-29T00:00:00.000",
        "ts": "2024-03-01T13:45:10.250",
        "flag": True,
        "s": 'say "hi"',
    }
    assert second["x"] is None and second["d"] is None and second["flag"] is False
    assert third["x"] == 2.5 and third["ts"] == "1999-12-31T00:00:00.000" and third["s"] == "ümlaut"


def test_huge_integers_travel_as_text(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE t AS SELECT 123456789012345678901::HUGEINT AS big")
    assert rows_json(con, "t") == [{"big": "123456789012345678901"}]


def test_chunks_are_bounded_by_rows_and_bytes(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "CREATE TABLE p AS SELECT i AS seq, i::VARCHAR AS row_key, repeat('x', CASE WHEN i = 7 THEN 500 ELSE 9 END) "
        "AS body FROM range(25) r(i)"
    )
    chunks = cut_chunks(con, "p", chunk_rows=4, chunk_bytes=50, single=False)
    assert [c["first_seq"] for c in chunks][0] == 0
    covered = [s for c in chunks for s in range(c["first_seq"], c["last_seq"] + 1)]
    assert covered == list(range(25))  # every row exactly once, in order
    for chunk in chunks:
        assert chunk["row_count"] <= 4
        assert chunk["byte_count"] <= 50 + 1 or chunk["row_count"] == 1  # an oversized row goes alone
    assert any(c["first_seq"] == c["last_seq"] == 7 for c in chunks)
    single = cut_chunks(con, "p", chunk_rows=4, chunk_bytes=50, single=True)
    assert len(single) == 1 and single[0]["row_count"] == 25


def test_counters_accept_both_key_styles() -> None:
    legacy = {"Rows Created": 2, "Rows Updated": 1, "Rows Deleted": 3, "Errors": 0, "By SID": 0}
    newer = {"rows_created": 2, "rows_updated": 1, "rows_deleted": 3}
    expected = {"created": 2, "updated": 1, "deleted": 3, "errors": 0}
    assert read_counters(legacy) == expected
    assert read_counters(newer) == expected
    with pytest.raises(PublishError):
        read_counters("<html>oops</html>")


def test_empty_table_is_refused_without_touching_the_portal(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE out AS SELECT 1::BIGINT AS id, 'a' AS name WHERE false")
    result = publish_table(con, make_dataset(), "out", OFFLINE, run_id="r1")
    guard = next(o for o in result.outcomes if o.name == GUARD_CHECK)
    assert guard.blocks and "empty" in guard.summary and "not changed" in guard.summary
    assert result.mode == "refused" and not result.published
    assert state.publish_log(con, "test_rows")[0]["status"] == "refused"


def test_empty_table_allowed_by_yaml_gets_past_the_guard(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE out AS SELECT 1::BIGINT AS id, 'a' AS name WHERE false")
    result = publish_table(con, make_dataset(allow_empty=True), "out", OFFLINE, run_id="r1", dry_run=True)
    assert not result.refused and result.plan["would_create_dataset"]


def test_pii_columns_and_duplicate_keys_are_refused(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "CREATE TABLE out AS SELECT * FROM (VALUES (1, 'a', '123-45-6789'), (1, 'b', NULL)) v(id, name, ssn)"
    )
    guard = publish_table(con, make_dataset(), "out", OFFLINE, run_id="r1").outcomes[0]
    assert guard.blocks
    assert "ssn" in guard.summary and "repeat" in guard.summary
    assert "123-45-6789" not in json.dumps(guard.metadata)


def test_dry_run_of_a_first_publish_plans_without_writing(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE out AS SELECT i::BIGINT AS id, 'name ' || i AS name FROM range(25) r(i)")
    tables_before = set(con.execute("SELECT table_name FROM duckdb_tables()").fetchall())
    result = publish_table(con, make_dataset(chunk_rows=10), "out", OFFLINE, run_id="r1", dry_run=True)
    assert result.dry_run and not result.published
    assert result.plan["would_create_dataset"] is True
    assert result.plan["rows_to_create"] == 25 and result.plan["chunks"] == 3
    assert result.plan["mode"] == "upsert_all"
    tables_after = set(con.execute("SELECT table_name FROM duckdb_tables()").fetchall())
    assert tables_after - tables_before <= {
        (t,)
        for t in (
            "portal_targets",
            "publish_state",
            "publish_runs",
            "publish_chunks",
            "publish_ledger",
            "publish_log",
        )
    }
    assert state.publish_log(con) == []  # a dry run records nothing


def test_unreachable_portal_error_is_readable_and_secret_free(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE out AS SELECT i::BIGINT AS id, 'n' AS name FROM range(3) r(i)")
    quick = PortalConnection(
        "127.0.0.1:9", "user", "pw-secret-123", "token-secret-456", scheme="http", timeout=2,
        retries=RetryPolicy(attempts=1, backoff_factor=0),
    )  # fmt: skip
    with pytest.raises(PublishError) as caught:
        publish_table(con, make_dataset(id="abcd-1234"), "out", quick, run_id="r1")
    text = str(caught.value) + repr(caught.value)
    assert "could not be reached" in text
    assert "pw-secret-123" not in text and "token-secret-456" not in text
    assert "pw-secret-123" not in repr(quick)


def test_describe_failure_scrubs_secrets_from_server_messages() -> None:
    response = requests.Response()
    response.status_code = 500
    response.headers["X-Socrata-RequestId"] = "req-1"
    exc = requests.exceptions.HTTPError(
        "500 Server Error: echo pw-secret-123 token-secret-456", response=response
    )
    error = OFFLINE.describe_failure("Sending chunk 1", exc)
    assert "***" in str(error) and "req-1" in str(error)
    assert "pw-secret-123" not in str(error) and "token-secret-456" not in str(error)


def test_metadata_body_follows_the_catalog() -> None:
    dataset = make_dataset()
    body = desired_metadata(dataset)
    assert body["category"] == "Government" and body["attribution"] == "Department of Testing"
    assert body["customFields"]["Publishing Details"]["Update Frequency"] == "Daily"
    assert body["customFields"]["Dataset Information"]["Agency"] == "Department of Testing"
    assert handbook_problems(dataset) == []
    bad = dataset.model_copy(update={"category": "Fun Stuff"})
    assert "Fun Stuff" in handbook_problems(bad)[0]


def test_check_specs_need_no_io() -> None:
    names = [spec.name for spec in publish_check_specs(make_dataset(id="abcd-1234"))]
    assert names == ["publish_guard", "portal_schema_drift", "portal_metadata", "publish_verified"]


def test_cli_log_and_the_replaced_run_command(tmp_path) -> None:
    from click.testing import CliRunner

    from ct_pipelines.publish.cli import publish_group

    warehouse = tmp_path / "w.duckdb"
    duckdb.connect(str(warehouse)).close()
    runner = CliRunner()
    logged = runner.invoke(publish_group, ["log", "--warehouse", str(warehouse)])
    assert logged.exit_code == 0 and "no publishes recorded yet" in logged.output
    moved = runner.invoke(publish_group, ["run", "anything.yaml", "--table", "out"])
    assert moved.exit_code == 2 and "ct-pipelines run --dataset DATASET_ID" in moved.output


def test_publish_log_reads_every_datasets_file(tmp_path, monkeypatch) -> None:
    """Without --warehouse, the log merges each dataset's own file (opened read-only), newest first."""
    from click.testing import CliRunner

    from ct_pipelines.publish.cli import publish_group
    from ct_pipelines.publish.state import ensure_schema

    monkeypatch.setenv("CT_PIPELINES_WAREHOUSE", str(tmp_path / "warehouse"))
    (tmp_path / "warehouse").mkdir()
    for day, dataset_id in [(1, "first_ds"), (2, "second_ds")]:
        with duckdb.connect(str(tmp_path / "warehouse" / f"{dataset_id}.duckdb")) as con:
            ensure_schema(con)
            con.execute(
                "INSERT INTO publish_log (run_id, dataset_id, four_by_four, started_at, mode, status, "
                "rows_created, chunks) VALUES (?, ?, 'abcd-1234', ?, 'upsert', 'ok', ?, 1)",
                [f"run{day}", dataset_id, f"2026-11-0{day} 10:00:00", day * 10],
            )
    logged = CliRunner().invoke(publish_group, ["log"])
    assert logged.exit_code == 0, logged.output
    lines = logged.output.splitlines()
    assert [line.split()[1] for line in lines] == ["second_ds", "first_ds"]
    assert "+20" in lines[0] and "+10" in lines[1]
    one = CliRunner().invoke(publish_group, ["log", "--dataset", "first_ds"])
    assert one.exit_code == 0 and len(one.output.splitlines()) == 1 and "first_ds" in one.output


def pending_rows(con: duckdb.DuckDBPyConnection, plan: Plan) -> list[tuple[str, str, dict]]:
    rows = con.execute(f'SELECT row_key, op, body FROM "{plan.pending}" ORDER BY seq').fetchall()
    return [(key, op, json.loads(body)) for key, op, body in rows]


def test_plan_orders_chunks_by_key_value_not_key_text(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "CREATE TABLE out AS SELECT i::BIGINT AS id, 'name ' || i AS name FROM range(25) r(i) ORDER BY random()"
    )
    dataset = make_dataset(chunk_rows=10)
    plan = build_plan(con, dataset, "out", table_columns(con, "out"), "upsert_all", None, temporary=True)
    assert [key for key, _, _ in pending_rows(con, plan)] == [str(i) for i in range(25)]
    assert [(c["first_key"], c["last_key"]) for c in plan.chunks] == [("0", "9"), ("10", "19"), ("20", "24")]
    assert plan.counts == {"create": 25} and plan.expected_count == 25


def test_incremental_plan_holds_only_changed_rows(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE out AS SELECT i::BIGINT AS id, 'name ' || i AS name FROM range(12) r(i)")
    dataset = make_dataset()
    columns = table_columns(con, "out")
    first = build_plan(con, dataset, "out", columns, "upsert_all", None, temporary=True)
    con.execute(f'CREATE TABLE previous AS SELECT row_key, key_value, row_hash FROM "{first.pending}"')
    con.execute("UPDATE out SET name = 'changed' WHERE id = 11")
    con.execute("DELETE FROM out WHERE id = 2")
    con.execute("INSERT INTO out VALUES (100, 'new')")
    plan = build_plan(con, dataset, "out", columns, "incremental", "previous", temporary=True)
    assert pending_rows(con, plan) == [
        ("2", "delete", {"id": 2, ":deleted": True}),
        ("11", "update", {"id": 11, "name": "changed"}),
        ("100", "create", {"id": 100, "name": "new"}),
    ]
    assert plan.expected_count == 12
    # the snapshot with the change set applied equals the hashes a full publish of the table gives
    applied = dict(
        con.execute(
            f'SELECT row_key, row_hash FROM previous WHERE row_key NOT IN (SELECT row_key FROM "{plan.pending}") '
            f"UNION ALL SELECT row_key, row_hash FROM \"{plan.pending}\" WHERE op <> 'delete'"
        ).fetchall()
    )
    full = build_plan(con, dataset, "out", columns, "upsert_all", None, temporary=True)
    assert applied == dict(con.execute(f'SELECT row_key, row_hash FROM "{full.pending}"').fetchall())
    assert len(applied) == 12 and "2" not in applied


def row_hashes(con: duckdb.DuckDBPyConnection, table: str) -> dict[int, int]:
    return dict(con.execute(f"SELECT id, {row_hash_sql(table_columns(con, table))} FROM {table}").fetchall())


def make_hash_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """CREATE OR REPLACE TABLE t AS SELECT * FROM (VALUES
        (0, NULL, 'Hartford', TIMESTAMPTZ '2024-01-01 10:00:00+00', 1.5::DOUBLE),
        (1, 'a', 'b', NULL, 2.0), (2, '', 'Hartford', TIMESTAMPTZ '2024-05-01 10:00:00+00', NULL))
        t(id, name, town, "at", amount)"""
    )


@pytest.mark.parametrize(
    ("change", "changed_id"),
    [
        ("UPDATE t SET name = '' WHERE id = 0", 0),  # NULL and empty text are sent differently
        ("UPDATE t SET name = NULL WHERE id = 2", 2),
        ("UPDATE t SET name = town, town = name WHERE id = 1", 1),  # values swapped between columns
        ('UPDATE t SET "at" = "at" + INTERVAL 1 SECOND WHERE id = 2', 2),
        ("UPDATE t SET amount = 0.0 WHERE id = 2", 2),
        ("UPDATE t SET amount = amount + 1e-9 WHERE id = 0", 0),
    ],
)
def test_row_hash_changes_for_exactly_the_changed_row(
    con: duckdb.DuckDBPyConnection, change: str, changed_id: int
) -> None:
    make_hash_table(con)
    before = row_hashes(con, "t")
    con.execute(change)
    after = row_hashes(con, "t")
    assert {key for key in before if before[key] != after[key]} == {changed_id}


@pytest.mark.parametrize(
    "schema_change",
    [
        "ALTER TABLE t ADD COLUMN extra VARCHAR",  # a new, empty column is still sent (as null)
        "ALTER TABLE t DROP COLUMN amount",
        "ALTER TABLE t RENAME COLUMN town TO city",
        "ALTER TABLE t ALTER id TYPE BIGINT",  # same values, another type
        "ALTER TABLE t ALTER amount TYPE DECIMAL(10, 2)",
    ],
)
def test_row_hash_changes_for_every_row_when_the_columns_change(
    con: duckdb.DuckDBPyConnection, schema_change: str
) -> None:
    make_hash_table(con)
    before = row_hashes(con, "t")
    con.execute(schema_change)
    after = row_hashes(con, "t")
    assert all(before[key] != after[key] for key in before)


def test_zoned_timestamps_hash_as_the_wall_time_sent(con: duckdb.DuckDBPyConnection) -> None:
    make_hash_table(con)
    con.execute("SET TimeZone = 'UTC'")
    before = row_hashes(con, "t")
    con.execute("SET TimeZone = 'America/New_York'")
    after = row_hashes(con, "t")
    assert {key for key in before if before[key] != after[key]} == {0, 2}  # the rows with a time


def test_a_3000_column_table_plans_within_the_memory_cap(tmp_path) -> None:
    """An agency's wide extract (3,000 columns, 10,000 rows, no row identifier) under the default 768 MB
    cap: one hash() of every column and JSON built inside the sort each ran DuckDB out of memory here."""
    con = duckdb.connect(str(tmp_path / "wide.duckdb"), config={"memory_limit": "768MB"})
    columns = ", ".join(f"(i * {k} + 7) % 100003 AS c{k}" for k in range(3000))
    con.execute(f"CREATE TABLE out AS SELECT {columns} FROM range(10000) r(i)")
    dataset = make_dataset()
    plan = build_plan(con, dataset, "out", table_columns(con, "out"), "replace", None, temporary=False)
    assert plan.counts == {"create": 10000} and plan.expected_count == 10000
    for (body,) in con.execute(f'SELECT body FROM "{plan.pending}" WHERE seq IN (0, 4321, 9999)').fetchall():
        row = json.loads(body)
        i = row["c1"] - 7  # every value is recomputed from the row number, all 3,000 of them
        assert len(row) == 3000 and all(row[f"c{k}"] == (i * k + 7) % 100003 for k in range(3000))
    assert con.execute(f'SELECT count(DISTINCT row_hash), count(*) FROM "{plan.pending}"').fetchone() == (
        10000,
        10000,
    )
    assert not con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '%unsorted%'"
    ).fetchone()[0]
