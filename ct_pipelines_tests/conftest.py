"""Shared fixtures: real CT extracts from ../shared when present, and a Dataset factory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ct_pipelines.catalog.models import Dataset

SHARED_CT = Path(__file__).resolve().parents[2] / "shared" / "data" / "ct"


@pytest.fixture(autouse=True)
def _catalog_of_this_test_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """`ct-pipelines run --catalog` sets CT_PIPELINES_CATALOG for the process, as a run should; between
    tests it would name another test's catalog in the commands messages print."""
    monkeypatch.delenv("CT_PIPELINES_CATALOG", raising=False)


@pytest.fixture
def shared_ct() -> Path:
    if not SHARED_CT.is_dir():
        pytest.skip("../shared/data/ct is not present")
    return SHARED_CT


@pytest.fixture
def make_dataset() -> Callable[..., Dataset]:
    def build(path: str = "extract.csv", **fields: Any) -> Dataset:
        base: dict[str, Any] = {
            "id": "sample",
            "title": "Sample dataset",
            "description": "A dataset made in a test.",
            "agency": "Department of Testing",
            "category": "Government",
            "update_frequency": "Weekly",
            "contact": "tester@ct.gov",
            "source": {"path": path},
        }
        source = fields.pop("source", {})
        base["source"].update(source)
        base.update(fields)
        return Dataset.model_validate(base)

    return build
