"""Portal-wide audit: exact totals on generated catalogs, per-dataset rules, snapshots and trends."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pytest

from ct_pipelines.automation.audit import audit_records, run_audit
from ct_pipelines.automation.catalog_generator import generate_catalog_records, generate_catalog_views
from ct_pipelines.catalog.portal_fields import domain_metadata_key

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _assert_totals_match(totals: dict[str, Any], expected: dict[str, Any]) -> None:
    counts = {key: value for key, value in expected.items() if key != "by_agency"}
    assert {key: totals[key] for key in counts} == counts
    by_agency = {
        row["agency"]: {k: row[k] for k in ("datasets", "up_to_date", "metadata_complete")}
        for row in totals["by_agency"]
    }
    assert by_agency == expected["by_agency"]
    assert totals["up_to_date_pct"] == round(100 * expected["up_to_date"] / expected["datasets"], 1)


def test_generated_catalog_totals_are_exact():
    records, expected = generate_catalog_records(3000, seed=7, now=NOW)
    result = audit_records(records, NOW)
    _assert_totals_match(result.totals, expected)
    assert len(result.rows) == expected["datasets"]
    # every status and bucket occurs, so the comparison above exercised all of them
    assert all(expected[k] > 0 for k in expected if k.startswith(("status_", "days_", "missing_")))


def _record(
    dataset_id: str,
    frequency: str | None,
    age_days: float | None,
    columns: list[tuple[str, str]] = (),
    **resource: Any,
) -> dict[str, Any]:
    key = domain_metadata_key("Publishing Details", "Update Frequency")
    updated = None if age_days is None else (NOW - timedelta(days=age_days)).isoformat()
    return {
        "resource": {
            "id": dataset_id,
            "name": dataset_id,
            "data_updated_at": updated,
            "columns_field_name": [c[0] for c in columns],
            "columns_description": [c[1] for c in columns],
            **resource,
        },
        "classification": {"domain_metadata": [{"key": key, "value": frequency}] if frequency else []},
    }


def _rows(*records: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["dataset_id"]: row for row in audit_records(records, NOW).rows}


def test_each_dataset_is_held_to_its_own_frequency_not_one_threshold():
    rows = _rows(
        _record("monthly", "Monthly", 30),
        _record("weekly", "Weekly", 30),
        _record("annual", "Annually", 400),
        _record("as_needed", "As needed", 3000),
        _record("unknown", None, 1),
        _record("other", "Other", 1),
        _record("never", "Daily", None),
    )
    status = {k: (r["freshness_status"], r["up_to_date"]) for k, r in rows.items()}
    assert status == {
        "monthly": ("on_time", True),
        "weekly": ("overdue", False),
        "annual": ("on_time", True),  # 400 days is fine for an annual dataset (366 days + 20%)
        "as_needed": ("no_cadence", True),
        "unknown": ("unknown_frequency", False),
        "other": ("unknown_frequency", False),
        "never": ("never_updated", False),
    }
    assert rows["annual"]["stale_365"] and not rows["weekly"]["stale_365"]
    assert rows["weekly"]["days_since_update"] == 30 and rows["never"]["days_since_update"] is None


def test_disaggregation_is_detected_from_column_words():
    rows = _rows(
        _record("race", "Daily", 0, [("race_ethnicity", "")]),
        _record("hisp", "Daily", 0, [("count", "Persons of Hispanic origin")]),
        _record("sex", "Daily", 0, [("patient_sex", "")]),
        _record("neither", "Daily", 0, [("grace_period", "Days of trace"), ("sextant", "")]),
    )
    flags = {k: (r["disaggregated_race_ethnicity"], r["disaggregated_gender"]) for k, r in rows.items()}
    assert flags == {
        "race": (True, False),
        "hisp": (True, False),
        "sex": (False, True),
        "neither": (False, False),
    }


def test_metadata_completeness_names_the_missing_fields():
    row = _rows(_record("x", "Weekly", 1, [("town", "Town name"), ("year", "")], description="About"))["x"]
    assert row["missing_metadata"] == "category, tags, attribution, license, contact, column_descriptions"
    assert row["metadata_completeness"] == pytest.approx(2 / 8)


def test_the_pipelines_own_marker_tag_does_not_count_as_tags():
    marked_only = _record("m", "Weekly", 1)
    marked_only["classification"]["domain_tags"] = ["ct-pipelines:m", " "]
    described = _record("d", "Weekly", 1)
    described["classification"]["domain_tags"] = ["ct-pipelines:d", "fishing"]
    rows = _rows(marked_only, described)
    assert "tags" in rows["m"]["missing_metadata"].split(", ")
    assert "tags" not in rows["d"]["missing_metadata"].split(", ")


class _FakeClient:
    """Stands in for sodapy when only the catalog read matters."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records

    def datasets(self, limit: int = 0, offset: int = 0) -> list[dict[str, Any]]:
        return self.records[offset : offset + limit] if limit else self.records


def test_run_audit_keeps_snapshots_writes_csv_and_shows_the_trend(tmp_path):
    con = duckdb.connect()
    first_records, first_expected = generate_catalog_records(300, seed=1, now=NOW)
    first = run_audit(_FakeClient(first_records), con, tmp_path, "run-1", NOW)
    assert first.trend == {}
    later = NOW + timedelta(days=1)
    second_records, second_expected = generate_catalog_records(200, seed=2, now=later)
    second = run_audit(_FakeClient(second_records), con, tmp_path, "run-2", later)

    assert con.execute("SELECT run_id FROM audit_snapshots ORDER BY run_at").fetchall() == [
        ("run-1",),
        ("run-2",),
    ]
    per_run = dict(con.execute("SELECT run_id, count(*) FROM audit_snapshot_datasets GROUP BY 1").fetchall())
    assert per_run == {"run-1": first_expected["datasets"], "run-2": second_expected["datasets"]}
    assert second.trend["previous_run_id"] == "run-1"
    assert second.trend["datasets"]["change"] == second_expected["datasets"] - first_expected["datasets"]
    assert "Change since last audit" in second.markdown()

    with open(tmp_path / "portal_audit" / "run-2.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == second_expected["datasets"]
    assert sum(r["freshness_status"] == "overdue" for r in rows) == second_expected["status_overdue"]
    assert (tmp_path / "portal_audit" / "latest.csv").read_text() == second.csv_path.read_text()

    rerun = run_audit(_FakeClient(second_records), con, tmp_path, "run-2", later)
    assert con.execute("SELECT count(*) FROM audit_snapshots").fetchone()[0] == 2
    assert rerun.totals == second.totals
    metadata = second.asset_metadata()
    assert metadata["datasets"] == second_expected["datasets"] and "| Measure |" in metadata["summary"]


def test_audit_through_local_portal_and_sodapy_is_exact(tmp_path):
    local = pytest.importorskip("ct_pipelines.portal.local")
    views, expected = generate_catalog_views(1500, seed=11, now=NOW)
    with local.LocalPortal(tmp_path / "portal") as portal:
        portal.store.seed_views(views)
        client = portal.socrata_client(timeout=60)
        result = run_audit(client, duckdb.connect(), tmp_path / "reports", "e2e", NOW)
    _assert_totals_match(result.totals, expected)
