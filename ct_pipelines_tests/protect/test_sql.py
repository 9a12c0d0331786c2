"""Publish SQL is confined to the dataset's PII-free view: other tables, files and functions are refused by
name, the query runs where nothing else exists, its errors name the missing column, and whatever it returns
still goes through the PII checks."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from ct_pipelines.catalog.models import Dataset
from ct_pipelines.core.settings import SAMPLES_DIR
from ct_pipelines.orchestration.runner import run_catalog
from ct_pipelines.protect.errors import PublishConfigError
from ct_pipelines.protect.published import build_published_table, privacy_outcomes
from ct_pipelines.protect.sandbox import SqlShape, check_sql, run_confined

PII = ("client_name", "medicaid_id", "date_of_birth")


def make_dataset(publish: dict) -> Dataset:
    columns = [
        {"source": name, "pii": name in PII}
        for name in [
            "request_id",
            "client_name",
            "medicaid_id",
            "date_of_birth",
            "town",
            "race",
            "request_date",
        ]
    ]
    return Dataset.model_validate(
        {
            "id": "interp",
            "title": "Interpreter requests",
            "description": "Interpreter requests for tests of publish SQL.",
            "agency": "Department of Social Services",
            "category": "Health and Human Services",
            "update_frequency": "Weekly",
            "contact": "dss.data@ct.gov",
            "source": {"path": "x.csv"},
            "columns": columns,
            "publish": publish,
        }
    )


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    """A warehouse as the pipeline leaves it: the raw extract with PII, and the standardized table."""
    connection = duckdb.connect()
    rows = [
        (
            f"IR-{i:06d}",
            f"Client {i}",
            f"M{7000000 + i}",
            "1970-01-01",
            ["Hartford", "Bristol", "Canton"][i % 3],
            ["White", "Black", "Hispanic"][i % 3 if i % 7 else 1],
            f"2026-0{1 + i // 3 % 3}-15",
        )
        for i in range(90)
    ]
    for table in ("ingest__interp", "standardize__interp"):
        connection.execute(
            f"CREATE TABLE {table} (request_id VARCHAR, client_name VARCHAR, medicaid_id VARCHAR, "
            "date_of_birth VARCHAR, town VARCHAR, race VARCHAR, request_date DATE)"
        )
        connection.executemany(f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    return connection


def tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {row[0] for row in con.execute("SHOW TABLES").fetchall()}


def publish_sql(con: duckdb.DuckDBPyConnection, tmp_path: Path, sql: str, **publish: object):
    (tmp_path / "q.sql").write_text(sql, encoding="utf-8")
    dataset = make_dataset({"mode": "sql", "sql_file": "q.sql", **publish})
    return build_published_table(con, dataset, "standardize__interp", "protect__interp", tmp_path)


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        (
            "SELECT client_name AS town, medicaid_id AS race_ethnicity_group, 10 AS requests FROM ingest__interp",
            "table ingest__interp",
        ),
        ("SELECT * FROM read_csv('/etc/passwd')", "table function read_csv()"),
        (
            "SELECT town FROM {{ source }} WHERE town IN (SELECT town FROM ingest__interp)",
            "table ingest__interp",
        ),
        (
            "WITH s AS (SELECT * FROM {{ source }}) SELECT * FROM s, main.standardize__interp",
            "table main.standardize__interp",
        ),
        ("SELECT * FROM query_table('ingest__interp')", "table function query_table()"),
        ("SELECT * FROM (SUMMARIZE ingest__interp)", "table ingest__interp"),
    ],
)
def test_sql_reading_anything_but_the_source_is_refused_by_name(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, sql: str, named: str
) -> None:
    with pytest.raises(PublishConfigError, match=named.replace("(", r"\(").replace(")", r"\)")) as caught:
        publish_sql(con, tmp_path, sql)
    assert "sql/q.sql" in str(caught.value)
    assert "protect__interp" not in tables(con)


def test_check_sql_honours_cte_scopes_and_statement_kinds() -> None:
    shape = check_sql('WITH ingest__interp AS (SELECT town FROM "v") SELECT * FROM ingest__interp', ["v"])
    assert shape.tables == {"v": "v"}
    with pytest.raises(PublishConfigError, match="table ingest__interp"):  # the CTE is not visible out here
        check_sql("SELECT * FROM (WITH ingest__interp AS (SELECT 1) SELECT 1), ingest__interp", ["v"])
    with pytest.raises(PublishConfigError, match="exactly one SELECT.*2 statement"):
        check_sql("SELECT 1; SELECT 2", ["v"])
    with pytest.raises(PublishConfigError, match="exactly one SELECT.*DROP"):
        check_sql("DROP TABLE v", ["v"])
    assert check_sql("SELECT * FROM range(3)", []).tables == {}


def test_the_sandbox_alone_blocks_files_and_other_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Even if the parser check were skipped, the locked connection holds nothing else to read."""
    with pytest.raises(PublishConfigError, match="cannot read files"):
        run_confined(con, "SELECT * FROM read_csv('/etc/passwd')", SqlShape(tables={}), "out", "q.sql")
    with pytest.raises(PublishConfigError, match="ingest__interp"):
        run_confined(con, "SELECT * FROM ingest__interp", SqlShape(tables={}), "out", "q.sql")
    assert "out" not in tables(con)


def test_confined_sql_keeps_types_and_reads_only_named_columns(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    result = publish_sql(
        con, tmp_path, "SELECT request_date, town, count(*) AS requests FROM {{ source }} GROUP BY ALL"
    )
    assert result.row_count == 9
    types = dict(
        con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'protect__interp'"
        ).fetchall()
    )
    assert types == {"request_date": "DATE", "town": "VARCHAR", "requests": "BIGINT"}
    assert con.execute("SELECT sum(requests) FROM protect__interp").fetchone()[0] == 90
    # whole-row forms still work (every column is copied then)
    publish_sql(con, tmp_path, "SELECT s.* EXCLUDE (request_id) FROM {{ source }} s WHERE town = 'Canton'")
    assert con.execute("SELECT count(*) FROM protect__interp").fetchone()[0] == 30


def test_what_the_sql_returns_goes_through_the_pii_scan(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    sql = (
        "SELECT town, 'SSN 078-05-1120 on file' AS note, count(*) AS requests FROM {{ source }} GROUP BY ALL"
    )
    (tmp_path / "q.sql").write_text(sql, encoding="utf-8")
    dataset = make_dataset({"mode": "sql", "sql_file": "q.sql"})
    result = build_published_table(con, dataset, "standardize__interp", "protect__interp", tmp_path)
    scan = privacy_outcomes(con, dataset, result)[0]
    assert scan.blocks and "note" in scan.summary and "078" not in str(scan.metadata)


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        (
            "SELECT towns, count(*) AS requests FROM {{ source }} GROUP BY ALL",
            "column 'towns' does not exist",
        ),
        (
            "SELECT upper(town) AS t, count(*) AS n FROM {{ source }} GROUP BY lower(t)",
            "GROUP BY uses 't' inside an expression",
        ),
        ("SELECT client_name, count(*) AS n FROM {{ source }} GROUP BY ALL", "client_name are marked pii"),
        (
            "SELECT town, race FROM {{ source }} GROUP BY town",
            "column 'race' is selected but neither grouped",
        ),
    ],
)
def test_sql_errors_name_the_column_and_list_the_columns_that_exist(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, sql: str, message: str
) -> None:
    with pytest.raises(PublishConfigError) as caught:
        publish_sql(con, tmp_path, sql)
    text = str(caught.value)
    assert message in text and "Binder Error" not in text
    assert "request_date, request_id, town" in text or "race, request_date, request_id, town" in text


def test_aggregate_errors_name_the_missing_column(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    dataset = make_dataset({"mode": "aggregate", "aggregate": {"dimensions": ["town", "race_group"]}})
    with pytest.raises(
        PublishConfigError,
        match="dimension column 'race_group' does not exist; the columns "
        "that exist are: request_id, town, race, request_date",
    ):
        build_published_table(con, dataset, "standardize__interp", "protect__interp", tmp_path)


def test_reference_tables_are_declared_and_stage_tables_cannot_be(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    con.execute(
        "CREATE TABLE ref_town_county AS SELECT * FROM (VALUES ('Hartford', 'Hartford'), "
        "('Bristol', 'Hartford'), ('Canton', 'Hartford')) t(town, county)"
    )
    sql = (
        "SELECT county, count(*) AS requests FROM {{ source }} JOIN {{ ref_town_county }} USING (town) "
        "GROUP BY ALL"
    )
    publish_sql(con, tmp_path, sql, reference_tables=["ref_town_county"])
    assert con.execute("SELECT * FROM protect__interp").fetchall() == [("Hartford", 90)]
    with pytest.raises(ValueError, match="reference table 'ingest__interp' is a pipeline stage table"):
        make_dataset({"mode": "sql", "sql_file": "q.sql", "reference_tables": ["ingest__interp"]})


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CT_PIPELINES_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CT_PIPELINES_LANDING", str(tmp_path / "landing"))
    monkeypatch.setenv("CT_PIPELINES_SQL", str(tmp_path / "sql"))
    monkeypatch.delenv("CT_PORTAL_DOMAIN", raising=False)
    (tmp_path / "landing").mkdir()
    (tmp_path / "sql").mkdir()
    return tmp_path


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT client_name AS town, medicaid_id AS race_ethnicity_group, 10 AS requests "
        "FROM ingest__dss_interpreter_requests",
        "SELECT * FROM read_csv('/etc/passwd')",
    ],
)
def test_the_pipeline_publishes_nothing_from_sql_that_reaches_outside(home: Path, sql: str) -> None:
    """The bundled interpreter-requests dataset, run end to end with a hostile SQL file."""
    catalog = home / "catalog"
    catalog.mkdir()
    shutil.copy(SAMPLES_DIR / "catalog" / "dss_interpreter_requests.yaml", catalog)
    shutil.copy(SAMPLES_DIR / "landing" / "dss_interpreter_requests.csv", home / "landing")
    (home / "sql" / "interpreter_requests_by_town_and_race.sql").write_text(sql, encoding="utf-8")
    summaries, result = run_catalog(str(catalog), instance=dg.DagsterInstance.ephemeral())
    summary = summaries[0]
    assert not summary.ok and summary.rows_published is None
    assert "ingest__dss_interpreter_requests" in (summary.error or "") or "read_csv()" in (
        summary.error or ""
    )
    assert "Client" not in (summary.error or "")  # no value of the raw table is echoed
    materialized = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}  # type: ignore[union-attr]
    assert "portal" not in materialized and "published_table" not in materialized
    assert not any(p.suffix == ".json" for p in (home / "home" / "portal").rglob("*"))
