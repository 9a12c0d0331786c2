"""Great Expectations on DuckDB through the adapter: correct unexpected counts, Data Docs written, patches scoped."""

from __future__ import annotations

import logging
import re
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest
from great_expectations.execution_engine.sqlalchemy_execution_engine import SqlAlchemyExecutionEngine
from great_expectations.expectations.metrics import util as gx_metric_util

from ct_pipelines.catalog.models import Dataset
from ct_pipelines.validate.gx_duckdb import cached_templates, duckdb_patches
from ct_pipelines.validate.gx_suite import gx_check_names, run_gx_suite


def make_rows(n: int = 200) -> list[tuple]:
    """Rows with defects at known positions; the expected counts below are computed from these rows."""
    rows = []
    for i in range(n):
        code = None if i % 50 == 7 else f"C{i:04d}"
        age = 130 + i if i % 45 == 3 else i % 90
        sex = "X" if i % 97 == 5 else "FM"[i % 2]
        zip_code = "6103" if i % 60 == 11 else f"06{i % 1000:03d}"
        rows.append((i, code, age, sex, zip_code))
    rows[20] = (19, *rows[20][1:])  # one repeated id
    return rows


EXPECTATIONS = [
    {"expectation": "expect_column_values_to_not_be_null", "kwargs": {"column": "code"}, "severity": "ERROR"},
    {
        "expectation": "expect_column_values_to_be_between",
        "kwargs": {"column": "age", "min_value": 0, "max_value": 120},
    },
    {
        "expectation": "expect_column_values_to_be_in_set",
        "kwargs": {"column": "sex", "value_set": ["F", "M"]},
    },
    {
        "expectation": "expect_column_values_to_match_regex",
        "kwargs": {"column": "zip", "regex": "^06[0-9]{3}$"},
    },
    {"expectation": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}},
    {"expectation": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1, "max_value": 10_000}},
]


def make_dataset(expectations: list[dict]) -> Dataset:
    return Dataset.model_validate(
        {
            "id": "gx_probe",
            "title": "GX probe",
            "description": "A table made in the test for Great Expectations.",
            "agency": "Department of Testing",
            "category": "Health and Human Services",
            "update_frequency": "Monthly",
            "contact": "data.officer@ct.gov",
            "source": {"path": "probe.csv"},
            "quality": {"expectations": expectations},
        }
    )


@pytest.fixture
def warehouse(tmp_path: Path):
    """A DuckDB *file*, as in production: GX must reuse the open connection rather than lock the file."""
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA valid")
    con.execute(
        'CREATE TABLE valid."gx_probe" (id BIGINT, code VARCHAR, age BIGINT, sex VARCHAR, zip VARCHAR)'
    )
    con.executemany('INSERT INTO valid."gx_probe" VALUES (?, ?, ?, ?, ?)', make_rows())
    yield con
    con.close()


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[str] = []

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)


def parse(path: Path) -> _Text:
    parser = _Text()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_suite_from_yaml_gives_correct_unexpected_counts_and_data_docs(warehouse, tmp_path):
    rows = make_rows()
    ids = [r[0] for r in rows]
    expected = {
        "gx_column_values_to_not_be_null_code": sum(r[1] is None for r in rows),
        "gx_column_values_to_be_between_age": sum(not 0 <= r[2] <= 120 for r in rows),
        "gx_column_values_to_be_in_set_sex": sum(r[3] not in ("F", "M") for r in rows),
        "gx_column_values_to_match_regex_zip": sum(not re.fullmatch(r"06[0-9]{3}", r[4]) for r in rows),
        "gx_column_values_to_be_unique_id": sum(ids.count(i) > 1 for i in ids),
    }
    dataset = make_dataset(EXPECTATIONS)
    outcomes, index = run_gx_suite(warehouse, dataset, "valid", "gx_probe", tmp_path / "docs", "run-7")
    by_name = {o.name: o for o in outcomes}
    assert [o.name for o in outcomes] == [name for name, _ in gx_check_names(dataset)]
    for name, count in expected.items():
        assert count > 0
        assert by_name[name].metadata["unexpected_count"] == count, name
        assert not by_name[name].passed
        assert f"{count:,} of {len(rows):,} rows" in by_name[name].summary
    assert by_name["gx_table_row_count_to_be_between"].passed
    assert by_name["gx_table_row_count_to_be_between"].metadata["observed_value"] == len(rows)
    assert by_name["gx_column_values_to_not_be_null_code"].severity == "ERROR"

    assert index is not None and index.exists()
    assert by_name["gx_column_values_to_be_in_set_sex"].metadata["data_docs_index"] == str(index)
    # The index lists runs in a JavaScript table, so its links are found in the page source.
    links = set(re.findall(r"validations/[^'\"]+?\.html", index.read_text(encoding="utf-8")))
    pages = [index.parent / link for link in links]
    assert pages, "the index links to this run's validation page"
    text = " ".join(parse(pages[0]).chunks)
    assert "run-7" in str(pages[0]) and "gx_probe" in text
    for count in expected.values():
        assert re.search(rf"\b{count} unexpected values? found", text), count


def test_patches_apply_only_inside_the_block():
    original_execute = SqlAlchemyExecutionEngine.execute_query
    original_regex = gx_metric_util.get_dialect_regex_expression
    with duckdb_patches():
        assert SqlAlchemyExecutionEngine.execute_query is not original_execute
        assert gx_metric_util.get_dialect_regex_expression is not original_regex
    assert SqlAlchemyExecutionEngine.execute_query is original_execute
    assert gx_metric_util.get_dialect_regex_expression is original_regex


def test_data_docs_templates_are_cached_only_inside_the_block():
    from great_expectations.render.view.view import DefaultJinjaView

    with cached_templates():
        assert DefaultJinjaView().env.bytecode_cache is not None
    assert DefaultJinjaView().env.bytecode_cache is None


def test_unknown_expectation_is_reported_without_hiding_the_others(warehouse, tmp_path):
    dataset = make_dataset(
        [
            {
                "expectation": "expect_column_values_to_be_purple",
                "kwargs": {"column": "sex"},
                "severity": "ERROR",
            },
            EXPECTATIONS[2],
        ]
    )
    outcomes, _ = run_gx_suite(warehouse, dataset, "valid", "gx_probe", tmp_path / "docs", "run-1")
    bad, good = outcomes
    assert bad.name == "gx_column_values_to_be_purple_sex" and not bad.passed and bad.blocks
    assert "check its name" in bad.summary
    assert good.metadata["unexpected_count"] == sum(r[3] not in ("F", "M") for r in make_rows())


@pytest.mark.parametrize(
    ("snake", "expected"),
    [
        ("expect_column_kl_divergence_to_be_less_than", "ExpectColumnKLDivergenceToBeLessThan"),
        ("expect_column_values_to_be_between", "ExpectColumnValuesToBeBetween"),
        ("expect_column_values_to_be_purple", None),
    ],
)
def test_expectation_names_in_yaml_find_gx_classes_whatever_their_capitals(snake: str, expected: str | None):
    from ct_pipelines.validate.gx_suite import _expectation_class

    found = _expectation_class(snake)
    assert (found.__name__ if found else None) == expected


def test_a_data_docs_rendering_failure_is_one_line_not_a_traceback(warehouse, tmp_path, caplog):
    """GX's results table raises while drawing a failed distinct-values expectation and logs a traceback;
    the run says so in one line, and the check's result is unaffected."""
    dataset = make_dataset(
        [
            {
                "expectation": "expect_column_distinct_values_to_be_in_set",
                "kwargs": {"column": "sex", "value_set": ["F"]},
            }
        ]
    )
    with caplog.at_level(logging.WARNING):
        outcomes, index = run_gx_suite(warehouse, dataset, "valid", "gx_probe", tmp_path / "docs", "run-1")
    assert not outcomes[0].passed and index is not None and index.is_file()
    assert (
        outcomes[0].summary
        == "2 value(s) found break the rule 'sex: column distinct values to be in set': M, X."
    )
    messages = [record.getMessage() for record in caplog.records]
    assert not any("Traceback" in message or "unexpected Exception" in message for message in messages)
    assert (
        "Great Expectations could not draw 1 part(s) of its Data Docs for gx_probe; the check results are not "
        "affected." in messages
    )
    assert not logging.getLogger(
        "great_expectations.render.renderer.content_block.validation_results_table_content_block"
    ).filters
