"""Dagster resources: the DuckDB warehouse, the portal, and the alert notifier.

Production credentials come from environment variables through ``dg.EnvVar``, so they are resolved
at run time, never written in the repository, and shown in the UI only as the variable's name.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import PrivateAttr

from ct_pipelines.core.settings import Settings, load_settings

PORTAL_ENV = {
    "domain": "CT_PORTAL_DOMAIN",
    "username": "CT_PORTAL_USERNAME",
    "password": "CT_PORTAL_PASSWORD",
    "app_token": "CT_PORTAL_APP_TOKEN",
    "scheme": "CT_PORTAL_SCHEME",
}


def warehouse_resource() -> DuckDBResource:
    settings = load_settings()
    return DuckDBResource(database=str(settings.warehouse_path), connection_config=settings.duckdb_config)


class SettingsResource(dg.ConfigurableResource):
    """Where the project keeps its files, resolved once per run from ``CT_PIPELINES_*`` variables and
    handed to the stages (which never read the environment themselves)."""

    def resolve(self) -> Settings:
        return load_settings()


class PortalResource(dg.ConfigurableResource):
    """The Socrata portal to publish to. With no domain configured, each run starts the local
    SODA-compatible portal on loopback and publishes to it over real HTTP."""

    domain: str | None = None
    username: str | None = None
    password: str | None = None
    app_token: str | None = None
    scheme: str = "https"
    timeout_seconds: float = 300.0

    _local: Any = PrivateAttr(default=None)
    _in_run: bool = PrivateAttr(default=False)

    @classmethod
    def from_env(cls) -> PortalResource:
        """Fields backed by ``EnvVar`` for each variable that is set (values resolve at run time)."""
        values: dict[str, Any] = {
            field: dg.EnvVar(var) for field, var in PORTAL_ENV.items() if os.environ.get(var)
        }
        return cls(**values)

    @property
    def is_local(self) -> bool:
        return not self.domain

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator[PortalResource]:
        """Inside a run, a local portal is started on first use (so steps that never publish don't
        pay for it) and stopped when the run's resources are torn down."""
        self._in_run = True
        try:
            yield self
        finally:
            if self._local is not None:
                self._local.stop()
            self._local = None
            self._in_run = False

    def _local_portal(self) -> Any:
        if self._local is None and self._in_run:
            from ct_pipelines.portal.local import LocalPortal

            settings = load_settings()
            settings.ensure_dirs()
            self._local = LocalPortal(settings.portal_data_dir)
            self._local.start()
        return self._local

    def connection(self, timeout: float | None = None, retries: Any = None) -> Any:
        """A configured publishing connection (retries, long timeouts) for the portal in force.

        Sensors pass a short ``timeout`` and a small ``retries`` policy (a ``RetryPolicy``): a tick
        must end within Dagster's evaluation limit, unlike a publishing run."""
        from ct_pipelines.publish.connection import PortalConnection

        timeout = self.timeout_seconds if timeout is None else timeout
        if self.is_local and self._local_portal() is not None:
            # The local portal ignores app tokens; sending a placeholder keeps sodapy's "no app_token"
            # throttling warning (meant for real portals) out of every local run.
            return PortalConnection(
                self._local.domain,
                self._local.username,
                self._local.password,
                app_token="local-portal",
                scheme="http",
                timeout=timeout,
                retries=retries,
                target=f"local:{load_settings().portal_data_dir}",
            )
        if self.is_local:
            raise dg.Failure("The local portal is not running: use the resource inside a run.")
        return PortalConnection(
            self.domain or "",
            self.username,
            self.password,
            self.app_token,
            scheme=self.scheme,
            timeout=timeout,
            retries=retries,
        )

    @property
    def browse_url(self) -> str | None:
        if self._local is not None:
            return self._local.url
        return f"{self.scheme}://{self.domain}" if self.domain else None


class NotifierResource(dg.ConfigurableResource):
    """Alert delivery (log, webhook, e-mail) configured from ``CT_ALERT_*`` environment variables."""

    def notifier(self) -> Any:
        from ct_pipelines.automation.notify import notifier_from_env

        return notifier_from_env()
