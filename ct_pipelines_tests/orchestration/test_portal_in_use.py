"""Issue 11: a run while `ct-pipelines portal serve` holds the local portal's data folder publishes through
that server; a folder held by another kind of process fails in one sentence naming it and the fix."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import requests

from ct_pipelines.orchestration.runner import run_catalog
from ct_pipelines.portal.running import SERVER_FILE

REPO = Path(__file__).resolve().parents[2]
DATASET = """\
id: town_counts
title: Visits by Town
description: Visits counted per town, for the portal-in-use test.
agency: Department of Testing
category: Government
update_frequency: Weekly
contact: data.officer@ct.gov
ingest:
  path: towns.csv
row_identifier: town
columns:
  - source: Town
    required: true
    unique: true
  - source: Visits
    type: integer
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CT_PIPELINES_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CT_PIPELINES_LANDING", str(tmp_path / "landing"))
    monkeypatch.delenv("CT_PORTAL_DOMAIN", raising=False)
    monkeypatch.delenv("CT_PIPELINES_PORTAL_PASSWORD", raising=False)
    (tmp_path / "landing").mkdir()
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "town_counts.yaml").write_text(DATASET, encoding="utf-8")
    rows = ["Town,Visits", *(f"{town},{n}" for n, town in enumerate(["Hartford", "Bristol", "Salem"], 1))]
    (tmp_path / "landing" / "towns.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return tmp_path


def _python(code_or_args: list[str], **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, *code_or_args], env=env, text=True, **kw)


@pytest.fixture
def served(home: Path) -> Iterator[tuple[subprocess.Popen, Path]]:
    data = home / "home" / "portal"
    server = _python(
        [
            "-c",
            "from ct_pipelines.cli import main; main()",
            "portal",
            "serve",
            "--data",
            str(data),
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(300):  # the server file appears once it listens; bounded wait, no timing asserted
            if (data / SERVER_FILE).exists() or server.poll() is not None:
                break
            time.sleep(0.1)
        assert (data / SERVER_FILE).exists(), server.stdout.read() if server.poll() is not None else ""
        yield server, data
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)


def test_a_run_publishes_through_the_portal_that_serve_is_running(home: Path, served):
    server, data = served
    info = json.loads((data / SERVER_FILE).read_text(encoding="utf-8"))
    assert info["pid"] == server.pid and "password" not in info
    (summary,), _ = run_catalog(str(home / "catalog"), instance=dg.DagsterInstance.ephemeral())
    assert summary.ok, summary.error
    assert summary.rows_in == 3 and summary.rows_published == 3
    base = f"http://{info['host']}:{info['port']}"
    (record,) = requests.get(f"{base}/api/catalog/v1", timeout=10).json()["results"]
    assert record["resource"]["name"] == "Visits by Town"
    rows = requests.get(f"{base}/resource/{record['resource']['id']}.json", timeout=10).json()
    assert sorted((r["town"], int(r["visits"])) for r in rows) == [
        ("Bristol", 2),
        ("Hartford", 1),
        ("Salem", 3),
    ]
    server.send_signal(signal.SIGINT)
    server.wait(timeout=30)
    assert not (data / SERVER_FILE).exists()


def test_a_folder_held_by_another_process_fails_in_one_sentence_naming_it(
    home: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("CT_PIPELINES_PORTAL_WAIT_SECONDS", "2")  # runs wait their turn; a stranger is named
    data = home / "home" / "portal"
    data.mkdir(parents=True)
    holder = _python(
        [
            "-c",
            f"import duckdb, sys; c = duckdb.connect({str(data / 'portal.duckdb')!r}); print('held', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        (summary,), _ = run_catalog(str(home / "catalog"), instance=dg.DagsterInstance.ephemeral())
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert summary.status == "FAILED" and summary.failed_stage == "publish"
    assert f"process {holder.pid}" in summary.error
    assert f"ct-pipelines portal serve --data {data}" in summary.error
    assert "\n" not in summary.error and "Error" not in summary.error


def test_a_served_portal_stopped_with_sigterm_removes_its_server_file(served):
    """A service manager stops `portal serve` with SIGTERM. uvicorn shut down and raised the signal again
    with the default handler, which ended the process before it removed its server file."""
    server, data = served
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=30) == 0
    assert not (data / SERVER_FILE).exists()
