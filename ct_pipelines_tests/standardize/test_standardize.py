"""REL standardization of DuckDB tables: columns added, reporting groups, checks, real OCME file."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from ct_pipelines.catalog.blocks.standardize import StandardizeConfig
from ct_pipelines.core.outcomes import Severity
from ct_pipelines.standardize.standardize import rel_check_specs, rel_checks, standardize_table

OCME = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "data"
    / "ct"
    / "ct_ocme_accidental_drug_deaths_2012_2018.csv"
)


@pytest.fixture
def con():
    connection = duckdb.connect()
    yield connection
    connection.close()


def _table(con, name: str, columns: list[str], rows: list[tuple]) -> None:
    con.execute(f"CREATE TABLE {name} ({', '.join(f'{c} VARCHAR' for c in columns)})")
    con.executemany(f"INSERT INTO {name} VALUES ({', '.join('?' for _ in columns)})", rows)


def _config(**kwargs) -> StandardizeConfig:
    return StandardizeConfig.model_validate(kwargs)


def test_separate_race_and_ethnicity_columns_with_a_source_code_map(con):
    _table(
        con,
        "stops",
        ["id", "race", "ethnicity"],
        [
            ("1", "W", "H"),
            ("2", "B", "N"),
            ("3", "A", None),
            ("4", "W", "M"),
            ("5", "X", "N"),
            ("6", None, None),
        ],
    )
    config = _config(
        columns=[{"column": "race", "field": "race"}, {"column": "ethnicity", "field": "ethnicity"}],
        source="ct_racial_profiling",
    )
    result = standardize_table(con, "stops", "stops_std", config)
    rows = {
        r[0]: r[1:]
        for r in con.execute(
            "SELECT id, race, race_status, race_omb1997, ethnicity_hispanic, ethnicity_spd15, rel_reporting_group "
            "FROM stops_std"
        ).fetchall()
    }
    assert rows["1"] == ("W", "reported", "WHITE", True, "HISPANIC", "Hispanic")
    assert rows["2"] == ("B", "reported", "BLACK", False, None, "Non-Hispanic Black")
    # A missing ethnicity is not evidence of non-Hispanic origin (DPH counts it as non-Hispanic;
    # we say it is unknown rather than publish a group the source never collected)
    assert rows["3"][-1] == "Asian (Hispanic origin unknown)"
    # CTRP3 ethnicity M (Middle Eastern) is MENA in 2024 terms but does not add a race
    assert rows["4"][-2:] == ("MENA", "Non-Hispanic White")
    assert rows["5"][1] == "unmapped" and rows["5"][-1] == "Not standardized"  # read, not unknown
    assert rows["6"][1] == "not_collected" and rows["6"][-1] == "Unknown"
    assert result.row_count == 6
    assert result.columns[0].status_counts == {"reported": 4, "unmapped": 1, "not_collected": 1}
    assert sum(result.reporting_groups.values()) == 6
    assert result.not_collected == ["language"]


def test_raw_columns_are_kept_and_rows_preserved(con):
    _table(
        con,
        "t",
        ["id", "race"],
        [(str(i), v) for i, v in enumerate(["White", "Black", "White", None, "Asian"])],
    )
    standardize_table(con, "t", "t_std", _config(columns=[{"column": "race", "field": "race_ethnicity"}]))
    original = con.execute("SELECT id, race FROM t ORDER BY id").fetchall()
    assert con.execute("SELECT id, race FROM t_std ORDER BY id").fetchall() == original
    columns = [r[0] for r in con.execute("DESCRIBE t_std").fetchall()]
    for suffix in ("status", "hispanic", "omb1997", "spd15", "two_or_more", "detailed", "candidates"):
        assert f"race_{suffix}" in columns
    assert "rel_reporting_group" in columns


def test_language_columns_get_iso_codes(con):
    _table(con, "p", ["lang"], [("Spanish",), ("Haitian Creole",), ("Creole",), ("Unknown",), ("Spanish",)])
    standardize_table(con, "p", "p_std", _config(columns=[{"column": "lang", "field": "language"}]))
    rows = con.execute(
        "SELECT lang, lang_status, lang_iso639_3, lang_candidates FROM p_std ORDER BY lang"
    ).fetchall()
    assert rows[0][:3] == ("Creole", "ambiguous", None) and "hat" in rows[0][3]
    assert ("Haitian Creole", "reported", "hat", None) in rows
    assert rows.count(("Spanish", "reported", "spa", None)) == 2
    assert "rel_reporting_group" not in [r[0] for r in con.execute("DESCRIBE p_std").fetchall()]


def test_a_language_answer_that_names_no_listed_language_is_kept_apart_from_unknown(con):
    """A helper aggregated clients by the ISO code: 103 who answered "Other", 100 "Unknown" and 197 blank
    were all published as "Not reported", and the languages as codes (hat, yue). The language group keeps
    "Other language" apart and names each language."""
    labels = ["Spanish"] * 7 + ["Cantonese"] * 3 + ["Other"] * 4 + ["Unknown"] * 2 + [None] * 5
    labels += ["Creole", "Declined", "English and Spanish"]
    _table(con, "p", ["lang"], [(label,) for label in labels])
    standardize_table(con, "p", "p_std", _config(columns=[{"column": "lang", "field": "language"}]))
    groups = dict(con.execute("SELECT lang_language_group, count(*) FROM p_std GROUP BY ALL").fetchall())
    assert groups == {
        "Spanish": 7,
        "Yue Chinese": 3,
        "Other language": 4,
        "Unknown": 7,
        "Not standardized": 1,
        "Declined": 1,
        "Multiple languages": 1,
    }
    assert sum(groups.values()) == len(labels)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (
            "ct_dph",
            {
                "Hispanic, White": "Hispanic",
                "White, Black": "Non-Hispanic Two or More Races",
                "Lebanese": "Non-Hispanic White",
            },
        ),
        (
            "spd15_alone",
            {
                "Hispanic, White": "Multiracial and/or Multiethnic",
                "White, Black": "Multiracial and/or Multiethnic",
                "Lebanese": "Middle Eastern or North African alone",
            },
        ),
        (
            "omb1997",
            {
                "Hispanic, White": "White alone",
                "White, Black": "Two or More Races",
                "Lebanese": "White alone",
            },
        ),
    ],
)
def test_reporting_rules(con, rule, expected):
    _table(con, "t", ["race"], [(k,) for k in expected])
    config = _config(columns=[{"column": "race", "field": "race_ethnicity"}], reporting_rule=rule)
    standardize_table(con, "t", "t_std", config)
    assert dict(con.execute("SELECT race, rel_reporting_group FROM t_std").fetchall()) == expected


def test_check_lists_unmapped_and_ambiguous_values_and_escalates_by_share(con):
    rows = [("White",)] * 90 + [("Martian",)] * 6 + [("Other/Unknown",)] * 4
    _table(con, "t", ["race"], rows)
    for share, severity in ((0.2, Severity.WARN), (0.05, Severity.ERROR)):
        config = _config(columns=[{"column": "race", "field": "race_ethnicity"}], max_unmapped_share=share)
        standardize_table(con, "t", "t_std", config)
        (outcome,) = rel_checks(con, "t_std", config)
        assert not outcome.passed and outcome.severity == severity
        assert outcome.metadata["problem_rows"] == 10
        values = {v["raw"]: (v["status"], v["count"]) for v in outcome.metadata["values"]}
        assert values == {"Martian": ("unmapped", 6), "Other/Unknown": ("ambiguous", 4)}
        assert "10 of 100 rows" in outcome.summary
        json.dumps(outcome.metadata)
    assert outcome.name == rel_check_specs(config)[0].name


def test_a_1977_asian_or_pacific_islander_answer_has_its_own_group_and_blocks_nothing(con):
    """DMHAS's "Asian/Pacific Islander" was counted as unread and blocked the run, whose message offered
    a map to Asian or to NHPI: either claims what the source did not collect. It has a group of its own."""
    rows = [("White",)] * 80 + [("Asian/Pacific Islander",)] * 16 + [("Martian",)] * 4
    _table(con, "t", ["race"], rows)
    config = _config(columns=[{"column": "race", "field": "race_ethnicity"}])
    standardize_table(con, "t", "t_std", config)
    (outcome,) = rel_checks(con, "t_std", config)
    assert outcome.severity == Severity.WARN and outcome.metadata["problem_rows"] == 4
    assert "Asian/Pacific Islander" not in outcome.summary and "4 of 100 rows" in outcome.summary
    groups = con.execute("SELECT rel_reporting_group, count(*) FROM t_std GROUP BY 1 ORDER BY 1").fetchall()
    assert groups == [
        ("Non-Hispanic Asian or Pacific Islander (not separable)", 16),
        ("Non-Hispanic White", 80),
        ("Not standardized", 4),
    ]


def test_a_pooled_other_unknown_group_is_asked_about_then_mapped_as_the_agency_says(con):
    rows = [("White",)] * 96 + [("Other/Unknown",)] * 4
    _table(con, "t", ["race"], rows)
    config = _config(columns=[{"column": "race", "field": "race"}])
    standardize_table(con, "t", "t_std", config)
    (outcome,) = rel_checks(con, "t_std", config)
    assert not outcome.passed and outcome.metadata["problem_rows"] == 4
    assert '"Other/Unknown": "TODO"  # 4 rows; ambiguous: one of "Other", "Unknown"' in outcome.summary
    assert con.execute("SELECT count(*) FROM t_std WHERE race_other_race").fetchone() == (0,)

    mapped = _config(
        columns=[{"column": "race", "field": "race"}], code_map={"race": {"Other/Unknown": "Unknown"}}
    )
    standardize_table(con, "t", "t_std", mapped)
    (outcome,) = rel_checks(con, "t_std", mapped)
    assert outcome.passed
    counts = con.execute("SELECT race_status, count(*) FROM t_std GROUP BY ALL ORDER BY 1").fetchall()
    assert counts == [("reported", 96), ("unknown", 4)]
    assert con.execute(
        "SELECT DISTINCT rel_reporting_group FROM t_std WHERE race_status = 'unknown'"
    ).fetchall() == [("Unknown",)]


def test_a_state_total_row_is_not_published_in_the_unknown_group(con):
    """DPH's mortality table has an ALL RACES/ETHNICITIES row per year and cause. Left unmapped under a
    raised max_unmapped_share, those rows were published with reporting group "Unknown", which then held
    1,491,766 deaths, the state's own total. A label the reference did not read is "Not standardized"."""
    rows = [("WHITE, NON-HISPANIC",)] * 40 + [("ALL RACES/ETHNICITIES",)] * 10 + [("Unknown",)] * 2
    _table(con, "t", ["race"], rows)
    config = _config(columns=[{"column": "race", "field": "race_ethnicity"}], max_unmapped_share=0.25)
    standardize_table(con, "t", "t_std", config)
    groups = dict(con.execute("SELECT rel_reporting_group, count(*) FROM t_std GROUP BY ALL").fetchall())
    assert groups == {"Non-Hispanic White": 40, "Not standardized": 10, "Unknown": 2}
    (outcome,) = rel_checks(con, "t_std", config)
    # a total is left out at ingest, not mapped to a group
    assert (
        'leave_out:\n  - {name: "total all races/ethnicities", column: race, equals: "ALL RACES/ETHNICITIES"}'
        in outcome.summary
    )


def test_check_passes_when_everything_is_recognized(con):
    _table(con, "t", ["race"], [("White",), (None,), ("Unknown",)])
    config = _config(columns=[{"column": "race", "field": "race"}])
    standardize_table(con, "t", "t_std", config)
    (outcome,) = rel_checks(con, "t_std", config)
    assert outcome.passed and not outcome.blocks


def test_specs_come_from_config_alone():
    config = _config(columns=[{"column": "race", "field": "race"}, {"column": "lang", "field": "language"}])
    assert [s.name for s in rel_check_specs(config)] == [
        "rel_race_labels_recognized",
        "rel_lang_labels_recognized",
    ]


def test_missing_column_error_names_the_column_and_the_fix(con):
    _table(con, "t", ["race"], [("White",)])
    with pytest.raises(ValueError, match=r"Race_Ethn.*standardize\.columns"):
        standardize_table(con, "t", "t_std", _config(columns=[{"column": "Race_Ethn", "field": "race"}]))


def test_typed_columns_are_matched_as_text(con):
    con.execute("CREATE TABLE t AS SELECT * FROM (VALUES (1), (2), (NULL)) v(race_code)")
    config = _config(
        columns=[{"column": "race_code", "field": "race"}], code_map={"race": {"1": "White", "2": "Black"}}
    )
    standardize_table(con, "t", "t_std", config)
    got = dict(con.execute("SELECT race_code, race_code_omb1997 FROM t_std").fetchall())
    assert got == {1: "WHITE", 2: "BLACK", None: None}


def test_ocme_extract_has_no_unmapped_race_values(con):
    if not OCME.exists():
        pytest.skip("shared CT extracts not present")
    con.execute(f"CREATE TABLE ocme AS SELECT * FROM read_csv('{OCME}', all_varchar=true)")
    config = _config(columns=[{"column": "Race", "field": "race_ethnicity"}])
    result = standardize_table(con, "ocme", "ocme_std", config)
    assert (
        "unmapped" not in result.columns[0].status_counts
        and "ambiguous" not in result.columns[0].status_counts
    )
    hispanic_white = con.execute(
        "SELECT DISTINCT Race_hispanic, Race_omb1997 FROM ocme_std WHERE Race = 'Hispanic, White'"
    ).fetchall()
    assert hispanic_white == [(True, "WHITE")]
    asian_other = con.execute(
        "SELECT DISTINCT Race_omb1997, Race_two_or_more FROM ocme_std WHERE Race = 'Asian, Other'"
    ).fetchall()
    assert asian_other == [("ASIAN", False)]
    assert rel_checks(con, "ocme_std", config)[0].passed


def test_standardized_rows_are_a_view_over_stored_labels_that_refuses_a_label_it_has_not_seen(con):
    """No copy of the rows: the label tables hold each distinct label once with its row count, and a
    label the source gains after standardize ran stops the read instead of reaching the portal uncategorized."""
    rows = [
        ("1", "White", "Spanish"),
        ("2", "White", "English"),
        ("3", "Black", "Spanish"),
        ("4", None, "es"),
    ]
    _table(con, "valid", ["id", "race", "lang"], rows)
    config = _config(
        columns=[{"column": "race", "field": "race_ethnicity"}, {"column": "lang", "field": "language"}],
        max_unmapped_share=1.0,
    )
    result = standardize_table(con, "valid", "std", config)
    assert result.row_count == 4
    assert con.execute(
        "SELECT table_type FROM information_schema.tables WHERE table_name = 'std'"
    ).fetchone() == ("VIEW",)
    assert con.execute("SELECT _raw_0, _rows FROM std_labels_0 ORDER BY 1 NULLS FIRST").fetchall() == [
        (None, 1),
        ("Black", 1),
        ("White", 2),
    ]
    assert con.execute("SELECT _raw_0, lang_iso639_3, _rows FROM std_labels_1 ORDER BY 1").fetchall() == [
        ("English", "eng", 1),
        ("Spanish", "spa", 2),
        ("es", "spa", 1),
    ]
    assert con.execute("SELECT id, race, race_spd15, lang_iso639_3 FROM std ORDER BY id").fetchall() == [
        ("1", "White", "WHITE", "spa"),
        ("2", "White", "WHITE", "eng"),
        ("3", "Black", "BLACK", "spa"),
        ("4", None, None, "spa"),
    ]
    race, lang = rel_checks(con, "std", config)
    assert (race.metadata["rows"], race.metadata["problem_rows"], lang.metadata["problem_rows"]) == (4, 0, 0)

    con.execute("INSERT INTO valid VALUES ('5', 'Martian', 'Spanish')")  # validate re-run, standardize not
    assert con.execute("SELECT count(*) FROM std").fetchone() == (5,)
    with pytest.raises(duckdb.InvalidInputException, match="run standardize again before reading 'std'"):
        con.execute("SELECT race_spd15, count(*) FROM std GROUP BY ALL").fetchall()
    standardize_table(con, "valid", "std", config)
    (martian,) = con.execute("SELECT race_status FROM std WHERE id = '5'").fetchone()
    assert martian == "unmapped"
    assert rel_checks(con, "std", config)[0].metadata["problem_rows"] == 1

    standardize_table(con, "valid", "std", _config(columns=[{"column": "lang", "field": "language"}]))
    labels = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE 'std_labels%'"
    ).fetchall()
    assert labels == [("std_labels_0",)]  # the old race label table is gone with the race column


def test_a_misspelled_column_is_named_with_the_one_meant(con):
    """A new user's 'racee' failed with the 43 columns listed, internal _row among them, and no hint."""
    _table(con, "t", ["_row", "id", "race", "ethnicity"], [("1", "a", "White", "Hispanic")])
    with pytest.raises(ValueError) as failed:
        standardize_table(con, "t", "t_std", _config(columns=[{"column": "racee", "field": "race"}]))
    message = str(failed.value)
    assert "column(s) racee not found in table 't' (did you mean 'race' for 'racee'?)" in message
    assert message.endswith("the table has: id, race, ethnicity")


@pytest.mark.parametrize(
    ("raw", "target", "said"),
    [
        (
            "ALL RACES/ETHNICITIES",
            "Total",
            "no standard label stands for; a row that totals the others is left out",
        ),
        (
            "ALL RACES/ETHNICITIES",
            "TODO",
            "replace TODO with the standard label it stands for, or remove the line",
        ),
        ("WH", "Whte", "which is not a label the REL reference reads, so those rows would stay unmapped"),
    ],
)
def test_a_code_map_target_the_reference_cannot_read_is_refused_before_the_run(tmp_path, raw, target, said):
    """A helper mapped "ALL RACES/ETHNICITIES" to "Total": `catalog validate` said valid, and the run
    stopped again asking for the same TODO. The target is checked against the reference tables."""
    from click.testing import CliRunner

    from ct_pipelines.cli import main

    (tmp_path / "landing").mkdir()
    (tmp_path / "catalog").mkdir()
    (tmp_path / "landing" / "deaths.csv").write_text(f"Year,Race\n2020,{raw}\n", encoding="utf-8")
    (tmp_path / "catalog" / "deaths.yaml").write_text(
        "id: deaths\ntitle: Deaths by race\ndescription: Deaths by year and race, from death certificates.\n"
        "agency: Department of Public Health\ncategory: Health and Human Services\nupdate_frequency: Annually\n"
        "contact: dph@ct.gov\ningest: {path: deaths.csv}\n"
        "columns: [{source: Year, type: integer}, {source: Race}]\n"
        "standardize:\n  columns: [{column: race, field: race_ethnicity}]\n"
        f"  code_map: {{race_ethnicity: {{'{raw}': {target}, 'Wht': White}}}}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["catalog", "validate", str(tmp_path / "catalog")])
    assert result.exit_code == 1
    assert f'standardize.code_map.race_ethnicity: "{raw}" is mapped to "{target}"' in result.output
    assert said in result.output and '"Wht"' not in result.output
