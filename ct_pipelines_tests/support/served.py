"""One local portal served by ``ct-pipelines portal serve`` in its own process, and ``ct-pipelines``
commands run as separate processes that publish to it, as concurrent Dagster runs would.

Each run starting its own embedded portal on one data folder would take turns on the portal's DuckDB
file; one served portal is what several processes publish to at once. Used by the concurrency test
and ``bench/bench_concurrency.py``.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from ct_pipelines.cli import main; main()"]
_ADDRESS = re.compile(r"browse http://([0-9.]+:[0-9]+)/")


def clean_env(**extra: str) -> dict[str, str]:
    """The parent's environment without project, portal or Dagster settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CT_", "DAGSTER_"))}
    return env | {"PYTHONPATH": str(REPO)} | extra


@contextmanager
def served_portal(data_dir: Path, timeout: float = 60.0) -> Iterator[dict[str, str]]:
    """Serve a portal on a free loopback port; yields the ``CT_PORTAL_*`` variables that point runs at it."""
    password = secrets.token_urlsafe(18)
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir.parent / f"{data_dir.name}-serve.log"  # a file, so a chatty server never blocks
    with log.open("w") as out:
        process = subprocess.Popen(
            [*CLI, "portal", "serve", "--port", "0", "--data", str(data_dir)],
            env=clean_env(CT_PIPELINES_PORTAL_PASSWORD=password),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline, domain = time.monotonic() + timeout, None
        while domain is None:
            found = _ADDRESS.search(log.read_text())
            domain = found.group(1) if found else None
            if domain is None and (process.poll() is not None or time.monotonic() > deadline):
                raise RuntimeError(f"`ct-pipelines portal serve` did not start: {log.read_text()[-500:]}")
            time.sleep(0.1)
        yield {
            "CT_PORTAL_DOMAIN": domain,
            "CT_PORTAL_SCHEME": "http",
            "CT_PORTAL_USERNAME": "ct-pipelines",
            "CT_PORTAL_PASSWORD": password,
            "CT_PORTAL_APP_TOKEN": "local-portal",  # the local portal ignores it; keeps sodapy quiet
        }
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_run(dataset_id: str, env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen:
    """``ct-pipelines run --dataset ID`` in its own process, its output in ``log``."""
    with log.open("w") as out:  # the child keeps its own handle
        return subprocess.Popen(
            [*CLI, "run", "--dataset", dataset_id], env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT
        )
