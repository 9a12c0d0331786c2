"""Turn a dataset's declared Update Frequency into a schedule, an ISO 8601 period and a deadline.

CT's own audit holds every dataset to one 365-day threshold; here each dataset is held to the
frequency its owner declared. Interpretation of the handbook's twelve values:

* "Bi-weekly" is every two weeks and "Bi-monthly" every two months (not twice a week/month);
  "Bi-annually" is twice a year (semiannual, P6M), the usual sense of *biannual*.
* "Every weekday" runs Monday to Friday; ISO 8601 has no weekday period, so its period is P1D
  and its maximum gap is three days so a Friday-to-Monday gap is not an alert.
* "As needed" and "Not updated (historical only)" promise no cadence: no schedule, never overdue.
* "Other" says a cadence exists but not which, so nothing can be scheduled or checked; catalogs
  should replace it with a real value (the audit reports it under "no checkable frequency").

Schedules fire at 06:00 America/New_York, before the working day, so a run that fails is seen
the same morning. ``frequency_timedelta`` is the longest gap the schedule itself can produce
(e.g. 31 days for Monthly), so a dataset refreshed by its own schedule is never reported overdue.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ct_pipelines.catalog.handbook import UpdateFrequency

SCHEDULE_TIMEZONE = "America/New_York"
DEFAULT_TOLERANCE = 0.2


@dataclass(frozen=True)
class Cadence:
    """What one handbook frequency means for scheduling and freshness."""

    cron: str
    period: str
    max_gap: timedelta


_CADENCES: dict[UpdateFrequency, Cadence] = {
    UpdateFrequency.DAILY: Cadence("0 6 * * *", "P1D", timedelta(days=1)),
    UpdateFrequency.EVERY_WEEKDAY: Cadence("0 6 * * 1-5", "P1D", timedelta(days=3)),
    UpdateFrequency.WEEKLY: Cadence("0 6 * * 1", "P1W", timedelta(weeks=1)),
    # Cron cannot count weeks; the 1st and 15th never leave more than 17 days between runs.
    UpdateFrequency.BI_WEEKLY: Cadence("0 6 1,15 * *", "P2W", timedelta(days=17)),
    UpdateFrequency.MONTHLY: Cadence("0 6 1 * *", "P1M", timedelta(days=31)),
    UpdateFrequency.BI_MONTHLY: Cadence("0 6 1 1,3,5,7,9,11 *", "P2M", timedelta(days=62)),
    UpdateFrequency.QUARTERLY: Cadence("0 6 1 1,4,7,10 *", "P3M", timedelta(days=92)),
    UpdateFrequency.BI_ANNUALLY: Cadence("0 6 1 1,7 *", "P6M", timedelta(days=184)),
    UpdateFrequency.ANNUALLY: Cadence("0 6 1 1 *", "P1Y", timedelta(days=366)),
}

#: Frequencies that promise no cadence; a dataset declaring one is always "up to date".
UNSCHEDULED = frozenset({UpdateFrequency.AS_NEEDED, UpdateFrequency.HISTORICAL})

_NORMALISE = re.compile(r"[^a-z]+")
_ALIASES = {_NORMALISE.sub("", f.value.lower()): f for f in UpdateFrequency} | {
    "weekdays": UpdateFrequency.EVERY_WEEKDAY,
    "semiannually": UpdateFrequency.BI_ANNUALLY,
    "semiannual": UpdateFrequency.BI_ANNUALLY,
    "yearly": UpdateFrequency.ANNUALLY,
    "annual": UpdateFrequency.ANNUALLY,
    "historical": UpdateFrequency.HISTORICAL,
    "historicalonly": UpdateFrequency.HISTORICAL,
    "notupdated": UpdateFrequency.HISTORICAL,
}


def parse_frequency(value: str | UpdateFrequency | None) -> UpdateFrequency | None:
    """The handbook value a portal label means, forgiving case, spaces and hyphens; None if unknown.

    Portal custom fields are free text on some assets ("bi-weekly", "BiWeekly"), so an exact enum
    lookup would report real frequencies as missing."""
    if value is None or isinstance(value, UpdateFrequency):
        return value
    return _ALIASES.get(_NORMALISE.sub("", str(value).lower()))


def _cadence(freq: str | UpdateFrequency | None) -> Cadence | None:
    parsed = parse_frequency(freq)
    return _CADENCES.get(parsed) if parsed else None


def frequency_cron(freq: str | UpdateFrequency | None) -> str | None:
    """Cron string (in :data:`SCHEDULE_TIMEZONE`) for a frequency, or None when it has no schedule."""
    cadence = _cadence(freq)
    return cadence.cron if cadence else None


def frequency_period(freq: str | UpdateFrequency | None) -> str | None:
    """ISO 8601 duration such as ``P1W``, or None for As needed, historical, Other and unknown."""
    cadence = _cadence(freq)
    return cadence.period if cadence else None


def accrual_periodicity(freq: str | UpdateFrequency | None) -> str | None:
    """DCAT-US 1.1 ``accrualPeriodicity``: ``R/<period>``, ``irregular`` for As needed/Other, else None."""
    period = frequency_period(freq)
    if period:
        return f"R/{period}"
    if parse_frequency(freq) in (UpdateFrequency.AS_NEEDED, UpdateFrequency.OTHER):
        return "irregular"
    return None


def frequency_timedelta(freq: str | UpdateFrequency | None) -> timedelta | None:
    """Longest nominal gap between two updates, or None when the frequency promises no cadence."""
    cadence = _cadence(freq)
    return cadence.max_gap if cadence else None


def as_utc(moment: datetime) -> datetime:
    """Portal timestamps are UTC; a naive datetime is taken to be UTC rather than local time."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def overdue_deadline(
    last_update: datetime, freq: str | UpdateFrequency | None, tolerance: float = DEFAULT_TOLERANCE
) -> datetime | None:
    """Moment after which the next update is late: last update + max gap x (1 + tolerance)."""
    gap = frequency_timedelta(freq)
    if gap is None:
        return None
    return as_utc(last_update) + gap * (1 + tolerance)


def is_overdue(
    last_update: datetime | None,
    freq: str | UpdateFrequency | None,
    now: datetime,
    tolerance: float = DEFAULT_TOLERANCE,
) -> bool:
    """True when a dataset with a checkable frequency has gone longer than its tolerance allows.

    A dataset that was never updated (``last_update`` None) is overdue as soon as it has a cadence."""
    return overdue_period_index(last_update, freq, now, tolerance) is not None


def overdue_period_index(
    last_update: datetime | None,
    freq: str | UpdateFrequency | None,
    now: datetime,
    tolerance: float = DEFAULT_TOLERANCE,
) -> int | None:
    """Which overdue period ``now`` falls in (0 = first period after the deadline), or None if on time.

    Keying alerts by this index sends one alert when the deadline passes and one more for each further
    missed period, instead of one per sensor tick. A never-updated dataset is keyed by calendar periods
    counted from the Unix epoch, so it too is reminded once per period."""
    gap = frequency_timedelta(freq)
    if gap is None:
        return None
    now = as_utc(now)
    if last_update is None:
        return math.floor((now - datetime(1970, 1, 1, tzinfo=UTC)) / gap)
    deadline = as_utc(last_update) + gap * (1 + tolerance)
    if now <= deadline:
        return None
    return math.floor((now - deadline) / gap)
