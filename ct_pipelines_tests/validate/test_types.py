"""Every column type from an agency-style CSV through the pipeline's stages to the local portal:
the published value and the portal's column type, plus the good-rows, block and empty-extract rules."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from ct_pipelines.core.outcomes import Severity
from ct_pipelines.core.results import StageError
from ct_pipelines.portal.local import LocalPortal
from ct_pipelines_tests.support.stages import make_dataset, portal_rows, portal_types, run_stages


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPortal]:
    with LocalPortal(tmp_path_factory.mktemp("portal")) as local:
        yield local


@pytest.mark.parametrize(
    ("column", "cells", "published", "portal_type"),
    [
        ({"type": "text"}, ["  Windsor Locks ", "New Haven"], ["Windsor Locks", "New Haven"], "text"),
        ({"type": "integer"}, ['"1,234"', "7.0"], ["1234", "7"], "number"),
        ({"type": "number"}, ['"$1,234.50"', "-0.25"], ["1234.5", "-0.25"], "number"),
        ({"type": "boolean"}, ["Yes", "n"], [True, False], "checkbox"),
        (
            {"type": "date"},
            ["03/05/2024", "2024-12-31"],
            ["2024-03-05T00:00:00.000", "2024-12-31T00:00:00.000"],
            "calendar_date",
        ),
        (
            {"type": "datetime"},
            ["2024-03-05 14:30:00", "2024-03-05T08:00:00"],
            ["2024-03-05T14:30:00.000", "2024-03-05T08:00:00.000"],
            "calendar_date",
        ),
        ({"type": "code", "width": 5}, ["6196", "06103"], ["06196", "06103"], "text"),
        ({"type": "code"}, ["00123", "A-7"], ["00123", "A-7"], "text"),
    ],
    ids=["text", "integer", "number", "boolean", "date", "datetime", "code_width", "code"],
)
def test_each_type_is_published_with_its_value_and_portal_type(
    tmp_path: Path, portal: LocalPortal, column: dict, cells: list[str], published: list, portal_type: str
):
    dataset = make_dataset(f"type_{column['type']}_{len(column)}", [{"source": "value", **column}])
    csv = "id,value\n" + "".join(f"{i},{cell}\n" for i, cell in enumerate(cells, start=1))
    run = run_stages(tmp_path, portal, dataset, csv)
    assert not run.blocked, [o.summary for o in run.results["validate"].outcomes if not o.passed]
    assert run.results["validate"].rows_set_aside == 0
    rows = portal_rows(portal, run.four_by_four)
    assert [r["value"] for r in rows] == published
    assert portal_types(portal, run.four_by_four)["value"] == portal_type


def test_rows_failing_error_rules_are_set_aside_and_the_rest_published(tmp_path: Path, portal: LocalPortal):
    dataset = make_dataset("good_rows", [{"source": "count", "type": "integer", "min": 0}])
    lines = [f"{i},{-5 if i == 7 else i}" for i in range(1, 41)]
    run = run_stages(tmp_path, portal, dataset, "id,count\n" + "\n".join(lines) + "\n")
    ranges = run.outcome("ranges")
    assert not ranges.passed and ranges.severity == Severity.WARN
    share = run.outcome("quarantine_share")
    assert share.passed and "1 of 40 rows (2.5%) were set aside; the other 39 go on." in share.summary
    assert "ct-pipelines validate quarantine good_rows" in share.summary
    assert run.quarantine() == [(8, "range", "count", "-5", "have a count below 0")]
    rows = portal_rows(portal, run.four_by_four)
    assert len(rows) == 39 and "7" not in {r["id"] for r in rows}


def test_a_block_rule_stops_the_dataset_whatever_the_share(tmp_path: Path, portal: LocalPortal):
    dataset = make_dataset(
        "block_rule", [{"source": "count", "type": "integer", "min": 0, "severity": "block"}]
    )
    lines = [f"{i},{-5 if i == 7 else i}" for i in range(1, 41)]
    run = run_stages(tmp_path, portal, dataset, "id,count\n" + "\n".join(lines) + "\n")
    assert run.blocked and "portal" not in run.results
    ranges = run.outcome("ranges")
    assert not ranges.passed and ranges.severity == Severity.ERROR and ranges.blocks
    assert "nothing is published until they are fixed" in ranges.summary
    assert run.outcome("quarantine_share").passed  # 2.5% is within the limit: the rule alone blocks


def test_too_many_rows_set_aside_stops_the_dataset(tmp_path: Path, portal: LocalPortal):
    dataset = make_dataset(
        "too_many", [{"source": "count", "type": "integer"}], quality={"max_quarantine_share": 0.1}
    )
    lines = [f"{i},{'x' if i % 5 == 0 else i}" for i in range(1, 41)]  # 8 of 40 = 20%
    run = run_stages(tmp_path, portal, dataset, "id,count\n" + "\n".join(lines) + "\n")
    share = run.outcome("quarantine_share")
    assert run.blocked and not share.passed
    assert "8 of 40 rows (20.0%) were set aside, more than the 10% allowed" in share.summary


def test_header_only_extract_gets_its_own_message(tmp_path: Path, portal: LocalPortal):
    dataset = make_dataset("header_only", [{"source": "count", "type": "integer"}])
    with pytest.raises(StageError) as caught:
        run_stages(tmp_path, portal, dataset, "id,count\n")
    message = str(caught.value)
    assert "header_only.csv, line 1: the file holds only the header line and no data rows" in message
    assert "re-send it with its rows" in message and "pandera" not in message


def test_pandera_refuses_a_typed_table_whose_column_has_another_type():
    """pandera checks the written table's Arrow types: a date stored as text, or a number column of whole
    numbers stored as BIGINT, is not what the YAML declared."""
    import duckdb
    import pandas as pd
    import pandera.errors

    from ct_pipelines.validate.rules import pandera_schema

    dataset = make_dataset(
        "pandera_types",
        [
            {"source": "on", "type": "date"},
            {"source": "amount", "type": "number"},
            {"source": "flag", "type": "boolean", "suppressed_values": ["*"]},
        ],
    )
    schema = pandera_schema(dataset)
    con = duckdb.connect()

    def empty(sql: str) -> pd.DataFrame:
        return con.sql(f"{sql} LIMIT 0").to_arrow_table().to_pandas(types_mapper=pd.ArrowDtype)

    declared = "SELECT 1::BIGINT AS id, DATE '2024-01-01' AS on, 1.5::DOUBLE AS amount, true AS flag"
    schema.validate(empty(f"{declared}, false AS flag_suppressed"), lazy=True)
    wrong = "SELECT 1::BIGINT AS id, '2024-01-01' AS on, 1::BIGINT AS amount, true AS flag, false AS flag_suppressed"
    with pytest.raises(pandera.errors.SchemaErrors) as caught:
        schema.validate(empty(wrong), lazy=True)
    failing = set(caught.value.failure_cases["column"])
    assert failing == {"on", "amount"}


def test_a_date_format_written_as_text_is_read_as_that_format(tmp_path: Path, portal: LocalPortal):
    """OCME writes dates as '06/28/2014 12:00:00 AM'; `format: '%m/%d/%Y %I:%M:%S %p'` was refused as
    'Input should be a valid dictionary or instance of ValueFormat'. Text is now the date format."""
    dataset = make_dataset(
        "ocme_dates", [{"source": "date", "type": "date", "format": "%m/%d/%Y %I:%M:%S %p"}]
    )
    assert dataset.columns[1].format is not None and dataset.columns[1].format.date == [
        "%m/%d/%Y %I:%M:%S %p"
    ]
    csv = "id,date\r\n1,06/28/2014 12:00:00 AM\r\n2,12/31/2018 12:00:00 AM\r\n"
    run = run_stages(tmp_path, portal, dataset, csv)
    assert run.results["validate"].rows_set_aside == 0
    assert [r["date"] for r in portal_rows(portal, run.four_by_four)] == [
        "2014-06-28T00:00:00.000",
        "2018-12-31T00:00:00.000",
    ]
    with pytest.raises(ValueError, match="'MM/DD/YYYY' is not a date format \\(no % directive\\)"):
        make_dataset("bad_format", [{"source": "date", "type": "date", "format": "MM/DD/YYYY"}])


def test_a_zip_column_typed_as_a_number_is_refused_before_any_row_is_read():
    """Typed integer, Connecticut's 06810 would reach the portal as 6810 on every row."""
    from ct_pipelines.validate.rules import DatasetRuleError, build_rules

    dataset = make_dataset("zip_integer", [{"source": "Mailing ZIP Code", "type": "integer"}])
    with pytest.raises(DatasetRuleError) as caught:
        build_rules(dataset, datetime(2026, 1, 1))
    assert str(caught.value) == (
        "column 'mailing_zip_code' holds ZIP codes but is typed integer, which drops their leading zero "
        "(06810 would be published as 6810); set type: code and width: 5 on column 'mailing_zip_code' "
        "so 6810 is published as 06810"
    )


def test_zip_codes_that_lost_their_leading_zero_are_set_aside_until_the_width_is_declared(
    tmp_path: Path, portal: LocalPortal
):
    """A CSV opened and saved in Excel: three ZIPs lost their zero, one kept it, one is ZIP+4. Without
    `width` the short ones are set aside with what to write; with it every ZIP is published in full
    (a ZIP+4 is longer than the width, so that delivery has none)."""
    cells = ["6810", "06106", "6076", "06475-1234", "6001"]
    csv = "id,zip\n" + "".join(f"{i},{cell}\n" for i, cell in enumerate(cells, start=1))
    dataset = make_dataset("zip_no_width", [{"source": "zip", "type": "code"}])
    run = run_stages(tmp_path, portal, dataset, csv)
    assert [(row[0], row[3]) for row in run.quarantine()] == [(2, "6810"), (4, "6076"), (6, "6001")]
    assert "set type: code and width: 5 on column 'zip'" in run.quarantine()[0][4]
    assert run.blocked  # 3 of 5 rows is more than the share allowed: nothing reaches the portal
    fixed = make_dataset("zip_width", [{"source": "zip", "type": "code", "width": 5}])
    (tmp_path / "fixed").mkdir()
    csv = "id,zip\n" + "".join(f"{i},{cell}\n" for i, cell in enumerate(cells[:3] + cells[4:], start=1))
    run = run_stages(tmp_path / "fixed", portal, fixed, csv)
    assert run.results["validate"].rows_set_aside == 0
    published = [r["zip"] for r in portal_rows(portal, run.four_by_four)]
    assert sorted(published) == ["06001", "06076", "06106", "06810"]


def test_a_row_cut_short_is_set_aside_and_the_portal_keeps_its_published_values(
    tmp_path: Path, portal: LocalPortal
):
    """A helper's next delivery had a line with two of the header's four fields: padded with empty cells,
    it was published over the portal's fee and status, with status ok. Now the row is set aside with its
    reason, and the portal keeps the row it had."""
    dataset = make_dataset(
        "permits_short", [{"source": "town"}, {"source": "fee", "type": "number"}, {"source": "status"}]
    )
    rows = [f"{i},Hartford,{100 + i}.50,Issued\n" for i in range(1, 41)]
    run = run_stages(tmp_path, portal, dataset, "id,town,fee,status\n" + "".join(rows))
    assert len(portal_rows(portal, run.four_by_four)) == 40
    rows[6] = "7,Bridgeport\n"  # cut short
    rows[7] = "8,,,\n"  # empty fields written with their delimiters: a whole row
    rows[8] = "9,Union,9.00,Void\n"
    run = run_stages(tmp_path, portal, dataset, "id,town,fee,status\n" + "".join(rows))
    assert run.quarantine() == [
        (8, "short_row", "status", None, "have fewer fields than the header's 4 (the line was cut short, so "
         "its last fields would be published empty); ask the agency to fix the line"),
    ]  # fmt: skip
    assert (run.results["validate"].rows_in, run.results["validate"].rows_set_aside) == (40, 1)
    published = {
        r["id"]: (r.get("town"), r.get("fee"), r.get("status")) for r in portal_rows(portal, run.four_by_four)
    }
    assert len(published) == 40
    assert published["7"] == ("Hartford", "107.5", "Issued")  # kept as published, not emptied
    assert published["8"] == (None, None, None)
    assert published["9"] == ("Union", "9", "Void")


def test_an_export_cut_off_in_its_last_row_is_refused_whole(tmp_path: Path, portal: LocalPortal):
    """The file ends in the middle of a row: the rows after it are missing too, so nothing is published."""
    dataset = make_dataset("permits_cut", [{"source": "town"}, {"source": "fee", "type": "number"}])
    with pytest.raises(StageError) as refused:
        run_stages(tmp_path, portal, dataset, "id,town,fee\n1,Hartford,250.00\n2,Bridg")
    assert (
        "permits_cut.csv, line 3: the last line holds 2 of the header's 3 fields and the file ends in the "
        "middle of it, so the export looks cut off" in str(refused.value)
    )
    assert "ask the agency for the whole file" in str(refused.value)


def test_a_column_the_dataset_file_does_not_declare_is_not_published(tmp_path: Path, portal: LocalPortal):
    """A later delivery added "Contact Person" with people's names: it reached a new portal dataset, and
    on an existing one every run was refused as schema drift. It now waits, named, until it is declared."""
    dataset = make_dataset("permits_new_column", [{"source": "town"}])
    csv = "id,town,Contact Person\n" + "".join(f"{i},Hartford,Maria Lopez {i}\n" for i in range(1, 11))
    run = run_stages(tmp_path, portal, dataset, csv)
    assert run.results["protect"].facts["left_out_undeclared"] == ["contact_person"]
    rows = portal_rows(portal, run.four_by_four)
    assert len(rows) == 10 and all(set(r) == {"id", "town"} for r in rows)
    assert set(portal_types(portal, run.four_by_four)) == {"id", "town"}


def test_rows_sharing_a_row_identifier_with_other_values_are_all_set_aside_and_the_portal_keeps_its_row(
    tmp_path: Path, portal: LocalPortal
):
    """A delivery held permit 8 twice, a fee of 1.00 before the real 11101.86: keeping the first published
    the wrong fee. Both are set aside (the file does not say which is right) and the portal keeps its row;
    an exact repeat (permit 9) keeps its first row, as before."""
    dataset = make_dataset("permits_dupes", [{"source": "town"}, {"source": "fee", "type": "number"}])
    rows = [f"{i},Hartford,{100 + i}.50\n" for i in range(1, 101)]
    run = run_stages(tmp_path, portal, dataset, "id,town,fee\n" + "".join(rows))
    rows[7] = "8,Hartford,1.00\n8,Hartford,11101.86\n"
    rows[8] = "9,Hartford,109.50\n9,Hartford,109.50\n"
    run = run_stages(tmp_path, portal, dataset, "id,town,fee\n" + "".join(rows))
    assert [(line, rule, value) for line, rule, _, value, _ in run.quarantine()] == [
        (9, "unique_key", "8"),
        (10, "unique_key", "8"),
        (12, "unique_key", "9"),
    ]
    published = {r["id"]: r["fee"] for r in portal_rows(portal, run.four_by_four)}
    assert len(published) == 100 and published["8"] == "108.5" and published["9"] == "109.5"


def test_numbers_a_portal_would_round_are_set_aside_and_the_exact_ones_published(
    tmp_path: Path, portal: LocalPortal
):
    """A helper's 19-digit account numbers typed integer reached the portal rounded (…993 as …992.0) and,
    as the row identifier, 20 rows became 11; 12345678.123456789 typed number became 12345678.12345679.
    Such values are set aside with what to change; values a portal keeps exactly are published."""
    dataset = make_dataset(
        "exact_numbers",
        [{"source": "account", "type": "integer"}, {"source": "amount", "type": "number"}],
    )
    cells = [
        ("9007199254740991", "12.5"),  # the largest exact integer; an ordinary amount
        ("9007199254740993", "3"),
        ("42", "12345678.123456789"),
        ("43", "0.100000000000000000"),  # trailing zeros are not digits that matter
        ("44", "-123456789012.345"),
    ]
    csv = "id,account,amount\n" + "".join(f"{i},{a},{m}\n" for i, (a, m) in enumerate(cells, start=1))
    run = run_stages(tmp_path, portal, dataset, csv, publish=False)
    quarantined = run.con.execute(
        "SELECT _row, rule, reason FROM quarantine__exact_numbers ORDER BY _row"
    ).fetchall()
    assert [(row, rule) for row, rule, _ in quarantined] == [(2, "beyond_exact"), (3, "beyond_exact")]
    assert "above 9,007,199,254,740,991, which portals and browsers round" in quarantined[0][2]
    assert "type the column `code`" in quarantined[0][2]
    assert "more than 15 significant digits" in quarantined[1][2]
    kept = run.con.execute("SELECT account, amount FROM validate__exact_numbers ORDER BY _row").fetchall()
    assert kept == [(9007199254740991, 12.5), (43, 0.1), (44, -123456789012.345)]


def test_times_with_an_offset_and_a_z_format_are_published_as_connecticut_wall_time(
    tmp_path: Path, portal: LocalPortal
):
    """A helper declared `format: '%Y-%m-%dT%H:%M:%S%z'` for times sent with offsets, as the set-aside
    reason asked; validation then stopped on "the typed table does not have the declared types"."""
    dataset = make_dataset(
        "zoned_times", [{"source": "at", "type": "datetime", "format": "%Y-%m-%dT%H:%M:%S%z"}]
    )
    cells = ["2024-03-10T01:30:00-05:00", "2024-03-10T07:30:00+00:00", "2024-07-04T12:00:00-04:00"]
    csv = "id,at\n" + "".join(f"{i},{cell}\n" for i, cell in enumerate(cells, start=1))
    run = run_stages(tmp_path, portal, dataset, csv)
    assert not run.blocked and run.results["validate"].rows_set_aside == 0
    assert [r["at"] for r in portal_rows(portal, run.four_by_four)] == [
        "2024-03-10T01:30:00.000",
        "2024-03-10T03:30:00.000",  # 07:30 UTC, after the change to daylight time
        "2024-07-04T12:00:00.000",
    ]
