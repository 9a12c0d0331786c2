"""Issue 14 end to end: the code location served over gRPC (`dagster code-server start`), a run launched
with `dagster job launch -w workspace.yaml` into the production instance's queue, dequeued by
`dagster-daemon run` and started by the DefaultRunLauncher through the code server; the run and its
materializations are then read back from PostgreSQL."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.errors import DagsterUserCodeUnreachableError
from dagster._grpc.client import DagsterGrpcClient
from dagster._serdes import deserialize_value
from dagster._utils.error import SerializableErrorInfo

from ct_pipelines.core.settings import SAMPLES_DIR
from ct_pipelines_tests.support.postgres import PostgresServer, query
from ct_pipelines_tests.support.receivers import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
DATASET = "deep_fishing_licenses"
WAIT_SECONDS = 150  # an upper bound for a loaded machine, not a performance assertion


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A one-dataset catalog (so the shared job is that dataset's five assets) with its landing file."""
    for name in ("CT_PORTAL_DOMAIN", "CT_ALERT_WEBHOOK_URL", "CT_ALERT_SMTP_HOST"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "catalog").mkdir()
    (tmp_path / "landing").mkdir()
    shutil.copy(SAMPLES_DIR / "catalog" / f"{DATASET}.yaml", tmp_path / "catalog")
    shutil.copy(SAMPLES_DIR / "landing" / "deep_fishing_licenses_2024.csv", tmp_path / "landing")
    monkeypatch.setenv("CT_PIPELINES_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CT_PIPELINES_CATALOG", str(tmp_path / "catalog"))
    monkeypatch.setenv("CT_PIPELINES_LANDING", str(tmp_path / "landing"))
    return tmp_path


def _env() -> dict[str, str]:
    """The test's environment (DAGSTER_HOME, DAGSTER_PG_*, CT_PIPELINES_*), importing this checkout."""
    path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}


@contextmanager
def _process(args: list[str], log: Path) -> Iterator[subprocess.Popen]:
    """A dagster command in its own process group, stopped (with its children) on exit."""
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", *args],
            env=_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def _wait_for_server(proc: subprocess.Popen, port: int, log: Path) -> None:
    client = DagsterGrpcClient(host="127.0.0.1", port=port)
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"code server exited: {log.read_text()[-2000:]}"
        try:
            loaded = deserialize_value(client.list_repositories())
        except DagsterUserCodeUnreachableError:  # not listening yet
            loaded = None
        if loaded is not None:
            assert not isinstance(loaded, SerializableErrorInfo), (
                f"definitions failed to load: {loaded.message}"
            )
            return
        time.sleep(0.5)
    pytest.fail(f"code server did not load in {WAIT_SECONDS}s: {log.read_text()[-2000:]}")


def _wait_for_run(instance: dg.DagsterInstance, run_id: str, daemon_log: Path) -> dg.DagsterRun:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        run = instance.get_run_by_id(run_id)
        if run is not None and run.is_finished:
            return run
        time.sleep(0.5)
    pytest.fail(f"run {run_id} did not finish in {WAIT_SECONDS}s: {daemon_log.read_text()[-2000:]}")


def test_run_launched_through_the_code_server_is_stored_in_postgres(
    project: Path, pg_home: Path, pg_database: PostgresServer, pg_instance: dg.DagsterInstance
):
    port = free_port()
    workspace = project / "workspace.yaml"
    workspace.write_text(
        yaml.safe_dump(
            {
                "load_from": [
                    {"grpc_server": {"host": "127.0.0.1", "port": port, "location_name": "ct_pipelines"}}
                ]
            }
        )
    )
    started = time.monotonic()
    server_args = ["dagster", "code-server", "start", "-m", "ct_pipelines.definitions", "-h", "127.0.0.1"]
    server_args += ["-p", str(port), "--location-name", "ct_pipelines"]
    with _process(server_args, project / "code_server.log") as server:
        _wait_for_server(server, port, project / "code_server.log")
        loaded = time.monotonic()
        launch = subprocess.run(
            [sys.executable, "-m", "dagster", "job", "launch", "-w", str(workspace), "-j", "publish_datasets"]
            + ["--tags", json.dumps({"ct/dataset": DATASET})],
            env=_env(),
            capture_output=True,
            text=True,
            timeout=WAIT_SECONDS,
            check=False,
        )
        assert launch.returncode == 0, launch.stderr[-2000:]
        [queued] = pg_instance.get_runs()
        assert queued.status == dg.DagsterRunStatus.QUEUED  # the QueuedRunCoordinator holds it for the daemon
        daemon_log = project / "daemon.log"
        with _process(["dagster._daemon", "run", "-w", str(workspace)], daemon_log):
            run = _wait_for_run(pg_instance, queued.run_id, daemon_log)
        finished = time.monotonic()

    assert run.status == dg.DagsterRunStatus.SUCCESS, daemon_log.read_text()[-2000:]
    [(status, tags)] = query(
        pg_database, "SELECT status, run_body::json->>'tags' FROM runs WHERE run_id = %s", (run.run_id,)
    )
    assert status == "SUCCESS" and json.loads(tags)["ct/dataset"] == DATASET
    keys = query(
        pg_database,
        "SELECT asset_key FROM event_logs WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION'",
        (run.run_id,),
    )
    assert sorted(json.loads(k)[-1] for (k,) in keys) == sorted(
        ["ingest", "validate", "standardize", "protect", "publish"]
    )
    # Launched by the DefaultRunLauncher in its own process, not in this one.
    [start] = pg_instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_START)
    assert start.dagster_event is not None and start.dagster_event.pid not in (None, os.getpid())
    print(f"code server loaded in {loaded - started:.1f}s; queue to success {finished - loaded:.1f}s")
