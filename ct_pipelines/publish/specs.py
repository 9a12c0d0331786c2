"""The publish stage's check names and descriptions, from the config alone.

Kept apart from the publisher so that loading Dagster definitions does not import sodapy and requests.
"""

from __future__ import annotations

from ct_pipelines.catalog.models import Dataset
from ct_pipelines.core.outcomes import CheckSpec

GUARD_CHECK = "publish_guard"
DRIFT_CHECK = "portal_schema_drift"
METADATA_CHECK = "portal_metadata"
VERIFY_CHECK = "publish_verified"


def publish_check_specs(dataset: Dataset) -> list[CheckSpec]:
    """The checks every publish reports, known from the config alone (Dagster needs them up front)."""
    target = dataset.publish.id or "the dataset created on first publish"
    return [
        CheckSpec(
            GUARD_CHECK,
            f"Refuses to publish an empty table, one that shrank by more than "
            f"{dataset.publish.max_shrink_share:.0%} since the last publish, one that still has PII columns, "
            f"or changes that would delete more than {dataset.publish.max_delete_share:.0%} of the portal's rows.",
        ),
        CheckSpec(DRIFT_CHECK, f"The columns of {target} on the portal match the table to publish."),
        CheckSpec(METADATA_CHECK, "The portal accepts the catalog metadata (validated before any change)."),
        CheckSpec(VERIFY_CHECK, "After publishing, the portal's row count equals the table's and no errors."),
    ]
