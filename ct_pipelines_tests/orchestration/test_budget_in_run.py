"""A dataset over its budget fails with one sentence in a real run; the other datasets still publish."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest
import yaml

from ct_pipelines.core.settings import SAMPLE_CATALOG_DIR, SAMPLE_LANDING_DIR
from ct_pipelines.orchestration.runner import run_catalog


@pytest.fixture
def catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CT_PIPELINES_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CT_PIPELINES_LANDING", str(tmp_path / "landing"))
    monkeypatch.delenv("CT_PORTAL_DOMAIN", raising=False)
    monkeypatch.delenv("CT_PIPELINES_DATASET_SECONDS", raising=False)
    shutil.copytree(SAMPLE_LANDING_DIR, tmp_path / "landing")
    shutil.copytree(SAMPLE_CATALOG_DIR, tmp_path / "catalog")
    return tmp_path / "catalog"


def _set_budget(catalog: Path, dataset_id: str, **budget: object) -> None:
    path = catalog / f"{dataset_id}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data.setdefault("validate", {})["budget"] = budget
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def test_memory_budget_fails_one_dataset_and_the_others_publish(catalog: Path):
    _set_budget(catalog, "dss_interpreter_requests", memory="1MB")
    summaries, _ = run_catalog(str(catalog), instance=dg.DagsterInstance.ephemeral())
    by_id = {s.dataset_id: s for s in summaries}
    failed = by_id["dss_interpreter_requests"]
    assert failed.error is not None and failed.rows_published is None
    assert "'dss_interpreter_requests' needed more than its memory budget of 1MB" in failed.error
    assert "validate.budget.memory" in failed.error and "Traceback" not in failed.error
    assert by_id["deep_fishing_licenses"].rows_published == 100
    assert by_id["dmv_ev_registrations"].rows_published == 300


def test_time_budget_from_the_settings_stops_every_dataset_with_one_sentence(
    catalog: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("CT_PIPELINES_DATASET_SECONDS", "0.000001")  # out of time before the first stage
    _set_budget(catalog, "deep_fishing_licenses", seconds=600)  # the YAML's own budget wins
    summaries, _ = run_catalog(str(catalog), instance=dg.DagsterInstance.ephemeral())
    by_id = {s.dataset_id: s for s in summaries}
    assert by_id["deep_fishing_licenses"].rows_published == 100
    stopped = by_id["dmv_ev_registrations"]
    assert stopped.failed_stage == "ingest" and stopped.rows_published is None
    assert stopped.error == (
        "dataset 'dmv_ev_registrations' was stopped in the ingest stage after its time budget of 1e-06 s ran "
        "out; raise validate.budget.seconds in its YAML (or CT_PIPELINES_DATASET_SECONDS for every dataset) "
        "if the extract really needs longer"
    )
