"""One planted-defects run shared by the report tests: the fixed extract published first, then the extract with
defects blocked, both through the real Dagster job in process, with the checks recorded and the site built."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from ct_pipelines.catalog.loader import load_catalog
from ct_pipelines.core.settings import SAMPLES_DIR, Settings, load_settings
from ct_pipelines.orchestration.runner import DatasetSummary, run_catalog
from ct_pipelines.report.build import ReportResult, write_reports
from ct_pipelines.report.checks import record_dagster_checks

DEFECTS = SAMPLES_DIR / "defects"


@dataclass
class Site:
    settings: Settings
    report: ReportResult
    summaries: list[DatasetSummary]


def run_and_record(catalog: Path, settings: Settings) -> list[DatasetSummary]:
    """Run the catalog's job in process and persist its check results, as the pipeline will after each stage."""
    summaries, result = run_catalog(str(catalog), settings=settings, instance=dg.DagsterInstance.ephemeral())
    record_dagster_checks(settings, result)
    return summaries


@pytest.fixture(scope="session")
def defects_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("defects_site")
    landing = root / "landing"
    landing.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CT_PIPELINES_HOME", str(root / "home"))
        mp.setenv("CT_PIPELINES_LANDING", str(landing))
        mp.delenv("CT_PORTAL_DOMAIN", raising=False)
        mp.delenv("CT_PIPELINES_WAREHOUSE", raising=False)
        mp.delenv("CT_PIPELINES_REPORTS", raising=False)
        mp.delenv("CT_PIPELINES_PORTAL_DATA", raising=False)
        settings = load_settings()
        shutil.copy(DEFECTS / "fixed" / "dph_clinic_visits.csv", landing)
        run_and_record(DEFECTS / "catalog", settings)
        shutil.copy(DEFECTS / "landing" / "dph_clinic_visits.csv", landing)
        summaries = run_and_record(DEFECTS / "catalog", settings)
        report = write_reports(settings, load_catalog(DEFECTS / "catalog"))
        yield Site(settings, report, summaries)
