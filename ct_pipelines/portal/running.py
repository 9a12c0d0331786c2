"""Which process serves a local portal data folder, so a run publishes through it instead of opening
the same DuckDB file (which DuckDB lets only one process hold).

``ct-pipelines portal serve`` writes ``<data dir>/.portal-server.json`` (host, port, pid, user; owner-only)
while it serves and removes it on exit; :func:`find_server` reads it, checks that the process is alive
and that the portal answers, and says where to send the run's requests.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import requests

from ct_pipelines.portal.common import write_private

SERVER_FILE = ".portal-server.json"
PASSWORD_FILE = ".portal-password"
PASSWORD_ENV = "CT_PIPELINES_PORTAL_PASSWORD"


@dataclass(frozen=True)
class RunningPortal:
    """A portal served by another process on this machine, as a run's publisher needs it."""

    host: str
    port: int
    pid: int
    username: str
    password: str | None
    data_dir: Path

    @property
    def domain(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.domain}"

    def stop(self) -> None:
        """Not ours to stop: the serving process keeps running after the run."""


def announce(data_dir: Path, host: str, port: int, username: str) -> Path:
    """Write the server file for this process (owner-only, like the data folder)."""
    path = Path(data_dir) / SERVER_FILE
    body = {"host": "127.0.0.1" if host in ("0.0.0.0", "::", "localhost") else host, "port": port}
    body |= {"pid": os.getpid(), "username": username}
    write_private(path, (json.dumps(body) + "\n").encode())
    return path


def withdraw(data_dir: Path) -> None:
    """Remove the server file if this process wrote it (a later server may have replaced it)."""
    path = Path(data_dir) / SERVER_FILE
    try:
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        return


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def find_server(data_dir: Path, timeout: float = 3.0) -> RunningPortal | None:
    """The live portal serving ``data_dir``, or None when no process serves it (a stale file is ignored)."""
    path = Path(data_dir) / SERVER_FILE
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        host, port, pid = str(info["host"]), int(info["port"]), int(info["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if pid == os.getpid() or not _alive(pid):
        return None
    domain = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        requests.get(f"http://{domain}/api/catalog/v1?limit=0", timeout=timeout)
    except requests.RequestException:
        return None
    password = os.environ.get(PASSWORD_ENV)
    secret = Path(data_dir) / PASSWORD_FILE
    if not password and secret.is_file():
        password = secret.read_text(encoding="utf-8").strip()
    return RunningPortal(host, port, pid, str(info.get("username", "ct-pipelines")), password, Path(data_dir))


def lock_holder(message: str) -> str | None:
    """The process DuckDB names in a lock conflict ("... (PID 1234) ..."), if it does."""
    found = re.search(r"PID (\d+)", message)
    return found[1] if found else None
