"""The privacy stage's check names and descriptions, from the config alone.

Kept apart from the table builder so that loading Dagster definitions does not import pandas and scipy.
"""

from __future__ import annotations

from ct_pipelines.catalog.blocks.protect import ProtectMode
from ct_pipelines.catalog.models import Dataset
from ct_pipelines.core.outcomes import CheckSpec

PII_SCAN_CHECK = "pii_scan"
SUPPRESSION_AUDIT_CHECK = "suppression_audit"
SMALL_COUNTS_CHECK = "small_counts_unsuppressed"
AGGREGATE_ROWS_CHECK = "aggregate_counts_every_row"
SOURCE_SUPPRESSION_CHECK = "source_suppression_holds"


def has_source_suppression(dataset: Dataset) -> bool:
    """Whether any column may hold cells the source suppressed ('*'), from the YAML alone."""
    if dataset.validate.suppressed_values:
        return any(c.type.value in ("integer", "number") for c in dataset.columns)
    return any(c.suppressed_values for c in dataset.columns)


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
    else:
        specs.append(
            CheckSpec(
                SMALL_COUNTS_CHECK,
                "No whole-number column named like a count of people (count, total, number, children, "
                "students, ...) is published with counts from 1 to the suppression threshold: a table of "
                "counts is published as an aggregate with suppression (a warning, since a name can mislead).",
                blocking=False,
            )
        )
    if dataset.protect.mode == ProtectMode.ROWS and has_source_suppression(dataset):
        specs.append(
            CheckSpec(
                SOURCE_SUPPRESSION_CHECK,
                "No count the source suppressed ('*') can be worked out from a published total: a Total "
                "column beside one hidden count in a row, or a total row above one hidden count in a column.",
                blocking=True,
            )
        )
    if dataset.protect.mode != ProtectMode.ROWS:  # a declarative aggregate or a SQL file's
        specs.append(
            CheckSpec(
                AGGREGATE_ROWS_CHECK,
                "Every row of the extract is counted: a row set aside because a summed column's value broke "
                "a rule would leave its sums too low, so the aggregate is not published; rows set aside by "
                "rules on other columns are left out, and counted in a warning (a SQL file that publishes "
                "rows, not sums, passes).",
                blocking=True,
            )
        )
    return specs


def suppression_applies(dataset: Dataset) -> bool:
    return dataset.protect.suppression is not None and dataset.protect.mode != ProtectMode.ROWS
