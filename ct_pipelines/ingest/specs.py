"""The ingest stage's checks: none yet; a file that cannot be read fails the stage with its reason."""

from __future__ import annotations

from ct_pipelines.catalog.models import Dataset
from ct_pipelines.core.outcomes import CheckSpec


def ingest_check_specs(dataset: Dataset) -> list[CheckSpec]:
    return []
