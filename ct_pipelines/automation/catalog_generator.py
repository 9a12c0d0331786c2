"""Synthetic portal catalogs with known answers, for the audit's tests and benchmark.

Each asset's properties (type, agency, frequency, fresh/stale/never updated, which metadata is
missing, whether it is disaggregated) are drawn first; records and views are then built to have
exactly those properties, and the expected totals are counted from the drawn properties. The ages
used are far from any frequency's deadline (a weekly dataset is either at most 5 or at least 12 days
old), so the expected answer does not depend on the audit's exact tolerance or month lengths.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ct_pipelines.catalog.handbook import Category, UpdateFrequency
from ct_pipelines.catalog.portal_fields import custom_field_location, domain_metadata_key

AGENCIES = (
    "Department of Public Health",
    "Department of Transportation",
    "Department of Education",
    "Department of Labor",
    "Office of Policy and Management",
    "Department of Social Services",
)
NEUTRAL_COLUMNS = ("town", "county", "year", "count", "rate", "program", "amount", "status", "fiscal_year")
RACE_COLUMNS = ("race_ethnicity", "race", "hispanic_origin", "ethnicity", "Race/Ethnicity")
GENDER_COLUMNS = ("gender", "sex", "patient_sex")

# (fresh days max, stale days min): clearly on time / clearly late under any reading of the frequency.
AGE_RANGES: dict[UpdateFrequency, tuple[int, int]] = {
    UpdateFrequency.DAILY: (0, 3),
    UpdateFrequency.EVERY_WEEKDAY: (1, 6),
    UpdateFrequency.WEEKLY: (5, 12),
    UpdateFrequency.BI_WEEKLY: (12, 25),
    UpdateFrequency.MONTHLY: (25, 45),
    UpdateFrequency.BI_MONTHLY: (55, 90),
    UpdateFrequency.QUARTERLY: (85, 130),
    UpdateFrequency.BI_ANNUALLY: (170, 260),
    UpdateFrequency.ANNUALLY: (330, 500),
}
NO_CADENCE = (UpdateFrequency.AS_NEEDED, UpdateFrequency.HISTORICAL)
OPTIONAL_FIELDS = ("description", "category", "tags", "license", "contact", "column_descriptions")
OLDEST_DAYS = 2500


@dataclass
class AssetSpec:
    """The drawn truth about one asset."""

    four_by_four: str
    is_dataset: bool
    agency: str | None
    frequency: UpdateFrequency | None
    age_days: int | None
    age_minutes: int
    status: str
    present: dict[str, bool]
    race: bool
    gender: bool
    columns: list[tuple[str, str]] = field(default_factory=list)


def _four_by_four(index: int) -> str:
    digits, value = [], index
    for _ in range(8):
        value, rem = divmod(value, 36)
        digits.append((string.ascii_lowercase + string.digits)[rem])
    text = "".join(reversed(digits))
    return f"{text[:4]}-{text[4:]}"


def _draw(index: int, rng: random.Random, other_asset_share: float) -> AssetSpec:
    frequency = rng.choice([*UpdateFrequency, None])
    if frequency in AGE_RANGES:
        fresh_max, stale_min = AGE_RANGES[frequency]
        status = rng.choice(["on_time", "on_time", "overdue", "never_updated"])
        age = {
            "on_time": rng.randint(0, fresh_max),
            "overdue": rng.randint(stale_min, OLDEST_DAYS),
            "never_updated": None,
        }[status]
    else:
        status = "no_cadence" if frequency in NO_CADENCE else "unknown_frequency"
        age = None if rng.random() < 0.1 else rng.randint(0, OLDEST_DAYS)
    present = {name: rng.random() < 0.85 for name in OPTIONAL_FIELDS}
    race, gender = rng.random() < 0.25, rng.random() < 0.2
    columns = [
        (name, f"The {name.replace('_', ' ')}") for name in rng.sample(NEUTRAL_COLUMNS, rng.randint(2, 5))
    ]
    if race:
        columns.append((rng.choice(RACE_COLUMNS), "Self-reported group of the person"))
    if gender:
        columns.append((rng.choice(GENDER_COLUMNS), "As recorded by the agency"))
    if not present["column_descriptions"]:
        if rng.random() < 0.2 and not (race or gender):
            columns = []
        else:
            position = rng.randrange(len(columns))
            columns[position] = (columns[position][0], "")
    return AssetSpec(
        four_by_four=_four_by_four(index),
        is_dataset=rng.random() >= other_asset_share,
        agency=rng.choice(AGENCIES) if rng.random() < 0.8 else None,
        frequency=frequency,
        age_days=age,
        age_minutes=rng.randint(0, 600),
        status=status,
        present=present,
        race=race,
        gender=gender,
        columns=columns,
    )


def draw_specs(n: int, seed: int, other_asset_share: float = 0.05) -> list[AssetSpec]:
    """Properties of ``n`` assets; ``other_asset_share`` of them are charts rather than datasets."""
    rng = random.Random(seed)
    return [_draw(i, rng, other_asset_share) for i in range(n)]


def expected_totals(specs: list[AssetSpec]) -> dict[str, Any]:
    """Counts the audit must report, computed from the drawn properties alone."""
    datasets = [s for s in specs if s.is_dataset]
    totals: dict[str, Any] = {
        "datasets": len(datasets),
        "skipped_non_dataset_assets": len(specs) - len(datasets),
    }
    for status in ("on_time", "overdue", "never_updated", "no_cadence", "unknown_frequency"):
        totals[f"status_{status}"] = sum(s.status == status for s in datasets)
    totals["up_to_date"] = totals["status_on_time"] + totals["status_no_cadence"]
    totals["frequency_other"] = sum(s.frequency == UpdateFrequency.OTHER for s in datasets)
    ages = [s.age_days for s in datasets]
    totals["days_never"] = sum(a is None for a in ages)
    totals["days_0_30"] = sum(a is not None and a <= 30 for a in ages)
    totals["days_31_90"] = sum(a is not None and 30 < a <= 90 for a in ages)
    totals["days_91_365"] = sum(a is not None and 90 < a <= 365 for a in ages)
    totals["days_over_365"] = sum(a is not None and a > 365 for a in ages)
    totals["stale_365"] = totals["days_never"] + totals["days_over_365"]
    for name in OPTIONAL_FIELDS:
        totals[f"missing_{name}"] = sum(not s.present[name] for s in datasets)
    totals["missing_attribution"] = sum(s.agency is None for s in datasets)
    totals["missing_update_frequency"] = sum(s.frequency is None for s in datasets)
    complete = {s.four_by_four for s in datasets if all(s.present.values()) and s.agency and s.frequency}
    totals["metadata_complete"] = len(complete)
    totals["with_attribution"] = len(datasets) - totals["missing_attribution"]
    totals["disaggregated_race_ethnicity"] = sum(s.race for s in datasets)
    totals["disaggregated_gender"] = sum(s.gender for s in datasets)
    totals["disaggregated_any"] = sum(s.race or s.gender for s in datasets)
    by_agency: dict[str, dict[str, int]] = {}
    for s in datasets:
        counts = by_agency.setdefault(
            s.agency or "(no agency)", dict.fromkeys(("datasets", "up_to_date", "metadata_complete"), 0)
        )
        counts["datasets"] += 1
        counts["up_to_date"] += s.status in ("on_time", "no_cadence")
        counts["metadata_complete"] += s.four_by_four in complete
    totals["by_agency"] = by_agency
    return totals


def _custom_fields(spec: AssetSpec) -> dict[str, dict[str, str]]:
    values = {
        "update_frequency": spec.frequency.value if spec.frequency else None,
        "contact": "data.officer@ct.gov" if spec.present["contact"] else None,
        "agency": spec.agency,
    }
    fields: dict[str, dict[str, str]] = {}
    for attribute, value in values.items():
        location = custom_field_location(attribute)
        if value and location:
            fields.setdefault(location[0], {})[location[1]] = value
    return fields


def _updated_at(spec: AssetSpec, now: datetime) -> datetime | None:
    if spec.age_days is None:
        return None
    return now - timedelta(days=spec.age_days, minutes=spec.age_minutes)


def _category(spec: AssetSpec) -> str | None:
    categories = list(Category)
    return (
        categories[int(spec.four_by_four[-2:], 36) % len(categories)].value
        if spec.present["category"]
        else None
    )


def _title(spec: AssetSpec) -> str:
    return f"Synthetic dataset {spec.four_by_four}"


def spec_to_record(spec: AssetSpec, now: datetime, domain: str = "data.ct.gov") -> dict[str, Any]:
    """A Discovery API (``/api/catalog/v1``) record with exactly the spec's properties."""
    updated = _updated_at(spec, now)
    custom = _custom_fields(spec)
    return {
        "resource": {
            "id": spec.four_by_four,
            "name": _title(spec),
            "type": "dataset" if spec.is_dataset else "chart",
            "description": f"Counts reported by {spec.agency or 'an agency'}."
            if spec.present["description"]
            else "",
            "attribution": spec.agency,
            "updatedAt": (updated or now - timedelta(days=OLDEST_DAYS)).isoformat().replace("+00:00", "Z"),
            "createdAt": (now - timedelta(days=OLDEST_DAYS + 1)).isoformat().replace("+00:00", "Z"),
            "data_updated_at": updated.isoformat().replace("+00:00", "Z") if updated else None,
            "columns_name": [name for name, _ in spec.columns],
            "columns_field_name": [name.lower().replace("/", "_") for name, _ in spec.columns],
            "columns_description": [description for _, description in spec.columns],
            "columns_datatype": ["text" for _ in spec.columns],
        },
        "classification": {
            "categories": [],
            "tags": [],
            "domain_category": _category(spec),
            "domain_tags": ["synthetic", "ct"] if spec.present["tags"] else [],
            "domain_metadata": [
                {"key": domain_metadata_key(fieldset, name), "value": value}
                for fieldset, fields in custom.items()
                for name, value in fields.items()
            ],
        },
        "metadata": {"domain": domain, "license": "Public Domain" if spec.present["license"] else None},
        "permalink": f"https://{domain}/d/{spec.four_by_four}",
        "link": f"https://{domain}/-/{spec.four_by_four}",
    }


def spec_to_view(spec: AssetSpec, now: datetime) -> dict[str, Any]:
    """The same asset as Socrata view JSON (``/api/views/{4x4}.json``), for seeding a portal store."""
    updated = _updated_at(spec, now)
    view: dict[str, Any] = {
        "id": spec.four_by_four,
        "name": _title(spec),
        "assetType": "dataset" if spec.is_dataset else "chart",
        "viewType": "tabular",
        "displayType": "table" if spec.is_dataset else "chart",
        "description": f"Counts reported by {spec.agency or 'an agency'}."
        if spec.present["description"]
        else "",
        "attribution": spec.agency,
        "category": _category(spec),
        "tags": ["synthetic", "ct"] if spec.present["tags"] else [],
        "createdAt": int((now - timedelta(days=OLDEST_DAYS + 1)).timestamp()),
        "rowsUpdatedAt": int(updated.timestamp()) if updated else None,
        "viewLastModified": int((updated or now - timedelta(days=OLDEST_DAYS)).timestamp()),
        "publicationStage": "published",
        "columns": [
            {
                "id": position + 1,
                "name": name,
                "fieldName": name.lower().replace("/", "_"),
                "dataTypeName": "text",
                "description": description,
                "position": position + 1,
            }
            for position, (name, description) in enumerate(spec.columns)
        ],
        "metadata": {"custom_fields": _custom_fields(spec)},
    }
    if spec.present["license"]:
        view["license"] = {"name": "Public Domain"}
        view["licenseId"] = "PUBLIC_DOMAIN"
    return view


def _now(now: datetime | None) -> datetime:
    # Whole seconds, because view JSON timestamps are epoch seconds.
    return (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)


def generate_catalog_records(
    n: int,
    seed: int = 0,
    now: datetime | None = None,
    domain: str = "data.ct.gov",
    other_asset_share: float = 0.05,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``n`` Discovery API records and the totals an audit at ``now`` must report for them."""
    now = _now(now)
    specs = draw_specs(n, seed, other_asset_share)
    return [spec_to_record(s, now, domain) for s in specs], expected_totals(specs)


def generate_catalog_views(
    n: int, seed: int = 0, now: datetime | None = None, other_asset_share: float = 0.0
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``n`` view JSON documents (for seeding a local portal) and the totals an audit must report.

    No charts by default: the local portal lists every view as a dataset."""
    now = _now(now)
    specs = draw_specs(n, seed, other_asset_share)
    return [spec_to_view(s, now) for s in specs], expected_totals(specs)
