"""Run the local portal in a background thread on a free loopback port, for tests, benchmarks and
the publisher's own dry runs; hands out sodapy clients already pointed at it over plain HTTP."""

from __future__ import annotations

import secrets
import socket
import threading
import time
from pathlib import Path
from typing import Any

import requests
import uvicorn
from sodapy import Socrata

from ct_pipelines.portal.server import Interceptor, PortalApp, create_app
from ct_pipelines.portal.store import PortalStore

_UNSET: Any = object()


class LocalPortal:
    """``with LocalPortal(tmp_path) as portal: client = portal.socrata_client()``."""

    def __init__(
        self,
        data_dir: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        username: str = "ct-pipelines",
        password: str | None = None,
        interceptor: Interceptor | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port
        self.username = username
        self.password = password or secrets.token_urlsafe(18)
        # a test hook that sees each request first (e.g. ct_pipelines_tests.support.faults.FaultPlan)
        self.interceptor = interceptor
        self.store: PortalStore | None = PortalStore(self.data_dir)
        self.app: PortalApp | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:  # never show the password
        return f"LocalPortal(url={self.url!r}, username={self.username!r})"

    @property
    def domain(self) -> str:
        """What sodapy takes as ``domain``: host and port, no scheme."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.domain}"

    @property
    def request_log(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every request; status 0 for a dropped connection."""
        return self.app.request_log if self.app else []

    def start(self, timeout: float = 15.0) -> LocalPortal:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        if self.store is None:
            self.store = PortalStore(self.data_dir)
        self.app = create_app(self.store, self.username, self.password, domain=self.domain)
        self.app.interceptor = self.interceptor
        config = uvicorn.Config(
            self.app, log_level="warning", lifespan="off", access_log=False, timeout_keep_alive=30
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        self._wait_until_answering(timeout)
        return self

    def _wait_until_answering(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._server is not None and self._server.started:
                try:
                    requests.get(f"{self.url}/api/catalog/v1?limit=0", timeout=2)
                    self.request_log.clear()
                    return
                except requests.ConnectionError:
                    pass
            if self._thread is not None and not self._thread.is_alive():
                break
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"The local portal did not start on {self.url} within {timeout:.0f} s")

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.store is not None:
            self.store.close()
        self._server = self._thread = None
        self.store = None

    def __enter__(self) -> LocalPortal:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def socrata_client(
        self, username: str | None = _UNSET, password: str | None = _UNSET, **kwargs: Any
    ) -> Socrata:
        """A sodapy client for this portal over plain HTTP with this portal's credentials; pass
        ``username=None, password=None`` for an anonymous one. Other kwargs go to ``Socrata``
        (e.g. ``timeout``, or ``session_adapter`` with an ``http://`` prefix for retries)."""
        kwargs.setdefault("app_token", "ct-pipelines-local")
        kwargs.setdefault(
            "session_adapter", {"prefix": "http://", "adapter": requests.adapters.HTTPAdapter()}
        )
        return Socrata(
            self.domain,
            username=self.username if username is _UNSET else username,
            password=self.password if password is _UNSET else password,
            **kwargs,
        )
