"""Tell a person when a dataset slips: alerts, delivery backends and a ledger that dedupes them.

Open-source Dagster has no alerting for freshness or failed runs, so sensors build :class:`Alert`s
and hand them to a :class:`Notifier`. Each alert carries a ``period_key``; the :class:`AlertLedger`
remembers keys already sent so a sensor ticking every few minutes sends one message per overdue
period, not one per tick.

Secrets (SMTP password, webhook URLs, which often embed a token, and webhook headers) never appear
in logs, reprs or failure reports: failures are described by exception type and HTTP status only.
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import urlsplit

import duckdb
import requests

logger = logging.getLogger(__name__)


class AlertKind(StrEnum):
    OVERDUE = "overdue"
    RUN_FAILURE = "run_failure"
    CHECK_FAILURE = "check_failure"
    LANDING_STALE = "landing_stale"


@dataclass(frozen=True)
class Alert:
    """One thing a person should act on; ``period_key`` is unique per occurrence worth one message."""

    dataset_id: str
    kind: AlertKind
    title: str
    message: str
    period_key: str
    url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = str(self.kind)
        return data

    @property
    def text(self) -> str:
        """One plain-text rendering shared by e-mail bodies and chat webhooks."""
        return f"{self.title}\n\n{self.message}" + (f"\n\n{self.url}" if self.url else "")


class Backend(Protocol):
    """A way to deliver alerts; raises on failure so the notifier can log it and carry on."""

    name: str

    def deliver(self, alerts: Sequence[Alert]) -> None: ...


class LogBackend:
    """Writes alerts to the Python log (and so to the Dagster run or sensor log); always available."""

    name = "log"

    def __init__(self, log: logging.Logger | None = None) -> None:
        self._log = log or logger

    def deliver(self, alerts: Sequence[Alert]) -> None:
        for alert in alerts:
            self._log.warning("ALERT [%s] %s: %s", alert.kind, alert.title, alert.message)


def _safe_url(url: str) -> str:
    """Scheme and host only: webhook paths and queries often hold the token that authorises them."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}/…"


class WebhookBackend:
    """POSTs each alert as JSON. The body has the alert fields plus ``text``, which Slack- and
    Teams-style incoming webhooks display as the message."""

    name = "webhook"

    def __init__(self, url: str, timeout: float = 10.0, headers: Mapping[str, str] | None = None) -> None:
        self._url = url
        self._timeout = timeout
        self._headers = {"Content-Type": "application/json", **(headers or {})}

    def __repr__(self) -> str:
        return f"WebhookBackend(url={_safe_url(self._url)!r})"

    def deliver(self, alerts: Sequence[Alert]) -> None:
        with requests.Session() as session:
            for alert in alerts:
                body = json.dumps({**alert.to_dict(), "text": alert.text})
                response = session.post(self._url, data=body, headers=self._headers, timeout=self._timeout)
                response.raise_for_status()


class SmtpBackend:
    """Sends one e-mail per alert over a single SMTP connection."""

    name = "email"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        recipients: Sequence[str],
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout: float = 30.0,
    ) -> None:
        if not recipients:
            raise ValueError("SmtpBackend needs at least one recipient")
        self.host, self.port, self.sender, self.recipients = host, port, sender, list(recipients)
        self.username, self._password, self.starttls, self.timeout = username, password, starttls, timeout

    def __repr__(self) -> str:
        auth = f", username={self.username!r}, password='***'" if self.username else ""
        return f"SmtpBackend(host={self.host!r}, port={self.port}, recipients={self.recipients!r}{auth})"

    def _message(self, alert: Alert) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = f"[ct-pipelines] {alert.title}"
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message["X-CT-Alert-Key"] = alert.period_key
        message.set_content(alert.text)
        return message

    def deliver(self, alerts: Sequence[Alert]) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self._password or "")
            for alert in alerts:
                smtp.send_message(self._message(alert))


def describe_failure(exc: BaseException) -> str:
    """A failure reason safe to log: exception type and HTTP/SMTP status, never URLs or credentials."""
    status = getattr(getattr(exc, "response", None), "status_code", None) or getattr(exc, "smtp_code", None)
    return type(exc).__name__ + (f" (status {status})" if status else "")


def select_unsent(alerts: Iterable[Alert], sent_keys: Iterable[str] | set[str]) -> list[Alert]:
    """Alerts whose key was not sent before, each key once: the pure core of the ledger."""
    seen = set(sent_keys)
    fresh = []
    for alert in alerts:
        if alert.period_key not in seen:
            seen.add(alert.period_key)
            fresh.append(alert)
    return fresh


LEDGER_TABLE = "alert_ledger"


class AlertLedger:
    """Remembers which alert keys were sent.

    Without a connection it lives in memory and round-trips through :meth:`to_cursor` /
    :meth:`from_cursor` (a Dagster sensor cursor); with one it persists in the ``alert_ledger``
    DuckDB table so separate processes share it."""

    def __init__(self, con: duckdb.DuckDBPyConnection | None = None, sent_keys: Iterable[str] = ()) -> None:
        self._con = con
        self._keys: dict[str, None] = dict.fromkeys(sent_keys)
        if con is not None:
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {LEDGER_TABLE} (period_key VARCHAR PRIMARY KEY, "
                "dataset_id VARCHAR, kind VARCHAR, title VARCHAR, sent_at TIMESTAMPTZ)"
            )

    @classmethod
    def from_cursor(cls, cursor: str | None) -> AlertLedger:
        return cls(sent_keys=json.loads(cursor) if cursor else ())

    def to_cursor(self, max_keys: int = 2000) -> str:
        """JSON list of the most recent keys; old keys name past periods and are safe to drop."""
        return json.dumps(list(self._keys)[-max_keys:])

    def sent_keys(self, candidates: Iterable[str]) -> set[str]:
        wanted = list(dict.fromkeys(candidates))
        if self._con is None or not wanted:
            return {key for key in wanted if key in self._keys}
        rows = self._con.execute(
            f"SELECT period_key FROM {LEDGER_TABLE} WHERE list_contains(?, period_key)", [wanted]
        ).fetchall()
        return {row[0] for row in rows}

    def unsent(self, alerts: Sequence[Alert]) -> list[Alert]:
        return select_unsent(alerts, self.sent_keys(a.period_key for a in alerts))

    def record(self, alerts: Sequence[Alert], sent_at: datetime | None = None) -> None:
        sent_at = sent_at or datetime.now(UTC)
        for alert in alerts:
            self._keys[alert.period_key] = None
        if self._con is not None and alerts:
            self._con.executemany(
                f"INSERT INTO {LEDGER_TABLE} VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [[a.period_key, a.dataset_id, str(a.kind), a.title, sent_at] for a in alerts],
            )


@dataclass
class NotifyReport:
    """What happened to one batch: sent, skipped as duplicates, and failed backends with safe reasons."""

    sent: list[Alert] = field(default_factory=list)
    skipped: list[Alert] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    delivered_by: list[str] = field(default_factory=list)


class Notifier:
    """Delivers alerts to every backend; one backend failing is logged and does not stop the others.

    With a ledger, an alert counts as sent (and is never repeated) once any backend delivered it;
    when every backend fails it is left unsent so the next tick tries again."""

    def __init__(self, backends: Sequence[Backend], ledger: AlertLedger | None = None) -> None:
        self.backends = list(backends)
        self.ledger = ledger

    def __repr__(self) -> str:
        return f"Notifier(backends={self.backends!r})"

    def notify(self, alerts: Sequence[Alert]) -> NotifyReport:
        fresh = self.ledger.unsent(alerts) if self.ledger else select_unsent(alerts, ())
        fresh_keys = {a.period_key for a in fresh}
        report = NotifyReport(skipped=[a for a in alerts if a.period_key not in fresh_keys])
        if not fresh:
            return report
        for backend in self.backends:
            try:
                backend.deliver(fresh)
            except Exception as exc:  # any backend error must not stop the others
                reason = describe_failure(exc)
                report.failures[backend.name] = reason
                logger.error("Alert backend %s failed (%s); other backends still ran", backend.name, reason)
            else:
                report.delivered_by.append(backend.name)
        if report.delivered_by:
            report.sent = fresh
            if self.ledger:
                self.ledger.record(fresh)
        return report


class NotifierConfigError(ValueError):
    """A notifier setting is missing or malformed; the message names the setting and the fix."""


ENV_KEYS = {
    "webhook_url": "CT_ALERT_WEBHOOK_URL",
    "smtp_host": "CT_ALERT_SMTP_HOST",
    "smtp_port": "CT_ALERT_SMTP_PORT",
    "email_to": "CT_ALERT_EMAIL_TO",
    "email_from": "CT_ALERT_EMAIL_FROM",
    "smtp_username": "CT_ALERT_SMTP_USERNAME",
    "smtp_password": "CT_ALERT_SMTP_PASSWORD",
    "smtp_starttls": "CT_ALERT_SMTP_STARTTLS",
}


def notifier_from_config(config: Mapping[str, Any], ledger: AlertLedger | None = None) -> Notifier:
    """Build a notifier from settings named like :data:`ENV_KEYS`' keys; the log backend is always on."""
    backends: list[Backend] = [LogBackend()]
    if config.get("webhook_url"):
        backends.append(WebhookBackend(str(config["webhook_url"])))
    if config.get("smtp_host"):
        recipients = config.get("email_to") or []
        if isinstance(recipients, str):
            recipients = [r.strip() for r in recipients.split(",") if r.strip()]
        if not recipients:
            raise NotifierConfigError(
                f"{ENV_KEYS['smtp_host']} is set but {ENV_KEYS['email_to']} is empty; "
                "set it to a comma-separated list of e-mail addresses"
            )
        try:
            port = int(config.get("smtp_port") or 25)
        except ValueError:
            raise NotifierConfigError(
                f"{ENV_KEYS['smtp_port']} must be a port number such as 25 or 587"
            ) from None
        backends.append(
            SmtpBackend(
                host=str(config["smtp_host"]),
                port=port,
                sender=str(config.get("email_from") or "ct-pipelines@localhost"),
                recipients=recipients,
                username=config.get("smtp_username") or None,
                password=config.get("smtp_password") or None,
                starttls=str(config.get("smtp_starttls", "")).lower() in {"1", "true", "yes", "on"},
            )
        )
    return Notifier(backends, ledger)


def notifier_from_env(env: Mapping[str, str] | None = None, ledger: AlertLedger | None = None) -> Notifier:
    """Notifier configured from the ``CT_ALERT_*`` environment variables (see :data:`ENV_KEYS`)."""
    env = os.environ if env is None else env
    return notifier_from_config({key: env.get(var) for key, var in ENV_KEYS.items()}, ledger)
