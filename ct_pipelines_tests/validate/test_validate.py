"""The validate stage on extracts made in the test: planted defects are found, counted and set aside exactly."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest

from ct_pipelines.catalog.blocks.validate import ROW_RULE_GROUPS
from ct_pipelines.catalog.models import Dataset
from ct_pipelines.core.outcomes import Severity
from ct_pipelines.validate.custom_checks import CT_TOWNS
from ct_pipelines.validate.rules import DatasetRuleError
from ct_pipelines.validate.validate import quality_check_specs, validate_dataset

NOW = datetime(2024, 6, 30, 12, 0, 0)
TOWNS = ["Hartford", "New Haven", "Stamford", "Windsor Locks", "Bridgeport"]


def make_dataset(**quality: object) -> Dataset:
    return Dataset.model_validate(
        {
            "id": "clients",
            "title": "Clients served",
            "description": "People served by a state program, one row per person.",
            "agency": "Department of Testing",
            "category": "Health and Human Services",
            "update_frequency": "Monthly",
            "contact": "data.officer@ct.gov",
            "source": {"path": "clients.csv"},
            "row_identifier": "client_id",
            "columns": [
                {"source": "Client ID", "type": "integer", "required": True, "unique": True},
                {"source": "Name", "pii": True, "required": True},
                {"source": "Age", "type": "integer", "min": 0, "max": 120},
                {"source": "Visit Date", "type": "date", "not_in_future": True},
                {"source": "Sex", "allowed_values": ["F", "M", "U"]},
                {"source": "Town", "checks": ["ct_town"], "severity": "WARN"},
                {"source": "Amount", "type": "number"},
                {"source": "Zip", "pattern": r"06\d{3}"},
            ],
            "quality": quality,
        }
    )


def clean_rows(n: int = 60) -> list[dict[str, str | None]]:
    """Valid rows in the formats agencies send: mixed date styles, thousands separators."""
    rows = []
    for i in range(1, n + 1):
        visit = f"2023-{(i % 12) + 1:02d}-{(i % 27) + 1:02d}" if i % 2 else f"{(i % 12) + 1:02d}/15/2022"
        rows.append(
            {
                "client_id": str(1000 + i),
                "name": f"Person {i}",
                "age": str(i % 100),
                "visit_date": visit,
                "sex": "FMU"[i % 3],
                "town": TOWNS[i % len(TOWNS)],
                "amount": f"{i * 1000.5:,.2f}",
                "zip": f"06{i:03d}",
            }
        )
    return rows


def plant_defects(rows: list[dict[str, str | None]]) -> dict[str, set[int]]:
    """Break specific rows (1-based _row numbers) and return which rows break which rule."""
    planted: dict[str, set[int]] = {}

    def put(rule: str, row: int, column: str, value: str | None) -> None:
        rows[row - 1][column] = value
        planted.setdefault(rule, set()).add(row)

    for row in (3, 4, 5):
        put("required", row, "client_id", "" if row != 5 else None)
    for row, original in ((10, 2), (11, 6)):  # later rows repeat an id already used, with other values:
        put("unique", row, "client_id", rows[original - 1]["client_id"])
        planted["unique"].add(
            original
        )  # the key's rows are all set aside (the file does not say which is right)
    for row in (20, 21, 22, 23):
        put("range", row, "age", str(121 + row))
    put("type", 30, "visit_date", "13/45/2020")
    put("not_in_future", 31, "visit_date", "2031-01-01")
    put("allowed_values", 40, "sex", "X")
    put("allowed_values", 41, "sex", "female")
    return planted


def load_raw(con: duckdb.DuckDBPyConnection, rows: list[dict[str, str | None]]) -> None:
    columns = list(rows[0])
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute(
        'CREATE OR REPLACE TABLE raw."clients" ('
        + ", ".join(f"{c} VARCHAR" for c in columns)
        + ", extra_note VARCHAR, _row BIGINT, _line BIGINT)"
    )
    con.executemany(
        f'INSERT INTO raw."clients" VALUES ({", ".join("?" for _ in range(len(columns) + 3))})',
        [[r[c] for c in columns] + ["note", i, i + 1] for i, r in enumerate(rows, start=1)],
    )


def run(con: duckdb.DuckDBPyConnection, dataset: Dataset, tmp_path: Path, run_id: str = "run-1"):
    return validate_dataset(
        con,
        dataset,
        'raw."clients"',
        'valid."clients"',
        'quarantine."clients"',
        run_id=run_id,
        reports_dir=tmp_path / "reports",
        now=NOW,
    )


@pytest.fixture
def con():
    connection = duckdb.connect(":memory:")
    yield connection
    connection.close()


def by_name(result) -> dict:
    return {o.name: o for o in result.outcomes}


def failing_rows(outcome, column: str) -> int:
    return next(r["failing_rows"] for r in outcome.metadata["rules"] if r["column"] == column)


def test_planted_defects_are_counted_quarantined_and_conserved(con, tmp_path):
    rows = clean_rows()
    planted = plant_defects(rows)
    load_raw(con, rows)

    result = run(con, make_dataset(), tmp_path)
    outcomes = by_name(result)

    assert failing_rows(outcomes["required"], "client_id") == 3
    assert failing_rows(outcomes["unique"], "client_id") == 4
    assert failing_rows(outcomes["ranges"], "age") == 4
    assert failing_rows(outcomes["types"], "visit_date") == 1
    assert failing_rows(outcomes["not_in_future"], "visit_date") == 1
    assert failing_rows(outcomes["allowed_values"], "sex") == 2
    # Rows breaking ERROR rules are set aside; the check reports it as a warning so the good rows go on,
    # and the quarantine_share check is what stops the dataset when too many were set aside.
    for name in ("required", "unique", "ranges", "types", "not_in_future", "allowed_values"):
        assert not outcomes[name].passed and outcomes[name].severity == Severity.WARN, name
    for name in ("patterns", "custom_checks", "conservation"):
        assert outcomes[name].passed, (name, outcomes[name].summary)
    assert outcomes["ranges"].summary == (
        "4 rows have an age outside 0 to 120; they were set aside and the other rows go on "
        "(`ct-pipelines validate quarantine clients` lists them)."
    )
    assert outcomes["types"].metadata["samples"][0]["_line"] == 31  # _line = _row + 1 in this table

    quarantined = con.execute(
        'SELECT rule_group, _row FROM quarantine."clients" WHERE run_id = ? ORDER BY ALL', ["run-1"]
    ).fetchall()
    rule_to_group = {"range": "ranges", "type": "types"}
    expected = sorted((rule_to_group.get(rule, rule), row) for rule, rs in planted.items() for row in rs)
    assert sorted(quarantined) == expected
    bad_rows = {row for _, row in expected}
    assert result.rows_quarantined == len(bad_rows)
    assert result.rows_valid == len(rows) - len(bad_rows)

    valid_rows = [r[0] for r in con.execute('SELECT _row FROM valid."clients" ORDER BY _row').fetchall()]
    assert valid_rows == [i for i in range(1, len(rows) + 1) if i not in bad_rows]
    types = dict(
        con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'clients' "
            "AND schema_name = 'valid'"
        ).fetchall()
    )
    assert types["client_id"] == "BIGINT" and types["age"] == "BIGINT"
    assert types["visit_date"] == "DATE" and types["amount"] == "DOUBLE"
    assert types["extra_note"] == "VARCHAR" and types["_row"] == "BIGINT"
    assert "_line" not in types  # source lines stay with the rows set aside (quarantine's source_line)
    visit, amount = con.execute('SELECT visit_date, amount FROM valid."clients" WHERE _row = 8').fetchone()
    assert visit == date(2022, 9, 15) and amount == pytest.approx(8004.0)  # a US date and 8,004.00

    assert outcomes["conservation"].metadata == {
        "rows_ingested": len(rows),
        "rows_valid": len(rows) - len(bad_rows),
        "rows_quarantined": len(bad_rows),
    }
    share = outcomes["quarantine_share"]
    assert share.passed is False and share.severity == Severity.ERROR  # 13 of 60 rows is far above 5%
    assert "ct-pipelines validate quarantine clients" in share.summary
    assert result.blocked
    json.dumps([o.metadata for o in result.outcomes])  # metadata must be JSON-serialisable


def test_fixed_extract_passes_every_check(con, tmp_path):
    load_raw(con, clean_rows())
    result = run(con, make_dataset(), tmp_path)
    failed = [(o.name, o.summary) for o in result.outcomes if not o.passed]
    assert failed == []
    assert {o.name for o in result.outcomes} == {s.name for s in quality_check_specs(make_dataset())}
    assert result.rows_valid == 60 and result.rows_quarantined == 0
    assert not result.blocked


def test_warn_rules_report_but_keep_rows(con, tmp_path):
    rows = clean_rows()
    rows[6]["town"] = "Springfield"  # not a CT town; the column's severity is WARN
    rows[7]["age"] = "150"
    load_raw(con, rows)
    result = run(con, make_dataset(severities={"range": "WARN"}), tmp_path)
    outcomes = by_name(result)
    assert not outcomes["custom_checks"].passed and outcomes["custom_checks"].severity == Severity.WARN
    assert not outcomes["ranges"].passed and outcomes["ranges"].severity == Severity.WARN
    assert "kept" in outcomes["ranges"].summary
    assert result.rows_quarantined == 0 and result.rows_valid == 60
    assert not result.blocked


def test_pii_values_never_reach_metadata(con, tmp_path):
    rows = clean_rows()
    secret = "Zyxwv Secret-Name"
    rows[4]["name"] = "   "  # required and pii: fails, and its value must be masked
    rows[5]["name"] = secret
    dataset = make_dataset(
        expectations=[
            {
                "expectation": "expect_column_values_to_not_match_regex",
                "kwargs": {"column": "name", "regex": "Secret"},
            }
        ]
    )
    load_raw(con, rows)
    result = run(con, dataset, tmp_path)
    outcomes = by_name(result)
    assert not outcomes["required"].passed
    gx_outcome = outcomes["gx_column_values_to_not_match_regex_name"]
    assert gx_outcome.metadata["unexpected_count"] == 1
    dumped = json.dumps([o.metadata for o in result.outcomes]) + " ".join(o.summary for o in result.outcomes)
    assert secret not in dumped and "Secret" not in dumped.replace('"regex": "Secret"', "")
    values = con.execute(
        "SELECT DISTINCT value FROM quarantine.\"clients\" WHERE column_name = 'name'"
    ).fetchall()
    assert values == [("***",)]
    docs = result.data_docs_index.parent
    assert not [p for p in docs.rglob("*.html") if secret in p.read_text(encoding="utf-8")]


def test_quarantine_keeps_history_and_rerun_replaces_its_own_rows(con, tmp_path):
    rows = clean_rows()
    rows[0]["age"] = "999"
    load_raw(con, rows)
    dataset = make_dataset()
    run(con, dataset, tmp_path, "run-1")
    run(con, dataset, tmp_path, "run-1")  # a retry must not double the quarantine
    rows[1]["age"] = "998"
    load_raw(con, rows)
    run(con, dataset, tmp_path, "run-2")
    per_run = dict(con.execute('SELECT run_id, count(*) FROM quarantine."clients" GROUP BY 1').fetchall())
    assert per_run == {"run-1": 1, "run-2": 2}


def test_row_count_drop_and_null_share_jump_against_previous_run(con, tmp_path):
    dataset = make_dataset()
    load_raw(con, clean_rows(60))
    run(con, dataset, tmp_path, "run-1")
    smaller = clean_rows(20)
    for row in smaller:
        row["zip"] = None
    load_raw(con, smaller)
    outcomes = by_name(run(con, dataset, tmp_path, "run-2"))
    assert not outcomes["row_count_change"].passed
    assert outcomes["row_count_change"].metadata["previous_rows"] == 60
    assert outcomes["row_count_change"].summary == (
        "20 rows this run against 60 last run: a drop of 67%, more than the 50% allowed "
        "(validate.max_row_count_drop); check that the whole extract arrived, or raise the limit if the data "
        "really shrank."
    )
    assert outcomes["row_count_change"].severity == Severity.ERROR
    jumps = outcomes["null_share_change"].metadata["columns"]
    assert [j["column"] for j in jumps] == ["zip"] and jumps[0]["share"] == 1.0
    assert outcomes["null_share_change"].severity == Severity.WARN
    # the same short extract again: still refused (a refused run once became the base, and this passed)
    again = by_name(run(con, dataset, tmp_path, "run-3"))["row_count_change"]
    assert not again.passed and again.metadata["previous_rows"] == 60
    # the owner says the drop is real: the run passes and becomes the base
    accepted = dataset.model_copy(
        update={"validate": dataset.validate.model_copy(update={"max_row_count_drop": 0.7})}
    )
    assert by_name(run(con, accepted, tmp_path, "run-4"))["row_count_change"].passed
    after = by_name(run(con, dataset, tmp_path, "run-5"))["row_count_change"]
    assert after.passed and after.metadata["previous_rows"] == 20


def test_check_specs_come_from_config_alone_and_follow_severities():
    dataset = make_dataset(
        severities={"conservation": "ERROR", "row_count": "WARN"},
        expectations=[
            {
                "expectation": "expect_column_values_to_be_between",
                "kwargs": {"column": "age", "min_value": 0},
            },
            {
                "expectation": "expect_column_values_to_be_between",
                "kwargs": {"column": "age", "max_value": 9},
            },
            {
                "expectation": "expect_table_row_count_to_be_between",
                "kwargs": {"min_value": 1},
                "severity": "ERROR",
            },
        ],
    )
    specs = {s.name: s for s in quality_check_specs(dataset)}
    assert list(specs)[: len(ROW_RULE_GROUPS)] == list(ROW_RULE_GROUPS)
    assert {
        "gx_column_values_to_be_between_age",
        "gx_column_values_to_be_between_age_2",
        "gx_table_row_count_to_be_between",
    } <= set(specs)
    assert specs["gx_table_row_count_to_be_between"].blocking
    assert not specs["gx_column_values_to_be_between_age"].blocking
    assert not specs["row_count_change"].blocking and specs["conservation"].blocking
    assert not specs["custom_checks"].blocking  # the only custom check (town) is WARN
    assert specs["patterns"].blocking  # the zip pattern is ERROR


def test_bad_rules_are_reported_with_the_fix():
    dataset = make_dataset()
    dataset.columns[4].checks = ["ct_towns"]
    with pytest.raises(DatasetRuleError, match="unknown custom check 'ct_towns'.*ct_town"):
        quality_check_specs(dataset)
    dataset = make_dataset()
    dataset.columns[1].min = 3
    with pytest.raises(DatasetRuleError, match="'name'.*min/max"):
        quality_check_specs(dataset)


def test_missing_declared_column_names_the_fix(con, tmp_path):
    load_raw(con, clean_rows(3))
    con.execute('ALTER TABLE raw."clients" DROP COLUMN zip')
    with pytest.raises(DatasetRuleError, match="lacks column.*zip"):
        run(con, make_dataset(), tmp_path)


def test_ct_town_list_is_complete():
    assert len(set(CT_TOWNS)) == 169


def test_cli_lists_checks_validates_and_shows_quarantine(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from ct_pipelines.validate.cli import quality

    dataset_file = tmp_path / "clients.yaml"
    dataset_file.write_text(json.dumps(make_dataset().model_dump(mode="json", exclude_none=True)))
    runner = CliRunner()
    listed = runner.invoke(quality, ["checks", str(dataset_file)])
    assert listed.exit_code == 0 and "conservation" in listed.output and "blocks" in listed.output

    # The dataset's own file in the warehouse folder, found by the commands without --warehouse.
    monkeypatch.setenv("CT_PIPELINES_WAREHOUSE", str(tmp_path / "warehouse"))
    (tmp_path / "warehouse").mkdir()
    warehouse = tmp_path / "warehouse" / "clients.duckdb"
    rows = clean_rows()
    rows[2]["age"] = "500"
    rows[3]["name"] = ""
    connection = duckdb.connect(str(warehouse))
    load_raw(connection, rows)
    connection.execute('CREATE TABLE ingest__clients AS SELECT * FROM raw."clients"')  # the pipeline's naming
    connection.close()
    monkeypatch.setenv("CT_PIPELINES_REPORTS", str(tmp_path / "reports"))
    with duckdb.connect(str(warehouse)) as connection:
        result = validate_dataset(
            connection,
            make_dataset(),
            "ingest__clients",
            "validate__clients",
            "quarantine__clients",
            run_id="r1",
            reports_dir=tmp_path / "reports",
        )
    # 2 of 60 rows set aside is within the 5% limit: the good rows go on.
    assert not result.blocked and result.rows_quarantined == 2
    summaries = {o.name: o.summary for o in result.outcomes}
    assert (
        "1 row has an age outside 0 to 120; it was set aside and the other rows go on" in summaries["ranges"]
    )
    assert "2 of 60 rows (3.3%) were set aside; the other 58 go on." in summaries["quarantine_share"]
    shown = runner.invoke(quality, ["quarantine", "clients", "--warehouse", str(warehouse)])
    assert shown.exit_code == 0, shown.output
    assert "line 4 (row 3): age range: '500'" in shown.output
    assert "line 5 (row 4): name required" in shown.output
    moved = runner.invoke(quality, ["validate", str(dataset_file)])
    assert moved.exit_code == 2 and "ct-pipelines run --dataset DATASET_ID --until validate" in moved.output


CT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "ct"


def test_real_dcf_extract_types_and_conservation(con, tmp_path):
    """A real agency file: its US dates all parse and integer failures match an independent count."""
    import csv

    source = CT_DATA / "ct_dcf_children_in_placement_by_race_ethnicity_tnyk-6fv7.csv"
    if not source.exists():
        pytest.skip("shared CT extracts are not present")
    with source.open(newline="", encoding="utf-8-sig") as handle:
        records = list(csv.DictReader(handle))
    dataset = Dataset.model_validate(
        {
            "id": "dcf_placements",
            "title": "Children in placement",
            "description": "DCF point-in-time counts of children in placement.",
            "agency": "Department of Children and Families",
            "category": "Health and Human Services",
            "update_frequency": "Annually",
            "contact": "data.officer@ct.gov",
            "source": {"path": source.name},
            "columns": [
                {"source": "Data_as_of", "type": "date", "required": True, "not_in_future": True},
                {"source": "DCF_Office", "pattern": "[A-Za-z .-]+"},
                {"source": "TOTAL_CIP", "type": "integer", "min": 0},
            ],
        }
    )
    con.execute("CREATE SCHEMA raw")
    con.execute(
        "CREATE TABLE raw.dcf AS SELECT Data_as_of AS data_as_of, DCF_Office AS dcf_office, "
        "TOTAL_CIP AS total_cip, Demographic AS demographic, "
        f"row_number() OVER () AS _row, NULL::BIGINT AS _line FROM read_csv('{source}', all_varchar = true)"
    )
    result = validate_dataset(
        con, dataset, "raw.dcf", "valid.dcf", "quarantine.dcf", run_id="r1", reports_dir=tmp_path, now=NOW
    )
    outcomes = by_name(result)
    assert result.rows_ingested == len(records)
    assert failing_rows(outcomes["types"], "data_as_of") == 0
    not_integer = sum(not r["TOTAL_CIP"].strip().isdigit() for r in records if r["TOTAL_CIP"].strip())
    assert failing_rows(outcomes["types"], "total_cip") == not_integer
    assert outcomes["conservation"].passed
    assert con.execute("SELECT min(data_as_of) FROM valid.dcf").fetchone()[0].year >= 2000


def _everything(con: duckdb.DuckDBPyConnection, result) -> tuple:
    outcomes = [(o.name, o.passed, o.summary, json.dumps(o.metadata, default=str)) for o in result.outcomes]
    quarantine = con.execute(
        'SELECT * EXCLUDE (quarantined_at) FROM quarantine."clients" ORDER BY ALL'
    ).fetchall()
    valid = con.execute('SELECT * FROM valid."clients" ORDER BY _row').fetchall()
    columns = con.execute('DESCRIBE valid."clients"').fetchall()
    history = con.execute("SELECT null_shares FROM quality.history").fetchall()
    return outcomes, quarantine, valid, columns, history, result.null_tokens, result.suppressed


def test_an_extract_scanned_in_slices_gives_what_one_scan_gives(tmp_path, monkeypatch):
    """Wide extracts are typed in slices of columns put side by side again: nothing may change."""
    from ct_pipelines.validate import scan

    rows = clean_rows()
    plant_defects(rows)
    rows[8]["age"] = "N/A"  # a null token
    rows[9]["amount"] = "*"  # suppressed at the source
    dataset = make_dataset(null_values=["N/A"], suppressed_values=["*"])
    results = []
    for per_scan in (scan.COLUMNS_PER_SCAN, 3):
        monkeypatch.setattr(scan, "COLUMNS_PER_SCAN", per_scan)
        with duckdb.connect(":memory:") as connection:
            load_raw(connection, rows)
            results.append(_everything(connection, run(connection, dataset, tmp_path)))
    assert results[0] == results[1]
    assert results[0][1] and results[0][5]["age"] == 1 and results[0][6]["amount"] == 1


def test_the_quarantine_listing_names_each_rows_identifier(tmp_path, monkeypatch):
    """A helper saw "line 5108 (row 5105): cod required" and had to find which case that was; the
    listing now names the row's published identifier (never a pii one)."""
    from click.testing import CliRunner

    from ct_pipelines.cli import main
    from ct_pipelines_tests.support.catalog_run import run_and_read_portal

    for folder in ("landing", "catalog"):
        (tmp_path / folder).mkdir()
    lines = [f"18-{i:04d},{'' if i == 7 else 'Acute fentanyl intoxication'},Hartford" for i in range(40)]
    (tmp_path / "landing" / "deaths.csv").write_text(
        "ID,COD,Town\n" + "\n".join(lines) + "\n", encoding="utf-8"
    )
    (tmp_path / "catalog" / "deaths.yaml").write_text(
        "id: deaths\ntitle: Accidental drug deaths\ndescription: One row per death, from the medical examiner.\n"
        "agency: Office of the Chief Medical Examiner\ncategory: Health and Human Services\n"
        "update_frequency: Monthly\ncontact: ocme@ct.gov\ningest: {path: deaths.csv}\nrow_identifier: id\n"
        "columns: [{source: ID}, {source: COD, required: true}, {source: Town}]\n",
        encoding="utf-8",
    )
    summary, _ = run_and_read_portal(tmp_path, tmp_path / "catalog", monkeypatch)
    assert summary.rows_set_aside == 1
    shown = CliRunner().invoke(main, ["validate", "quarantine", "deaths"])
    assert shown.exit_code == 0, shown.output
    assert "line 9 (row 8), id '18-0007': cod required: None" in shown.output


def test_footnotes_a_later_delivery_adds_at_the_end_are_set_aside_not_published(tmp_path, monkeypatch):
    """A helper's second file added "Note: FY 2023-24 figures are preliminary" and "Prepared by the Office
    of Research" below the data; the first file's leave_out rules did not name them, and both reached the
    portal as rows with only the town filled. A short first cell with the rest empty (a town with no
    figures yet) is data, and is published."""
    from ct_pipelines_tests.support.catalog_run import run_and_read_portal

    for folder in ("landing", "catalog"):
        (tmp_path / folder).mkdir()
    towns = [f"Town {k:02d}" for k in range(45)]
    lines = ["Town,Clients,Visits"] + [f"{t},{10 + k},{30 + 2 * k}" for k, t in enumerate(towns)]
    lines += ["Union,,", "Note: FY 2023-24 figures are preliminary and may change.,,"]
    lines += ["Prepared by the Office of Research and Evaluation,,"]
    (tmp_path / "landing" / "programs.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "catalog" / "programs.yaml").write_text(
        "id: programs\ntitle: Program clients by town\ndescription: Clients and visits, by town.\n"
        "agency: Department of Social Services\ncategory: Health and Human Services\n"
        "update_frequency: Annually\ncontact: dss@ct.gov\ningest: {path: programs.csv}\n"
        "columns: [{source: Town}, {source: Clients, type: integer}, {source: Visits, type: integer}]\n",
        encoding="utf-8",
    )
    summary, ((_, rows),) = run_and_read_portal(tmp_path, tmp_path / "catalog", monkeypatch)
    assert (summary.rows_in, summary.rows_set_aside, summary.rows_published) == (48, 2, 46)
    assert sorted(r["town"] for r in rows) == sorted([*towns, "Union"])
    (warning,) = [f for f in summary.failed_checks if "look like a note" in f]
    assert "2 rows look like a note, not data (near the end of the file, only 'town' filled" in warning
