"""DCAT-US 1.1 data.json: valid against the official schema as a non-federal publisher, built from the catalog and
what the portal holds, and a list of what a dataset lacks for an entry."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from ct_pipelines.catalog.loader import load_catalog
from ct_pipelines.core.settings import SAMPLE_CATALOG_DIR
from ct_pipelines.report.dcat import SCHEMA_DIR, PortalFacts, build_data_json, dcat_gaps, validate_data_json
from ct_pipelines_tests.report.conftest import Site

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "dcat-us-1.1-schema"
BASE = "https://project-open-data.cio.gov/v1.1/schema/"


def _reference_validator() -> jsonschema.Draft4Validator:
    """The official files from the shared reference folder, loaded independently of the package's copy."""
    if not REFERENCE.is_dir():
        pytest.skip("../shared/reference/dcat-us-1.1-schema is not present")
    resources = []
    for path in REFERENCE.glob("*.json"):
        contents = json.loads(path.read_text())
        if (
            path.name == "dataset.json"
        ):  # non-federal: PROVENANCE.md says drop bureauCode and programCode only
            contents["required"] = [r for r in contents["required"] if r not in ("bureauCode", "programCode")]
        resources.append((BASE + path.name, Resource.from_contents(contents, default_specification=DRAFT4)))
    registry = Registry().with_resources(resources)
    return jsonschema.Draft4Validator(registry.contents(BASE + "catalog.json"), registry=registry)


def test_shipped_schema_is_the_official_copy():
    if not REFERENCE.is_dir():
        pytest.skip("../shared/reference/dcat-us-1.1-schema is not present")
    for path in REFERENCE.glob("*.json"):
        assert (SCHEMA_DIR / path.name).read_bytes() == path.read_bytes()


def test_data_json_of_the_run_is_valid_and_points_at_the_portal(defects_site: Site):
    document = json.loads(defects_site.report.data_json.read_text())
    assert defects_site.report.portal_data_json.read_text() == defects_site.report.data_json.read_text()
    assert list(_reference_validator().iter_errors(document)) == []
    (entry,) = document["dataset"]
    four = entry["identifier"].rsplit("/", 1)[1]
    assert entry["accrualPeriodicity"] == "R/P1D"  # Daily
    assert entry["publisher"]["name"] == "Department of Public Health"
    assert entry["contactPoint"]["hasEmail"] == "mailto:dph.data@ct.gov"
    assert [d.get("accessURL") or d.get("downloadURL") for d in entry["distribution"]] == [
        f"http://127.0.0.1:8765/resource/{four}.json",
        f"http://127.0.0.1:8765/resource/{four}.csv",
    ]
    assert entry["modified"].startswith(datetime.now().strftime("%Y-"))


def test_each_frequency_maps_to_a_valid_periodicity_and_unpublished_datasets_are_left_out():
    catalog = load_catalog(SAMPLE_CATALOG_DIR)
    facts = [
        PortalFacts("abcd-1234", datetime(2026, 1, 5, 6, 0)),
        PortalFacts("efgh-5678", None),
        PortalFacts(),
    ]
    document, skipped = build_data_json(
        list(zip(catalog.datasets, facts, strict=True)), "https://data.ct.gov"
    )
    assert validate_data_json(document) == [] and list(_reference_validator().iter_errors(document)) == []
    assert [e["identifier"] for e in document["dataset"]] == ["https://data.ct.gov/d/abcd-1234"]
    assert document["dataset"][0]["accrualPeriodicity"] == "R/P1Y"  # deep_fishing_licenses is Annually
    assert "no successful publish" in skipped["dmv_ev_registrations"][0]
    assert "not on the portal yet" in skipped["dss_interpreter_requests"][0]


def test_gaps_name_the_field_and_what_to_write(make_dataset):
    dataset = make_dataset(
        tags=[], license="Custom license", update_frequency="Not updated (historical only)"
    )
    gaps = dcat_gaps(dataset)
    assert gaps[0].startswith("tags: add at least one keyword")
    assert gaps[1].startswith("license: 'Custom license' is neither a URL nor a known license name")
    assert gaps[2].startswith("update_frequency:") and len(gaps) == 3
    assert dcat_gaps(make_dataset(tags=["fishing"], license="https://example.org/license")) == []


def test_the_validator_catches_a_broken_entry():
    catalog = load_catalog(SAMPLE_CATALOG_DIR)
    document, _ = build_data_json(
        [(catalog.datasets[0], PortalFacts("abcd-1234", datetime(2026, 1, 5)))], "https://x.gov"
    )
    entry = document["dataset"][0]
    entry["keyword"], entry["accrualPeriodicity"], entry["bureauCode"] = [], "weekly", ["12"]
    del entry["publisher"]
    errors = validate_data_json(document)
    assert "dataset/0: 'publisher' is a required property" in errors
    assert "dataset/0/keyword: [] should be non-empty" in errors
    assert any(e.startswith("dataset/0/accrualPeriodicity:") for e in errors)
    assert any(e.startswith("dataset/0/bureauCode/0:") for e in errors)  # optional for a state, still checked
