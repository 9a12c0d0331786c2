"""The published-table builder: PII columns never reach the output; SQL and aggregate modes are suppressed."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pytest

from ct_pipelines.catalog.models import Dataset
from ct_pipelines.protect.pii import PiiLeakError
from ct_pipelines.protect.published import (
    PublishConfigError,
    build_published_table,
    privacy_check_specs,
    privacy_outcomes,
    render_sql_file,
)

PROJECT_SQL = Path(__file__).resolve().parents[2] / "sql"
TOWNS = ["Andover", "Bethel", "Canton", "Darien", "Enfield"]
RACES = ["White", "Black", "Hispanic", "Asian", "AIAN", "NHPI"]


def make_dataset(publish: dict | None = None, pii: tuple[str, ...] = ("full_name", "ssn")) -> Dataset:
    columns = [
        {"source": name, "pii": name in pii}
        for name in ["record_id", "full_name", "ssn", "town", "race_ethnicity", "age", "notes"]
    ]
    return Dataset.model_validate(
        {
            "id": "sample_people",
            "title": "Sample people by town",
            "description": "Made-up people for tests of the privacy stage.",
            "agency": "Department of Public Health",
            "category": "Health and Human Services",
            "update_frequency": "Annually",
            "contact": "data.officer@ct.gov",
            "source": {"path": "people.csv"},
            "columns": columns,
            "publish": publish or {},
        }
    )


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    """Standardized people: small groups in small towns, and PII columns that must never be published."""
    connection = duckdb.connect()
    rng = np.random.default_rng(3)
    rows = []
    for town_index, town in enumerate(TOWNS):
        for race_index, race in enumerate(RACES):
            size = int(rng.poisson(40 / (1 + race_index) / (1 + town_index % 3)))
            for k in range(size):
                rows.append(
                    (
                        f"{town[:2]}{race_index}{k}",
                        f"Person {k}",
                        f"{100 + k:03d}-12-{1000 + k}",
                        town,
                        race,
                        20 + k % 60,
                        "ok",
                    )
                )
    connection.execute(
        "CREATE TABLE standardized (record_id VARCHAR, full_name VARCHAR, ssn VARCHAR, town VARCHAR, "
        "race_ethnicity VARCHAR, age BIGINT, notes VARCHAR)"
    )
    connection.executemany("INSERT INTO standardized VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    return connection


def columns_of(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [row[0] for row in con.execute(f'DESCRIBE "{table}"').fetchall()]


def test_rows_mode_publishes_every_row_without_pii_columns(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    result = build_published_table(con, make_dataset(), "standardized", "published", tmp_path)
    assert set(result.excluded_pii_columns) == {"full_name", "ssn"}
    assert "ssn" not in columns_of(con, "published") and "full_name" not in columns_of(con, "published")
    assert result.row_count == con.execute("SELECT count(*) FROM standardized").fetchone()[0]
    outcomes = privacy_outcomes(con, make_dataset(), result)
    assert [o.name for o in outcomes] == [s.name for s in privacy_check_specs(make_dataset())]
    assert outcomes[0].passed, outcomes[0].summary


def test_unflagged_ssn_column_is_caught_by_the_scan(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    dataset = make_dataset(pii=("full_name",))
    result = build_published_table(con, dataset, "standardized", "published", tmp_path)
    scan = privacy_outcomes(con, dataset, result)[0]
    assert not scan.passed and scan.blocks
    assert any(hit["column"] == "ssn" and hit["pattern"] == "ssn" for hit in scan.metadata["hits"])


def test_sql_cannot_reach_pii_columns(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    (tmp_path / "leak.sql").write_text("SELECT town, ssn FROM {{ source }}")
    dataset = make_dataset({"mode": "sql", "sql_file": "leak.sql"})
    with pytest.raises(PublishConfigError, match="ssn"):
        build_published_table(con, dataset, "standardized", "published", tmp_path)
    assert "published" not in [row[0] for row in con.execute("SHOW TABLES").fetchall()]


def test_renamed_pii_column_is_refused_by_the_final_assertion(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    (tmp_path / "derived.sql").write_text("SELECT town, record_id AS ssn_last4 FROM {{ source }}")
    dataset = make_dataset({"mode": "sql", "sql_file": "derived.sql"})
    with pytest.raises(PiiLeakError, match="ssn_last4"):
        build_published_table(con, dataset, "standardized", "published", tmp_path)


def test_bundled_sql_file_with_suppression(con: duckdb.DuckDBPyConnection) -> None:
    """Old YAML (plain dimension names in sql mode) still gets totals over both, with a deprecation warning."""
    with pytest.warns(FutureWarning, match="deprecated"):
        dataset = make_dataset(
            {
                "mode": "sql",
                "sql_file": "counts_by_town_and_race.sql",
                "dimensions": ["town", "race_ethnicity"],
                "suppression": {"count_column": "count", "threshold": 5},
            }
        )
    result = build_published_table(con, dataset, "standardized", "published", PROJECT_SQL)
    table = con.execute("SELECT * FROM published").df()
    assert list(table.columns) == ["town", "race_ethnicity", "count", "suppressed"]
    assert len(table) == (len(TOWNS) + 1) * (len(RACES) + 1)
    shown = table[~table["suppressed"]]
    assert not shown["count"].between(1, 5).any()
    assert table.loc[table["suppressed"], "count"].isna().all()
    truth = con.execute("SELECT town, race_ethnicity, count(*) FROM standardized GROUP BY ALL").fetchall()
    by_cell = {(t, r): n for t, r, n in truth}
    for row in shown.itertuples():
        if row.town != "Total" and row.race_ethnicity != "Total":
            assert row.count == by_cell.get((row.town, row.race_ethnicity), 0)
    audit = privacy_outcomes(con, dataset, result)[1]
    assert audit.passed and audit.metadata["primary_suppressed"] >= 1
    assert audit.metadata["complementary_suppressed"] >= 1


def test_aggregate_mode_with_margins_rates_and_collapse(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    publish = {
        "mode": "aggregate",
        "aggregate": {
            "dimensions": ["town", "race_ethnicity"],
            "measures": [{"name": "count"}, {"name": "mean_age", "agg": "avg", "column": "age"}],
        },
        "suppression": {"threshold": 5, "rate_columns": ["mean_age"]},
    }
    build_published_table(con, make_dataset(publish), "standardized", "published", tmp_path)
    table = con.execute("SELECT * FROM published").df()
    assert table.loc[table["suppressed"], "mean_age"].isna().all()
    grand = table[(table["town"] == "Total") & (table["race_ethnicity"] == "Total")]
    assert grand["count"].iloc[0] == con.execute("SELECT count(*) FROM standardized").fetchone()[0]
    assert grand["mean_age"].iloc[0] == pytest.approx(
        con.execute("SELECT avg(age) FROM standardized").fetchone()[0]
    )

    publish["suppression"]["collapse"] = {"race_ethnicity": ["Asian", "AIAN", "NHPI"]}
    publish["suppression"]["rate_columns"] = []
    build_published_table(con, make_dataset(publish), "standardized", "collapsed", tmp_path)
    categories = set(
        con.execute("SELECT DISTINCT race_ethnicity FROM collapsed").fetchnumpy()["race_ethnicity"]
    )
    assert categories == {"White", "Black", "Hispanic", "Another race/ethnicity", "Total"}


def test_sql_template_allows_only_known_names(tmp_path: Path) -> None:
    (tmp_path / "a.sql").write_text("SELECT *\nFROM {{ source }} JOIN {{ secrets }} USING (id)")
    with pytest.raises(PublishConfigError, match="line 2.*secrets"):
        render_sql_file(tmp_path, "a.sql", {"source": "x"})
    (tmp_path / "b.sql").write_text("SELECT * FROM {{source}};")
    assert render_sql_file(tmp_path, "b.sql", {"source": 'main.we"ird'}) == 'SELECT * FROM "main"."we""ird"'
    with pytest.raises(PublishConfigError, match="inside"):
        render_sql_file(tmp_path, "../a.sql", {"source": "x"})


def test_sql_file_must_be_a_single_select(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    (tmp_path / "evil.sql").write_text("SELECT town FROM {{ source }}; DROP TABLE standardized")
    with pytest.raises(PublishConfigError, match="one SELECT"):
        build_published_table(
            con, make_dataset({"mode": "sql", "sql_file": "evil.sql"}), "standardized", "p", tmp_path
        )
    assert con.execute("SELECT count(*) FROM standardized").fetchone()[0] > 0


def test_check_specs_come_from_config_alone() -> None:
    rows = privacy_check_specs(make_dataset())
    assert [(s.name, s.blocking) for s in rows] == [("pii_scan", True), ("small_counts_unsuppressed", False)]
    aggregate = make_dataset(
        {"mode": "aggregate", "aggregate": {"dimensions": ["town"]}, "suppression": {"threshold": 5}}
    )
    assert [s.name for s in privacy_check_specs(aggregate)] == [
        "pii_scan",
        "suppression_audit",
        "aggregate_counts_every_row",
    ]
    assert all(s.blocking for s in privacy_check_specs(aggregate))
    sql = make_dataset({"mode": "sql", "sql_file": "by_town.sql"})
    assert [s.name for s in privacy_check_specs(sql)] == [
        "pii_scan",
        "small_counts_unsuppressed",
        "aggregate_counts_every_row",
    ]


def test_a_column_left_out_for_its_name_says_how_to_keep_it(tmp_path, monkeypatch):
    """OCME's DateType says which date Date is; with Date marked pii, a helper saw date_type left out
    as personal with no reason. It still is (ssn_last4 must be), and the run says how to keep it."""
    import json

    from ct_pipelines.core import warehouse
    from ct_pipelines.core.settings import load_settings
    from ct_pipelines_tests.support.catalog_run import run_and_read_portal

    lines = "".join(f"18-{i:04d},2018-01-0{1 + i % 9},DateofDeath,Hartford\n" for i in range(12))
    head = (
        "id: deaths\ntitle: Accidental drug deaths\ndescription: One row per death, from the medical examiner.\n"
        "agency: Office of the Chief Medical Examiner\ncategory: Health and Human Services\n"
        "update_frequency: Monthly\ncontact: ocme@ct.gov\ningest: {path: deaths.csv}\nrow_identifier: id\n"
    )
    columns = "columns: [{source: ID}, {source: Date, type: date, pii: true}, {source: DateType%s}, {source: Town}]\n"
    published = {}
    for named in ("", ", field_name: recorded_as"):
        root = tmp_path / (named and "renamed" or "as_is")
        for folder in ("landing", "catalog"):
            (root / folder).mkdir(parents=True)
        (root / "landing" / "deaths.csv").write_text("ID,Date,DateType,Town\n" + lines, encoding="utf-8")
        (root / "catalog" / "deaths.yaml").write_text(head + columns % named, encoding="utf-8")
        summary, ((_, rows),) = run_and_read_portal(root, root / "catalog", monkeypatch)
        assert summary.ok and len(rows) == 12
        published[named] = sorted(rows[0])
        with warehouse.open_recorded(load_settings(), "deaths") as con:
            (facts,) = con.execute(
                f"SELECT facts FROM {warehouse.STAGE_RESULTS} WHERE stage = 'protect' ORDER BY recorded_at DESC"
            ).fetchone()
        assert json.loads(facts)["left_out_as_derived"] == ([] if named else ["date_type"])
    assert published == {"": ["id", "town"], ", field_name: recorded_as": ["id", "recorded_as", "town"]}


def test_a_sql_file_that_sums_is_not_published_while_a_summed_value_is_set_aside(tmp_path, monkeypatch):
    """The declarative aggregate stopped on a typo in a summed count, but a SQL file's sum() published the
    town short by that row with status ok. The SQL's sum(), avg() and count() arguments are its summed
    columns now; a SQL file that publishes rows, not sums, passes the check."""
    from ct_pipelines_tests.support.catalog_run import run_and_read_portal

    header = "Town,Race,Children,Beds\n"
    rows = [f"{town},{race},{20 + 3 * i + 7 * j},{30 + i + j}" for i, town in enumerate(TOWNS) for j, race in
            enumerate(RACES)]  # fmt: skip
    for folder in ("landing", "catalog"):
        (tmp_path / folder).mkdir()
    (tmp_path / "catalog" / "placements.yaml").write_text(
        "id: placements\ntitle: Children in placement by town\ndescription: Children in placement, by town.\n"
        "agency: Department of Children and Families\ncategory: Health and Human Services\n"
        "update_frequency: Monthly\ncontact: dcf@ct.gov\ningest: {path: placements.csv}\n"
        "columns: [{source: Town, required: true}, {source: Race}, {source: Children, type: integer}, "
        "{source: Beds, type: integer}]\nprotect: {mode: sql, sql_file: by_town.sql}\n",
        encoding="utf-8",
    )
    sql = tmp_path / "catalog" / "by_town.sql"
    sql.write_text(
        "SELECT town, sum(p.children) AS children FROM {{ source }} AS p GROUP BY ALL", encoding="utf-8"
    )
    extract = tmp_path / "landing" / "placements.csv"

    def deliver(typo_in: int, at: int = 4) -> tuple:
        fields = rows[at].split(",")
        fields[typo_in] = fields[typo_in][:-1] + "O"  # a letter O typed for a count's last digit
        lines = [*rows[:at], ",".join(fields), *rows[at + 1 :]]
        extract.write_text(header + "\n".join(lines) + "\n", encoding="utf-8")
        return run_and_read_portal(tmp_path, tmp_path / "catalog", monkeypatch)

    summary, published = deliver(typo_in=2)
    assert not summary.ok and summary.blocked_stage == "protect" and published == []
    (failure,) = [f for f in summary.failed_checks if "aggregate_counts_every_row" in f]
    assert "1 of 30 rows were set aside because their children broke a rule (type on children: 1)" in failure

    summary, ((_, portal),) = deliver(typo_in=3)  # the typo in a column the SQL does not sum
    (warning,) = [f for f in summary.failed_checks if "aggregate_counts_every_row" in f]
    assert "(WARN): 1 of 30 rows were set aside by validation (type on beds: 1)" in warning
    expected = {t: sum(int(r.split(",")[2]) for r in rows if r.startswith(t + ",")) for t in TOWNS}
    expected[rows[4].split(",")[0]] -= int(rows[4].split(",")[2])
    assert {r["town"]: int(r["children"]) for r in portal} == expected

    sql.write_text("SELECT town, children FROM {{ source }}", encoding="utf-8")  # rows, the same columns
    summary, _ = deliver(typo_in=2, at=7)
    assert summary.ok and not [f for f in summary.failed_checks if "aggregate_counts_every_row" in f]


def test_a_sql_file_that_sums_a_column_the_source_suppressed_is_refused(tmp_path, monkeypatch):
    """SDE writes '*' for a count under 6. A SQL file's sum() of that column left the hidden counts out and
    published the statewide figure as if complete; the declarative aggregate already refused it."""
    from ct_pipelines_tests.support.catalog_run import run_and_read_portal

    for folder in ("landing", "catalog"):
        (tmp_path / folder).mkdir()
    lines = ["District,Race,Students"] + [
        f"{town} School District,{race},{'*' if (i + j) % 4 == 0 else 12 + i + j}"
        for i, town in enumerate(TOWNS)
        for j, race in enumerate(RACES)
    ]
    (tmp_path / "landing" / "enrollment.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "catalog" / "enrollment.yaml").write_text(
        "id: enrollment\ntitle: Enrollment by district and race\ndescription: Students enrolled, by district.\n"
        "agency: Department of Education\ncategory: Education\nupdate_frequency: Annually\n"
        "contact: sde@ct.gov\ningest: {path: enrollment.csv}\ncolumns: [{source: District}, {source: Race}, "
        "{source: Students, type: integer, suppressed_values: ['*']}]\n"
        "protect: {mode: sql, sql_file: by_race.sql}\n",
        encoding="utf-8",
    )
    (tmp_path / "catalog" / "by_race.sql").write_text(
        "SELECT race, sum(students) AS students FROM {{ source }} GROUP BY ALL", encoding="utf-8"
    )
    summary, published = run_and_read_portal(tmp_path, tmp_path / "catalog", monkeypatch)
    hidden = sum(line.endswith(",*") for line in lines)
    assert not summary.ok and published == [] and hidden == 8
    assert (
        f"sql/by_race.sql sums or counts 'students', and the source suppressed {hidden} of its values"
        in summary.error
    )
    assert "protect.mode: rows" in summary.error
