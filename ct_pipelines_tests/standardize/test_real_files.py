"""`rel map` and standardization on the real CT extracts in shared/data/ct (skipped without them).

DCF (tnyk-6fv7) changes labels between snapshots (`BLACK` in 2014, `Non-Hispanic Black` later)
in one combined column where Hispanic is its own category; SDE EdSight puts the federal
education race/ethnicity categories in its header (Hispanic/Latino of any race, the others
non-Hispanic). Expected values follow OMB 1997 / the agencies' own category sets.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from ct_pipelines.catalog.blocks.standardize import StandardizeConfig
from ct_pipelines.standardize.cli import rel
from ct_pipelines.standardize.standardize import rel_checks, standardize_table

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "ct"
DCF = SHARED / "ct_dcf_children_in_placement_by_race_ethnicity_tnyk-6fv7.csv"
SDE = SHARED / "ct_sde_edsight_enrollment_by_district_race_2016-17.csv"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared CT extract {path.name} not present")
    return path


def _rel_map(field: str, lines: list[str]) -> dict[str, dict]:
    result = CliRunner().invoke(rel, ["map", "--field", field], input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    return {o["raw"]: o for o in map(json.loads, result.output.splitlines())}


def test_dcf_labels_map_across_snapshots():
    with _need(DCF).open(encoding="utf-8-sig", newline="") as handle:
        labels = sorted({row["Demographic"] for row in csv.DictReader(handle)})
    out = _rel_map("race_ethnicity", labels)
    got = {raw: (o["status"], o["hispanic"], o["omb1997"], o["other_race"]) for raw, o in out.items()}
    assert got == {
        "BLACK": ("reported", False, ["BLACK"], False),
        "Non-Hispanic Black": ("reported", False, ["BLACK"], False),
        "WHITE": ("reported", False, ["WHITE"], False),
        "Non-Hispanic White": ("reported", False, ["WHITE"], False),
        "HISPANIC": ("reported", True, [], False),
        "Hispanic": ("reported", True, [], False),
        "OTHER": ("reported", False, [], True),
        "Non-Hispanic Other": ("reported", False, [], True),
    }


def test_dcf_file_standardizes_to_one_set_of_groups():
    con = duckdb.connect()
    con.execute(f"CREATE TABLE dcf AS SELECT * FROM read_csv('{_need(DCF)}', all_varchar=true)")
    config = StandardizeConfig.model_validate(
        {"columns": [{"column": "Demographic", "field": "race_ethnicity"}]}
    )
    result = standardize_table(con, "dcf", "dcf_std", config)
    assert result.row_count == 1758
    assert result.reporting_groups == {
        "Non-Hispanic Black": 243 + 214,
        "Non-Hispanic White": 241 + 230,
        "Hispanic": 235 + 221,
        "Non-Hispanic Other Race": 204 + 170,
    }
    assert result.not_collected == ["language"]
    (outcome,) = rel_checks(con, "dcf_std", config)
    assert outcome.passed


def _sde_header() -> list[str]:
    with _need(SDE).open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    return next(r for r in rows if r and r[0] == "District")


def test_sde_header_labels_map_and_non_race_columns_are_flagged():
    out = _rel_map("race_ethnicity", _sde_header())
    got = {raw: (o["status"], o["hispanic"], o["omb1997"], o["two_or_more"]) for raw, o in out.items()}
    assert got == {
        "American Indian or Alaska Native": ("reported", False, ["AIAN"], False),
        "Asian": ("reported", False, ["ASIAN"], False),
        "Black or African American": ("reported", False, ["BLACK"], False),
        "Hispanic/Latino of any race": ("reported", True, [], False),
        "Native Hawaiian or Other Pacific Islander": ("reported", False, ["NHPI"], False),
        "Two or More Races": ("reported", False, [], True),
        "White": ("reported", False, ["WHITE"], False),
        # not race labels: flagged, never guessed
        "District": ("unmapped", None, [], False),
        "District Code": ("unmapped", None, [], False),
        "Total": ("unmapped", None, [], False),
    }


def test_sde_counts_unpivoted_keep_the_state_total_per_group():
    con = duckdb.connect()
    con.execute(
        f"CREATE TABLE wide AS SELECT * FROM read_csv('{_need(SDE)}', skip=5, header=true, all_varchar=true)"
    )
    races = [c for c in _sde_header()[2:] if c != "Total"]
    listed = ", ".join(f'"{c}"' for c in races)
    con.execute(
        f"CREATE TABLE long AS SELECT District, race, count FROM "
        f"(UNPIVOT (SELECT * FROM wide WHERE District = 'Total') ON {listed} INTO NAME race VALUE count)"
    )
    config = StandardizeConfig.model_validate({"columns": [{"column": "race", "field": "race_ethnicity"}]})
    standardize_table(con, "long", "long_std", config)
    got = dict(con.execute("SELECT rel_reporting_group, CAST(count AS INTEGER) FROM long_std").fetchall())
    assert got == {
        "Non-Hispanic American Indian or Alaska Native": 1458,
        "Non-Hispanic Asian": 27278,
        "Non-Hispanic Black": 69426,
        "Hispanic": 129440,
        "Non-Hispanic Native Hawaiian or Other Pacific Islander": 546,
        "Non-Hispanic Two or More Races": 15679,
        "Non-Hispanic White": 295066,
    }
    assert sum(got.values()) == 538893  # the file's own state total
