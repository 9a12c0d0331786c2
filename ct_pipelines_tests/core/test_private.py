"""Owner-only files: the umask the CLI sets, and existing files made private."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from ct_pipelines.cli import _host_argument, main
from ct_pipelines.core.private import restrict


@pytest.fixture
def keep_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    os.umask(previous)
    yield
    os.umask(previous)


def test_existing_files_and_folders_lose_group_and_other_permissions(tmp_path: Path):
    (tmp_path / "reports" / "site").mkdir(parents=True)
    page = tmp_path / "reports" / "site" / "index.html"
    page.write_text("<p>report</p>", encoding="utf-8")
    warehouse = tmp_path / "warehouse.duckdb"
    warehouse.write_bytes(b"db")
    for path in (tmp_path / "reports", tmp_path / "reports" / "site"):
        path.chmod(0o755)
    page.chmod(0o644)
    warehouse.chmod(0o664)
    restrict(warehouse, tmp_path / "reports", tmp_path / "missing")
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (warehouse, page, tmp_path / "reports")}
    assert modes == {"warehouse.duckdb": 0o600, "index.html": 0o600, "reports": 0o700}


def test_the_cli_creates_files_owner_only(tmp_path: Path, keep_umask: None):
    os.umask(0o022)
    result = CliRunner().invoke(main, ["catalog", "schema", "--output", str(tmp_path / "schema.json")])
    assert result.exit_code == 0
    assert stat.S_IMODE((tmp_path / "schema.json").stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "args", [["-h", "0.0.0.0"], ["--host", "192.168.1.20"], ["--host=10.0.0.5"], ["-h0.0.0.0"]]
)
def test_dev_refuses_a_non_loopback_host_without_allow_remote(args: list[str], keep_umask: None):
    result = CliRunner().invoke(main, ["dev", *args])
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "is not a loopback address" in message and "--allow-remote" in message
    assert "-h 127.0.0.1" in message


def test_dev_reads_the_host_the_way_dagster_dev_does():
    assert _host_argument(["-p", "3001", "-h", "0.0.0.0"]) == "0.0.0.0"
    assert _host_argument(["--host=::1"]) == "::1"
    assert _host_argument(["-p", "3001"]) is None
