"""Alert delivery: one alert per overdue period, to a loopback SMTP receiver and a loopback webhook."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from ct_pipelines.automation.alerts import check_failure_alerts, overdue_alerts, run_failure_alert
from ct_pipelines.automation.notify import (
    Alert,
    AlertKind,
    AlertLedger,
    LogBackend,
    Notifier,
    NotifierConfigError,
    SmtpBackend,
    WebhookBackend,
    notifier_from_env,
    select_unsent,
)
from ct_pipelines.core.outcomes import CheckOutcome, Severity
from ct_pipelines_tests.support.receivers import SmtpInbox, WebhookServer, smtp_server, webhook_server

SMTP_USER, SMTP_PASSWORD = "alerts", "s3cret-smtp-pw"
WEBHOOK_TOKEN = "T0KEN-in-path-9f8e7d"


@pytest.fixture
def smtp_inbox() -> Iterator[tuple[SmtpInbox, int]]:
    inbox = SmtpInbox(password=SMTP_PASSWORD)
    with smtp_server(inbox) as port:
        yield inbox, port


@pytest.fixture
def webhook() -> Iterator[WebhookServer]:
    with webhook_server() as server:
        yield server


def _url(server: WebhookServer, path: str) -> str:
    return server.url(path)


def _alert(key: str) -> Alert:
    return Alert("ds", AlertKind.OVERDUE, f"title {key}", "message", key)


def test_overdue_dataset_alerts_once_per_overdue_period_by_email_and_webhook(smtp_inbox, webhook):
    inbox, port = smtp_inbox
    last_update = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)  # weekly: deadline = 7 days x 1.2 = Jan 13 15:36
    notifier = Notifier(
        [
            SmtpBackend("127.0.0.1", port, "ct-pipelines@ct.gov", ["dapa@ct.gov"], SMTP_USER, SMTP_PASSWORD),
            WebhookBackend(_url(webhook, f"/hooks/{WEBHOOK_TOKEN}"), timeout=5),
        ],
        AlertLedger(),
    )
    datasets = [
        ("covid_cases", "Weekly", last_update),
        ("school_enrollment", "Annually", last_update),  # not overdue
        ("historic_census", "Not updated (historical only)", datetime(2001, 1, 1, tzinfo=UTC)),
    ]
    # A sensor ticking every 6 hours, Jan 12 to Jan 27 18:00; overdue periods start Jan 13, 20 and 27 at 15:36.
    ticks = [datetime(2026, 1, 12, tzinfo=UTC) + timedelta(hours=6 * i) for i in range(4 * 16)]
    sent_per_tick = [len(notifier.notify(overdue_alerts(datasets, tick)).sent) for tick in ticks]

    assert sum(sent_per_tick) == 3  # Jan 13, Jan 20 and Jan 27 periods
    assert [ticks[i] for i, n in enumerate(sent_per_tick) if n] == [
        datetime(2026, 1, 13, 18, tzinfo=UTC),
        datetime(2026, 1, 20, 18, tzinfo=UTC),
        datetime(2026, 1, 27, 18, tzinfo=UTC),
    ]
    assert len(inbox.messages) == 3
    first = inbox.messages[0]
    assert first["Subject"] == "[ct-pipelines] covid_cases is overdue on the portal"
    assert first["To"] == "dapa@ct.gov"
    body = first.get_content()
    assert "Weekly" in body and "2026-01-05" in body and "8 days ago" in body
    assert set(inbox.logins) == {(SMTP_USER.encode(), SMTP_PASSWORD.encode())}

    assert len(webhook.requests) == 3
    path, headers, payload = webhook.requests[0]
    assert path == f"/hooks/{WEBHOOK_TOKEN}"
    assert headers["Content-Type"] == "application/json"
    assert payload["dataset_id"] == "covid_cases" and payload["kind"] == "overdue"
    assert payload["title"] in payload["text"] and "Weekly" in payload["message"]
    assert len({p["period_key"] for _, _, p in webhook.requests}) == 3


def test_failing_backend_is_logged_without_secrets_and_others_still_deliver(smtp_inbox, webhook, caplog):
    inbox, port = smtp_inbox
    secret_url = _url(webhook, f"/broken/{WEBHOOK_TOKEN}")
    notifier = Notifier(
        [
            WebhookBackend(secret_url, timeout=5),
            SmtpBackend("127.0.0.1", port, "a@ct.gov", ["b@ct.gov"], SMTP_USER, SMTP_PASSWORD),
        ],
        AlertLedger(),
    )
    with caplog.at_level(logging.INFO):  # urllib3 itself logs request paths at DEBUG
        report = notifier.notify([_alert("k1")])
    assert report.failures == {"webhook": "HTTPError (status 500)"}
    assert report.delivered_by == ["email"] and [a.period_key for a in report.sent] == ["k1"]
    assert len(inbox.messages) == 1
    assert "webhook" in caplog.text
    for secret in (WEBHOOK_TOKEN, SMTP_PASSWORD):
        assert secret not in caplog.text
        assert secret not in repr(notifier)


def test_alert_stays_unsent_when_every_backend_fails(webhook):
    ledger = AlertLedger()
    broken = Notifier([WebhookBackend(_url(webhook, "/broken"), timeout=5)], ledger)
    assert broken.notify([_alert("k1")]).sent == []
    working = Notifier([WebhookBackend(_url(webhook, "/ok"), timeout=5)], ledger)
    assert [a.period_key for a in working.notify([_alert("k1")]).sent] == ["k1"]
    assert working.notify([_alert("k1")]).sent == []


def test_wrong_smtp_password_is_reported_but_never_logged(smtp_inbox, caplog):
    _, port = smtp_inbox
    wrong = "wrong-password-123"
    # aiosmtpd stalls after smtplib's second mechanism is refused, so keep the client timeout short.
    notifier = Notifier(
        [SmtpBackend("127.0.0.1", port, "a@ct.gov", ["b@ct.gov"], SMTP_USER, wrong, timeout=2)]
    )
    with caplog.at_level(logging.DEBUG):
        report = notifier.notify([_alert("k1")])
    assert report.failures["email"].startswith("SMTP")
    assert wrong not in caplog.text


def test_duckdb_ledger_remembers_sent_keys_across_instances():
    con = duckdb.connect()
    first = AlertLedger(con)
    assert [a.period_key for a in first.unsent([_alert("a"), _alert("b"), _alert("a")])] == ["a", "b"]
    first.record([_alert("a")])
    second = AlertLedger(con)
    assert [a.period_key for a in second.unsent([_alert("a"), _alert("b")])] == ["b"]
    second.record([_alert("a"), _alert("b")])  # re-recording a key is harmless
    assert con.execute("SELECT count(*) FROM alert_ledger").fetchone()[0] == 2


def test_cursor_ledger_round_trips_and_keeps_newest_keys():
    ledger = AlertLedger()
    ledger.record([_alert(f"k{i}") for i in range(5)])
    restored = AlertLedger.from_cursor(ledger.to_cursor(max_keys=3))
    assert [a.period_key for a in restored.unsent([_alert(f"k{i}") for i in range(5)])] == ["k0", "k1"]
    assert AlertLedger.from_cursor(None).unsent([_alert("x")]) == [_alert("x")]
    assert select_unsent([_alert("x"), _alert("y")], {"y"}) == [_alert("x")]


def test_log_backend_writes_each_alert(caplog):
    with caplog.at_level(logging.WARNING):
        Notifier([LogBackend()]).notify([_alert("k1"), _alert("k2")])
    assert caplog.text.count("ALERT [overdue]") == 2


def test_notifier_from_env_builds_configured_backends():
    env = {
        "CT_ALERT_WEBHOOK_URL": "https://hooks.example/T/secret",
        "CT_ALERT_SMTP_HOST": "smtp.ct.gov",
        "CT_ALERT_SMTP_PORT": "587",
        "CT_ALERT_EMAIL_TO": "a@ct.gov, b@ct.gov",
        "CT_ALERT_EMAIL_FROM": "pipelines@ct.gov",
        "CT_ALERT_SMTP_USERNAME": "svc",
        "CT_ALERT_SMTP_PASSWORD": "pw-from-env",
        "CT_ALERT_SMTP_STARTTLS": "true",
    }
    notifier = notifier_from_env(env)
    assert [b.name for b in notifier.backends] == ["log", "webhook", "email"]
    smtp = notifier.backends[2]
    assert (smtp.port, smtp.recipients, smtp.starttls) == (587, ["a@ct.gov", "b@ct.gov"], True)
    assert "pw-from-env" not in repr(notifier) and "secret" not in repr(notifier)
    assert [b.name for b in notifier_from_env({}).backends] == ["log"]


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"CT_ALERT_SMTP_HOST": "smtp.ct.gov"}, "CT_ALERT_EMAIL_TO"),
        (
            {"CT_ALERT_SMTP_HOST": "h", "CT_ALERT_EMAIL_TO": "a@ct.gov", "CT_ALERT_SMTP_PORT": "x"},
            "CT_ALERT_SMTP_PORT",
        ),
    ],
)
def test_bad_notifier_settings_name_the_variable(env, named):
    with pytest.raises(NotifierConfigError, match=named):
        notifier_from_env(env)


def test_run_and_check_failures_are_keyed_per_run():
    failed = run_failure_alert("run-1", "publish_job", "Portal returned 503", dataset_id="covid_cases")
    assert failed.kind == AlertKind.RUN_FAILURE and "Portal returned 503" in failed.message
    assert run_failure_alert("run-2", "publish_job", "x").period_key != failed.period_key
    outcomes = [
        CheckOutcome(
            "age_range", False, Severity.ERROR, "412 rows have an age over 120; they were set aside"
        ),
        CheckOutcome("row_count", True, Severity.ERROR, "Row count is stable"),
    ]
    alerts = check_failure_alerts("covid_cases", "run-1", outcomes)
    assert [a.message for a in alerts] == ["412 rows have an age over 120; they were set aside"]
    assert alerts[0].kind == AlertKind.CHECK_FAILURE
