"""``ct-pipelines automation ...``: show schedules, audit a portal, send a test alert."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import click

from ct_pipelines.automation.frequency import (
    SCHEDULE_TIMEZONE,
    frequency_cron,
    frequency_period,
    frequency_timedelta,
)
from ct_pipelines.automation.notify import Alert, AlertKind, NotifierConfigError, notifier_from_env
from ct_pipelines.catalog.handbook import UpdateFrequency


@click.group("automation")
def automation() -> None:
    """Schedules, overdue alerts and the portal-wide freshness and metadata audit."""


@automation.command("frequencies")
def frequencies() -> None:
    """Print how each handbook Update Frequency is scheduled and when it counts as overdue."""
    click.echo(f"Schedules run in {SCHEDULE_TIMEZONE}.\n")
    click.echo("| Update Frequency | cron | ISO 8601 | max gap (days) |\n|---|---|---|---|")
    for freq in UpdateFrequency:
        gap = frequency_timedelta(freq)
        click.echo(
            f"| {freq} | {frequency_cron(freq) or '-'} | {frequency_period(freq) or '-'} | "
            f"{gap.total_seconds() / 86400:g} |"
            if gap
            else f"| {freq} | - | - | never overdue or not checkable |"
        )


@automation.command("audit")
@click.option("--domain", default="data.ct.gov", show_default=True, help="Socrata domain to audit.")
@click.option(
    "--app-token-env", default="SOCRATA_APP_TOKEN", show_default=True, help="Variable holding an app token."
)
@click.option(
    "--warehouse",
    type=click.Path(dir_okay=False, path_type=Path),
    help="DuckDB file for snapshots (default: _portal_audit.duckdb in CT_PIPELINES_WAREHOUSE).",
)
@click.option(
    "--reports", type=click.Path(file_okay=False, path_type=Path), help="Folder for the CSV report."
)
@click.option("--tolerance", default=0.2, show_default=True, help="Share of the frequency allowed as slack.")
def audit(
    domain: str, app_token_env: str, warehouse: Path | None, reports: Path | None, tolerance: float
) -> None:
    """Audit every dataset on a portal against its own declared update frequency."""
    import duckdb
    import requests
    from sodapy import Socrata

    from ct_pipelines.automation.audit import run_audit
    from ct_pipelines.core.settings import load_settings

    settings = load_settings()
    warehouse = warehouse or settings.audit_warehouse  # the audit's own file, beside the datasets' files
    reports = reports or settings.reports_dir
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    client = Socrata(domain, os.environ.get(app_token_env), timeout=120)
    run_id = f"cli-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    try:
        with duckdb.connect(str(warehouse)) as con:
            result = run_audit(client, con, reports, run_id, datetime.now(UTC), tolerance)
    except requests.RequestException as exc:
        raise click.ClickException(
            f"Could not read the catalog of {domain} ({type(exc).__name__}); check the domain and your network."
        ) from None
    click.echo(result.markdown())
    click.echo(f"\nPer-dataset CSV: {result.csv_path}")


@automation.command("test-alert")
def test_alert() -> None:
    """Send a test alert through the backends configured by CT_ALERT_* variables."""
    try:
        notifier = notifier_from_env()
    except NotifierConfigError as exc:
        raise click.ClickException(str(exc)) from None
    alert = Alert(
        dataset_id="test",
        kind=AlertKind.RUN_FAILURE,
        title="Test alert from ct-pipelines",
        message="If you can read this, alerts reach you.",
        period_key=f"test:{uuid.uuid4()}",
    )
    report = notifier.notify([alert])
    for name in report.delivered_by:
        click.echo(f"delivered by {name}")
    for name, reason in report.failures.items():
        click.echo(f"FAILED {name}: {reason}", err=True)
    if report.failures:
        raise SystemExit(1)
