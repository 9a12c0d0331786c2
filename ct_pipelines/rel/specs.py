"""The REL stage's check names and descriptions, from the config alone (no reference data loaded)."""

from __future__ import annotations

from ct_pipelines.catalog.blocks.standardize import RelColumn, StandardizeConfig
from ct_pipelines.catalog.models import Dataset
from ct_pipelines.core.outcomes import CheckSpec


def check_name(rel_column: RelColumn) -> str:
    return f"rel_{rel_column.column}_labels_recognized"


def rel_check_specs(config: StandardizeConfig) -> list[CheckSpec]:
    """Check names and descriptions known from the config alone (no I/O), for Dagster."""
    return [
        CheckSpec(
            name=check_name(c),
            description=(
                f"Every {c.field.value.replace('_', ' ')} label in '{c.column}' is recognized and "
                f"unambiguous; fails as an error when more than {config.max_unmapped_share:.0%} of rows are not"
            ),
            blocking=True,
        )
        for c in config.columns
    ]


def standardize_check_specs(dataset: Dataset) -> list[CheckSpec]:
    """The stage's checks for a dataset: one per declared REL column (none without a standardize: block)."""
    return rel_check_specs(dataset.standardize) if dataset.standardize else []
