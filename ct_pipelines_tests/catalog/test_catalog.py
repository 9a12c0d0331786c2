"""The dataset catalog: samples load, broken files are reported precisely, the rest still load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ct_pipelines.catalog.loader import load_catalog
from ct_pipelines.catalog.schema import SCHEMA_PATH, schema_text
from ct_pipelines.cli import main
from ct_pipelines.core.settings import SAMPLE_CATALOG_DIR
from ct_pipelines.starter.profile import CODE_TYPE
from ct_pipelines_tests.starter.test_starter import fill_todos

GOOD = """\
id: good_one
title: Good one
description: A dataset that is fine.
agency: Department of Testing
category: Government
update_frequency: Weekly
contact: tester@ct.gov
source:
  path: good.csv
columns:
  - source: Record ID
"""


def test_bundled_samples_are_valid():
    catalog = load_catalog(SAMPLE_CATALOG_DIR)
    assert not catalog.errors
    assert len(catalog.datasets) >= 3
    assert any(d.pii_fields for d in catalog.datasets)


def test_a_broken_file_names_file_line_field_and_allowed_values_and_others_still_load(tmp_path: Path):
    (tmp_path / "good.yaml").write_text(GOOD, encoding="utf-8")
    broken = (
        GOOD.replace("id: good_one", "id: broken")
        .replace("category: Government", "category: Health")
        .replace("  - source: Record ID", "  - source: Record ID\n    type: texxt")
    )
    (tmp_path / "broken.yaml").write_text(broken, encoding="utf-8")
    catalog = load_catalog(tmp_path)
    assert catalog.ids == ["good_one"]
    by_field = {e.field: e for e in catalog.errors}
    assert by_field["category"].line == 5 and by_field["category"].path.name == "broken.yaml"
    assert "Health and Human Services" in by_field["category"].message
    assert by_field["columns.0.type"].line == 12 and "integer" in by_field["columns.0.type"].message


def test_invalid_yaml_and_duplicate_ids_are_reported(tmp_path: Path):
    (tmp_path / "a.yaml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "c.yaml").write_text("id: [unclosed\n", encoding="utf-8")
    catalog = load_catalog(tmp_path)
    assert catalog.ids == ["good_one"]
    messages = " ".join(str(e) for e in catalog.errors)
    assert "already used" in messages and "not valid YAML" in messages


def test_unknown_field_and_bad_row_identifier(tmp_path: Path):
    text = GOOD + "row_identifier: nope\nupdate_frequncy: Daily\n"
    (tmp_path / "x.yaml").write_text(text, encoding="utf-8")
    errors = {e.field: e for e in load_catalog(tmp_path).errors}
    assert errors["update_frequncy"].line == 13 and "unknown field" in errors["update_frequncy"].message


@pytest.mark.parametrize(
    ("extra", "refusal"),
    [
        (  # the starter's own advice, followed on OCME: ID is unique, and personal
            "    pii: true\nrow_identifier: record_id\n",
            "x.yaml:13: row_identifier: 'record_id' is marked pii: true, and personal columns are never published",
        ),
        (
            "  - source: Town\nrow_identifier: record_id\nprotect:\n  mode: aggregate\n  aggregate:\n"
            "    dimensions: [town]\n    measures: [{name: people}]\n",
            "x.yaml:13: row_identifier: 'record_id' does not identify a row of the aggregate, which has one "
            "row per combination of town",
        ),
        (
            "  - source: Town\nrow_identifier: town\nprotect:\n  mode: aggregate\n  aggregate:\n"
            "    dimensions: [town]\n    measures: [{name: people}]\n",
            None,
        ),  # fmt: skip
    ],
)
def test_catalog_validate_refuses_a_row_identifier_that_is_never_published(tmp_path: Path, extra, refusal):
    """These once passed validation and failed at publish, after four stages had run."""
    (tmp_path / "x.yaml").write_text(GOOD + extra, encoding="utf-8")
    result = CliRunner().invoke(main, ["catalog", "validate", str(tmp_path)])
    if refusal is None:
        assert result.exit_code == 0, result.output
    else:
        assert result.exit_code != 0 and refusal in " ".join(result.output.split())


def test_a_unique_column_of_an_unpivoted_table_is_refused_at_the_columns_line(tmp_path: Path):
    """SDE's district code is unique in the wide file, not after unpivoting: the run once set aside every
    row but the first of each district (1,219 of 1,421) before saying why."""
    wide = (
        "ingest:\n  path: sde.csv\n  unpivot: {columns: [Asian, White], name: race, value: count}\n"
        "columns:\n  - {source: District Code, unique: true}\n  - {source: race}\n  - {source: count}\n"
    )
    (tmp_path / "x.yaml").write_text(GOOD.split("source:\n")[0] + wide, encoding="utf-8")
    result = CliRunner().invoke(main, ["catalog", "validate", str(tmp_path)])
    assert result.exit_code != 0
    assert (
        "x.yaml:12: columns: District Code are marked unique, but ingest.unpivot repeats each row once per "
        in (" ".join(result.output.split()))
    )


def test_a_column_named_by_its_header_in_standardize_or_an_aggregate_is_refused_with_the_field_name(
    tmp_path: Path,
):
    """OCME's column is 'Race' in the file and 'race' as a field: validate passed 'Race' and the run then
    failed at standardize."""
    extra = "  - source: Race\nstandardize:\n  columns:\n  - {column: Race, field: race_ethnicity}\n"
    (tmp_path / "x.yaml").write_text(GOOD + extra, encoding="utf-8")
    result = CliRunner().invoke(main, ["catalog", "validate", str(tmp_path)])
    assert result.exit_code != 0
    assert (
        "x.yaml:14: standardize: column 'Race' is the extract's header, not a field name; write the field "
        "name, 'race'" in " ".join(result.output.split())
    )
    fixed = extra.replace("column: Race", "column: race")
    (tmp_path / "x.yaml").write_text(GOOD + fixed, encoding="utf-8")
    assert CliRunner().invoke(main, ["catalog", "validate", str(tmp_path)]).exit_code == 0
    # DCF's headers as an aggregate's dimension and measure column
    aggregate = (
        "  - {source: DCF_Region}\n  - {source: TOTAL_CIP, type: integer}\nprotect:\n  mode: aggregate\n"
        "  aggregate:\n    dimensions: [DCF_Region]\n    measures: [{name: children, agg: sum, column: TOTAL_CIP}]\n"
    )
    (tmp_path / "x.yaml").write_text(GOOD + aggregate, encoding="utf-8")
    result = CliRunner().invoke(main, ["catalog", "validate", str(tmp_path)])
    assert (
        "protect: column 'DCF_Region' is the extract's header, not a field name; write the field name, 'dcf_region'"
        in " ".join(result.output.split())
    )
    (tmp_path / "x.yaml").write_text(
        GOOD + aggregate.replace("[DCF_Region]", "[dcf_region]"), encoding="utf-8"
    )
    result = CliRunner().invoke(main, ["catalog", "validate", str(tmp_path)])
    assert (
        "protect: column 'TOTAL_CIP' is the extract's header, not a field name; write the field name, 'total_cip'"
        in " ".join(result.output.split())
    )


def test_an_aggregate_of_a_column_the_source_may_hide_gets_a_note_before_the_first_run(tmp_path: Path):
    """The run refuses such a sum when the file holds a hidden value; validate now says so up front."""
    extra = (
        "  - {source: District}\n  - {source: Students, type: integer, suppressed_values: ['*']}\n"
        "protect:\n  mode: aggregate\n  aggregate:\n    dimensions: [district]\n"
        "    measures: [{name: enrolled, agg: sum, column: students}]\n"
    )
    (tmp_path / "x.yaml").write_text(GOOD + extra, encoding="utf-8")
    result = CliRunner().invoke(main, ["catalog", "validate", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (
        "note: protect.aggregate.measures: 'enrolled' is the sum of 'students', whose values the source may "
        "hide ('*'); a run whose file holds one is refused" in " ".join(result.output.split())
    )


def test_an_unknown_field_gets_a_near_spelling_the_block_it_belongs_in_or_the_fields_allowed(tmp_path: Path):
    text = GOOD.replace("  path: good.csv\n", "  path: good.csv\n  pathh: other.csv\n") + (
        "    minimum: 0\n"
        "    colour: red\n"
        "protect:\n"
        "  mode: aggregate\n"
        "  row_identifier: record_id\n"
        "  aggregate:\n"
        "    dimensions: [record_id]\n"
        "    measures: [{name: n}]\n"
        "    suppression: {threshold: 5}\n"
        "  suppression:\n"
        "    treshold: 5\n"
        "pii: true\n"
    )
    (tmp_path / "x.yaml").write_text(text, encoding="utf-8")
    errors = {e.field: (e.line, e.message) for e in load_catalog(tmp_path).errors}
    assert errors == {
        "source.pathh": (10, "unknown field; did you mean 'path'?"),  # the old block name, as written
        "columns.0.minimum": (13, "unknown field; did you mean 'min'?"),
        "columns.0.colour": (
            14,
            "unknown field; the fields allowed here are source, field_name, type, description, required, "
            "unique, allowed_values, min, max, pattern, not_in_future, checks, severity, pii, width, format, "
            "null_values, suppressed_values",
        ),
        "protect.row_identifier": (
            17,
            "unknown field here; 'row_identifier' belongs at the top level of the file",
        ),
        "protect.aggregate.suppression": (21, "unknown field here; 'suppression' belongs under protect"),
        "protect.suppression.treshold": (23, "unknown field; did you mean 'threshold'?"),
        "pii": (24, "unknown field here; 'pii' belongs in each entry of columns"),
    }


@pytest.mark.parametrize("name", ["__m0", "age__text", "_row", "_line"])
def test_a_field_name_the_pipeline_uses_for_its_own_columns_is_refused_at_its_line(tmp_path: Path, name: str):
    text = GOOD + f"  - source: Age\n    field_name: {name}\n"
    (tmp_path / "x.yaml").write_text(text, encoding="utf-8")
    catalog = load_catalog(tmp_path)
    assert not catalog.datasets
    (error,) = catalog.errors
    assert error.line == 13 and error.field.endswith("field_name")  # the column entry that names it
    assert "two underscores in a row" in error.message


def test_exported_json_schema_is_current():
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text(), (
        "run `ct-pipelines catalog schema --output ct_pipelines/catalog/dataset.schema.json`"
    )
    schema = json.loads(schema_text())
    assert "Transportation" in json.dumps(schema) and "update_frequency" in schema["properties"]


def test_catalog_validate_and_list_commands(tmp_path: Path):
    runner = CliRunner()
    result = runner.invoke(main, ["catalog", "list", "--json", "--catalog", str(SAMPLE_CATALOG_DIR)])
    assert result.exit_code == 0
    rows = json.loads(result.output)
    assert {"id", "title", "agency", "update_frequency", "portal_id"} <= set(rows[0])
    (tmp_path / "x.yaml").write_text(GOOD.replace("Weekly", "Fortnightly"), encoding="utf-8")
    result = runner.invoke(main, ["catalog", "validate", str(tmp_path)])
    assert result.exit_code == 1 and "x.yaml:6: update_frequency" in result.output


def test_dataset_new_writes_a_file_that_validates(tmp_path: Path):
    (tmp_path / "Town Counts 2024.csv").write_text(
        "Title line\n\nTown,Code,Count,When\nHartford,064,3,2024-01-05\nUnion,146,,2024-02-01\n",
        encoding="utf-8",
    )
    runner = CliRunner()
    out = tmp_path / "catalog" / "new.yaml"
    out.parent.mkdir()
    result = runner.invoke(
        main, ["dataset", "new", "--from", str(tmp_path / "Town Counts 2024.csv"), "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert len(load_catalog(out.parent).errors) == 6  # <<TODO: ...>> markers are refused until filled
    fill_todos(out)
    catalog = load_catalog(out.parent)
    assert not catalog.errors
    dataset = catalog.datasets[0]
    assert dataset.ingest.header_row == 3
    types = {c.field_name: str(c.type) for c in dataset.columns}
    assert types == {"town": "text", "code": CODE_TYPE, "count": "integer", "when": "date"}


def test_profile_json(tmp_path: Path):
    (tmp_path / "x.csv").write_bytes("\ufeffa|b\n1|x\n2|y\n".encode())
    result = CliRunner().invoke(main, ["profile", "--json", str(tmp_path / "x.csv")])
    data = json.loads(result.output)
    assert (data["encoding"], data["bom"], data["delimiter"], data["header_row"], data["rows"]) == (
        "utf-8-sig",
        True,
        "|",
        1,
        2,
    )
    assert data["columns"][0] == {
        "name": "a",
        "field_name": "a",
        "type": "integer",
        "nulls": 0,
        "distinct": 2,
        "null_values": [],
        "suppressed_values": [],
        "not_numbers": {},
        "two_digit_years": False,
        "two_digit_year_span": None,
        "width": None,
    }
    assert data["sample"][1] == {"a": "2", "b": "y"}


@pytest.mark.parametrize(
    ("name", "rows", "columns", "header"),
    [
        ("ct_ocme_accidental_drug_deaths_2012_2018.csv", 5105, 42, 1),
        ("ct_sde_edsight_enrollment_by_district_race_2016-17.csv", 204, 10, 6),
    ],
)
def test_profile_and_dataset_new_on_real_files_agree_with_ingest(
    shared_ct, tmp_path, name, rows, columns, header
):
    import duckdb

    from ct_pipelines.ingest.ingest import ingest_dataset

    runner = CliRunner()
    data = json.loads(runner.invoke(main, ["profile", "--json", str(shared_ct / name)]).output)
    assert (data["rows"], len(data["columns"]), data["header_row"]) == (rows, columns, header)
    out = tmp_path / "d.yaml"
    assert (
        runner.invoke(
            main, ["dataset", "new", "--from", str(shared_ct / name), "--output", str(out)]
        ).exit_code
        == 0
    )
    fill_todos(out)
    dataset = load_catalog(out).datasets[0]
    con = duckdb.connect()
    result = ingest_dataset(con, dataset, shared_ct, run_id="t", workdir=tmp_path)
    assert (result.source_rows, result.columns) == (rows, columns)  # SDE: the footer Total row is left out


def test_run_with_every_dataset_file_skipped_says_nothing_ran(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """It once printed an empty table and 'Published to the local portal', the reason only on stderr."""
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "x.yaml").write_text(
        GOOD.replace("title: Good one", "title: '<<TODO: a title>>'")
    )
    monkeypatch.setenv("CT_PIPELINES_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CT_PIPELINES_LANDING", raising=False)
    result = CliRunner().invoke(main, ["run", "--catalog", str(tmp_path / "catalog")])
    assert result.exit_code == 1 and "Published" not in result.output
    assert "x.yaml:2: title:" in result.output
    assert (
        "no dataset ran: 1 dataset file(s) in " in result.output
        and "were skipped (listed above)" in result.output
    )


def test_a_broken_sibling_file_fails_a_whole_catalog_run_with_a_reason_but_not_a_run_of_one_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A new user's `run --dataset sde` printed ok and exited 1, because another file still held TODOs."""
    (tmp_path / "catalog").mkdir()
    (tmp_path / "landing").mkdir()
    (tmp_path / "catalog" / "good.yaml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "catalog" / "todo.yaml").write_text(
        GOOD.replace("id: good_one", "id: todo_one").replace("title: Good one", "title: '<<TODO: a title>>'"),
        encoding="utf-8",
    )
    (tmp_path / "landing" / "good.csv").write_text("Record ID\r\nA1\r\nA2\r\n", encoding="utf-8")
    monkeypatch.setenv("CT_PIPELINES_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CT_PIPELINES_LANDING", raising=False)
    monkeypatch.delenv("CT_PORTAL_DOMAIN", raising=False)
    every = CliRunner().invoke(main, ["run", "--catalog", str(tmp_path / "catalog")])
    assert every.exit_code == 1 and "good_one  ok" in every.stdout
    assert "Exit status 1: 1 dataset file(s) in " in every.stdout and "were skipped" in every.stdout
    one = CliRunner().invoke(main, ["run", "--catalog", str(tmp_path / "catalog"), "--dataset", "good_one"])
    assert one.exit_code == 0, one.output
    assert "todo.yaml:2: title:" in one.stderr and "Exit status" not in one.stdout


def test_a_row_identifier_written_as_the_header_names_the_field_meant(tmp_path: Path):
    """'row_identifier: ID' was refused as not a field name, without the 'id' it meant."""
    (tmp_path / "x.yaml").write_text(GOOD + "row_identifier: Record_ID\n", encoding="utf-8")
    (error,) = load_catalog(tmp_path).errors
    assert "'Record_ID' is not one of the columns' field names; did you mean 'record_id'?" in (error.message)
