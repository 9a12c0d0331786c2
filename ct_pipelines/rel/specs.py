"""The REL stage's check names and descriptions, from the config alone (no reference data loaded)."""

from __future__ import annotations

from ct_pipelines.outcomes import CheckSpec
from ct_pipelines.rel.config import RelColumn, RelConfig


def check_name(rel_column: RelColumn) -> str:
    return f"rel_{rel_column.column}_labels_recognized"


def rel_check_specs(config: RelConfig) -> list[CheckSpec]:
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
