"""Validate re-run alone after standardize: a new race label must not reach the portal uncategorized.

The standardized rows are a view over the valid rows and the labels standardize classified. The extract is
re-sent with a label standardize never saw, ingest and validate run again, and protect runs without
standardize (as a Dagster user can select it): protect refuses with what to do, and after standardize
runs the new label is counted under its own group."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ct_pipelines import pipeline
from ct_pipelines.core.results import StageError
from ct_pipelines.portal.local import LocalPortal
from ct_pipelines_tests.support.stages import make_dataset, run_stages, settings_for


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPortal]:
    with LocalPortal(tmp_path_factory.mktemp("portal")) as local:
        yield local


def extract(races: list[str]) -> str:
    return "id,race\r\n" + "".join(f"{n},{race}\r\n" for n, race in enumerate(races, start=1))


def test_protect_after_validate_alone_refuses_a_label_standardize_has_not_seen(
    tmp_path: Path, portal: LocalPortal
):
    dataset = make_dataset(
        "stale_labels",
        [{"source": "race"}],
        standardize={"columns": [{"column": "race", "field": "race"}]},
        protect={
            "mode": "aggregate",
            "aggregate": {"dimensions": ["rel_reporting_group"], "measures": [{"name": "count"}]},
        },
    )
    first = ["White"] * 12 + ["Black"] * 8
    run = run_stages(tmp_path, portal, dataset, extract(first), publish=False)
    stages = {stage.name: stage for stage in pipeline.STAGES}
    settings = settings_for(tmp_path, portal)
    standardized = stages["standardize"].run(run.con, dataset, settings, run_id="run-1")
    assert standardized.rows_out == 20

    (settings.landing_dir / dataset.ingest.path).write_text(extract(first + ["Asian"] * 6), encoding="utf-8")
    for name in ("ingest", "validate"):
        assert stages[name].run(run.con, dataset, settings, run_id="run-2").rows_out == 26
    with pytest.raises(StageError, match="did not see .*run standardize before protect"):
        stages["protect"].run(run.con, dataset, settings, run_id="run-2")

    stages["standardize"].run(run.con, dataset, settings, run_id="run-2")
    stages["protect"].run(run.con, dataset, settings, run_id="run-2")
    counts = dict(
        run.con.execute('SELECT rel_reporting_group, "count" FROM protect__stale_labels').fetchall()
    )
    assert {group: counts[group] for group in counts if group != "Total"} == {
        "White (Hispanic origin unknown)": 12,
        "Black (Hispanic origin unknown)": 8,
        "Asian (Hispanic origin unknown)": 6,
    }
