"""Dagster resources: the DuckDB warehouse (one file per dataset), the portal, and the alert notifier.

Production credentials come from environment variables through ``dg.EnvVar``, so they are resolved
at run time, never written in the repository, and shown in the UI only as the variable's name.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
import duckdb
from pydantic import PrivateAttr

from ct_pipelines.core import warehouse
from ct_pipelines.core.settings import Settings, load_settings

#: How long a run waits for another run to finish with the local portal's data folder.
LOCAL_PORTAL_WAIT_SECONDS = 600.0

PORTAL_ENV = {
    "domain": "CT_PORTAL_DOMAIN",
    "username": "CT_PORTAL_USERNAME",
    "password": "CT_PORTAL_PASSWORD",
    "app_token": "CT_PORTAL_APP_TOKEN",
    "scheme": "CT_PORTAL_SCHEME",
}


class WarehouseResource(dg.ConfigurableResource):
    """Each dataset's own DuckDB file (``CT_PIPELINES_WAREHOUSE/<dataset id>.duckdb``), so concurrent runs
    of different datasets never wait for one another. Unlike ``DuckDBResource``, which closes only on
    success, a connection is closed even when a stage raises, so a later run in the process finds the
    file free."""

    @contextmanager
    def connection(self, dataset_id: str) -> Iterator[duckdb.DuckDBPyConnection]:
        settings = load_settings()
        settings.ensure_dirs()
        with warehouse.open_dataset(settings, dataset_id) as con:
            yield con

    @contextmanager
    def audit_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The portal audit's snapshots, in a file of their own."""
        settings = load_settings()
        settings.ensure_dirs()
        con = warehouse.connect(settings.audit_warehouse, settings)
        try:
            yield con
        finally:
            con.close()


def warehouse_resource() -> WarehouseResource:
    return WarehouseResource()


class SettingsResource(dg.ConfigurableResource):
    """Where the project keeps its files, resolved once per run from ``CT_PIPELINES_*`` variables and
    handed to the stages (which never read the environment themselves)."""

    catalog_dir: str | None = None  # the catalog the definitions were built from (else CT_PIPELINES_CATALOG)

    def resolve(self) -> Settings:
        return load_settings(self.catalog_dir)


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
        """The portal serving the local data folder: one that `ct-pipelines portal serve` already runs
        on it (DuckDB lets one process hold the file), else one started for this run."""
        if self._local is None and self._in_run:
            settings = load_settings()
            settings.ensure_dirs()
            self._local = _serving_portal(settings.portal_data_dir) or self._wait_for_local_store(settings)
        return self._local

    @staticmethod
    def _wait_for_local_store(settings: Settings) -> Any:
        """Concurrent runs share the local portal's data folder, whose DuckDB file one process holds at
        a time: a run waits its turn (``CT_PIPELINES_PORTAL_WAIT_SECONDS``, 600 by default), then says
        which process holds it (a real portal has no such limit)."""
        from ct_pipelines.portal.local import LocalPortal
        from ct_pipelines.portal.running import lock_holder

        wait = float(os.environ.get("CT_PIPELINES_PORTAL_WAIT_SECONDS", LOCAL_PORTAL_WAIT_SECONDS))
        deadline, pause = time.monotonic() + wait, 0.1
        while True:
            try:
                return LocalPortal(settings.portal_data_dir).start()
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() >= deadline:
                    holder = lock_holder(str(exc))
                    who = f"process {holder}" if holder else "another process"
                    raise dg.Failure(
                        f"The local portal's data folder {settings.portal_data_dir} stayed held by {who} for "
                        f"{wait:.0f} s, which is not a `ct-pipelines portal serve` this run can publish to: stop "
                        f"that process, or serve the folder with `ct-pipelines portal serve --data "
                        f"{settings.portal_data_dir}` and run again.",
                        allow_retries=False,
                    ) from None
            time.sleep(pause)
            pause = min(pause * 2, 2.0)

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


def _serving_portal(data_dir: Any) -> Any:
    from ct_pipelines.portal.running import PASSWORD_ENV, find_server

    running = find_server(data_dir)
    if running is not None and not running.password:
        raise dg.Failure(
            f"The local portal serving {data_dir} (process {running.pid}) was started with its own password, "
            f"so this run cannot publish to it: set {PASSWORD_ENV} to that password for the run.",
            allow_retries=False,
        )
    return running


class NotifierResource(dg.ConfigurableResource):
    """Alert delivery (log, webhook, e-mail) configured from ``CT_ALERT_*`` environment variables."""

    def notifier(self) -> Any:
        from ct_pipelines.automation.notify import notifier_from_env

        return notifier_from_env()
