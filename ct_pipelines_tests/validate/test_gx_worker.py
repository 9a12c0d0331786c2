"""Great Expectations in its own process: the same outcomes and Data Docs as in process, on the run's tables."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ct_pipelines.core.outcomes import CheckOutcome
from ct_pipelines.validate import validate as validate_module
from ct_pipelines.validate.gx_suite import run_gx_suite
from ct_pipelines.validate.gx_worker import GxWorker, GxWorkerError
from ct_pipelines_tests.validate.test_gx import EXPECTATIONS, make_dataset, make_rows, warehouse  # noqa: F401

MIXED = [
    *EXPECTATIONS,
    # GX cannot build it: reported as a failed check saying how to fix the YAML
    {"expectation": "expect_column_values_to_be_purple", "kwargs": {"column": "sex"}},
    # the column is not there: DuckDB's error travels back to the worker, and GX reports it
    {"expectation": "expect_column_values_to_not_be_null", "kwargs": {"column": "no_such_column"}},
]


@pytest.fixture(scope="module")
def worker() -> Iterator[GxWorker]:
    started = GxWorker()
    yield started
    started.stop()


def comparable(outcomes: list[CheckOutcome]) -> list[tuple]:
    return [
        (
            o.name,
            o.passed,
            o.severity,
            o.summary,
            {k: v for k, v in o.metadata.items() if k != "data_docs_index"},
        )
        for o in outcomes
    ]


def test_the_worker_gives_the_outcomes_and_data_docs_of_an_in_process_run(
    worker: GxWorker,
    warehouse,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    dataset = make_dataset(MIXED)
    here, here_docs = run_gx_suite(warehouse, dataset, "valid", "gx_probe", tmp_path / "here", "run-1")
    there, there_docs = worker.run(warehouse, dataset, "valid", "gx_probe", tmp_path / "there", "run-1")
    assert comparable(there) == comparable(here)
    assert len(there) == len(MIXED)
    by_name = {o.name: o for o in there}
    rows = make_rows()
    assert by_name["gx_column_values_to_be_in_set_sex"].metadata["unexpected_count"] == sum(
        r[3] not in ("F", "M") for r in rows
    )
    assert (
        by_name["gx_column_values_to_match_regex_zip"].metadata["unexpected_count"] > 0
    )  # the regex patch ran
    assert "could not be used" in by_name["gx_column_values_to_be_purple_sex"].summary
    missing = by_name["gx_column_values_to_not_be_null_no_such_column"]
    assert not missing.passed and "could not evaluate" in missing.summary
    assert there_docs == tmp_path / "there" / "index.html" and there_docs.is_file()
    assert by_name["gx_column_values_to_be_in_set_sex"].metadata["data_docs_index"] == str(there_docs)
    assert here_docs is not None and here_docs.is_file()


def test_one_worker_serves_suites_one_after_another(
    worker: GxWorker,
    warehouse,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    """Each suite sees the table as committed when it runs."""
    dataset = make_dataset([EXPECTATIONS[5]])  # the row count
    first, _ = worker.run(warehouse, dataset, "valid", "gx_probe", tmp_path / "a", "run-1")
    warehouse.execute('DELETE FROM valid."gx_probe" WHERE id < 50')
    second, _ = worker.run(warehouse, dataset, "valid", "gx_probe", tmp_path / "b", "run-2")
    assert first[0].metadata["observed_value"] == len(make_rows())
    assert second[0].metadata["observed_value"] == len(make_rows()) - sum(r[0] < 50 for r in make_rows())


def test_an_error_in_the_worker_names_only_its_type_and_the_worker_serves_the_next_suite(
    worker: GxWorker,
    warehouse,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    blocked = tmp_path / "docs"
    blocked.write_text("a file where the Data Docs folder goes", encoding="utf-8")
    dataset = make_dataset([EXPECTATIONS[5]])
    with pytest.raises(GxWorkerError) as raised:
        worker.run(warehouse, dataset, "valid", "gx_probe", blocked, "run-1")
    assert str(raised.value) == "FileExistsError in the worker"
    outcomes, _ = worker.run(warehouse, dataset, "valid", "gx_probe", tmp_path / "next", "run-2")
    assert outcomes[0].passed and outcomes[0].metadata["observed_value"] == len(make_rows())


def test_validation_runs_the_suite_itself_when_the_worker_is_gone(
    warehouse,  # noqa: F811 - the fixture
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dead = GxWorker()
    dead._process.kill()  # as if the system had stopped it
    dead._process.wait()
    dataset = make_dataset(EXPECTATIONS)
    with pytest.raises(GxWorkerError):
        dead.run(warehouse, dataset, "valid", "gx_probe", tmp_path / "dead", "run-1")
    monkeypatch.setattr(validate_module, "running_gx_worker", lambda: dead)
    said: list[str] = []
    outcomes, docs = validate_module._gx_outcomes(
        warehouse, dataset, "valid", "gx_probe", tmp_path / "docs", "run-1", said.append
    )
    expected, _ = run_gx_suite(warehouse, dataset, "valid", "gx_probe", tmp_path / "again", "run-1")
    assert comparable(outcomes) == comparable(expected)
    assert docs is not None and docs.is_file()
    assert said == ["Great Expectations: the worker stopped; running the suite in this process instead"]
    dead.stop()


def test_a_request_that_cannot_be_sent_stops_the_worker_rather_than_leave_it_out_of_step(
    warehouse,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    started = GxWorker()
    dataset = make_dataset(EXPECTATIONS)
    object.__setattr__(dataset, "__dict__", {**dataset.__dict__, "not_picklable": lambda: None})
    with pytest.raises(GxWorkerError, match=r"^the worker stopped \((PicklingError|AttributeError)\)$"):
        started.run(warehouse, dataset, "valid", "gx_probe", tmp_path / "docs", "run-1")
    assert started._process.poll() is not None
    with pytest.raises(GxWorkerError, match="^the worker stopped$"):
        started.run(warehouse, make_dataset(EXPECTATIONS), "valid", "gx_probe", tmp_path / "docs", "run-2")


def test_the_worker_exits_when_the_run_closes_its_end() -> None:
    started = GxWorker()
    started._pipe.close()
    deadline = time.monotonic() + 60  # it may still be importing GX
    while started._process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert started._process.returncode == 0
