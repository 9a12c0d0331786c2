"""Catalog entries shared by the publish tests, so each test file states only what it varies."""

from __future__ import annotations

from typing import Any

from ct_pipelines.catalog.models import Dataset


def rows_dataset(**fields: Any) -> Dataset:
    """A dataset of made-up rows keyed by ``id``; ``fields`` add to or override the catalog entry."""
    return Dataset.model_validate(
        {
            "description": "Rows made up inside a test.",
            "agency": "Department of Testing",
            "contact": "data.officer@ct.gov",
            "source": {"path": "rows.csv"},
            "row_identifier": "id",
            **fields,
        }
    )
