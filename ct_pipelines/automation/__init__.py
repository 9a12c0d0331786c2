"""Automation core: schedules from declared frequencies, overdue/failure alerts and the portal audit.

Plain Python (no Dagster); the Dagster schedules, sensors and freshness policies call these."""
