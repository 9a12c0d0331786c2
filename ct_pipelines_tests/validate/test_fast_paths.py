"""The casts' shortcuts (plain and grouped numbers, US dates) read every cell exactly as the whole format does.

Most cells take a shortcut in the validate scan; the full format is the definition. These tests compare
both on cells made to sit on the shortcuts' edges, so a shortcut can only ever be faster, never different.
"""

from __future__ import annotations

import itertools
import random

import duckdb
import pytest

from ct_pipelines.catalog.blocks.validate import ValueFormat
from ct_pipelines.core.sql import quote_literal
from ct_pipelines.validate.parsing import (
    DATE_FORMATS,
    TIME_FORMATS,
    date_sql,
    number_pattern,
    number_sql,
    sql_list,
)


def _number_cells() -> list[str]:
    rng = random.Random(17)
    marks = [",", ".", " ", "'", ""]
    cells = [
        "0",
        "007",
        "12.",
        ".5",
        "1.2.3",
        "12.00",
        "-5",
        "+5",
        "$5",
        "1e3",
        "nan",
        "0x10",
        "1_000",
        "12.5%",
    ]
    for _ in range(2000):
        thousands, decimal = rng.choice(marks), rng.choice(marks)
        groups = [str(rng.randint(0, 10 ** rng.randint(1, 4) - 1))]  # a leading group of 1 to 4 digits
        groups += [str(rng.randint(0, 10 ** rng.randint(2, 4) - 1)).zfill(rng.choice([2, 3, 3, 3, 4]))]
        cell = thousands.join(
            groups[: rng.randint(1, 2)] + [f"{rng.randint(0, 999):03d}"] * rng.randint(0, 2)
        )
        cells.append(cell + (f"{decimal}{rng.randint(0, 9999)}" if rng.random() < 0.5 else ""))
    return cells


def _full_number_sql(text: str, fmt: ValueFormat, integer: bool) -> str:
    """The whole format alone: match, rewrite to sign and digits, cast."""
    pattern = quote_literal(number_pattern(fmt, integer))
    digits = f"regexp_replace({text}, {pattern}, '\\1\\2\\3')"
    if fmt.thousands:
        digits = f"replace({digits}, {quote_literal(fmt.thousands)}, '')"
    if fmt.decimal != ".":
        digits = f"replace({digits}, {quote_literal(fmt.decimal)}, '.')"
    target = "BIGINT" if integer else "DOUBLE"
    return f"CASE WHEN regexp_matches({text}, {pattern}) THEN TRY_CAST({digits} AS {target}) END"


@pytest.fixture(scope="module")
def con():
    connection = duckdb.connect()
    connection.execute("CREATE TABLE numbers (t VARCHAR)")
    connection.executemany("INSERT INTO numbers VALUES (?)", [[c] for c in _number_cells()])
    days = [f"{m}/{d}/{y}" for m, d, y in itertools.product(
        [*range(0, 14), "00", "01", "09", "12", "13", "99"], [*range(0, 33), "00", "01", "29", "31", "99"],
        ["0000", "0001", "1799", "2000", "2023", "2024", "9999", "24", "99", "202", "20245"],
    )]  # fmt: skip
    connection.execute("CREATE TABLE days (t VARCHAR)")
    connection.executemany("INSERT INTO days VALUES (?)", [[d] for d in days])
    yield connection
    connection.close()


@pytest.mark.parametrize(
    "fmt",
    [
        {},
        {"thousands": ""},
        {"thousands": " "},
        {"thousands": "'"},
        {"decimal": ","},
        {"decimal": ",", "thousands": "."},
        {"decimal": ",", "thousands": " ", "currency": ["€"]},
        {"percent": True},
    ],
)
@pytest.mark.parametrize("integer", [True, False])
def test_number_shortcuts_read_what_the_whole_format_reads(con, fmt, integer):
    value_format = ValueFormat.model_validate(fmt)
    fast, full = number_sql("t", value_format, integer), _full_number_sql("t", value_format, integer)
    differ = con.execute(f"SELECT t, {fast}, {full} FROM numbers WHERE ({fast}) IS DISTINCT FROM ({full})")
    assert differ.fetchall() == []
    assert con.execute(f"SELECT count({fast}) FROM numbers").fetchone()[0] > 100  # the shortcuts are used


def test_us_dates_read_by_their_first_format_are_what_the_whole_list_reads(con):
    """A US-shaped cell that '%m/%d/%Y' refuses is refused by every other format the list tries."""
    listed = f"CASE WHEN regexp_matches(t, '[0-9]{{4}}') THEN try_strptime(t, {sql_list(DATE_FORMATS + TIME_FORMATS)}) END"
    whole = (
        f"(SELECT CASE WHEN s = date_trunc('day', s) THEN CAST(s AS DATE) END FROM (SELECT {listed} AS s))"
    )
    fast = date_sql("t", ValueFormat())
    differ = con.execute(f"SELECT t FROM days WHERE ({fast}) IS DISTINCT FROM {whole}").fetchall()
    assert differ == []
    assert con.execute(f"SELECT count({fast}) FROM days").fetchone()[0] > 1000
