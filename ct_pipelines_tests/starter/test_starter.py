"""Starter files you can trust: types from every value, reader options carried over, placeholders refused
until filled, and the agency's row quirks (footer totals, notes lines, wide tables) declared and counted."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from ct_pipelines.catalog.loader import load_catalog
from ct_pipelines.catalog.models import ColumnType
from ct_pipelines.cli import main
from ct_pipelines.ingest.errors import IngestError
from ct_pipelines.ingest.ingest import ingest_dataset
from ct_pipelines.starter.profile import CODE_TYPE
from ct_pipelines_tests.support.catalog_run import run_and_read_portal

FILLS = {
    "title": "Town counts for testing",
    "description": "One row per town, made by a test.",
    "agency": "Department of Testing",
    "category": "Government",
    "update_frequency": "As needed",
    "contact": "data.officer@ct.gov",
}


def new_starter(source: Path, out: Path, *options: str) -> str:
    result = CliRunner().invoke(
        main, ["dataset", "new", "--from", str(source), "--output", str(out), *options]
    )
    assert result.exit_code == 0, result.output
    return out.read_text(encoding="utf-8")


def fill_todos(path: Path) -> None:
    """What a person does with a starter file: replace each top-level <<TODO: ...>> marker, nothing else."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        found = re.match(r"^(\w+): '<<TODO:", line)
        lines.append(f"{found[1]}: {FILLS[found[1]]}" if found else line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def starter_columns(text: str) -> dict[str, dict]:
    return {c["source"]: c for c in yaml.safe_load(text)["columns"]}


# --- 1. types from every value -------------------------------------------------------------------------------


def comments(text: str) -> str:
    """The starter's comment lines as one paragraph (they wrap at 100 characters)."""
    return " ".join(line[2:] for line in text.splitlines() if line.startswith("# "))


def test_types_come_from_every_value_and_match_what_validation_accepts(tmp_path: Path):
    (tmp_path / "mixed.csv").write_text(
        "Share,Count,Amount,Reported,Visit Date,Zip,Fips,Flag,Note\n"
        '0.5,1,"1,200",2024-01-05T10:30:00,2024-01-05,06106,09003,Y,a\n'
        "0.25,2,3.75,2024-02-01 08:00:00,02/01/2024,06101,09001,N,\n"
        "6.5,3,12,2024-03-09T23:59:59,2024-03-09,10001,09011,Y,  \n",
        encoding="utf-8",
    )
    text = new_starter(tmp_path / "mixed.csv", tmp_path / "mixed.yaml")
    columns = starter_columns(text)
    types = {name: c["type"] for name, c in columns.items()}
    assert types == {
        "Share": "number",  # a rounding cast would have called 0.5, 0.25, 6.5 integers
        "Count": "integer",
        "Amount": "number",
        "Reported": "datetime",
        "Visit Date": "date",
        "Zip": CODE_TYPE,  # leading zeros: never a number
        "Fips": CODE_TYPE,
        "Flag": "boolean",
        "Note": "text",
    }
    assert all(t in {c.value for c in ColumnType} for t in types.values())
    # No rule is chosen for the person; the columns filled on every row are named (blank and
    # whitespace-only cells are empty to validation, so Note is not).
    assert not any("required" in c for c in columns.values())
    assert (
        "A value on every row of this file: share, count, amount, reported, visit_date, zip, fips, flag. "
        in (comments(text))
    )


def test_a_single_fraction_among_integers_makes_a_number_and_digit_words_are_not_booleans(tmp_path: Path):
    rows = "\n".join(str(n) for n in range(1, 2000)) + "\n2.5\n"
    (tmp_path / "late.csv").write_text(
        "Value,Zero One\n" + "\n".join(f"{v},{n % 2}" for n, v in enumerate(rows.split())) + "\n",
        encoding="utf-8",
    )
    types = {
        n: c["type"]
        for n, c in starter_columns(new_starter(tmp_path / "late.csv", tmp_path / "l.yaml")).items()
    }
    assert types == {"Value": "number", "Zero One": "integer"}


def test_parquet_empty_strings_are_never_required_and_types_still_infer(tmp_path: Path):
    pq.write_table(
        pa.table(
            {
                "town": ["Hartford", "", "Union"],
                "code": ["064", "077", "146"],
                "rate": ["0.5", "1.25", " "],
                "n": ["1", "2", "3"],
            }
        ),
        tmp_path / "t.parquet",
    )
    text = new_starter(tmp_path / "t.parquet", tmp_path / "t.yaml")
    assert {n: c["type"] for n, c in starter_columns(text).items()} == {
        "town": "text",
        "code": CODE_TYPE,
        "rate": "number",
        "n": "integer",
    }
    assert "A value on every row of this file: code, n. " in comments(text)


# --- 2. reader options carried into the source block ---------------------------------------------------------


def test_dataset_new_writes_the_reader_options_it_was_given(tmp_path: Path):
    (tmp_path / "semi.txt").write_bytes("Export;\n\nNombre;Año\nJosé;2024\nZoë;2023\n".encode("cp1252"))
    text = new_starter(
        tmp_path / "semi.txt",
        tmp_path / "semi.yaml",
        "--encoding",
        "cp1252",
        "--delimiter",
        ";",
        "--header-row",
        "3",
    )
    source = yaml.safe_load(text)["ingest"]
    assert source == {"path": "semi.txt", "encoding": "cp1252", "header_row": 3, "delimiter": ";"}
    assert list(starter_columns(text)) == ["Nombre", "Año"]
    tabbed = tmp_path / "tab.csv"
    tabbed.write_text("a\tb\n1\t2\n", encoding="utf-8")
    assert (
        yaml.safe_load(new_starter(tabbed, tmp_path / "t.yaml", "--delimiter", "tab"))["ingest"]["delimiter"]
        == "\t"
    )
    bad = CliRunner().invoke(main, ["dataset", "new", "--from", str(tabbed), "--delimiter", "x"])
    assert bad.exit_code == 2 and "use one of , tab | ;" in bad.output


def test_dataset_new_takes_the_sheet_and_header_row_of_a_workbook(tmp_path: Path):
    from openpyxl import Workbook

    book = Workbook()
    book.active.title = "Notes"
    book.active.append(["Read me first"])
    sheet = book.create_sheet("2024")
    for row in (["Licenses issued, 2024"], [], ["Town", "Licenses"], ["Hartford", 12], ["Union", 3]):
        sheet.append(row)
    book.save(tmp_path / "licenses.xlsx")
    out = tmp_path / "catalog" / "licenses.yaml"
    out.parent.mkdir()
    text = new_starter(tmp_path / "licenses.xlsx", out, "--sheet", "2024", "--header-row", "3")
    assert yaml.safe_load(text)["ingest"] == {"path": "licenses.xlsx", "sheet": "2024", "header_row": 3}
    fill_todos(out)
    dataset = load_catalog(out.parent).datasets[0]
    result = ingest_dataset(duckdb.connect(), dataset, tmp_path, run_id="t", workdir=tmp_path / "w")
    assert (result.rows, result.sheet, result.header_line) == (2, "2024", 3)
    assert {c.field_name: str(c.type) for c in dataset.columns} == {"town": "text", "licenses": "integer"}


# --- 3. placeholders are refused until filled -------------------------------------------------------------------


def test_a_starter_with_todos_left_in_fails_validate_with_file_line_and_what_to_write(tmp_path: Path):
    (tmp_path / "counts.csv").write_text("Town,Count\nHartford,3\n", encoding="utf-8")
    out = tmp_path / "catalog" / "counts.yaml"
    out.parent.mkdir()
    text = new_starter(tmp_path / "counts.csv", out)
    lines = text.splitlines()
    result = CliRunner().invoke(main, ["catalog", "validate", str(out.parent)])
    assert result.exit_code == 1
    problems = [line for line in result.output.splitlines() if line.startswith(str(out))]
    fields = [p.split(": ")[1] for p in problems]
    assert fields == ["title", "description", "agency", "category", "update_frequency", "contact"]
    for problem in problems:  # each names the line holding the marker and says what to write instead
        line = int(problem.split(":")[1])
        assert "<<TODO:" in lines[line - 1] and "replace the whole marker with" in problem
    assert "the dataset owner's e-mail address" in problems[-1] and "must be an e-mail" not in result.output
    assert "one of Business, Education" in problems[3]
    assert "0 dataset(s) valid, 6 problem(s)" in result.output
    assert load_catalog(out.parent).datasets == []  # `run` loads the same way, so it skips the file
    fill_todos(out)
    result = CliRunner().invoke(main, ["catalog", "validate", str(out.parent)])
    assert result.exit_code == 0 and "1 dataset(s) valid, 0 problem(s)" in result.output, result.output


def test_a_marker_anywhere_and_the_old_starters_placeholders_are_refused(tmp_path: Path):
    (tmp_path / "counts.csv").write_text("Town,Count\nHartford,3\n", encoding="utf-8")
    out = tmp_path / "c.yaml"
    new_starter(tmp_path / "counts.csv", out)
    fill_todos(out)
    text = out.read_text(encoding="utf-8").replace(
        "  description: ''\n", "  description: '<<TODO: what it counts>>'\n", 1
    )
    out.write_text(text, encoding="utf-8")
    (error,) = load_catalog(out).errors
    assert error.field == "columns.0.description" and "what it counts" in error.message
    assert "<<TODO" in text.splitlines()[error.line - 1]
    old = out.read_text(encoding="utf-8").replace(
        "description: '<<TODO: what it counts>>'", "description: ''"
    )
    old = old.replace("agency: Department of Testing", "agency: 'TODO: agency name'")
    old = old.replace("contact: data.officer@ct.gov", "contact: TODO.data.officer@ct.gov")
    out.write_text(old, encoding="utf-8")
    assert sorted(e.field for e in load_catalog(out).errors) == ["agency", "contact"]
    # A finished file that merely mentions the word is fine.
    out.write_text(
        old.replace("'TODO: agency name'", "Department of TODO Lists").replace(
            "TODO.data.officer@ct.gov", "todo@ct.gov"
        ),
        encoding="utf-8",
    )
    assert not load_catalog(out).errors


# --- 4. quirks at ingest ---------------------------------------------------------------------------------------

FOOTER_CSV = (
    "District,Code,Count\n"
    'Andover,="0010011",12\n'
    'Ansonia,="0020011",*\n'
    'Total,="",40\n'
    "Note: * means 1 to 5 students\n"
    "Note: counts as of October 1\n"
)


def _quirk_dataset(make_dataset, **source):
    return make_dataset("d.csv", source=source, columns=[{"source": "District"}, {"source": "Code"}])


def test_footer_total_and_notes_are_left_out_by_name_counted_and_kept(tmp_path: Path, make_dataset):
    (tmp_path / "d.csv").write_text(FOOTER_CSV, encoding="utf-8")
    dataset = _quirk_dataset(
        make_dataset,
        leave_out=[
            {"name": "footer total", "column": "District", "equals": "Total"},
            {"name": "notes", "matches": "^Note"},
        ],
    )
    con = duckdb.connect()
    result = ingest_dataset(con, dataset, tmp_path, run_id="t", workdir=tmp_path / "w")
    assert (result.source_rows, result.rows, result.rows_left_out) == (5, 2, {"footer total": 1, "notes": 2})
    assert result.source_rows == result.rows + sum(result.rows_left_out.values())
    assert result.lineage()["rows_left_out"] == {"footer total": 1, "notes": 2}
    assert con.execute(
        "SELECT _row, _line, district, code, count FROM ingest__sample ORDER BY _row"
    ).fetchall() == [(1, 2, "Andover", "0010011", "12"), (2, 3, "Ansonia", "0020011", "*")]
    assert con.execute("SELECT _row, _line, rule, value FROM left_out__sample ORDER BY _row").fetchall() == [
        (3, 4, "footer total", "Total"),
        (4, 5, "notes", "Note: * means 1 to 5 students"),
        (5, 6, "notes", "Note: counts as of October 1"),
    ]
    again = ingest_dataset(con, dataset, tmp_path, run_id="t2", workdir=tmp_path / "w")
    assert again.skipped and (again.source_rows, again.rows, again.rows_left_out) == (
        5,
        2,
        {"footer total": 1, "notes": 2},
    )


def test_dataset_new_proposes_the_footer_rules_and_profiles_without_those_rows(tmp_path: Path):
    (tmp_path / "d.csv").write_text(FOOTER_CSV, encoding="utf-8")
    text = new_starter(tmp_path / "d.csv", tmp_path / "d.yaml")
    assert yaml.safe_load(text)["ingest"]["leave_out"] == [
        {"name": "footer total", "column": "District", "equals": "Total", "max_rows": 1},
        {"name": "notes", "matches": "^(Note:)", "max_rows": 2},
    ]
    assert starter_columns(text)["Code"] == {"source": "Code", "type": CODE_TYPE, "description": ""}
    assert "A value on every row of this file: district, code" in comments(
        text
    )  # the Total row's is not data


def test_a_rule_leaving_out_more_rows_than_allowed_or_naming_no_column_refuses_the_file(
    tmp_path: Path, make_dataset
):
    (tmp_path / "d.csv").write_text(FOOTER_CSV, encoding="utf-8")
    greedy = _quirk_dataset(make_dataset, leave_out=[{"name": "notes", "matches": "^N|^A", "max_rows": 2}])
    with pytest.raises(
        IngestError,
        match=r"d.csv: the leave-out rule 'notes' matches 4 rows, more than its "
        r"max_rows of 2",
    ):
        ingest_dataset(duckdb.connect(), greedy, tmp_path, run_id="t", workdir=tmp_path / "w")
    typo = _quirk_dataset(make_dataset, leave_out=[{"name": "total", "column": "Distrct", "equals": "Total"}])
    with pytest.raises(IngestError, match=r"column 'Distrct'.*ingest.leave_out names column 'Distrct'"):
        ingest_dataset(duckdb.connect(), typo, tmp_path, run_id="t", workdir=tmp_path / "w")


def test_wide_race_columns_become_rows_so_rel_and_suppression_can_apply(tmp_path: Path, make_dataset):
    (tmp_path / "d.csv").write_text(
        "District,Asian,Black or African American,White\nAndover,*,0,208\nAnsonia,42,,951\nTotal,42,0,1159\n",
        encoding="utf-8",
    )
    dataset = make_dataset(
        "d.csv",
        source={
            "leave_out": [{"name": "footer total", "column": "District", "equals": "Total"}],
            "unpivot": {
                "columns": ["Asian", "Black or African American", "White"],
                "name": "race",
                "value": "count",
            },
        },
        columns=[{"source": "District"}, {"source": "race"}, {"source": "count", "type": "text"}],
    )
    con = duckdb.connect()
    result = ingest_dataset(con, dataset, tmp_path, run_id="t", workdir=tmp_path / "w")
    assert (result.source_rows, result.rows_left_out, result.unpivoted_columns, result.rows) == (
        3,
        {"footer total": 1},
        3,
        6,
    )
    assert con.execute("SELECT * FROM ingest__sample ORDER BY _row").fetchall() == [
        (1, 2, "Andover", "Asian", "*"),
        (2, 2, "Andover", "Black or African American", "0"),
        (3, 2, "Andover", "White", "208"),
        (4, 3, "Ansonia", "Asian", "42"),
        (5, 3, "Ansonia", "Black or African American", None),
        (6, 3, "Ansonia", "White", "951"),
    ]


def test_columns_that_share_a_name_are_never_unpivoted_into_rows_that_cannot_be_told_apart(
    tmp_path: Path, make_dataset
):
    """A report's two header rows (1974 over Male, Female, ..., 2023 over Male, Female), read from the
    lower one: 'male' resolved to the last Male column, so 2023 was published twice and 1974 dropped."""
    header = ["Age Group"] + [f"{sex}" for _ in range(3) for sex in ("Male", "Female")]
    body = [f"0-17,{','.join(str(10 * y + k) for y in range(3) for k in (1, 2))}", "18-24,1,2,3,4,5,6"]
    (tmp_path / "d.csv").write_text("\n".join([",".join(header), *body]) + "\n", encoding="utf-8")
    columns = [{"source": "Age Group"}, {"source": "sex"}, {"source": "count", "type": "integer"}]

    def unpivot(names: list[str]):
        source = {"header_row": 1, "unpivot": {"columns": names, "name": "sex", "value": "count"}}
        return ingest_dataset(
            duckdb.connect(),
            make_dataset("d.csv", source=source, columns=columns),
            tmp_path,
            run_id="t",
            workdir=tmp_path / "w",
        )

    with pytest.raises(
        IngestError,
        match=r"names column 'Male', which 3 columns of the file are called \(their field names: male, male_2, male_3\)",
    ):
        unpivot(["Male", "Female"])
    with pytest.raises(
        IngestError,
        match=r"several columns called 'Female', 'Male' in the file, so their rows in 'sex' could not be told apart",
    ):
        unpivot(["male", "female", "male_2", "female_2", "male_3", "female_3"])


def test_unpivot_and_leave_out_mistakes_are_caught_in_the_yaml(make_dataset):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="give exactly one of `equals` or `matches`"):
        make_dataset(source={"leave_out": [{"name": "x", "equals": "Total", "matches": "^T"}]})
    with pytest.raises(ValidationError, match="rule names must be unique; repeated: x"):
        make_dataset(source={"leave_out": [{"name": "x", "equals": "a"}, {"name": "x", "equals": "b"}]})
    with pytest.raises(
        ValidationError, match=r"columns Asian are listed in ingest.unpivot.columns.*declare 'n'"
    ):
        make_dataset(
            source={"unpivot": {"columns": ["Asian", "White"], "name": "race", "value": "n"}},
            columns=[{"source": "Asian", "type": "integer"}],
        )


# --- 5. the three real Connecticut extracts, from starter file to the local portal ------------------------------

REAL_FILES = [
    ("ct_dcf_children_in_placement_by_race_ethnicity_tnyk-6fv7.csv", 1758, {}),
    ("ct_ocme_accidental_drug_deaths_2012_2018.csv", 5105, {}),
    ("ct_sde_edsight_enrollment_by_district_race_2016-17.csv", 204, {"footer total": 1}),
]


@pytest.mark.parametrize(("name", "source_rows", "left_out"), REAL_FILES)
def test_real_extract_from_starter_to_portal_accounts_for_every_row(
    shared_ct: Path, tmp_path: Path, monkeypatch, name: str, source_rows: int, left_out: dict
):
    import dagster as dg

    from ct_pipelines.orchestration.runner import run_catalog
    from ct_pipelines.portal.store import PortalStore

    monkeypatch.setenv("CT_PIPELINES_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CT_PIPELINES_CATALOG", str(tmp_path / "catalog"))  # as `run --catalog` does
    monkeypatch.delenv("CT_PIPELINES_LANDING", raising=False)  # so the catalog's sibling landing/ is used
    monkeypatch.delenv("CT_PORTAL_DOMAIN", raising=False)
    (tmp_path / "landing").mkdir()
    shutil.copy(shared_ct / name, tmp_path / "landing" / name)
    out = tmp_path / "catalog" / "dataset.yaml"
    out.parent.mkdir()
    new_starter(shared_ct / name, out)
    fill_todos(out)
    assert CliRunner().invoke(main, ["catalog", "validate", str(out.parent)]).exit_code == 0
    summaries, _ = run_catalog(str(out.parent), instance=dg.DagsterInstance.ephemeral())
    (summary,) = summaries
    assert summary.ok, summary.error or summary.blocking_summaries
    dataset_id = summary.dataset_id
    con = duckdb.connect(str(tmp_path / "home" / "warehouse" / f"{dataset_id}.duckdb"), read_only=True)
    raw, valid, quarantined, published = con.execute(
        f"SELECT (SELECT count(*) FROM ingest__{dataset_id}), (SELECT count(*) FROM validate__{dataset_id}), "
        f"(SELECT count(DISTINCT _row) FROM quarantine__{dataset_id}), "
        f"(SELECT count(*) FROM protect__{dataset_id})"
    ).fetchone()
    left = (
        dict(con.execute(f"SELECT rule, count(*) FROM left_out__{dataset_id} GROUP BY rule").fetchall())
        if left_out
        else {}
    )
    con.close()
    assert left == left_out
    assert source_rows == raw + sum(left.values()) == valid + quarantined + sum(left.values())
    assert published == valid  # rows mode: every valid row is a published row
    store = PortalStore(tmp_path / "home" / "portal")
    try:
        (view,) = store.list_views()
        assert store.row_count(view["id"]) == published == summary.rows_published
    finally:
        store.close()


SDE_WIDE = """id: sde_enrollment_by_race
title: Student enrollment by district and race, 2016-17
description: One row per district and race/ethnicity group with the October 1 enrollment count.
agency: Department of Education
category: Education
update_frequency: Annually
contact: data.officer@ct.gov
source:
  path: ct_sde_edsight_enrollment_by_district_race_2016-17.csv
  header_row: 6
  leave_out: [{name: footer total, column: District, equals: Total, max_rows: 1}]
  unpivot:
    columns: [American Indian or Alaska Native, Asian, Black or African American, Hispanic/Latino of any race,
              Native Hawaiian or Other Pacific Islander, Two or More Races, White]
    name: race_ethnicity
    value: count
columns:
- {source: District, required: true}
- {source: District Code, required: true}
- {source: race_ethnicity, required: true}
- {source: count, type: text}  # '*' marks the agency's own suppression of 1-5
rel:
  columns: [{column: race_ethnicity, field: race_ethnicity}]
"""


def test_real_wide_sde_table_unpivoted_gets_rel_groups_and_reaches_the_portal(
    shared_ct: Path, tmp_path: Path, monkeypatch
):
    import dagster as dg

    from ct_pipelines.orchestration.runner import run_catalog

    name = "ct_sde_edsight_enrollment_by_district_race_2016-17.csv"
    monkeypatch.setenv("CT_PIPELINES_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CT_PIPELINES_CATALOG", str(tmp_path / "catalog"))
    monkeypatch.delenv("CT_PIPELINES_LANDING", raising=False)
    monkeypatch.delenv("CT_PORTAL_DOMAIN", raising=False)
    (tmp_path / "landing").mkdir()
    shutil.copy(shared_ct / name, tmp_path / "landing" / name)
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "sde.yaml").write_text(SDE_WIDE, encoding="utf-8")
    (summary,), _ = run_catalog(str(tmp_path / "catalog"), instance=dg.DagsterInstance.ephemeral())
    assert summary.ok, summary.error or summary.blocking_summaries
    # 204 source rows: the Total footer left out by its rule, the other 203 turned long (7 race columns each)
    assert (summary.rows_in, summary.rows_set_aside, summary.rows_published) == (204, None, 203 * 7)
    assert summary.rows_left_out == {"footer total": 1}  # left out by rule, not set aside
    con = duckdb.connect(
        str(tmp_path / "home" / "warehouse" / "sde_enrollment_by_race.duckdb"), read_only=True
    )
    groups = con.execute(
        "SELECT rel_reporting_group, count(*), count_if(race_ethnicity_status = 'reported') "
        "FROM standardize__sde_enrollment_by_race GROUP BY ALL ORDER BY 1"
    ).fetchall()
    assert [g[0] for g in groups] == [
        "Hispanic",
        "Non-Hispanic American Indian or Alaska Native",
        "Non-Hispanic Asian",
        "Non-Hispanic Black",
        "Non-Hispanic Native Hawaiian or Other Pacific Islander",
        "Non-Hispanic Two or More Races",
        "Non-Hispanic White",
    ]
    assert all(g[1:] == (203, 203) for g in groups)
    assert con.execute(
        "SELECT district, district_code, race_ethnicity, count FROM protect__sde_enrollment_by_race "
        "WHERE district = 'Andover School District' ORDER BY race_ethnicity"
    ).fetchall()[:2] == [
        ("Andover School District", "0010011", "American Indian or Alaska Native", "0"),
        ("Andover School District", "0010011", "Asian", "*"),
    ]
    assert con.execute("SELECT count(*) FROM left_out__sde_enrollment_by_race").fetchone()[0] == 1


def landed(tmp_path: Path, name: str, text: str) -> tuple[Path, Path]:
    """An extract in a landing folder beside an empty catalog folder, as `run` expects them."""
    for folder in ("landing", "catalog"):
        (tmp_path / folder).mkdir()
    extract = tmp_path / "landing" / name
    extract.write_text(text, encoding="utf-8")
    return extract, tmp_path / "catalog"


def suggested_protect(text: str) -> list[str]:
    """The starter's commented protect block, uncommented."""
    starts = ("# protect:", "#   mode:", "#   aggregate:", "#   suppression:")
    return [line[2:] for line in text.splitlines() if line.startswith(starts)]


def apply_suggested_protect(path: Path, block: list[str], race_column: str) -> None:
    """What a person does with the starter: fill its TODOs, declare the race column, uncomment the block."""
    fill_todos(path)
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["standardize"] = {"columns": [{"column": race_column, "field": "race_ethnicity"}]}
    doc.update(yaml.safe_load("\n".join(block)))  # the protect block as written
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


def run_filled_starter(tmp_path: Path, catalog: Path, monkeypatch) -> tuple[Any, dict, list[dict]]:
    """Run a catalog whose starter TODOs were filled; the one dataset's summary, portal view and rows."""
    summary, published = run_and_read_portal(tmp_path, catalog, monkeypatch)
    assert summary.ok, summary.error or summary.failed_checks
    ((view, records),) = published
    return summary, view, records


def test_columns_named_like_race_or_language_get_commented_standardize_and_protect_blocks(
    tmp_path: Path, monkeypatch
):
    """New users found rel_reporting_group only in the README. The starter names the columns in commented
    blocks and leaves the field to the person (a race column may carry ethnicity too: OCME's does)."""
    extract, catalog = landed(
        tmp_path,
        "deaths.csv",
        "ID,Race,Primary Language,Town\r\n"
        + "".join(
            f"{i},{r},{lang},Hartford\r\n"
            for i, (r, lang) in enumerate(
                [("White", "English"), ('"Hispanic, White"', "Spanish"), ("Black", "English")] * 8
            )
        ),
    )
    text = new_starter(extract, catalog / "deaths.yaml")
    assert (
        "#   - {column: race, field: <race, ethnicity or race_ethnicity (one question asking both)>}" in text
    )
    assert "#   - {column: primary_language, field: <language>}" in text
    assert "#   aggregate: {dimensions: [rel_reporting_group], measures: [{name: count}]}" in text
    chosen = (  # the person uncomments the blocks and picks each field
        text.replace("<race, ethnicity or race_ethnicity (one question asking both)>", "race_ethnicity")
        .replace("<language>", "language")
        .replace("\n# standardize:", "\nstandardize:")
        .replace("\n#   ", "\n  ")
        .replace("\n# protect:", "\nprotect:")
    )
    (catalog / "deaths.yaml").write_text(chosen, encoding="utf-8")
    fill_todos(catalog / "deaths.yaml")
    summary, _, rows = run_filled_starter(tmp_path, catalog, monkeypatch)
    counts = {r["rel_reporting_group"]: int(r["count"]) for r in rows}
    assert counts == {"Hispanic": 8, "Non-Hispanic Black": 8, "Non-Hispanic White": 8, "Total": 24}


def test_a_database_null_in_a_text_column_is_proposed_as_no_value_and_published_empty(
    tmp_path: Path, monkeypatch
):
    """DCF's export writes one office as the literal 'NULL'; kept as text it was published as an office's
    name. 'Unknown' is a real answer in a race column and stays."""
    extract, catalog = landed(
        tmp_path,
        "placements.csv",
        "Office,Demographic,Children\r\nHartford,WHITE,12\r\nNULL,BLACK,3\r\nWaterbury,Unknown,7\r\n",
    )
    profiled = CliRunner().invoke(main, ["profile", str(extract)])
    assert "(Office; no value written as 'NULL')" in profiled.output
    columns = starter_columns(new_starter(extract, catalog / "placements.yaml"))
    assert columns["Office"]["null_values"] == ["NULL"] and "null_values" not in columns["Demographic"]
    fill_todos(catalog / "placements.yaml")
    summary, _, rows = run_filled_starter(tmp_path, catalog, monkeypatch)
    assert (summary.rows_in, summary.rows_set_aside, summary.rows_published) == (3, None, 3)
    published = sorted((r.get("office") or "", r["demographic"], r["children"]) for r in rows)
    assert published == [("", "BLACK", "3"), ("Hartford", "WHITE", "12"), ("Waterbury", "Unknown", "7")]


def test_count_columns_with_source_markers_are_typed_and_published_as_flags(tmp_path: Path, monkeypatch):
    """Agencies write '*' for a suppressed count and 'N/A' for none: the starter says so, the run publishes
    the numbers, empty cells with a suppressed flag where the source had '*', and nothing else changed."""
    extract, catalog = landed(
        tmp_path,
        "enrollment.csv",
        "District,Asian,Black\r\nAndover,*,12\r\nAnsonia,42,N/A\r\nAshford,9,*\r\nAvon,0,1204\r\n",
    )
    text = new_starter(extract, catalog / "enrollment.yaml")
    columns = starter_columns(text)
    assert columns["Asian"]["type"] == "integer" and columns["Asian"]["suppressed_values"] == ["*"]
    assert columns["Black"]["null_values"] == ["N/A"] and "required" not in columns["Black"]
    fill_todos(catalog / "enrollment.yaml")
    summary, view, records = run_filled_starter(tmp_path, catalog, monkeypatch)
    assert (summary.rows_in, summary.rows_set_aside, summary.rows_published) == (4, None, 4)
    rows = sorted(records, key=lambda r: r["district"])
    published = [(r["district"], r.get("asian"), r["asian_suppressed"], r.get("black")) for r in rows]
    assert published == [
        ("Andover", None, True, "12"),
        ("Ansonia", "42", False, None),
        ("Ashford", "9", False, None),
        ("Avon", "0", False, "1204"),
    ]
    assert [r["black_suppressed"] for r in rows] == [False, False, True, False]
    described = {c["fieldName"]: c.get("description") for c in view["columns"]}
    assert (
        described["asian_suppressed"]
        == "True where the source suppressed the value of 'asian', which is then empty"
    )


def test_the_unpivot_hint_keeps_the_unknown_column_beside_the_groups(tmp_path: Path):
    """A helper applied the hint to DPH-style case counts (Hispanic, NH White, ..., Unknown, Total cases):
    it listed the groups but not Unknown, so the published total fell 5,001 short of the file's own."""
    lines = ["Town,Hispanic,NH White,NH Black,Unknown,Total cases"]
    lines += [f"Town {i},{10 + i},{20 + i},{5 + i},{i % 4},{35 + 3 * i + i % 4}" for i in range(12)]
    extract, catalog = landed(tmp_path, "cases.csv", "\r\n".join(lines) + "\r\n")
    text = new_starter(extract, catalog / "cases.yaml")
    hint = next(line for line in text.splitlines() if line.startswith("#   unpivot:"))
    assert "columns: [Hispanic, NH White, NH Black, Unknown]" in hint


def test_count_columns_named_after_race_groups_get_an_unpivot_hint_that_publishes_as_is(
    tmp_path: Path, monkeypatch
):
    """EdSight exports one column of student counts per race. The starter suggested standardizing two of
    those count columns as race answers, which then failed on the counts ("21" unrecognized). Number
    columns named after groups now get an unpivot block; applied as written, the run publishes one row
    per district and group with the source's '*' kept empty and flagged."""
    groups = ["American Indian or Alaska Native", "Asian", "Hispanic/Latino of any race", "White"]
    districts = [("Andover School District", "0010011", ["0", "*", "12", "208"])]
    districts += [
        (f"District {i}", f"{i:03d}0011", ["*", str(10 + i), str(100 + i), str(900 + i)]) for i in range(2, 9)
    ]
    lines = [
        '"Student Counts by District and Race"',
        '"2016-17"',
        "",
        '"District","District Code",' + ",".join(f'"{g}"' for g in groups) + ',"Total"',
    ]
    for name, code, cells in districts:
        total = sum(int(c) for c in cells if c != "*") + 3
        lines.append(
            f'"{name}","=""{code}""",' + ",".join(f'"{c}"' if c == "*" else c for c in cells) + f",{total}"
        )
    lines.append('"Total","",' + ",".join("0" for _ in groups) + ",0")
    extract, catalog = landed(tmp_path, "enrollment.csv", "\r\n".join(lines) + "\r\n")
    text = new_starter(extract, catalog / "enrollment.yaml")
    assert "standardize:\n#   columns:\n#   - {column: race_ethnicity, field: race_ethnicity}" in text
    assert "field: <" not in text  # no count column is offered as a race answer
    hint = next(line for line in text.splitlines() if line.startswith("#   unpivot:"))
    assert hint == (
        "#   unpivot: {columns: [American Indian or Alaska Native, Asian, Hispanic/Latino of any race, White], "
        "name: race_ethnicity, value: count}"
    )
    assert "#   - {source: count, type: integer, suppressed_values: ['*']}" in text
    fill_todos(catalog / "enrollment.yaml")
    doc = yaml.safe_load((catalog / "enrollment.yaml").read_text(encoding="utf-8"))  # then applies the hint
    doc["ingest"]["unpivot"] = yaml.safe_load(hint[4:])["unpivot"]
    doc["columns"] = [c for c in doc["columns"] if c["source"] not in groups] + [
        yaml.safe_load(line[6:]) for line in text.splitlines() if line.startswith("#   - {source:")
    ]
    doc["standardize"] = {"columns": [{"column": "race_ethnicity", "field": "race_ethnicity"}]}
    (catalog / "enrollment.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    summary, _, rows = run_filled_starter(tmp_path, catalog, monkeypatch)
    assert (summary.rows_in, summary.rows_published) == (9, 8 * 4)  # the Total row is left out
    andover = {
        r["race_ethnicity"]: (r.get("count"), r["count_suppressed"])
        for r in rows
        if r["district_code"] == "0010011"
    }
    assert andover == {
        "American Indian or Alaska Native": ("0", False),
        "Asian": (None, True),
        "Hispanic/Latino of any race": ("12", False),
        "White": ("208", False),
    }
    white = sum(int(r["count"]) for r in rows if r["race_ethnicity"] == "White")
    assert white == 208 + sum(900 + i for i in range(2, 9))
    # The staff page says how 9 rows in the file became 32 checked: the run's summary and the page
    # counted different things with nothing said.
    from ct_pipelines.core.settings import load_settings
    from ct_pipelines.report.build import write_reports

    page = write_reports(load_settings(), load_catalog(catalog)).dataset_pages["enrollment"]
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.read_text(encoding="utf-8")))
    assert (
        'enrollment.csv , 9 rows; 1 left out by the rule "footer total"; 4 count columns unpivoted into 32 rows'
        in text
    )


def test_rows_that_hold_counts_get_a_sum_by_every_date_and_publish_the_files_totals(
    tmp_path: Path, monkeypatch
):
    """DCF's placement trend: each row counts children on a July 1 (Month_in_Care), in an extract made
    later (Data_as_of), with literal NULL offices. The starter suggested counting rows, which published
    the number of rows per group as children; a sum by group alone added the July 1s together. It now
    suggests the sum of TOTAL_CIP with both dates as time dimensions; applied as written, each July 1's
    total equals the file's and no pair of dates that never occurs is published as 0."""
    pairs = [("06/26/2014", "07/01/2012"), ("06/26/2014", "07/01/2013"), ("07/18/2017", "07/01/2016")]
    offices = [("Region 1", "Hartford"), ("Region 1", "NULL"), ("Region 2", "New Haven")]
    labels = ["Hispanic", "BLACK", "Non-Hispanic White"]
    lines = ["Data_as_of,DCF_Region,DCF_Office,Demographic,Month_in_Care,TOTAL_CIP,FOSTER_CARE"]
    totals: dict[str, int] = {}
    for k, (as_of, counted_on) in enumerate(pairs):
        for j, (region, office) in enumerate(offices):
            for i, label in enumerate(labels):
                n = 40 + 17 * i + 11 * j + 5 * k
                lines.append(f"{as_of},{region},{office},{label},{counted_on},{n},{n - 9}")
                totals[counted_on] = totals.get(counted_on, 0) + n
    extract, catalog = landed(tmp_path, "placements.csv", "\r\n".join(lines) + "\r\n")
    text = new_starter(extract, catalog / "placements.yaml")
    assert "{name: count}" not in text  # counting these rows counts groups, not children
    block = suggested_protect(text)
    assert "{name: data_as_of, time: true}, {name: month_in_care, time: true}" in block[2]
    apply_suggested_protect(catalog / "placements.yaml", block, race_column="demographic")
    summary, _, rows = run_filled_starter(tmp_path, catalog, monkeypatch)
    assert summary.rows_in == len(lines) - 1
    published = {(r["data_as_of"][:10], r["month_in_care"][:10]) for r in rows}
    assert published == {(f"{a[6:]}-{a[:2]}-{a[3:5]}", f"{c[6:]}-{c[:2]}-{c[3:5]}") for a, c in pairs}
    for counted_on, total in totals.items():
        day = f"{counted_on[6:]}-{counted_on[:2]}-{counted_on[3:5]}"
        assert [
            int(r["total_cip"])
            for r in rows
            if r["month_in_care"][:10] == day and r["rel_reporting_group"] == "Total"
        ] == [total]
    assert summary.rows_published == len(pairs) * 4  # three groups and their total, per July 1


def test_socrata_json_dates_with_times_are_time_dimensions_of_the_suggested_sum(tmp_path: Path, monkeypatch):
    """DCF's file as Socrata's own JSON export: every value a string, dates as 2014-06-26T00:00:00.000.
    Those columns are datetimes, which the hint left out of the dimensions, so the suggested sum added
    the July 1s together and the run refused it."""
    records = [
        {
            "data_as_of": "2017-07-18T00:00:00.000",
            "demographic": label,
            "month_in_care": f"{year}-07-01T00:00:00.000",
            "total_cip": str(40 + 17 * i + 5 * (year - 2015) + region),
        }
        for year in (2015, 2016)
        for region in range(6)
        for i, label in enumerate(["Hispanic", "Non-Hispanic Black", "Non-Hispanic White"])
    ]
    extract, catalog = landed(tmp_path, "placements.json", json.dumps(records))
    profiled = CliRunner().invoke(main, ["profile", str(extract)])
    assert f"placements.json: json, encoding utf-8, {len(records)} rows" in profiled.output  # no header line
    text = new_starter(extract, catalog / "placements.yaml")
    block = suggested_protect(text)
    assert (
        "{name: data_as_of, time: true}, {name: month_in_care, time: true}, rel_reporting_group" in block[2]
    )
    apply_suggested_protect(catalog / "placements.yaml", block, race_column="demographic")
    summary, _, rows = run_filled_starter(tmp_path, catalog, monkeypatch)
    totals = {
        r["month_in_care"][:4]: int(r["total_cip"]) for r in rows if r["rel_reporting_group"] == "Total"
    }
    assert totals == {
        str(year): sum(int(r["total_cip"]) for r in records if r["month_in_care"].startswith(str(year)))
        for year in (2015, 2016)
    }


def test_an_aggregate_is_not_published_while_a_summed_value_is_set_aside(tmp_path: Path, monkeypatch):
    """A typo in a count set its row aside, and the aggregate published the July 1 short by that row, with
    status ok (a helper's DCF delivery: 6,569 children where the file counts 6,595). A summed value that
    broke a rule stops the run; a row set aside by a rule on another column is left out, and the warning
    says how many."""
    lines = ["Data_as_of,Demographic,Month_in_Care,TOTAL_CIP,FOSTER_CARE"]
    labels = ["Hispanic", "Non-Hispanic Black", "Non-Hispanic White"]
    for k, counted_on in enumerate(["07/01/2016", "07/01/2017"]):
        for region in range(8):
            for i, label in enumerate(labels):
                n = 40 + 17 * i + 3 * region + 5 * k
                lines.append(f"07/18/2017,{label},{counted_on},{n},{n - 9}")
    extract, catalog = landed(tmp_path, "placements.csv", "\r\n".join(lines) + "\r\n")
    text = new_starter(extract, catalog / "placements.yaml")
    block = suggested_protect(text)
    apply_suggested_protect(catalog / "placements.yaml", block, race_column="demographic")
    fields = lines[5].split(",")
    fields[3] = fields[3][:-1] + "O"  # a letter O typed for the count's last digit
    extract.write_text("\r\n".join([*lines[:5], ",".join(fields), *lines[6:]]) + "\r\n", encoding="utf-8")

    summary, published = run_and_read_portal(tmp_path, catalog, monkeypatch)
    assert not summary.ok and published == []
    assert summary.blocked_stage == "protect" and summary.rows_set_aside == 1
    (failure,) = [f for f in summary.failed_checks if "aggregate_counts_every_row" in f]
    assert (
        "1 of 48 rows were set aside because their total_cip broke a rule (type on total_cip: 1)" in failure
    )
    assert "ct-pipelines validate quarantine placements" in failure

    fields = lines[5].split(",")
    fields[4] = "5O"  # the same typo in a column the aggregate does not sum
    extract.write_text("\r\n".join([*lines[:5], ",".join(fields), *lines[6:]]) + "\r\n", encoding="utf-8")
    summary, _, rows = run_filled_starter(tmp_path, catalog, monkeypatch)
    (warning,) = [f for f in summary.failed_checks if "aggregate_counts_every_row" in f]
    assert (
        "(WARN): 1 of 48 rows were set aside by validation (type on foster_care: 1) and are not counted"
        in warning
    )
    totals = {
        r["month_in_care"][:10]: int(r["total_cip"]) for r in rows if r["rel_reporting_group"] == "Total"
    }
    expected = {
        f"{year}-07-01": sum(int(line.split(",")[3]) for line in lines[1:] if f"07/01/{year}" in line)
        for year in (2016, 2017)
    }
    assert totals == {**expected, "2016-07-01": expected["2016-07-01"] - int(lines[5].split(",")[3])}

    extract.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    summary, _, rows = run_filled_starter(tmp_path, catalog, monkeypatch)
    assert not [f for f in summary.failed_checks if "aggregate_counts_every_row" in f]
    totals = {
        r["month_in_care"][:10]: int(r["total_cip"]) for r in rows if r["rel_reporting_group"] == "Total"
    }
    assert totals == expected


def test_a_few_typos_in_a_count_column_keep_it_a_number_and_its_rows_go_to_quarantine(
    tmp_path: Path, monkeypatch
):
    """One typed-in '12 3' in EdSight's White column made the starter call it text: the suggested unpivot
    left White out (295,026 students missing from the portal) and published the typo as a value. A few
    such cells now keep the column a number, the starter names them, and validation sets those rows aside."""
    groups = ["Asian", "Black or African American", "White"]
    rows = [
        (f"District {i}", f"{i:03d}0011", [str(10 + i), str(200 + i), str(900 + 7 * i)]) for i in range(1, 41)
    ]
    rows[4][2][2] = "12 3"  # typed with a space
    rows[7][2][0] = "N/A"
    rows[9][2][1] = "*"
    lines = [
        '"Student Counts by District and Race"',
        "",
        '"District","District Code",' + ",".join(f'"{g}"' for g in groups),
    ]
    lines += [f'"{name}","=""{code}""",' + ",".join(cells) for name, code, cells in rows]
    extract, catalog = landed(tmp_path, "enrollment.csv", "\r\n".join(lines) + "\r\n")
    text = new_starter(extract, catalog / "enrollment.yaml")
    columns = starter_columns(text)
    assert columns["White"]["type"] == "integer" and columns["Asian"]["null_values"] == ["N/A"]
    assert "until the agency fixes them: white: '12 3' (1 row)." in text
    hint = next(line for line in text.splitlines() if line.startswith("#   unpivot:"))
    assert "White]" in hint
    count_line = "#   - {source: count, type: integer, suppressed_values: ['*'], null_values: [N/A]}"
    assert count_line in text
    fill_todos(catalog / "enrollment.yaml")
    doc = yaml.safe_load((catalog / "enrollment.yaml").read_text(encoding="utf-8"))
    doc["ingest"]["unpivot"] = yaml.safe_load(hint[4:])["unpivot"]
    doc["columns"] = [c for c in doc["columns"] if c["source"] not in groups] + [
        yaml.safe_load(line[6:]) for line in text.splitlines() if line.startswith("#   - {source:")
    ]
    (catalog / "enrollment.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    summary, _, published = run_filled_starter(tmp_path, catalog, monkeypatch)
    assert (summary.rows_in, summary.rows_set_aside, summary.rows_published) == (40, 1, 40 * 3 - 1)
    white = [int(r["count"]) for r in published if r["race_ethnicity"] == "White"]
    assert len(white) == 39 and sum(white) == sum(900 + 7 * i for i in range(1, 41)) - (900 + 7 * 5)
    asian = {r["district"]: r.get("count") for r in published if r["race_ethnicity"] == "Asian"}
    assert asian["District 8"] is None and asian["District 9"] == "19"


def test_dates_with_two_digit_years_become_dates_once_the_person_gives_the_pivot_year(
    tmp_path: Path, monkeypatch
):
    """DCF's dates saved as 6/26/14 were typed as text with no hint, so the published dates were text and
    sorted as text. The starter now types them as dates and asks, with a marker, for the pivot year (the
    century is not the tool's to guess); filled, the run publishes real dates."""
    lines = ["Case,Opened,Built,Count"]
    lines += [
        f"C{i:03d},{1 + i % 12}/{1 + i % 28}/{14 + i % 5},{1 + i % 12}/15/{60 + i % 30},{i}"
        for i in range(60)
    ]
    extract, catalog = landed(tmp_path, "cases.csv", "\r\n".join(lines) + "\r\n")
    text = new_starter(extract, catalog / "cases.yaml")
    columns = starter_columns(text)
    for name in ("Opened", "Built"):
        assert columns[name]["type"] == "date" and columns[name]["format"]["date"] == "%m/%d/%y"
        assert columns[name]["format"]["pivot_year"].startswith("<<TODO: a number")
    # The marker says what the file's own years become under each choice.
    assert (
        "here they run from 14 to 18: 19 or more reads them all as 2014-2018, 14 or less as 1914-1918"
        in (columns["Opened"]["format"]["pivot_year"])
    )
    assert (
        "here they run from 60 to 89: 90 or more reads them all as 2060-2089, 60 or less as 1960-1989"
        in (columns["Built"]["format"]["pivot_year"])
    )
    fill_todos(catalog / "cases.yaml")
    refused = CliRunner().invoke(main, ["catalog", "validate", str(catalog / "cases.yaml")])
    assert refused.exit_code != 0 and "format.pivot_year: still holds the starter's" in refused.output
    path = catalog / "cases.yaml"
    path.write_text(
        re.sub(r"pivot_year: '<<TODO:[^']*>>'", "pivot_year: 50", path.read_text()), encoding="utf-8"
    )
    _, _, rows = run_filled_starter(tmp_path, catalog, monkeypatch)
    assert len(rows) == 60
    first = next(r for r in rows if r["case"] == "C000")
    assert first["opened"].startswith("2014-01-01") and first["built"].startswith("1960-01-15")


def test_a_column_unique_on_every_row_is_named_as_a_possible_row_identifier(tmp_path: Path):
    """OCME's ID differs on every row, but the starter's note only said 'a unique column': a new user did
    not set it. Columns with a value on every row, all different, are named; repeating ones are not."""
    lines = ["ID,Town,Date"] + [
        f"{18 - i % 3}-{i:04d},{'Hartford' if i % 2 else 'Mystic'},2018-01-0{1 + i % 9}" for i in range(40)
    ]
    lines.append("18-9999,,2018-01-01")  # a row without a town: town is not a candidate anyway
    extract, catalog = landed(tmp_path, "deaths.csv", "\r\n".join(lines) + "\r\n")
    text = new_starter(extract, catalog / "deaths.yaml")
    assert "# A different value on every row, so a possible row_identifier: id.\n" in text


def test_columns_named_for_a_persons_name_birth_date_or_record_are_marked_pii(tmp_path: Path, monkeypatch):
    """A new user had to find and mark a clinic extract's MRN, name and birth date columns; a name is
    found by no value pattern, so an unmarked one would have been published. The starter marks them and
    says so; a facility's name stays."""
    rows = [
        f"{100200 + i},Pat {i},0{1 + i % 9}/1{i % 9}/19{50 + i},Hartford,St. Francis,E{900 + i}"
        for i in range(30)
    ]
    extract, catalog = landed(
        tmp_path,
        "visits.csv",
        "MRN,Patient Name,DOB,Town,Facility Name,Employee ID\r\n" + "\r\n".join(rows) + "\r\n",
    )
    text = new_starter(extract, catalog / "visits.yaml")
    columns = starter_columns(text)
    assert {name for name, c in columns.items() if c.get("pii")} == {
        "MRN",
        "Patient Name",
        "DOB",
        "Employee ID",
    }
    assert (
        "Marked pii for their names (a person's name, birth date or record number): mrn, patient_name, dob, "
        "employee_id." in comments(text)
    )
    assert "possible row_identifier" not in text  # the MRN differs on every row, and is personal
    fill_todos(catalog / "visits.yaml")
    _, _, published = run_filled_starter(tmp_path, catalog, monkeypatch)
    assert len(published) == 30 and set(published[0]) == {"town", "facility_name"}


def test_zip_codes_stored_as_numbers_in_a_workbook_reach_the_portal_with_their_leading_zero(
    tmp_path: Path, monkeypatch
):
    """An agency's workbook holds ZIP codes as numbers (Excel shows 06810 as 6810): the starter types the
    column as a five-digit code, and the portal gets 06810, not 6810, on every row."""
    from openpyxl import Workbook

    for folder in ("landing", "catalog"):
        (tmp_path / folder).mkdir()
    book = Workbook()
    rows = [("Danbury", 6810, 14), ("Hartford", 6106, 9), ("Union", 6076, 2), ("Old Saybrook", 6475, 5)]
    for row in (("Town", "Client ZIP", "Requests"), *rows):
        book.active.append(row)
    book.save(tmp_path / "landing" / "requests.xlsx")
    text = new_starter(tmp_path / "landing" / "requests.xlsx", tmp_path / "catalog" / "requests.yaml")
    assert starter_columns(text)["Client ZIP"] | {"description": ""} == {
        "source": "Client ZIP",
        "type": "code",
        "width": 5,
        "description": "",
    }
    assert "`width: 5` publishes them as 06810: client_zip" in comments(text)
    fill_todos(tmp_path / "catalog" / "requests.yaml")
    summary, _, records = run_filled_starter(tmp_path, tmp_path / "catalog", monkeypatch)
    assert (summary.rows_in, summary.rows_set_aside, summary.rows_published) == (4, None, 4)
    published = sorted((r["town"], r["client_zip"], r["requests"]) for r in records)
    assert published == sorted((town, f"0{zip_code}", str(n)) for town, zip_code, n in rows)


def test_monthly_enrollees_by_month_written_as_text_get_a_sum_that_keeps_each_month_apart(
    tmp_path: Path, monkeypatch
):
    """A DSS-style extract: members enrolled in each month ("2025-01", as text) by town and race. The
    starter suggested counting rows (1 to 3 per cell) instead of summing Enrollees; the months, being
    text, were not time dimensions, and a sum over them counted each member three times."""
    months, towns, races = ["2025-01", "2025-02", "2025-03"], ["Hartford", "Union"], ["White", "Black"]
    lines = ["Town,Month,Race,Enrollees"]
    truth = {}
    for m, month in enumerate(months):
        for t, town in enumerate(towns):
            for r, race in enumerate(races):
                truth[(town, month, race)] = 60 + 40 * t + 9 * r + m
                lines.append(f"{town},{month},{race},{truth[(town, month, race)]}")
    extract, catalog = landed(tmp_path, "enrollment.csv", "\r\n".join(lines) + "\r\n")
    text = new_starter(extract, catalog / "enrollment.yaml")
    block = suggested_protect(text)
    assert (
        "{name: month, time: true}" in block[2]
        and "{name: enrollees, agg: sum, column: enrollees}" in block[2]
    )
    apply_suggested_protect(catalog / "enrollment.yaml", block, race_column="race")
    summary, _, rows = run_filled_starter(tmp_path, catalog, monkeypatch)
    published = {r["month"]: int(r["enrollees"]) for r in rows if r["rel_reporting_group"] == "Total"}
    assert published == {m: sum(n for k, n in truth.items() if k[1] == m) for m in months}  # no month summed


def test_a_case_number_is_a_record_number_never_a_count_to_sum(tmp_path: Path):
    """A helper's "Case Number" (1 to 100) was offered as the sum to publish by group, and published as
    5,050; it was not marked as a record number either."""
    lines = ["Case Number,Town,Race,Cases"] + [
        f"{i},Hartford,{'White' if i % 2 else 'Black'},1" for i in range(1, 101)
    ]
    extract, catalog = landed(tmp_path, "cases.csv", "\r\n".join(lines) + "\r\n")
    text = new_starter(extract, catalog / "cases.yaml")
    assert starter_columns(text)["Case Number"].get("pii") is True
    block = suggested_protect(text)
    assert "column: cases}" in block[2] and "case_number" not in block[2]


def test_numbers_that_name_an_identifier_are_typed_code_and_a_later_deliverys_zeros_survive(
    tmp_path: Path, monkeypatch
):
    """A new user's first file held license numbers without leading zeros, so the starter typed them
    integer, and the next delivery's 0012345 reached the portal as 12345; 20-digit trace numbers typed
    number were all published as 1.2345678901234567e+19, and product code 3E04 as 30000. Such columns
    are codes now, kept as written; counts stay integers."""
    header = "License Number,Town Code,Trace Number,Product Code,Visits,Total Number\n"

    def rows(first: str) -> str:
        lines = [
            f"{12345 + i},{100 + i},{12345678901234567800 + i},{'3E04' if i % 2 else '1E5'},{i % 7},{i * 3}"
            for i in range(1, 31)
        ]
        return header + "\n".join([first, *lines[1:]]) + "\n"

    extract, catalog = landed(tmp_path, "licenses.csv", rows("12346,101,12345678901234567801,3E04,1,3"))
    text = new_starter(extract, catalog / "licenses.yaml")
    types = {name: column["type"] for name, column in starter_columns(text).items()}
    assert types == {
        "License Number": "code",
        "Town Code": "code",
        "Trace Number": "code",
        "Product Code": "code",
        "Visits": "integer",
        "Total Number": "integer",
    }
    assert "trace_number (digits beyond the 15 a number keeps exactly)" in comments(text)
    fill_todos(catalog / "licenses.yaml")
    path = catalog / "licenses.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "row_identifier: trace_number\n", encoding="utf-8")
    run_filled_starter(tmp_path, catalog, monkeypatch)
    extract.write_text(rows("0012346,007,12345678901234567801,3E04,1,3"), encoding="utf-8")
    summary, _, records = run_filled_starter(tmp_path, catalog, monkeypatch)
    assert summary.rows_published == 30 and len(records) == 30
    first = next(r for r in records if r["trace_number"] == "12345678901234567801")
    assert (first["license_number"], first["town_code"], first["product_code"]) == ("0012346", "007", "3E04")
    assert len({r["trace_number"] for r in records}) == 30
    assert sorted(int(r["visits"]) for r in records) == sorted(i % 7 for i in range(1, 31))


def test_profile_and_starter_name_the_sheets_a_workbook_has_besides_the_one_read(tmp_path: Path):
    """A helper's workbook held one sheet per year; profile and the starter read the first and said
    nothing of the others, and 6 of 18 rows were published."""
    from openpyxl import Workbook

    book = Workbook()
    for k, year in enumerate(["2022", "2023", "2024"]):
        sheet = book.active if k == 0 else book.create_sheet()
        sheet.title = year
        sheet.append(["Town", "Slots"])
        sheet.append(["Hartford", 100 + k])
    extract, catalog = tmp_path / "slots.xlsx", tmp_path / "catalog"
    catalog.mkdir()
    book.save(extract)
    said = "read sheet '2022' only; the workbook also has '2023', '2024', not read"
    assert said in CliRunner().invoke(main, ["profile", str(extract)]).output
    assert "Read sheet '2022' only; the workbook also has '2023', '2024'" in comments(
        new_starter(extract, catalog / "slots.yaml")
    )


def test_a_table_of_visits_gets_a_suggested_sum_and_an_unknown_count_name_a_hint(tmp_path: Path):
    """A helper took the starter's protect block for ED visits by town and race: it counted rows, and the
    portal got 39 for every group where the file holds 634,197 visits."""
    lines = ["Town,Year,Race,Visits"] + [
        f"{t},{y},{r},{1000 + 17 * k}"
        for k, (t, y, r) in enumerate(
            (t, y, r) for t in ("Hartford", "Union") for y in (2021, 2022) for r in ("White", "Black")
        )
    ]
    extract, catalog = landed(tmp_path, "visits.csv", "\n".join(lines) + "\n")
    block = suggested_protect(new_starter(extract, catalog / "visits.yaml"))
    assert "measures: [{name: visits, agg: sum, column: visits}]" in block[2]
    tally = tmp_path / "landing" / "tally.csv"
    tally.write_text("\n".join(line.replace("Visits", "Tally") for line in lines) + "\n", encoding="utf-8")
    said = comments(new_starter(tally, catalog / "tally.yaml"))
    assert (
        "This counts rows (records). If each row already holds a count of people or events (perhaps tally)"
        in said
    )
    assert "measures: [{name: tally, agg: sum, column: tally}]" in said and "perhaps year" not in said


def test_a_rate_column_mixing_excel_percent_cells_and_typed_percents_is_published_on_one_scale(
    tmp_path: Path, monkeypatch
):
    """A helper's Rate column held Excel percent cells (0.793 shown as 79.3%) and typed text ("73.0%"):
    the portal got 0.793 beside 73 in one column, and its average was 30.3 where the rates average 78."""
    from openpyxl import Workbook

    for folder in ("landing", "catalog"):
        (tmp_path / folder).mkdir()
    book = Workbook()
    book.active.append(["Town", "Rate"])
    rates = {"Hartford": 0.793, "Union": "73.0%", "Salem": 0.8455, "Lyme": "84.4 %", "Kent": 1}
    for town, rate in rates.items():
        book.active.append([town, rate])
        if not isinstance(rate, str):
            book.active.cell(book.active.max_row, 2).number_format = "0.0%"
    book.save(tmp_path / "landing" / "rates.xlsx")
    text = new_starter(tmp_path / "landing" / "rates.xlsx", tmp_path / "catalog" / "rates.yaml")
    assert starter_columns(text)["Rate"] | {"description": ""} == {
        "source": "Rate",
        "type": "number",
        "format": {"percent": True},
        "description": "",
    }
    fill_todos(tmp_path / "catalog" / "rates.yaml")
    _, _, records = run_filled_starter(tmp_path, tmp_path / "catalog", monkeypatch)
    published = {r["town"]: float(r["rate"]) for r in records}
    assert published == {"Hartford": 79.3, "Union": 73.0, "Salem": 84.55, "Lyme": 84.4, "Kent": 100.0}
