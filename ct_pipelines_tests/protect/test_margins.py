"""Margins only where the measure adds up: cumulative snapshots never get a total over their dates, dates stay
dates, every count column is suppressed, unsuppressible configurations fail validation, and aggregate columns
get portal descriptions."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import duckdb
import numpy as np
import pytest
import yaml

from ct_pipelines.catalog.blocks.protect import AggregateConfig, SuppressionConfig
from ct_pipelines.catalog.loader import parse_dataset_file
from ct_pipelines.catalog.models import Dataset, published_column_description
from ct_pipelines.protect.aggregate import build_aggregate
from ct_pipelines.protect.errors import PublishConfigError
from ct_pipelines.protect.published import build_published_table, privacy_outcomes
from ct_pipelines.publish.metadata import column_specs
from ct_pipelines.publish.serialize import TableColumn

RACES = ["White", "Black", "Hispanic", "Asian", "AIAN"]
DATES = [dt.date(2020, 4, 20) + dt.timedelta(days=d) for d in range(6)]


def dataset(publish: dict, columns: list[str] | None = None) -> Dataset:
    return Dataset.model_validate(
        {
            "id": "deaths",
            "title": "Deaths by race, cumulative",
            "description": "Cumulative deaths by race and report date, for tests.",
            "agency": "Department of Public Health",
            "category": "Health and Human Services",
            "update_frequency": "Daily",
            "contact": "dph.data@ct.gov",
            "source": {"path": "x.csv"},
            "columns": [{"source": c} for c in columns or []],
            "publish": publish,
        }
    )


@pytest.fixture
def snapshots() -> duckdb.DuckDBPyConnection:
    """The agency's daily extract: one row per report date and race with the cumulative death count so far."""
    con = duckdb.connect()
    rng = np.random.default_rng(4)
    rows, running = [], dict.fromkeys(RACES, 0)
    for day in DATES:
        for index, race in enumerate(RACES):
            running[race] += int(rng.poisson(30 / (1 + 2 * index)))
            rows.append((day, race, running[race]))
    con.execute("CREATE TABLE std (report_date DATE, race VARCHAR, cumulative_deaths BIGINT)")
    con.executemany("INSERT INTO std VALUES (?, ?, ?)", rows)
    return con


def truth(con: duckdb.DuckDBPyConnection) -> dict[tuple[dt.date, str], int]:
    return {(d, r): n for d, r, n in con.execute("SELECT * FROM std").fetchall()}


def check_snapshot_table(con: duckdb.DuckDBPyConnection) -> None:
    """Per date: each race (or hidden) plus a Total over races; never a Total over dates; DATE kept."""
    types = dict(
        con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'published'"
        ).fetchall()
    )
    assert types["report_date"] == "DATE" and types["deaths"] == "BIGINT"
    rows = con.execute("SELECT report_date, race, deaths, suppressed FROM published").fetchall()
    assert len(rows) == len(DATES) * (len(RACES) + 1)  # no row for a total over dates
    assert all(isinstance(day, dt.date) for day, *_ in rows)
    known = truth(con)
    for day, race, deaths, hidden in rows:
        if race == "Total":
            assert deaths == sum(known[(day, r)] for r in RACES)  # margins are never hidden here
        elif hidden:
            assert deaths is None
        else:
            assert deaths == known[(day, race)] and not 1 <= deaths <= 5


def test_cumulative_snapshots_never_get_a_total_over_dates_in_aggregate_mode(
    snapshots: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    publish = {
        "mode": "aggregate",
        "aggregate": {
            "dimensions": [{"name": "report_date", "time": True}, "race"],
            "measures": [{"name": "deaths", "agg": "sum", "column": "cumulative_deaths"}],
        },
        "suppression": {"count_column": "deaths", "threshold": 5},
    }
    result = build_published_table(snapshots, dataset(publish), "std", "published", tmp_path)
    check_snapshot_table(snapshots)
    assert result.suppression is not None and result.suppression.primary_count >= 1
    audit = privacy_outcomes(snapshots, dataset(publish), result)[1]
    assert audit.passed and audit.metadata["loss"][0]["cells_suppressed"] >= 2


def test_a_date_dimension_is_not_totalled_even_when_not_marked_time(
    snapshots: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    publish = {
        "mode": "aggregate",
        "aggregate": {
            "dimensions": ["report_date", "race"],
            "measures": [{"name": "deaths", "agg": "sum", "column": "cumulative_deaths"}],
        },
    }
    build_published_table(snapshots, dataset(publish), "std", "published", tmp_path)
    dates = snapshots.execute(
        "SELECT DISTINCT typeof(report_date), count(*) OVER () FROM published"
    ).fetchall()
    assert dates[0][0] == "DATE"
    totals = snapshots.execute("SELECT count(*) FROM published WHERE race = 'Total'").fetchone()[0]
    assert totals == len(DATES)


def test_sql_mode_totals_are_opt_in_per_dimension(
    snapshots: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    (tmp_path / "q.sql").write_text(
        "SELECT report_date, race, cumulative_deaths AS deaths FROM {{ source }}", encoding="utf-8"
    )
    publish = {
        "mode": "sql",
        "sql_file": "q.sql",
        "dimensions": [{"name": "report_date", "time": True}, {"name": "race", "totals": True}],
        "suppression": {"count_column": "deaths", "threshold": 5},
    }
    result = build_published_table(snapshots, dataset(publish), "std", "published", tmp_path)
    check_snapshot_table(snapshots)
    assert result.notes == []


def test_old_sql_yaml_keeps_its_totals_with_a_note_and_refuses_dates(
    snapshots: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    (tmp_path / "q.sql").write_text(
        "SELECT report_date, race, cumulative_deaths AS deaths FROM {{ source }}", encoding="utf-8"
    )
    publish = {
        "mode": "sql",
        "sql_file": "q.sql",
        "dimensions": ["report_date", "race"],
        "suppression": {"count_column": "deaths", "threshold": 5},
    }
    with pytest.warns(FutureWarning, match="deprecated"):
        legacy = dataset(publish)
    with pytest.raises(PublishConfigError, match="dimension 'report_date' holds dates.*time: true"):
        build_published_table(snapshots, legacy, "std", "published", tmp_path)
    assert not snapshots.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'published'"
    ).fetchone()[0]

    (tmp_path / "q.sql").write_text(
        "SELECT strftime(report_date, '%Y') AS year, race, max(cumulative_deaths) AS deaths FROM {{ source }} "
        "GROUP BY ALL",
        encoding="utf-8",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        legacy = dataset({**publish, "dimensions": ["year", "race"]})
    result = build_published_table(snapshots, legacy, "std", "published", tmp_path)
    assert result.row_count == 2 * (len(RACES) + 1)  # as before: totals over both dimensions
    audit = privacy_outcomes(snapshots, legacy, result)[1]
    assert "deprecated" in audit.metadata["deprecations"][0]


@pytest.fixture
def requests() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    rng = np.random.default_rng(8)
    rows = []
    for t, town in enumerate(["Andover", "Bethel", "Canton", "Darien"]):
        for r, race in enumerate(RACES):
            for _ in range(int(rng.poisson(60 / (1 + r) / (1 + t)))):
                rows.append((town, race, int(rng.random() < 0.3)))
    con.execute("CREATE TABLE std (town VARCHAR, race VARCHAR, died INTEGER)")
    con.executemany("INSERT INTO std VALUES (?, ?, ?)", rows)
    return con


def test_every_count_column_and_its_rate_is_protected(
    requests: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    publish = {
        "mode": "aggregate",
        "aggregate": {
            "dimensions": ["town", "race"],
            "measures": [
                {"name": "cases", "description": "People with a case"},
                {"name": "deaths", "agg": "sum", "column": "died"},
                {"name": "death_rate", "agg": "avg", "column": "died"},
            ],
        },
        "suppression": {"count_column": "cases", "count_columns": ["deaths"], "rate_columns": ["death_rate"]},
    }
    result = build_published_table(requests, dataset(publish), "std", "published", tmp_path)
    assert len(result.suppressions) == 2
    table = requests.execute("SELECT * FROM published").df()
    assert len(table) == 5 * 6
    for count in ("cases", "deaths"):
        shown = table[count].dropna()
        assert not shown.between(1, 5).any()
    hidden_death = table["deaths"].isna()
    assert table.loc[hidden_death, "death_rate"].isna().all() and table.loc[hidden_death, "suppressed"].all()
    grand = table[(table["town"] == "Total") & (table["race"] == "Total")].iloc[0]
    assert grand["cases"] == requests.execute("SELECT count(*) FROM std").fetchone()[0]
    assert grand["death_rate"] == pytest.approx(requests.execute("SELECT avg(died) FROM std").fetchone()[0])
    audit = privacy_outcomes(requests, dataset(publish), result)[1]
    assert audit.passed and [entry["count_column"] for entry in audit.metadata["loss"]] == ["cases", "deaths"]
    assert 0 < audit.metadata["hidden_share_of_total"] < 0.5


def write_yaml(tmp_path: Path, publish: dict) -> Path:
    document = {
        "id": "bad_publish",
        "title": "A dataset with a bad publish block",
        "description": "Made up to check catalog validation.",
        "agency": "Department of Testing",
        "category": "Government",
        "update_frequency": "Weekly",
        "contact": "tester@ct.gov",
        "source": {"path": "x.csv"},
        "publish": publish,
    }
    path = tmp_path / "bad_publish.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("publish", "message"),
    [
        ({"mode": "rows", "suppression": {"threshold": 5}}, "mode is rows"),
        (
            {
                "mode": "aggregate",
                "aggregate": {
                    "dimensions": ["town"],
                    "measures": [{"name": "n", "agg": "avg", "column": "x"}],
                },
                "suppression": {"count_column": "n"},
            },
            "count column 'n' must be a count or sum measure",
        ),
        (
            {
                "mode": "aggregate",
                "aggregate": {
                    "dimensions": [{"name": "day", "time": True, "totals": True}, "town"],
                    "measures": [{"name": "n", "agg": "sum", "column": "cumulative"}],
                },
            },
            "dimension 'day' asks for totals, but measure(s) n do not add up over it",
        ),
        ({"mode": "sql", "sql_file": "q.sql", "suppression": {"threshold": 5}}, "needs protect.dimensions"),
        (
            {
                "mode": "aggregate",
                "aggregate": {"dimensions": ["town"]},
                "suppression": {"collapse": {"race": ["A"]}},
            },
            "collapse names 'race', which is not a dimension",
        ),
    ],
)
def test_unsuppressible_configurations_fail_catalog_validation(
    tmp_path: Path, publish: dict, message: str
) -> None:
    parsed, errors = parse_dataset_file(write_yaml(tmp_path, publish))
    assert parsed is None and len(errors) == 1
    assert errors[0].field == "publish" and message in errors[0].message and errors[0].line is not None


def test_a_measure_may_declare_it_adds_up_over_time(
    snapshots: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    """Daily new deaths (a flow) do add up over days when the YAML says so."""
    snapshots.execute(
        "CREATE TABLE daily AS SELECT report_date, race, cumulative_deaths - coalesce(lag("
        "cumulative_deaths) OVER (PARTITION BY race ORDER BY report_date), 0) AS new_deaths FROM std"
    )
    publish = {
        "mode": "aggregate",
        "aggregate": {
            "dimensions": [{"name": "report_date", "time": True}, "race"],
            "measures": [
                {
                    "name": "deaths",
                    "agg": "sum",
                    "column": "new_deaths",
                    "adds_up_over": ["report_date", "race"],
                }
            ],
        },
    }
    build_published_table(snapshots, dataset(publish), "daily", "published", tmp_path)
    grand = snapshots.execute("SELECT deaths FROM published WHERE report_date = 'Total' AND race = 'Total'")
    total = grand.fetchall()[0][0]
    latest = snapshots.execute(f"SELECT sum(cumulative_deaths) FROM std WHERE report_date = '{DATES[-1]}'")
    assert total == latest.fetchall()[0][0]


def test_published_aggregate_columns_get_descriptions_from_yaml() -> None:
    publish = {
        "mode": "aggregate",
        "aggregate": {
            "dimensions": [
                {"name": "report_date", "time": True, "description": "Date of the report"},
                "race",
            ],
            "measures": [{"name": "deaths", "agg": "sum", "column": "d", "description": "Deaths so far"}],
        },
        "column_descriptions": {"race": "Race as reported"},
        "suppression": {"count_column": "deaths", "threshold": 5},
    }
    data = dataset(publish)
    columns = [
        TableColumn("report_date", "DATE"),
        TableColumn("race", "VARCHAR"),
        TableColumn("deaths", "BIGINT"),
        TableColumn("suppressed", "BOOLEAN"),
    ]
    specs = {spec["fieldName"]: spec.get("description") for spec in column_specs(data, columns)}
    assert specs["report_date"] == "Date of the report" and specs["deaths"] == "Deaths so far"
    assert specs["race"] == "Race as reported" and "1 to 5" in specs["suppressed"]
    assert published_column_description(data, "unknown") == ""


def test_a_combination_with_no_rows_sums_to_zero_and_has_no_mean_or_maximum():
    """Suppression publishes every race x sex; OCME's zero cells once showed 0 deaths beside an empty
    age_sum. A cell with no rows sums to 0 and has no maximum; a cell whose rows all lack the value has
    none either. A sum over empty cells is refused (below): it would be published too low."""
    con = duckdb.connect()
    con.execute("CREATE TABLE v (race VARCHAR, sex VARCHAR, age BIGINT, years BIGINT)")
    rows = (
        [("White", "Male", 40, 2)] * 30 + [("White", "Female", 50, 3)] * 20 + [("Black", "Male", 30, 1)] * 12
    )
    rows += [("Black", "Female", None, 4)] * 9 + [("Asian", "Male", 44, 5)] * 8  # no Asian woman
    con.executemany("INSERT INTO v VALUES (?, ?, ?, ?)", rows)
    aggregate = AggregateConfig.model_validate(
        {
            "dimensions": ["race", "sex"],
            "measures": [
                {"name": "deaths"},
                {"name": "years_sum", "agg": "sum", "column": "years"},
                {"name": "age_max", "agg": "max", "column": "age"},
            ],
        }
    )
    suppression = SuppressionConfig.model_validate({"count_column": "deaths", "threshold": 5})
    build_aggregate(con, "v", "out", aggregate, suppression, [])
    cells = {(r, s): rest for r, s, *rest in con.execute("SELECT * FROM out").fetchall()}
    assert cells[("Asian", "Female")] == [0, False, 0, None]
    assert cells[("Black", "Female")] == [9, False, 36, None]
    assert cells[("Total", "Total")] == [79, False, 2 * 30 + 3 * 20 + 12 + 4 * 9 + 5 * 8, 50]


def test_a_sum_over_empty_cells_is_refused_with_where_they_are():
    """A helper blanked four of DCF's TOTAL_CIP cells: eight of 75 published counts fell short while the
    run said every row was counted."""
    con = duckdb.connect()
    con.execute("CREATE TABLE v (race VARCHAR, children BIGINT)")
    con.executemany("INSERT INTO v VALUES (?, ?)", [("White", 40)] * 30 + [("Black", None)] * 4)
    aggregate = AggregateConfig.model_validate(
        {"dimensions": ["race"], "measures": [{"name": "children", "agg": "sum", "column": "children"}]}
    )
    with pytest.raises(
        PublishConfigError, match="is the sum of 'children', which is empty on 4 rows, so every sum"
    ):
        build_aggregate(con, "v", "out", aggregate, None, [])


def test_a_sum_over_a_column_holding_its_own_total_is_refused():
    """DPH's mortality rows by sex include BOTH SEXES: the suggested sum of deaths by group added each
    BOTH SEXES row to its MALE and FEMALE rows and published every figure twice."""
    con = duckdb.connect()
    con.execute("CREATE TABLE v (year BIGINT, sex VARCHAR, race VARCHAR, deaths BIGINT)")
    rows = [
        (2022, sex, race, n)
        for race, m, f in [("White", 60, 50), ("Black", 9, 8)]
        for sex, n in [("MALE", m), ("FEMALE", f), ("BOTH SEXES", m + f)]
    ]
    con.executemany("INSERT INTO v VALUES (?, ?, ?, ?)", rows)
    summed = {"name": "deaths", "agg": "sum", "column": "deaths"}
    for dimensions in (["race"], ["race", "sex"]):
        aggregate = AggregateConfig.model_validate({"dimensions": dimensions, "measures": [summed]})
        with pytest.raises(PublishConfigError, match="'sex' holds 'BOTH SEXES', which reads as a total"):
            build_aggregate(con, "v", "out", aggregate, None, [])
    kept = AggregateConfig.model_validate(
        {"dimensions": ["race", {"name": "sex", "totals": False}], "measures": [summed]}
    )
    build_aggregate(con, "v", "out", kept, None, [])
    published = dict(
        ((r, s), n)
        for r, s, n in con.execute("SELECT race, sex, deaths FROM out WHERE race = 'Total'").fetchall()
    )
    assert published == {("Total", "MALE"): 69, ("Total", "FEMALE"): 58, ("Total", "BOTH SEXES"): 127}


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (["Connecticut"], "'town' holds 'Connecticut', which reads as a total"),
        (["State Total"], "'town' holds 'State Total', which reads as a total"),
        (
            ["Hartford County Subtotal", "Tolland County Subtotal"],
            "matches: '^(Hartford County Subtotal|Tolland County Subtotal)$'",
        ),
    ],
)
def test_a_state_or_subtotal_row_among_the_towns_is_refused(labels: list[str], expected: str):
    """A helper's ED visits by town carried the state's own row, labelled "Connecticut" or "State Total",
    and every published figure was twice the file's; county subtotal rows doubled the county totals."""
    con = duckdb.connect()
    con.execute("CREATE TABLE v (town VARCHAR, race VARCHAR, visits BIGINT)")
    towns = [("Hartford", "White", 40), ("Hartford", "Black", 30), ("Andover", "White", 12)]
    totals = [(label, race, n) for label in labels for race, n in [("White", 52), ("Black", 30)]]
    con.executemany("INSERT INTO v VALUES (?, ?, ?)", towns + totals)
    summed = {"name": "visits", "agg": "sum", "column": "visits"}
    for dimensions in (["race"], ["town", "race"]):
        aggregate = AggregateConfig.model_validate({"dimensions": dimensions, "measures": [summed]})
        with pytest.raises(PublishConfigError) as refused:
            build_aggregate(con, "v", "out", aggregate, None, [])
        assert expected in str(refused.value)


def test_a_column_holding_only_the_states_name_is_not_a_total():
    con = duckdb.connect()
    con.execute("CREATE TABLE v (state VARCHAR, race VARCHAR, visits BIGINT)")
    con.executemany(
        "INSERT INTO v VALUES (?, ?, ?)", [("Connecticut", "White", 40), ("Connecticut", "Black", 30)]
    )
    aggregate = AggregateConfig.model_validate(
        {"dimensions": ["race"], "measures": [{"name": "visits", "agg": "sum", "column": "visits"}]}
    )
    build_aggregate(con, "v", "out", aggregate, None, [])
    assert con.execute("SELECT visits FROM out WHERE race = 'Total'").fetchone() == (70,)


def test_a_category_with_no_row_in_a_period_is_left_out_for_that_period_not_published_as_zero():
    """DCF's placement counts: the region 'Other' first appears in 2018. The grid published it as 0
    children for 2017, which says no one where the source said nothing. Within a period, a missing
    combination of categories that do occur (no Asian child in Region 1) is still 0."""
    con = duckdb.connect()
    con.execute("CREATE TABLE v (as_of DATE, region VARCHAR, race VARCHAR, children BIGINT)")
    counts = {
        ("2017-06-30", "Region 1", "Black"): 140, ("2017-06-30", "Region 1", "White"): 210,
        ("2017-06-30", "Region 2", "Black"): 95, ("2017-06-30", "Region 2", "White"): 180,
        ("2017-06-30", "Region 2", "Asian"): 22,
        ("2018-06-30", "Region 1", "Black"): 133, ("2018-06-30", "Region 1", "White"): 201,
        ("2018-06-30", "Region 1", "Asian"): 17, ("2018-06-30", "Region 2", "Black"): 90,
        ("2018-06-30", "Region 2", "White"): 175, ("2018-06-30", "Other", "White"): 31,
        ("2018-06-30", "Other", "Black"): 26,
    }  # fmt: skip
    con.executemany("INSERT INTO v VALUES (?, ?, ?, ?)", [(*k, n) for k, n in counts.items()])
    aggregate = AggregateConfig.model_validate(
        {
            "dimensions": [{"name": "as_of", "time": True}, "region", "race"],
            "measures": [{"name": "placed", "agg": "sum", "column": "children"}],
        }
    )
    suppression = SuppressionConfig.model_validate({"count_column": "placed", "threshold": 5})
    build_aggregate(con, "v", "out", aggregate, suppression, [])
    cells = {(str(d), g, r): n for d, g, r, n, _ in con.execute("SELECT * FROM out").fetchall()}
    assert not [key for key in cells if key[:2] == ("2017-06-30", "Other")]
    assert [key for key in cells if key[:2] == ("2018-06-30", "Other")]
    assert cells[("2017-06-30", "Region 1", "Asian")] == 0  # Asian occurs in 2017: a true zero
    assert cells[("2018-06-30", "Other", "Asian")] == 0
    for day in ("2017-06-30", "2018-06-30"):
        assert cells[(day, "Total", "Total")] == sum(n for k, n in counts.items() if k[0] == day)
        for key, n in counts.items():
            if key[0] == day:
                assert cells[key] == n  # no count here is 1 to 5: nothing hidden


def _annual_counts() -> tuple[duckdb.DuckDBPyConnection, dict[tuple[str, str, str], int]]:
    """DCF's placement trend: each extract (as_of) holds counts for several July 1s (counted_on)."""
    con = duckdb.connect()
    con.execute("CREATE TABLE v (as_of DATE, counted_on DATE, race VARCHAR, children BIGINT)")
    counts = {
        ("2014-06-26", "2012-07-01", "Black"): 1810, ("2014-06-26", "2012-07-01", "White"): 2011,
        ("2014-06-26", "2013-07-01", "Black"): 1702, ("2014-06-26", "2013-07-01", "White"): 1904,
        ("2017-07-18", "2016-07-01", "Black"): 1544, ("2017-07-18", "2016-07-01", "White"): 1620,
        ("2018-11-07", "2018-07-01", "Black"): 1498, ("2018-11-07", "2018-07-01", "White"): 1710,
    }  # fmt: skip
    con.executemany("INSERT INTO v VALUES (?, ?, ?, ?)", [(*k, n) for k, n in counts.items()])
    return con, counts


def _by_race(dimensions: list, **measure) -> AggregateConfig:
    return AggregateConfig.model_validate(
        {
            "dimensions": dimensions,
            "measures": [{"name": "placed", "agg": "sum", "column": "children", **measure}],
        }
    )


def test_a_sum_over_several_dates_in_one_cell_is_refused_with_the_ways_on():
    """Summing counts taken on different July 1s adds the same children again: a new user's aggregate by
    extract date published each extract's July 1 counts added together, with no warning."""
    con, counts = _annual_counts()
    suppression = SuppressionConfig.model_validate({"count_column": "placed", "threshold": 5})
    with pytest.raises(PublishConfigError) as refused:
        build_aggregate(con, "v", "out", _by_race([{"name": "as_of", "time": True}, "race"]), suppression, [])
    message = str(refused.value)
    assert "'placed' would add up 'children' over up to 2 different values of 'counted_on'" in message
    assert "'- {name: counted_on, time: true}'" in message and "sum_over" in message
    assert not con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'out'").fetchone()[0]

    # The date counted on as the dimension: each cell holds one as_of too, so nothing is added up.
    build_aggregate(
        con, "v", "out", _by_race([{"name": "counted_on", "time": True}, "race"]), suppression, []
    )
    cells = {(str(d), r): n for d, r, n, _ in con.execute("SELECT * FROM out").fetchall()}
    assert cells == {
        **{(k[1], k[2]): n for k, n in counts.items()},
        **{
            (day, "Total"): sum(n for k, n in counts.items() if k[1] == day) for day in {k[1] for k in counts}
        },
    }

    # Rows that count separate events may be summed over a date, when the YAML says so.
    events = _by_race(["race"], sum_over=["as_of", "counted_on"])
    build_aggregate(con, "v", "out", events, suppression, [])
    totals = dict(con.execute("SELECT race, placed FROM out").fetchall())
    assert totals["Black"] == sum(n for k, n in counts.items() if k[2] == "Black")


def test_two_date_dimensions_publish_only_the_pairs_that_occur():
    """With the extract date and the July 1 it counts both dimensions, the grid of every combination
    published 0 children for pairs that never occur (the 2018 extract's counts for 2012), 45 of 60 rows
    per group on the real DCF file."""
    con, counts = _annual_counts()
    aggregate = _by_race([{"name": "as_of", "time": True}, {"name": "counted_on", "time": True}, "race"])
    suppression = SuppressionConfig.model_validate({"count_column": "placed", "threshold": 5})
    build_aggregate(con, "v", "out", aggregate, suppression, [])
    cells = {(str(a), str(d), r): n for a, d, r, n, _ in con.execute("SELECT * FROM out").fetchall()}
    pairs = {k[:2] for k in counts}
    assert {k[:2] for k in cells} == pairs  # 4 pairs, not 3 x 4 = 12
    assert len(cells) == len(pairs) * 3  # Black, White and Total for each
    for pair in pairs:
        assert cells[(*pair, "Total")] == sum(n for k, n in counts.items() if k[:2] == pair)
    assert all(cells[k] == n for k, n in counts.items())


def test_a_misspelled_dimension_is_named_with_the_one_meant():
    con, _ = _annual_counts()
    with pytest.raises(PublishConfigError) as refused:
        build_aggregate(con, "v", "out", _by_race([{"name": "countedon", "time": True}, "race"]), None, [])
    assert "dimension column 'countedon' does not exist (did you mean 'counted_on'?)" in str(refused.value)


def test_running_totals_are_not_summed_even_under_sum_over():
    """DPH-style COVID counts by town are cumulative: each week holds every week before it. Declared
    sum_over the report date, a helper's sum published Bridgeport's Hispanic cases as 7,295 where the
    latest week says 349. Counts of separate events, which go up and down, are still summed."""
    rng = np.random.default_rng(5)
    con = duckdb.connect()
    con.execute("CREATE TABLE v (town VARCHAR, race VARCHAR, week DATE, cases BIGINT)")
    rows, events = [], []
    for t in range(6):
        for race in ("Hispanic", "NH White"):
            total = 0
            for w in range(8):
                total += int(rng.integers(0, 20))
                day = dt.date(2021, 8, 1) + dt.timedelta(weeks=w)
                rows.append((f"Town {t}", race, day, total))
                events.append((f"Town {t}", race, day, int(rng.integers(0, 20))))
    con.executemany("INSERT INTO v VALUES (?, ?, ?, ?)", rows)
    aggregate = AggregateConfig.model_validate(
        {
            "dimensions": ["town", "race"],
            "measures": [{"name": "cases", "agg": "sum", "column": "cases", "sum_over": ["week"]}],
        }
    )
    with pytest.raises(PublishConfigError, match=r"12 of 12 series never go down from one week to the next"):
        build_aggregate(con, "v", "out", aggregate, None, [])
    con.execute("DELETE FROM v")
    con.executemany("INSERT INTO v VALUES (?, ?, ?, ?)", events)
    build_aggregate(con, "v", "out", aggregate, None, [])
    published = con.execute("SELECT cases FROM out WHERE town = 'Total' AND race = 'Total'").fetchone()[0]
    assert published == sum(e[3] for e in events)


def _monthly_enrollment() -> tuple[duckdb.DuckDBPyConnection, dict[tuple[str, str, str], int]]:
    """DSS's members enrolled in each month, the month kept as text ("2025-01") as the starter types it,
    and the same people counted again every month: a sum over months counts them three times."""
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE v (town VARCHAR, month VARCHAR, fiscal_year BIGINT, race VARCHAR, enrollees BIGINT)"
    )
    counts = {}
    for m, month in enumerate(["2025-01", "2025-02", "2025-03"]):
        for t, town in enumerate(["Hartford", "Union"]):
            for r, race in enumerate(["White", "Black"]):
                counts[(town, month, race)] = 40 + 100 * t + 10 * r + m
    con.executemany(
        "INSERT INTO v VALUES (?, ?, 2025, ?, ?)",
        [(town, month, race, n) for (town, month, race), n in counts.items()],
    )
    return con, counts


def test_months_written_as_text_are_periods_never_summed_into_a_total_or_over():
    """A helper's enrollment by town, month and race published a "Total" month of 57,559 members, each
    month holding about 19,000: the month was text, so it got a total like a category."""
    con, counts = _monthly_enrollment()
    measure = {"name": "members", "agg": "sum", "column": "enrollees"}
    by_month = AggregateConfig.model_validate(
        {"dimensions": ["town", "month", "race"], "measures": [measure]}
    )
    suppression = SuppressionConfig.model_validate({"count_column": "members", "threshold": 5})
    build_aggregate(con, "v", "out", by_month, suppression, [])
    cells = {
        (t, m, r): n for t, m, r, n in con.execute("SELECT town, month, race, members FROM out").fetchall()
    }
    assert not [key for key in cells if key[1] == "Total"]  # no month holds the three months added
    assert {key: n for key, n in cells.items() if "Total" not in key} == counts
    assert (
        cells[("Hartford", "2025-02", "Total")]
        == counts[("Hartford", "2025-02", "White")] + counts[("Hartford", "2025-02", "Black")]
    )
    assert len(cells) == 3 * 3 * 3  # (2 towns + total) x 3 months, no total month x (2 races + total)

    by_town = AggregateConfig.model_validate({"dimensions": ["town", "race"], "measures": [measure]})
    with pytest.raises(PublishConfigError) as refused:
        build_aggregate(con, "v", "out2", by_town, suppression, [])
    assert "'members' would add up 'enrollees' over up to 3 different values of 'month'" in str(refused.value)
    assert "'- {name: month, time: true}'" in str(refused.value)

    # A year stored as a whole number is a period too; with one year per cell nothing is added up.
    by_year = AggregateConfig.model_validate(
        {"dimensions": ["fiscal_year", "month", "race"], "measures": [measure]}
    )
    build_aggregate(con, "v", "out3", by_year, suppression, [])
    years = {row[0] for row in con.execute("SELECT DISTINCT fiscal_year FROM out3").fetchall()}
    assert years == {2025}


def test_a_mean_by_one_dimension_gets_its_grand_total(requests: duckdb.DuckDBPyConnection, tmp_path: Path):
    """A helper's OCME aggregate, a count and a mean age by reporting group alone, stopped with DuckDB's
    "GROUPING statement cannot be used without groups"."""
    publish = {
        "mode": "aggregate",
        "aggregate": {
            "dimensions": ["race"],
            "measures": [{"name": "cases"}, {"name": "death_rate", "agg": "avg", "column": "died"}],
        },
        "suppression": {"count_column": "cases", "rate_columns": ["death_rate"]},
    }
    build_published_table(requests, dataset(publish), "std", "published", tmp_path)
    table = requests.execute("SELECT * FROM published").df()
    total = table[table["race"] == "Total"].iloc[0]
    assert total["cases"] == requests.execute("SELECT count(*) FROM std").fetchone()[0]
    assert total["death_rate"] == pytest.approx(requests.execute("SELECT avg(died) FROM std").fetchone()[0])
    by_race = dict(requests.execute("SELECT race, avg(died) FROM std GROUP BY race").fetchall())
    for row in table[(table["race"] != "Total") & ~table["suppressed"]].itertuples():
        assert row.death_rate == pytest.approx(by_race[row.race])


def test_terms_calendar_years_text_dates_and_yyyymm_numbers_are_periods():
    """A helper's enrollment by term ("Fall 2024", "Spring 2025") was summed across terms: Hartford's total
    came out three terms' enrollment. Each column here names a period on every row; towns, races and
    counts do not."""
    from ct_pipelines.protect.aggregate import time_columns

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE v AS SELECT * FROM (VALUES "
        "('Fall 2024', 'CY2024', 'AY 2024-25', 'Oct 1, 2024', '10/01/2024', 202410, 'Hartford', 'Black', 12), "
        "('Spring 2025', 'CY2025', 'AY 2025-26', 'April 1, 2025', '04/01/2025', 202504, 'Union', 'White', 9)) "
        "t(term, cal, academic, as_of, counted, period, town, race, students)"
    )
    types = {r[0]: str(r[1]) for r in con.execute("DESCRIBE v").fetchall()}
    assert time_columns(con, "v", types) == {"term", "cal", "academic", "as_of", "counted", "period"}
