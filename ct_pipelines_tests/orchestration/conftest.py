"""Fixtures for the production instance tests: one real PostgreSQL server for the session, and per test
a fresh database with a Dagster instance built from deploy/dagster.production.yaml."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from ct_pipelines_tests.support.postgres import (
    PostgresServer,
    PostgresUnavailable,
    create_database,
    postgres_server,
)

PRODUCTION_YAML = Path(__file__).resolve().parents[2] / "deploy" / "dagster.production.yaml"
_databases = itertools.count(1)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server on loopback for the whole session; skipped (with the reason) if none can start."""
    try:
        with postgres_server() as server:
            yield server
    except PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL server could not be started: {exc}")


@pytest.fixture
def pg_database(postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> PostgresServer:
    """A new, empty database on the session server, exported through the DAGSTER_PG_* variables."""
    server = create_database(postgres, f"dagster_{next(_databases)}")
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    return server


@pytest.fixture
def pg_home(tmp_path: Path, pg_database: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A DAGSTER_HOME holding the production instance file, as the README tells an operator to set up."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PRODUCTION_YAML, home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


@pytest.fixture
def pg_instance(pg_home: Path) -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.from_config(str(pg_home)) as instance:
        yield instance
