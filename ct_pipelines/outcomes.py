"""The one shape every stage uses to report a check, so the Dagster shell can turn any of them into
an asset check result the same way, and the CLI can print them without Dagster."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    """ERROR blocks publishing; WARN is shown in the UI and the run goes on."""

    ERROR = "ERROR"
    WARN = "WARN"


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
