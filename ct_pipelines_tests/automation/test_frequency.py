"""Schedules and deadlines derived from each dataset's declared Update Frequency."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import islice, pairwise
from zoneinfo import ZoneInfo

import pytest
from dagster._utils.schedules import cron_string_iterator, is_valid_cron_string

from ct_pipelines.automation.alerts import landing_stale_alerts, overdue_alerts
from ct_pipelines.automation.frequency import (
    SCHEDULE_TIMEZONE,
    accrual_periodicity,
    frequency_cron,
    frequency_period,
    frequency_timedelta,
    is_overdue,
    overdue_period_index,
    parse_frequency,
)
from ct_pipelines.catalog.handbook import UpdateFrequency

NEW_YORK = ZoneInfo(SCHEDULE_TIMEZONE)
SCHEDULED = [f for f in UpdateFrequency if frequency_cron(f)]


def _fire_times(freq: UpdateFrequency, start: datetime, count: int) -> list[datetime]:
    return list(
        islice(cron_string_iterator(start.timestamp(), frequency_cron(freq), SCHEDULE_TIMEZONE), count)
    )


def test_weekly_dataset_is_scheduled_weekly_on_monday_morning_new_york_time():
    fires = _fire_times(UpdateFrequency.WEEKLY, datetime(2026, 3, 1, tzinfo=NEW_YORK), 6)
    local = [f.astimezone(NEW_YORK) for f in fires]
    assert all(f.weekday() == 0 and (f.hour, f.minute) == (6, 0) for f in local)
    assert {b.date() - a.date() for a, b in pairwise(local)} == {timedelta(weeks=1)}
    assert frequency_period(UpdateFrequency.WEEKLY) == "P1W"


def test_every_weekday_runs_monday_to_friday_and_tolerates_the_weekend():
    local = [
        f.astimezone(NEW_YORK) for f in _fire_times(UpdateFrequency.EVERY_WEEKDAY, datetime(2026, 3, 2), 10)
    ]
    assert sorted({f.weekday() for f in local}) == [0, 1, 2, 3, 4]
    friday = datetime(2026, 3, 6, 11, 0, tzinfo=UTC)
    assert not is_overdue(friday, "Every weekday", friday + timedelta(days=3, hours=3))
    assert is_overdue(friday, "Every weekday", friday + timedelta(days=4))


@pytest.mark.parametrize("freq", SCHEDULED, ids=str)
def test_max_gap_matches_the_longest_gap_of_the_schedule(freq):
    """A dataset refreshed by its own schedule never counts as overdue, and the gap is not looser
    than the schedule needs (one hour of slack for daylight-saving changes)."""
    assert is_valid_cron_string(frequency_cron(freq))
    fires = _fire_times(freq, datetime(2026, 1, 1, tzinfo=UTC), 1500)  # four years, one leap year
    fires = [f for f in fires if f < datetime(2030, 1, 2, tzinfo=UTC)]
    longest = max(b - a for a, b in pairwise(fires))
    assert abs(longest - frequency_timedelta(freq)) <= timedelta(hours=1)


def test_frequencies_without_a_cadence_have_no_schedule_and_are_never_overdue():
    long_ago = datetime(2000, 1, 1, tzinfo=UTC)
    for freq in ("As needed", "Not updated (historical only)", "Other", None, "fortnightly-ish"):
        assert frequency_cron(freq) is None and frequency_period(freq) is None
        assert frequency_timedelta(freq) is None
        assert not is_overdue(long_ago, freq, datetime(2026, 1, 1, tzinfo=UTC))
    assert accrual_periodicity("As needed") == "irregular"
    assert accrual_periodicity("Not updated (historical only)") is None
    assert accrual_periodicity("Quarterly") == "R/P3M"


def test_iso_periods_follow_dcat_us():
    expected = {"Daily": "P1D", "Bi-weekly": "P2W", "Monthly": "P1M", "Bi-monthly": "P2M", "Annually": "P1Y"}
    assert {label: frequency_period(label) for label in expected} == expected
    assert frequency_period("Bi-annually") == "P6M"


def test_portal_labels_are_read_forgivingly():
    assert parse_frequency("bi-weekly") == parse_frequency("BiWeekly") == UpdateFrequency.BI_WEEKLY
    assert parse_frequency("  every Weekday ") == UpdateFrequency.EVERY_WEEKDAY
    assert parse_frequency("whenever") is None


def test_overdue_starts_after_the_tolerance_and_counts_periods():
    last = datetime(2026, 1, 5, 12, tzinfo=UTC)
    week = timedelta(weeks=1)
    assert overdue_period_index(last, "Weekly", last + week * 1.19) is None
    assert overdue_period_index(last, "Weekly", last + week * 1.21) == 0
    assert overdue_period_index(last, "Weekly", last + week * 2.19) == 0
    assert overdue_period_index(last, "Weekly", last + week * 2.21) == 1
    assert overdue_period_index(last, "Weekly", last + week * 1.4, tolerance=0.5) is None
    naive_last = datetime(2026, 1, 5, 12)  # naive times are read as UTC
    assert is_overdue(naive_last, "Daily", datetime(2026, 1, 7, tzinfo=UTC))


def test_never_updated_dataset_is_reminded_once_per_period():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    keys = {
        a.period_key
        for h in range(0, 24 * 7, 6)
        for a in overdue_alerts([("x", "Daily", None)], now + timedelta(hours=h))
    }
    assert len(keys) == 7


def test_landing_alerts_use_the_same_rule_at_the_source():
    now = datetime(2026, 2, 1, tzinfo=UTC)
    alerts = landing_stale_alerts(
        [("a", "Monthly", now - timedelta(days=40)), ("b", "Monthly", now - timedelta(days=20))], now
    )
    assert [(a.dataset_id, a.kind) for a in alerts] == [("a", "landing_stale")]
    assert "landing folder" in alerts[0].message and "40 days ago" in alerts[0].message
