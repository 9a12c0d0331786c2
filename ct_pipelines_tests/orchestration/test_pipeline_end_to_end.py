"""The whole pipeline through Dagster on the embedded default: quality gates block publishing, PII never
reaches the portal, fixed data flows through, and a truncated extract is refused with the portal untouched."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from ct_pipelines.core.results import RunOptions
from ct_pipelines.core.settings import SAMPLES_DIR
from ct_pipelines.orchestration.runner import run_catalog
from ct_pipelines.portal.store import PortalStore

DEFECTS = SAMPLES_DIR / "defects"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CT_PIPELINES_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CT_PIPELINES_LANDING", str(tmp_path / "landing"))
    monkeypatch.delenv("CT_PORTAL_DOMAIN", raising=False)
    (tmp_path / "landing").mkdir()
    return tmp_path


def _run(catalog: Path) -> tuple[list, dg.ExecuteInProcessResult]:
    return run_catalog(str(catalog), instance=dg.DagsterInstance.ephemeral())


def _checks(result: dg.ExecuteInProcessResult, stage: str) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations() if e.asset_key.path[-1] == stage}


def _materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {
        e.event_specific_data.materialization.asset_key.path[-1]  # type: ignore[union-attr]
        for e in result.get_asset_materialization_events()
    }


def _portal_views(home: Path) -> list[dict]:
    store = PortalStore(home / "home" / "portal")
    try:
        return store.list_views()
    finally:
        store.close()


def test_planted_defects_fail_their_checks_exactly_and_nothing_is_published(home: Path):
    shutil.copy(DEFECTS / "landing" / "dph_clinic_visits.csv", home / "landing")
    summaries, result = _run(DEFECTS / "catalog")
    checks = _checks(result, "validate")
    row_checks = {name: e for name, e in checks.items() if not e.passed and name != "quarantine_share"}
    failing = {name: int(e.metadata["failing_rows"].value) for name, e in row_checks.items()}
    # Planted in ct_pipelines/samples/generate.py: 2 empty ids, 1 repeated id, 1 impossible date, 3 ages over
    # 120, 2 vaccines outside the list, 1 date in the future.
    assert failing == {
        "required": 2,
        "unique": 2,  # the repeated id and its first row: their other values differ
        "types": 1,
        "ranges": 3,
        "allowed_values": 2,
        "not_in_future": 1,
    }
    # Failing rows are set aside (a warning each); 5% set aside is over the demo's 2% limit, which blocks.
    assert all(e.severity == dg.AssetCheckSeverity.WARN for e in row_checks.values())
    assert not checks["quarantine_share"].passed
    assert checks["quarantine_share"].severity == dg.AssetCheckSeverity.ERROR
    assert checks["conservation"].passed
    assert {"ingest", "validate"} <= _materialized(result)
    assert not {"standardize", "protect", "publish"} & _materialized(result)
    assert summaries[0].rows_set_aside == 11 and not summaries[0].ok
    assert _portal_views(home) == []
    con = duckdb.connect(str(home / "home" / "warehouse" / "dph_clinic_visits.duckdb"), read_only=True)
    quarantined = con.execute(
        "SELECT source_line, rule_group, column_name FROM quarantine__dph_clinic_visits ORDER BY source_line"
    ).fetchall()
    # generate.py plants defects in data rows 5, 9, 12, 20-22, 30, 31, 40, 41; data row n is on line n + 1.
    assert quarantined == [
        (6, "required", "visit_id"),
        (10, "required", "visit_id"),
        (12, "unique", "visit_id"),
        (13, "unique", "visit_id"),
        (21, "ranges", "age"),
        (22, "ranges", "age"),
        (23, "ranges", "age"),
        (31, "types", "visit_date"),
        (32, "not_in_future", "visit_date"),
        (41, "allowed_values", "vaccine"),
        (42, "allowed_values", "vaccine"),
    ]
    ingested, valid = con.execute(
        "SELECT (SELECT count(*) FROM ingest__dph_clinic_visits), "
        "(SELECT count(*) FROM validate__dph_clinic_visits)"
    ).fetchone()
    assert ingested == valid + len(quarantined)


def test_the_same_extract_with_defects_fixed_passes_and_is_published(home: Path):
    shutil.copy(DEFECTS / "fixed" / "dph_clinic_visits.csv", home / "landing")
    summaries, result = _run(DEFECTS / "catalog")
    evaluations = result.get_asset_check_evaluations()
    assert evaluations and all(e.passed for e in evaluations)
    assert _materialized(result) == {"ingest", "validate", "standardize", "protect", "publish"}
    assert summaries[0].ok and summaries[0].rows_published == 200
    (view,) = _portal_views(home)
    assert view["name"] == "Immunization Clinic Visits"


ROWS_WITH_PII = """\
id: clinic_notes
title: Clinic Notes
description: Visits with free-text notes, published row by row.
agency: Department of Public Health
category: Health and Human Services
update_frequency: Weekly
contact: dph.data@ct.gov
source:
  path: notes.csv
row_identifier: visit_id
columns:
  - source: Visit ID
    required: true
    unique: true
  - source: Patient Name
    pii: true
  - source: Town
  - source: Note
"""


def _notes(path: Path, note_3: str, rows: int = 40) -> None:
    lines = ["Visit ID,Patient Name,Town,Note"]
    for n in range(1, rows + 1):
        lines.append(f'V{n:03d},Person {n},Hartford,"{note_3 if n == 3 else "routine visit"}"')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_pii_columns_never_reach_the_portal_and_a_planted_ssn_blocks_publishing(home: Path):
    catalog = home / "catalog"
    catalog.mkdir()
    (catalog / "clinic_notes.yaml").write_text(ROWS_WITH_PII, encoding="utf-8")
    _notes(home / "landing" / "notes.csv", "called back, SSN 123-45-6789 on file")
    summaries, result = _run(catalog)
    pii = _checks(result, "protect")["pii_scan"]
    assert not pii.passed and pii.severity == dg.AssetCheckSeverity.ERROR
    text = str(pii.metadata)
    assert "note" in text and "ssn" in text.lower() and "123-45-6789" not in text
    assert "publish" not in _materialized(result) and _portal_views(home) == []

    _notes(home / "landing" / "notes.csv", "called back")
    summaries, result = _run(catalog)
    assert summaries[0].ok
    (view,) = _portal_views(home)
    fields = {c["fieldName"] for c in view["columns"]}
    assert {"visit_id", "town", "note"} <= fields and "patient_name" not in fields


@pytest.mark.parametrize(
    ("extra_yaml", "stage", "check"),
    [
        ("", "validate", "row_count_change"),  # the quality gate sees the drop first
        (
            "quality:\n  max_row_count_drop: 1.0\n",
            "publish",
            "publish_guard",
        ),  # and the publisher guards again
    ],
)
def test_a_truncated_extract_is_refused_and_the_portal_keeps_its_rows(
    home: Path, extra_yaml: str, stage: str, check: str
):
    catalog = home / "catalog"
    catalog.mkdir()
    (catalog / "clinic_notes.yaml").write_text(ROWS_WITH_PII + extra_yaml, encoding="utf-8")
    _notes(home / "landing" / "notes.csv", "ok", rows=40)
    summaries, _ = _run(catalog)
    assert summaries[0].rows_published == 40
    _notes(home / "landing" / "notes.csv", "ok", rows=5)
    summaries, result = _run(catalog)
    refused = _checks(result, stage)[check]
    assert not refused.passed and refused.severity == dg.AssetCheckSeverity.ERROR
    message = str(refused.metadata["summary"].value)
    assert "40" in message and "5" in message
    assert "publish" not in _materialized(result) and not summaries[0].ok
    (view,) = _portal_views(home)
    store = PortalStore(home / "home" / "portal")
    try:
        assert store.row_count(view["id"]) == 40
    finally:
        store.close()


def test_dry_run_reports_the_plan_and_leaves_the_portal_untouched(home: Path):
    shutil.copy(DEFECTS / "fixed" / "dph_clinic_visits.csv", home / "landing")
    summaries, result = run_catalog(
        str(DEFECTS / "catalog"), options=RunOptions(dry_run=True), instance=dg.DagsterInstance.ephemeral()
    )
    assert summaries[0].ok and summaries[0].dry_run_plan["rows_to_create"] == 200
    assert "publish" not in _materialized(result)
    assert _portal_views(home) == []


def test_portal_credentials_from_the_environment_never_reach_logs_or_metadata(
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture,
):
    from ct_pipelines.portal.local import LocalPortal

    password, token = "Pa55-never-shown-7781", "app-token-never-shown-9913"
    shutil.copy(DEFECTS / "fixed" / "dph_clinic_visits.csv", home / "landing")
    with LocalPortal(home / "prod_portal", username="svc-dph", password=password) as portal:
        monkeypatch.setenv("CT_PORTAL_DOMAIN", portal.domain)
        monkeypatch.setenv("CT_PORTAL_SCHEME", "http")
        monkeypatch.setenv("CT_PORTAL_USERNAME", "svc-dph")
        monkeypatch.setenv("CT_PORTAL_APP_TOKEN", token)
        for attempt_password in (password, "wrong-" + password):  # a good run and a refused login
            monkeypatch.setenv("CT_PORTAL_PASSWORD", attempt_password)
            summaries, result = _run(DEFECTS / "catalog")
            texts = [str(event) for event in result.all_events] + [caplog.text]
            captured = capfd.readouterr()
            texts += [captured.out, captured.err]
            for secret in (password, token, attempt_password):
                assert not any(secret in text for text in texts), secret
        # The refused login fails the publish step with a message that says what to check, without secrets.
        assert (
            not summaries[0].ok and "401" in summaries[0].error and "CT_PORTAL_PASSWORD" in summaries[0].error
        )
        assert portal.store.row_count(portal.store.list_views()[0]["id"]) == 200
