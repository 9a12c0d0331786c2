"""What a stage hands back: typed counts, links and tables for people, and the checks it ran.

Stages fill these plain fields; only the orchestration layer turns them into Dagster metadata, and the
in-process runner and the reports read the counts from them (through ``meta.stage_results``), never by
parsing Dagster events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ct_pipelines.core.outcomes import CheckOutcome

Progress = Callable[[str], None]


def quiet(_: str) -> None:
    """A progress callback that says nothing (tests and library use)."""
    return None


class StageError(Exception):
    """An expected stage failure whose message is one sentence a data engineer can act on."""


@dataclass(frozen=True)
class RunOptions:
    """Per-run switches from ``ct-pipelines run`` flags or the Dagster run config."""

    dry_run: bool = False
    full_replace: bool = False
    allow_shrink: bool = False
    allow_deletes: bool = False
    reingest: bool = False
    new_portal_dataset: bool = False


@dataclass
class StageResult:
    """What one stage did for one dataset.

    ``rows_in`` is what the stage read, ``rows_out`` what it wrote (for publish: the portal's row count),
    ``rows_set_aside`` what it held back with a reason (quarantine, rows left out by a declared rule).
    ``facts`` are JSON-safe values for engineers; ``markdown`` holds tables for people; ``links`` holds
    paths or URLs to open.
    """

    table: str | None = None
    rows_in: int | None = None
    rows_out: int | None = None
    rows_set_aside: int | None = None
    outcomes: list[CheckOutcome] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    markdown: dict[str, str] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    refused: bool = False  # the stage left its target as it was (a refused publish or a dry run)

    @property
    def blocking_failures(self) -> list[CheckOutcome]:
        return [o for o in self.outcomes if o.blocks]
