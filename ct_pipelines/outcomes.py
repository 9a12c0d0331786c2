"""The one shape every stage uses to report a check, so the Dagster shell can turn any of them into
an asset check result the same way, and the CLI can print them without Dagster."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    """How a failing rule is handled.

    For row-level rules: BLOCK stops the dataset whatever the share of failing rows; ERROR sets the
    failing rows aside and lets the rest go on while the quarantined share stays within
    ``max_quarantine_share``; WARN only reports. For dataset-level checks and expectations, ERROR and
    BLOCK both stop publishing. Check outcomes only ever carry ERROR or WARN.
    """

    BLOCK = "BLOCK"
    ERROR = "ERROR"
    WARN = "WARN"

    @classmethod
    def _missing_(cls, value: object) -> Severity | None:
        """Accept ``block``/``error``/``warn`` as people write them in YAML."""
        if isinstance(value, str):
            return cls.__members__.get(value.upper())
        return None


@dataclass(frozen=True)
class CheckSpec:
    """A check known before anything runs (Dagster needs check names at definition time)."""

    name: str
    description: str
    blocking: bool = True


@dataclass
class CheckOutcome:
    """What one check found, in words a program manager understands plus figures for engineers."""

    name: str
    passed: bool
    severity: Severity
    summary: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def blocks(self) -> bool:
        """A failed ERROR check stops downstream assets (and so publishing)."""
        return not self.passed and self.severity == Severity.ERROR
