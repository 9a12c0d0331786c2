"""Values never change silently: number and date formats, two-digit years, the date floor, null tokens
and suppression markers, each from a CSV as agencies write it, comparing what was validated (or
published) with the source cell."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from ct_pipelines.portal.local import LocalPortal
from ct_pipelines_tests.support.stages import make_dataset, portal_rows, portal_types, run_stages


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPortal]:
    with LocalPortal(tmp_path_factory.mktemp("portal")) as local:
        yield local


# (column settings, source cells, values that pass in source order, {source line: rule} set aside).
# Cells are written to a semicolon-separated file, as European-locale exports are, so commas stay in cells.
CASES: dict[str, tuple[dict[str, Any], list[str], list[Any], dict[int, str]]] = {
    "number_default_refuses_decimal_comma": (
        {"type": "number"},
        ["1,234.56", "510,93", "1,00", "12"],
        [1234.56, 12.0],
        {3: "decimal_comma", 4: "decimal_comma"},  # never 51093 or 100
    ),
    "number_decimal_comma_declared": (
        {"type": "number", "format": {"decimal": ",", "thousands": "."}},
        ["510,93", "1.234,56", "1,234.56", "-7"],
        [510.93, 1234.56, -7.0],
        {4: "type"},  # a US-style cell under a declared European format is refused, not reread
    ),
    "number_percent_declared": (
        {"type": "number", "format": {"percent": True}},
        ["12.5%", "100 %", "7"],
        [12.5, 100.0, 7.0],
        {},
    ),
    "number_percent_not_declared": ({"type": "number"}, ["12.5%", "7"], [7.0], {2: "type"}),
    "number_euro_sign": (
        {"type": "number", "format": {"decimal": ",", "thousands": ".", "currency": ["€"]}},
        ["€1.234,56", "1.234,56 €", "$5"],
        [1234.56, 1234.56],
        {4: "type"},
    ),
    "integer_default": (
        {"type": "integer"},
        ["1,234", "12.5", "1,00", "1,2345", "12,34,567"],
        [1234],
        {3: "fraction", 4: "decimal_comma", 5: "decimal_comma", 6: "type"},
    ),
    "accounting_negatives": (  # a helper's net changes, "(1,368)", were set aside as not numbers
        {"type": "integer"},
        ["(1,368)", "-3069", "( 42 )", "(5", "(-3)", "()"],
        [-1368, -3069, -42],
        {5: "type", 6: "type", 7: "type"},
    ),
    "accounting_negative_money": (
        {"type": "number"},
        ["($1,234.50)", "$12.5", "(0.25)"],
        [-1234.5, 12.5, -0.25],
        {},
    ),
    "date_excel_day_number": (  # a General-format cell in a workbook: it says what to ask the agency
        {"type": "date"},
        ["45473", "2024-06-30"],
        [date(2024, 6, 30)],
        {2: "excel_day_number"},
    ),
    "date_default": (
        {"type": "date"},
        [
            "2024-03-05",
            "3/5/24",
            "24-03-05",
            "03/05/2024",
            "1799-12-31",
            "3/5/2024 2:30:00 PM",
            "3/5/2024 12:00:00 AM",
        ],
        [date(2024, 3, 5), date(2024, 3, 5), date(2024, 3, 5)],
        {3: "ambiguous_date", 4: "ambiguous_date", 6: "floor", 7: "type"},  # a time is not dropped
    ),
    "date_two_digit_year_declared": (
        {"type": "date", "format": {"date": "%d/%m/%y", "pivot_year": 50}},
        ["5/3/24", "5/3/67", "2024-03-05"],
        [date(2024, 3, 5), date(1967, 3, 5)],
        {4: "type"},  # only the declared format is read
    ),
    "date_four_digit_year_declared": (
        {"type": "date", "format": {"date": ["%d/%m/%Y", "%Y-%m-%d"]}},
        ["5/3/24", "05/03/2024", "2024-03-06"],
        [date(2024, 3, 5), date(2024, 3, 6)],
        {2: "two_digit_year"},  # '24' is not the year 24: set aside, saying to declare '%d/%m/%y'
    ),
    "date_floor_declared": (
        {"type": "date", "format": {"floor": "1700-01-01"}},
        ["1750-06-01", "1699-12-31"],
        [date(1750, 6, 1)],
        {3: "floor"},
    ),
    "datetime_default": (
        {"type": "datetime"},
        ["2024-03-05T10:00:00-05:00", "2024-03-05 10:00", "3/5/24 10:00"],
        [datetime(2024, 3, 5, 10, 0)],
        {2: "time_zone", 4: "ambiguous_date"},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_values_are_read_as_declared_or_set_aside_with_a_reason(
    tmp_path: Path, portal: LocalPortal, case: str
):
    column, cells, valid, quarantined = CASES[case]
    dataset = make_dataset("fmt", [{"source": "value", **column}], quality={"max_quarantine_share": 1.0})
    csv = "id;value\n" + "".join(f"{i};{cell}\n" for i, cell in enumerate(cells, start=1))
    run = run_stages(tmp_path, portal, dataset, csv, publish=False)
    assert run.valid("value") == pytest.approx(valid) if valid and isinstance(valid[0], float) else valid
    rows = run.quarantine()
    assert {line: rule for line, rule, *_ in rows} == quarantined
    assert all(value == cells[line - 2] for line, _, _, value, _ in rows)  # the source cell, as sent


def test_reasons_say_what_to_declare(tmp_path: Path, portal: LocalPortal):
    dataset = make_dataset(
        "reasons",
        [
            {"source": "amount", "type": "number"},
            {"source": "day", "type": "date"},
            {"source": "age", "type": "integer"},
        ],
        quality={"max_quarantine_share": 1.0},
    )
    run = run_stages(
        tmp_path,
        portal,
        dataset,
        "id;amount;day;age\n1;510,93;3/5/24;4\n2;5;1/1/2024;1,2\n3;5;1/1/2024;1042200.50\n",
        publish=False,
    )
    reasons = {(column, rule): reason for _, rule, column, _, reason in run.quarantine()}
    assert "declare the column's format: {decimal: ','}" in reasons[("amount", "decimal_comma")]
    assert "pivot_year" in reasons[("day", "ambiguous_date")]
    # no format makes 1,2 a whole number, so an integer column gets no advice to declare a decimal comma
    assert reasons[("age", "decimal_comma")] == (
        "have an age with a comma that does not separate thousands (such as 1,2), so not a whole number"
    )
    # a column typed integer from a first file of whole amounts meets a fraction: the type to declare
    assert reasons[("age", "fraction")].endswith(
        "so not a whole number; if the column holds such values, declare it type: number"
    )


def test_declared_decimal_comma_reaches_the_portal_as_written(tmp_path: Path, portal: LocalPortal):
    dataset = make_dataset(
        "eu_amounts", [{"source": "amount", "type": "number", "format": {"decimal": ",", "thousands": "."}}]
    )
    run = run_stages(tmp_path, portal, dataset, "id;amount\n1;510,93\n2;1.234,56\n")
    assert [r["amount"] for r in portal_rows(portal, run.four_by_four)] == ["510.93", "1234.56"]
    assert portal_types(portal, run.four_by_four)["amount"] == "number"


QUIRKS_CSV = """\
id,town,count,rate
1,Hartford,12,1.5
2,NULL,*,-
3,Unknown,<5,N/A
4,New Haven,-,2
"""


def test_null_tokens_and_suppression_markers_are_applied_counted_and_flagged(
    tmp_path: Path, portal: LocalPortal
):
    dataset = make_dataset(
        "quirks",
        [
            {"source": "town", "null_values": ["NULL", "Unknown"]},  # replaces the dataset's list
            {"source": "count", "type": "integer", "required": True},  # dataset markers apply to numbers
            {"source": "rate", "type": "number", "suppressed_values": ["N/A"]},
        ],
        quality={
            "null_values": ["NULL", "n/a", "-"],
            "suppressed_values": ["*", "<5"],
            "max_quarantine_share": 0.5,
        },
    )
    run = run_stages(tmp_path, portal, dataset, QUIRKS_CSV)
    meta = run.results["validate"].facts
    assert meta["null_tokens_by_column"] == {"id": 0, "town": 2, "count": 1, "rate": 1}
    assert meta["suppressed_at_source_by_column"] == {"count": 2, "rate": 1}
    # A suppressed count is not missing; a '-' (a null token) in a required column is.
    assert [(line, rule) for line, rule, *_ in run.quarantine()] == [(5, "required")]
    rows = portal_rows(portal, run.four_by_four)
    assert [
        (r["id"], r.get("town"), r.get("count"), r["count_suppressed"], r.get("rate"), r["rate_suppressed"])
        for r in rows
    ] == [
        ("1", "Hartford", "12", False, "1.5", False),
        ("2", None, None, True, None, False),
        ("3", None, None, True, None, True),
    ]
    types = portal_types(portal, run.four_by_four)
    assert types["count_suppressed"] == "checkbox" and types["count"] == "number"


def test_a_declared_four_digit_year_meeting_two_digits_says_which_format_to_declare(
    tmp_path: Path, portal: LocalPortal
):
    """DCF's 6/26/14 under a declared '%m/%d/%Y' was reported as 'not a valid date', and with every row
    set aside the summary said 'the other rows go on'."""
    dataset = make_dataset(
        "short_years",
        [{"source": "as_of", "type": "date", "format": {"date": "%m/%d/%Y"}}],
        quality={"max_quarantine_share": 1.0},
    )
    run = run_stages(tmp_path, portal, dataset, "id;as_of\n1;6/26/14\n2;7/18/17\n", publish=False)
    reasons = {rule: reason for _, rule, _, _, reason in run.quarantine()}
    assert reasons == {
        "two_digit_year": "have an as_of with a two-digit year (such as 6/26/14), where the declared format "
        "'%m/%d/%Y' has four; declare the column's format as {date: '%m/%d/%y', pivot_year: 50}"
    }
    summary = run.outcome("types").summary
    assert "2 rows have an as_of with a two-digit year" in summary
    assert "they were set aside and no row is left to go on" in summary
