"""Decide which alerts a sensor tick should raise; pure functions the Dagster sensors call.

Every alert gets a ``period_key`` naming the occurrence it is about (a dataset's overdue period,
a run id, a check in a run), so an :class:`~ct_pipelines.automation.notify.AlertLedger` turns
repeated ticks into exactly one message per occurrence.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from ct_pipelines.automation.frequency import (
    DEFAULT_TOLERANCE,
    as_utc,
    frequency_timedelta,
    overdue_period_index,
    parse_frequency,
)
from ct_pipelines.automation.notify import Alert, AlertKind
from ct_pipelines.catalog.handbook import UpdateFrequency
from ct_pipelines.core.outcomes import CheckOutcome

FreshnessInput = tuple[str, str | UpdateFrequency | None, datetime | None]

_SUBJECT = {
    AlertKind.OVERDUE: ("is overdue on the portal", "was last updated on the portal"),
    AlertKind.LANDING_STALE: ("has no new extract", "last received an extract in the landing folder"),
}


def _day(moment: datetime) -> str:
    return as_utc(moment).strftime("%Y-%m-%d")


def _freshness_alerts(
    datasets: Iterable[FreshnessInput],
    now: datetime,
    tolerance: float,
    kind: AlertKind,
    urls: Mapping[str, str] | None,
) -> list[Alert]:
    headline, subject = _SUBJECT[kind]
    alerts = []
    for dataset_id, declared, last_update in datasets:
        index = overdue_period_index(last_update, declared, now, tolerance)
        if index is None:
            continue
        freq = parse_frequency(declared)
        gap_days = frequency_timedelta(freq).total_seconds() / 86400  # type: ignore[union-attr]
        if last_update is None:
            since, anchor = "has never been updated", "never"
        else:
            days = (as_utc(now) - as_utc(last_update)).days
            since, anchor = (
                f"{subject} {_day(last_update)} ({days} days ago)",
                as_utc(last_update).isoformat(),
            )
        alerts.append(
            Alert(
                dataset_id=dataset_id,
                kind=kind,
                title=f"{dataset_id} {headline}",
                message=(
                    f"{dataset_id} is declared to update {freq}, so it should not go more than "
                    f"{gap_days:g} days (plus {tolerance:.0%} tolerance) without an update, but it {since}."
                ),
                period_key=f"{kind}:{dataset_id}:{anchor}:{index}",
                url=(urls or {}).get(dataset_id),
            )
        )
    return alerts


def overdue_alerts(
    datasets: Iterable[FreshnessInput],
    now: datetime,
    tolerance: float = DEFAULT_TOLERANCE,
    urls: Mapping[str, str] | None = None,
) -> list[Alert]:
    """Alerts for datasets whose last portal update (rowsUpdatedAt) is older than their frequency allows.

    ``datasets`` holds (dataset_id, update_frequency, last_update or None); ``urls`` optionally maps a
    dataset id to its portal page for the alert link."""
    return _freshness_alerts(datasets, now, tolerance, AlertKind.OVERDUE, urls)


def landing_stale_alerts(
    datasets: Iterable[FreshnessInput],
    now: datetime,
    tolerance: float = DEFAULT_TOLERANCE,
    urls: Mapping[str, str] | None = None,
) -> list[Alert]:
    """Same rule applied at the source: the newest extract in the landing folder is too old."""
    return _freshness_alerts(datasets, now, tolerance, AlertKind.LANDING_STALE, urls)


def run_failure_alert(
    run_id: str, job_name: str, error: str, dataset_id: str = "", url: str | None = None
) -> Alert:
    """One alert per failed run (keyed by run id); ``error`` should be the short failure message."""
    return Alert(
        dataset_id=dataset_id,
        kind=AlertKind.RUN_FAILURE,
        title=f"Pipeline run failed: {job_name}",
        message=f"Run {run_id} of {job_name} failed: {error}",
        period_key=f"{AlertKind.RUN_FAILURE}:{run_id}",
        url=url,
    )


def check_failure_alerts(
    dataset_id: str, run_id: str, outcomes: Iterable[CheckOutcome], url: str | None = None
) -> list[Alert]:
    """One alert per failed check in a run, worded with the check's plain-language summary."""
    return [
        Alert(
            dataset_id=dataset_id,
            kind=AlertKind.CHECK_FAILURE,
            title=f"{dataset_id}: check '{outcome.name}' failed ({outcome.severity})",
            message=outcome.summary,
            period_key=f"{AlertKind.CHECK_FAILURE}:{run_id}:{outcome.name}",
            url=url,
        )
        for outcome in outcomes
        if not outcome.passed
    ]
