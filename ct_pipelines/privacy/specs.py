"""The privacy stage's check names and descriptions, from the config alone.

Kept apart from the table builder so that loading Dagster definitions does not import pandas and scipy.
"""

from __future__ import annotations

from ct_pipelines.catalog.blocks.protect import ProtectMode
from ct_pipelines.catalog.models import Dataset
from ct_pipelines.core.outcomes import CheckSpec

PII_SCAN_CHECK = "pii_scan"
SUPPRESSION_AUDIT_CHECK = "suppression_audit"


def privacy_check_specs(dataset: Dataset) -> list[CheckSpec]:
    """Checks the privacy stage reports for a dataset, known from its configuration alone (no I/O)."""
    specs = [
        CheckSpec(
            PII_SCAN_CHECK,
            "No value in the published table looks like an SSN, e-mail, phone number, date of birth, "
            "street address or record number (unless exempted in YAML with a reason).",
            blocking=True,
        )
    ]
    if suppression_applies(dataset):
        specs.append(
            CheckSpec(
                SUPPRESSION_AUDIT_CHECK,
                "Small counts are hidden and cannot be worked out from totals or other published cells.",
                blocking=True,
            )
        )
    return specs


def suppression_applies(dataset: Dataset) -> bool:
    return dataset.protect.suppression is not None and dataset.protect.mode != ProtectMode.ROWS


def published_column_description(dataset: Dataset, field_name: str) -> str:
    """The portal description of a published column: declared in publish:, else the source column's.

    Aggregate columns (measures, SQL result columns, the suppression flag) are not source columns, so
    without this the portal's metadata would have them undescribed.
    """
    publish = dataset.protect
    if field_name in publish.column_descriptions:
        return publish.column_descriptions[field_name]
    measures = publish.aggregate.measures if publish.aggregate else []
    for declared in [*measures, *publish.dimension_specs]:
        if declared.name == field_name and declared.description:
            return declared.description
    column = dataset.column(field_name)
    if column is not None and column.description:
        return column.description
    if publish.suppression is not None and field_name == publish.suppression.flag_column:
        return (
            f"True where a count on this row is hidden: it is 1 to {publish.suppression.threshold}"
            f"{' or 0' if publish.suppression.protect_zeros else ''}, or would let such a count be worked out"
        )
    return ""
