"""Reporting groups only from what the source collected (issue 12.1).

Inputs are CSV files written the way agencies export them (BOM, CRLF, a survey's own wording)
and read by DuckDB; every row's published group is asserted.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from ct_pipelines.catalog.blocks.standardize import StandardizeConfig
from ct_pipelines.standardize.standardize import standardize_table
from ct_pipelines_tests.support.catalog_run import run_and_read_portal


@pytest.fixture
def con():
    connection = duckdb.connect()
    yield connection
    connection.close()


def _load_csv(con: duckdb.DuckDBPyConnection, path: Path, text: str) -> None:
    path.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"))
    con.execute(f"CREATE TABLE src AS SELECT * FROM read_csv('{path}', all_varchar=true, header=true)")


def _groups(con: duckdb.DuckDBPyConnection, config: dict) -> tuple[dict[str, str], object]:
    result = standardize_table(con, "src", "std", StandardizeConfig.model_validate(config))
    rows = con.execute("SELECT respondent, rel_reporting_group FROM std ORDER BY respondent").fetchall()
    return dict(rows), result


SURVEY = """respondent,What is your race? (Select all that apply),County
01,White,Hartford
02,Black or African American,New Haven
03,Asian,Fairfield
04,"White, Black or African American",Hartford
05,American Indian or Alaska Native,New London
06,Some other race,Hartford
07,Prefer not to answer,Tolland
08,,Windham
09,Native Hawaiian or Other Pacific Islander,Hartford
10,White,Litchfield
"""


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (
            "ct_dph",
            {
                "01": "White (Hispanic origin unknown)",
                "02": "Black (Hispanic origin unknown)",
                "03": "Asian (Hispanic origin unknown)",
                "04": "Two or More Races (Hispanic origin unknown)",
                "05": "American Indian or Alaska Native (Hispanic origin unknown)",
                "06": "Other Race (Hispanic origin unknown)",
                "07": "Unknown",
                "08": "Unknown",
                "09": "Native Hawaiian or Other Pacific Islander (Hispanic origin unknown)",
                "10": "White (Hispanic origin unknown)",
            },
        ),
        (
            "spd15_alone",
            {
                "01": "White (Hispanic origin unknown)",
                "02": "Black or African American (Hispanic origin unknown)",
                "03": "Asian (Hispanic origin unknown)",
                "04": "Multiracial and/or Multiethnic",
                "05": "American Indian or Alaska Native (Hispanic origin unknown)",
                "06": "Another race (Hispanic origin unknown)",
                "07": "Unknown",
                "08": "Unknown",
                "09": "Native Hawaiian or Pacific Islander (Hispanic origin unknown)",
                "10": "White (Hispanic origin unknown)",
            },
        ),
        (
            # OMB 1997 tabulates race apart from origin, so race groups stay as they are
            "omb1997",
            {
                "01": "White alone",
                "02": "Black alone",
                "03": "Asian alone",
                "04": "Two or More Races",
                "05": "American Indian or Alaska Native alone",
                "06": "Some Other Race",
                "07": "Unknown",
                "08": "Unknown",
                "09": "Native Hawaiian or Other Pacific Islander alone",
                "10": "White alone",
            },
        ),
    ],
)
def test_race_only_survey_never_becomes_non_hispanic(con, tmp_path, rule, expected):
    _load_csv(con, tmp_path / "survey.csv", SURVEY)
    column = "What is your race? (Select all that apply)"
    groups, result = _groups(con, {"columns": [{"column": column, "field": "race"}], "reporting_rule": rule})
    assert groups == expected
    assert result.row_count == 10
    assert result.not_collected == ["hispanic_origin", "language"]
    hispanic = con.execute(f'SELECT count(*) FROM std WHERE "{column}_hispanic" IS NOT NULL').fetchone()[0]
    assert hispanic == 0
    assert not any(g.startswith("Non-Hispanic") for g in groups.values())


COMBINED = """respondent,race_eth
01,"Hispanic, White"
02,White
03,Non-Hispanic Black
04,"White, Unknown"
05,Black (ethnicity unknown)
06,WHITE - ETHNICITY UNKNOWN
07,Multiple race/ethnicity
08,Asian/Pacific Islander
09,Unknown
10,Other
11,"Asian, Declined"
12,White (Hispanic origin unknown)
"""


def test_combined_column_labels_that_leave_origin_open_keep_it_unknown(con, tmp_path):
    _load_csv(con, tmp_path / "combined.csv", COMBINED)
    groups, result = _groups(con, {"columns": [{"column": "race_eth", "field": "race_ethnicity"}]})
    assert groups == {
        "01": "Hispanic",
        # a combined question offered Hispanic and it was not chosen (SPD 15 / 1977 format)
        "02": "Non-Hispanic White",
        "03": "Non-Hispanic Black",
        # the label's own words leave origin open: race kept, origin unknown
        "04": "White (Hispanic origin unknown)",
        "05": "Black (Hispanic origin unknown)",
        "06": "White (Hispanic origin unknown)",
        "07": "Two or More Races (Hispanic origin unknown)",
        "08": "Non-Hispanic Asian or Pacific Islander (not separable)",
        "09": "Unknown",
        "10": "Non-Hispanic Other Race",
        "11": "Asian (Hispanic origin unknown)",
        # our own published wording reads back to the same group
        "12": "White (Hispanic origin unknown)",
    }
    assert result.not_collected == ["language"]
    nulls = con.execute("SELECT respondent FROM std WHERE race_eth_hispanic IS NULL ORDER BY 1").fetchall()
    assert [r[0] for r in nulls] == ["04", "05", "06", "07", "09", "11", "12"]


def test_race_and_ethnicity_columns_with_blank_or_unknown_ethnicity(con, tmp_path):
    text = """respondent,race,hispanic_latino
01,White,No
02,White,Yes
03,Black,
04,Asian,Unknown
05,Black,Declined
06,"White, Asian",No
"""
    _load_csv(con, tmp_path / "two_questions.csv", text)
    config = {
        "columns": [
            {"column": "race", "field": "race"},
            {"column": "hispanic_latino", "field": "ethnicity"},
        ]
    }
    groups, result = _groups(con, config)
    assert groups == {
        "01": "Non-Hispanic White",
        "02": "Hispanic",
        "03": "Black (Hispanic origin unknown)",
        "04": "Asian (Hispanic origin unknown)",
        "05": "Black (Hispanic origin unknown)",
        "06": "Non-Hispanic Two or More Races",
    }
    assert result.not_collected == ["language"]


def test_ethnicity_only_source_gets_no_race_groups(con, tmp_path):
    text = "respondent,ethnicity\n01,Hispanic or Latino\n02,Not Hispanic or Latino\n03,Unknown\n"
    _load_csv(con, tmp_path / "eth.csv", text)
    for rule, expected in (
        ("ct_dph", ["Hispanic", "Non-Hispanic (race not collected)", "Unknown"]),
        (
            "spd15_alone",
            [
                "Hispanic or Latino (race not collected)",
                "Not Hispanic or Latino (race not collected)",
                "Unknown",
            ],
        ),
        ("omb1997", ["Race not collected"] * 3),
    ):
        groups, result = _groups(
            con, {"columns": [{"column": "ethnicity", "field": "ethnicity"}], "reporting_rule": rule}
        )
        assert list(groups.values()) == expected, rule
        assert result.not_collected == ["race", "language"]


def test_language_only_source_says_race_and_origin_were_not_collected(con, tmp_path):
    _load_csv(con, tmp_path / "lang.csv", "respondent,lang\n01,Spanish\n02,pt-BR\n")
    result = standardize_table(
        con,
        "src",
        "std",
        StandardizeConfig.model_validate({"columns": [{"column": "lang", "field": "language"}]}),
    )
    assert result.not_collected == ["race", "hispanic_origin"]
    assert con.execute("SELECT lang_iso639_3 FROM std ORDER BY respondent").fetchall() == [("spa",), ("por",)]


def _publish(tmp_path: Path, extract: bytes, yaml_text: str):
    """Land the extract, run its catalog, and read back the dataset's summary, portal view and rows."""
    for folder in ("landing", "catalog"):
        (tmp_path / folder).mkdir(exist_ok=True)
    (tmp_path / "landing" / "extract.csv").write_bytes(extract)
    (tmp_path / "catalog" / "dataset.yaml").write_text(yaml_text, encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        return run_and_read_portal(tmp_path, tmp_path / "catalog", mp)


def test_race_only_survey_says_so_on_the_portal(tmp_path):
    """The published dataset's description tells readers Hispanic origin was not collected."""
    summary, ((view, records),) = _publish(
        tmp_path,
        b"\xef\xbb\xbf" + SURVEY.replace("\n", "\r\n").encode(),
        "id: race_survey\ntitle: Race survey answers\ndescription: Answers to a survey that asked race only.\n"
        "agency: Department of Testing\ncategory: Government\ntags: [survey]\nupdate_frequency: Annually\n"
        "contact: t@ct.gov\ningest:\n  path: extract.csv\ncolumns:\n  - source: respondent\n    type: code\n"
        "  - source: What is your race? (Select all that apply)\n    field_name: race\n  - source: County\n"
        "standardize:\n  columns:\n    - column: race\n      field: race\n",
    )
    assert summary.ok, summary.error or summary.failed_checks
    groups = {r["rel_reporting_group"] for r in records}
    assert "did not collect Hispanic origin" in view["description"]
    assert not any(g.startswith("Non-Hispanic") for g in groups if g)


# OCME's export: one Race column whose labels mix in Hispanic origin, a residence column running over lines.
OCME = """ID,Date,Race,ResidenceCityGeo
12-0001,01/02/2012,White,"HARTFORD, CT
(41.76, -72.67)"
12-0002,01/03/2012,"Hispanic, White","NEW BRITAIN, CT
(41.66, -72.77)"
12-0003,01/03/2012,Black,"HARTFORD, CT
(41.76, -72.67)"
12-0004,01/05/2012,"Hispanic, Black",WATERBURY
12-0005,01/07/2012,"Hispanic, White",MERIDEN
12-0006,01/09/2012,Asian Indian,
"""
OCME_YAML = """\
id: drug_deaths
title: Accidental drug related deaths
description: Deaths from accidental drug overdose, one row per person, for tests.
agency: Office of the Chief Medical Examiner
category: Health and Human Services
update_frequency: Annually
contact: ocme@ct.gov
ingest: {path: extract.csv}
columns:
- {source: ID, pii: true}
- {source: Date, type: date}
- {source: Race}
- {source: ResidenceCityGeo, pii: true}
standardize:
  columns: [{column: race, field: FIELD}]
protect:
  mode: aggregate
  aggregate: {dimensions: [rel_reporting_group], measures: [{name: deaths}]}
"""


@pytest.mark.parametrize("crlf", [False, True])
def test_a_race_column_whose_labels_answer_hispanic_origin_is_not_published_as_race_only(tmp_path, crlf):
    """Declared field: race, OCME's 'Hispanic, White' would be published as a Hispanic group beside a
    description saying origin was not collected; the run stops and says to declare race_ethnicity."""
    extract = b"\xef\xbb\xbf" + (OCME.replace("\n", "\r\n") if crlf else OCME).encode()
    summary, published = _publish(tmp_path, extract, OCME_YAML.replace("FIELD", "race"))
    assert not summary.ok and published == []
    (blocking,) = summary.blocking_summaries
    assert (
        "'race' is declared as field: race, but 3 of 6 rows have a label that also answers Hispanic "
        in blocking
    )
    assert '"Hispanic, White" (2 rows), "Hispanic, Black" (1 rows)' in blocking
    assert "declare the column as field: race_ethnicity" in blocking
    summary, ((view, records),) = _publish(tmp_path, extract, OCME_YAML.replace("FIELD", "race_ethnicity"))
    assert summary.ok, summary.error or summary.failed_checks
    assert "did not collect" not in view["description"]
    described = {c["fieldName"]: c.get("description") for c in view["columns"]}
    assert described == {  # columns the pipeline made, described although the YAML says nothing of them
        "rel_reporting_group": "The row's race and ethnicity reporting group (ct_dph rule), built only from "
        "what the source collected; Hispanic of any race, then non-Hispanic races as OMB 1997 defines them "
        "(Middle Eastern or North African answers within White) and Two or More Races",
        "deaths": "Number of rows in this group",
    }
    deaths = {r["rel_reporting_group"]: int(r["deaths"]) for r in records}
    assert deaths["Hispanic"] == 3 and deaths["Non-Hispanic White"] == 1 and deaths["Total"] == 6
    warehouse = duckdb.connect(str(tmp_path / "home" / "warehouse" / "drug_deaths.duckdb"), read_only=True)
    (facts,) = warehouse.execute(
        "SELECT facts FROM meta.stage_results WHERE stage = 'protect' AND status = 'ok'"
    ).fetchone()
    warehouse.close()
    assert json.loads(facts)["pii_columns_left_out"] == [
        "id",
        "residence_city_geo",
    ]  # once [], though left out


MULTI_SELECT = """respondent,race_eth
01,Black;Other
02,White;Some other race
03,Middle Eastern or North African;Other
04,"Asian, Other"
05,Other
06,Black;White
"""


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (
            "ct_dph",
            ["Non-Hispanic Two or More Races"] * 3
            + ["Non-Hispanic Asian", "Non-Hispanic Other Race", "Non-Hispanic Two or More Races"],
        ),
        (
            "spd15_alone",
            ["Multiracial and/or Multiethnic"] * 3
            + ["Asian alone", "Another race or ethnicity"]
            + ["Multiracial and/or Multiethnic"],
        ),
        ("omb1997", ["Two or More Races"] * 3 + ["Asian alone", "Some Other Race", "Two or More Races"]),
    ],
)
def test_other_ticked_beside_a_race_in_a_multi_select_export_is_a_second_race(con, tmp_path, rule, expected):
    """A helper's 2024-style export wrote "Black;Other": the person ticked two boxes, and was published as
    "Black alone". "Asian, Other" (other Asian) stays Asian."""
    _load_csv(con, tmp_path / "multi.csv", MULTI_SELECT)
    config = {"columns": [{"column": "race_eth", "field": "race_ethnicity"}], "reporting_rule": rule}
    groups, _ = _groups(con, config)
    assert list(groups.values()) == expected


def test_spd15_alone_is_refused_for_race_and_ethnicity_asked_apart():
    """A helper's DMHAS admissions (race and Hispanic origin in two columns, as OMB 1997 asks them) under
    spd15_alone published 9,749 of 20,266 admissions as 'Multiracial and/or Multiethnic'."""
    columns = [{"column": "race", "field": "race"}, {"column": "hispanic", "field": "ethnicity"}]
    with pytest.raises(ValueError) as refused:
        StandardizeConfig.model_validate({"columns": columns, "reporting_rule": "spd15_alone"})
    assert "this source asked race and ethnicity apart" in str(refused.value)
    assert "use reporting_rule: ct_dph (Hispanic of any race) or omb1997" in str(refused.value)
    for rule in ("ct_dph", "omb1997"):
        assert (
            StandardizeConfig.model_validate({"columns": columns, "reporting_rule": rule}).reporting_rule
            == rule
        )


def test_middle_eastern_or_north_african_answers_counted_within_white_are_said_so(con, tmp_path):
    """A helper's 2024-question extract published its MENA answers as Non-Hispanic White under ct_dph,
    with nothing in the run's output or the portal's description to say so."""
    from ct_pipelines.catalog.models import Dataset, published_column_description
    from ct_pipelines.standardize.run import run

    text = "race_eth\nMiddle Eastern or North African\nWhite;Middle Eastern or North African\nWhite\nBlack\n"
    _load_csv(con, tmp_path / "mena.csv", text)
    con.execute("CREATE TABLE validate__mena AS SELECT * FROM src")
    said: list[str] = []
    for rule, counted in (("ct_dph", 2), ("spd15_alone", 0)):
        dataset = Dataset.model_validate(
            {
                "id": "mena",
                "title": "Enrollment by race and ethnicity",
                "description": "Rows for a test of the MENA note.",
                "agency": "Department of Social Services",
                "category": "Health and Human Services",
                "update_frequency": "Monthly",
                "contact": "dss.data@ct.gov",
                "ingest": {"path": "mena.csv"},
                "standardize": {
                    "columns": [{"column": "race_eth", "field": "race_ethnicity"}],
                    "reporting_rule": rule,
                },
            }
        )
        result = run(con, dataset, None, run_id="r", progress=said.append)
        assert result.facts["mena_within_white"] == counted
        described = published_column_description(dataset, "rel_reporting_group")
        assert ("Middle Eastern or North African answers within White" in described) == (rule == "ct_dph")
    assert (
        "2 rows answered Middle Eastern or North African, which the ct_dph rule counts within White"
        in said[0]
    )
    assert "counts within White" not in said[1]
