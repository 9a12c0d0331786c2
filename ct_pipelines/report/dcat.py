"""DCAT-US 1.1 (Project Open Data v1.1) ``data.json`` for the catalog, and what a dataset lacks for it.

Validated with ``jsonschema`` against the official schema files shipped in ``dcat_schema/`` (copied
byte for byte; see ``dcat_schema/PROVENANCE.md``), as a non-federal publisher: ``bureauCode`` and
``programCode`` are dropped from the dataset's required list in memory and nothing else changes,
following the specification's note that USG fields are not required of states.

Only datasets on the portal get an entry: ``identifier``, ``modified`` and the distributions all come
from the portal, and a catalog entry pointing at data nobody can download would be wrong.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from ct_pipelines.automation.frequency import accrual_periodicity
from ct_pipelines.catalog.models import Dataset

SCHEMA_DIR = Path(__file__).resolve().parent / "dcat_schema"
SCHEMA_BASE = "https://project-open-data.cio.gov/v1.1/schema/"
CONFORMS_TO = "https://project-open-data.cio.gov/v1.1/schema"
FEDERAL_ONLY = ("bureauCode", "programCode")
#: License labels agencies write, and the URL DCAT-US wants (project-open-data's open licenses list).
LICENSE_URLS = {
    "public domain": "https://creativecommons.org/publicdomain/zero/1.0/",
    "cc0": "https://creativecommons.org/publicdomain/zero/1.0/",
    "cc0 1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
    "creative commons attribution": "https://creativecommons.org/licenses/by/4.0/",
    "cc by 4.0": "https://creativecommons.org/licenses/by/4.0/",
    "open data commons public domain dedication and license": "https://opendatacommons.org/licenses/pddl/1-0/",
    "odc pddl": "https://opendatacommons.org/licenses/pddl/1-0/",
}


@dataclass(frozen=True)
class PortalFacts:
    """What the portal side knows about a dataset: its 4x4 and when its data last changed there."""

    four_by_four: str | None = None
    modified: datetime | None = None


def license_url(label: str | None) -> str | None:
    """The license as a URL: a URL is kept, a known name is mapped, anything else is None."""
    if not label:
        return None
    if re.match(r"^https?://\S+$", label.strip()):
        return label.strip()
    return LICENSE_URLS.get(" ".join(label.lower().split()))


def dcat_gaps(dataset: Dataset, facts: PortalFacts | None = None) -> list[str]:
    """What keeps ``dataset`` from a valid DCAT-US 1.1 entry, one sentence each saying what to change.

    Without ``facts`` only the YAML is judged (for ``catalog validate``); with them, the portal side too."""
    gaps: list[str] = []
    if not [t for t in dataset.tags if t.strip()]:
        gaps.append("tags: add at least one keyword; DCAT-US requires `keyword`")
    if license_url(dataset.license) is None:
        gaps.append(
            f"license: '{dataset.license}' is neither a URL nor a known license name; "
            f"use one of {', '.join(sorted(LICENSE_URLS))} or the license's URL"
        )
    if accrual_periodicity(dataset.update_frequency) is None:
        gaps.append(
            f"update_frequency: '{dataset.update_frequency}' has no DCAT-US accrualPeriodicity "
            "(the entry is still valid; the field is left out)"
        )
    if facts is not None:
        if not facts.four_by_four:
            gaps.append(
                "not on the portal yet: identifier, modified date and download links come from the "
                "portal, so the dataset has no entry until it is published"
            )
        elif facts.modified is None:
            gaps.append(
                "no successful publish is recorded in the warehouse, so there is no `modified` date; "
                "run the pipeline for this dataset"
            )
    return gaps


def blocking_gaps(gaps: list[str]) -> list[str]:
    """Gaps that make the entry invalid (the periodicity gap only drops an optional field)."""
    return [g for g in gaps if not g.startswith("update_frequency:")]


def dataset_entry(
    dataset: Dataset,
    facts: PortalFacts,
    portal_base_url: str,
    dictionary_url: str | None = None,
    parent_organization: str = "State of Connecticut",
) -> dict[str, Any]:
    """One DCAT-US dataset object; call only when :func:`blocking_gaps` is empty."""
    base = portal_base_url.rstrip("/")
    four = facts.four_by_four
    entry: dict[str, Any] = {
        "@type": "dcat:Dataset",
        "identifier": f"{base}/d/{four}",
        "title": dataset.title,
        "description": dataset.description,
        "keyword": list(dict.fromkeys(t.strip() for t in dataset.tags if t.strip())),
        "modified": facts.modified.replace(microsecond=0).isoformat() if facts.modified else None,
        "publisher": {
            "@type": "org:Organization",
            "name": dataset.agency,
            "subOrganizationOf": {"@type": "org:Organization", "name": parent_organization},
        },
        "contactPoint": {
            "@type": "vcard:Contact",
            "fn": dataset.attribution or dataset.agency,
            "hasEmail": f"mailto:{dataset.contact}",
        },
        "accessLevel": "public",
        "license": license_url(dataset.license),
        "landingPage": f"{base}/d/{four}",
        "theme": [str(dataset.category)],
        "language": ["en-US"],
        "distribution": [
            {
                "@type": "dcat:Distribution",
                "title": "SODA API (JSON)",
                "format": "API",
                "mediaType": "application/json",
                "accessURL": f"{base}/resource/{four}.json",
            },
            {
                "@type": "dcat:Distribution",
                "title": "Comma-separated values",
                "format": "CSV",
                "mediaType": "text/csv",
                "downloadURL": f"{base}/resource/{four}.csv",
            },
        ],
    }
    periodicity = accrual_periodicity(dataset.update_frequency)
    if periodicity:
        entry["accrualPeriodicity"] = periodicity
    if dictionary_url:
        entry["describedBy"], entry["describedByType"] = dictionary_url, "text/csv"
    return entry


def build_data_json(
    datasets: list[tuple[Dataset, PortalFacts]], portal_base_url: str, dictionary_url_for: Any = None
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The catalog document and, per dataset left out, why (its blocking gaps)."""
    entries, skipped = [], {}
    for dataset, facts in datasets:
        gaps = blocking_gaps(dcat_gaps(dataset, facts))
        if gaps:
            skipped[dataset.id] = gaps
            continue
        url = dictionary_url_for(dataset) if dictionary_url_for else None
        entries.append(dataset_entry(dataset, facts, portal_base_url, url))
    document = {
        "@context": "https://project-open-data.cio.gov/v1.1/schema/catalog.jsonld",
        "@id": f"{portal_base_url.rstrip('/')}/data.json",
        "@type": "dcat:Catalog",
        "conformsTo": CONFORMS_TO,
        "describedBy": f"{SCHEMA_BASE}catalog.json",
        "dataset": entries,
    }
    return document, skipped


@cache
def _registry() -> Any:
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    resources = []
    for path in sorted(SCHEMA_DIR.glob("*.json")):
        contents = json.loads(path.read_text(encoding="utf-8"))
        if path.name == "dataset.json":
            contents = copy.deepcopy(contents)
            contents["required"] = [r for r in contents["required"] if r not in FEDERAL_ONLY]
        resources.append(
            (SCHEMA_BASE + path.name, Resource.from_contents(contents, default_specification=DRAFT4))
        )
    return Registry().with_resources(resources)


def validate_data_json(document: dict[str, Any]) -> list[str]:
    """Schema errors, each as ``<path>: <message>``; empty when the document is valid (non-federal)."""
    import jsonschema

    registry = _registry()
    schema = registry.contents(SCHEMA_BASE + "catalog.json")
    validator = jsonschema.Draft4Validator(
        schema, registry=registry, format_checker=jsonschema.FormatChecker()
    )
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(document)'}: {e.message}" for e in errors]
