"""The ``automation`` click group: readable output and clear errors, no tracebacks."""

from __future__ import annotations

import socket

from click.testing import CliRunner

from ct_pipelines.automation.cli import automation


def test_frequencies_lists_cron_and_period_per_handbook_value():
    result = CliRunner().invoke(automation, ["frequencies"])
    assert result.exit_code == 0
    assert "| Weekly | 0 6 * * 1 | P1W | 7 |" in result.output
    assert "| As needed | - | - |" in result.output


def test_test_alert_reports_a_bad_setting_without_traceback():
    result = CliRunner().invoke(automation, ["test-alert"], env={"CT_ALERT_SMTP_HOST": "smtp.ct.gov"})
    assert result.exit_code == 1
    assert "CT_ALERT_EMAIL_TO" in result.output and "Traceback" not in result.output


def test_test_alert_names_the_failing_backend_but_not_its_secret_url():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {"CT_ALERT_WEBHOOK_URL": f"http://127.0.0.1:{port}/hooks/SECRET-TOKEN"}
    result = CliRunner().invoke(automation, ["test-alert"], env=env)
    assert result.exit_code == 1
    assert "delivered by log" in result.output and "FAILED webhook: ConnectionError" in result.output
    assert "SECRET-TOKEN" not in result.output
