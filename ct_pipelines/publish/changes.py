"""What a publish did to the portal, in words: the run's summary and the staff report say it alike.

The row counts alone read the same for a run that sent nothing and one that added 300 rows and
deleted 300."""

from __future__ import annotations

from collections.abc import Mapping

CHANGE_KINDS = ("created", "updated", "deleted")


def portal_changes(mode: str | None, changes: Mapping[str, int]) -> str:
    """``changes``: rows created, updated and deleted; a replace sends every row as created."""
    if mode == "replace":
        return f"the portal's rows were replaced by the {changes.get('created', 0):,} sent"
    changed = ", ".join(f"{changes[what]:,} {what}" for what in CHANGE_KINDS if changes.get(what))
    return (
        f"on the portal, rows {changed}" if changed else "nothing changed on the portal; it held these rows"
    )


def recorded_changes(facts: Mapping[str, object]) -> dict[str, int]:
    """The created, updated and deleted counts a publish stage recorded in its facts."""
    return {what: int(facts.get(f"rows_{what}") or 0) for what in CHANGE_KINDS}  # type: ignore[call-overload]
