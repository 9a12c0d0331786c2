"""DuckDB's memory cap: 512 MB by default, more for a wide extract, and what the environment says when set."""

from __future__ import annotations

import duckdb
import pytest

from ct_pipelines.core.settings import WIDE_COLUMNS, load_settings


@pytest.fixture
def home(tmp_path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CT_PIPELINES_HOME", str(tmp_path))
    monkeypatch.delenv("CT_PIPELINES_DUCKDB_MEMORY", raising=False)
    return tmp_path


def _cap(config: dict[str, str]) -> str:
    with duckdb.connect(config=config) as con:
        return con.execute("SELECT current_setting('memory_limit')").fetchone()[0]


def test_the_default_cap_is_512_mb_and_a_wide_dataset_gets_768_mb(home):
    settings = load_settings()
    assert _cap(settings.duckdb_config) == _cap({"memory_limit": "512MB"})
    assert settings.dataset_memory(WIDE_COLUMNS - 1) is None  # the connection's cap stands
    assert settings.dataset_memory(3_000) == "768MB"


def test_a_cap_set_in_the_environment_holds_for_every_dataset(home, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CT_PIPELINES_DUCKDB_MEMORY", "2GB")
    settings = load_settings()
    assert _cap(settings.duckdb_config) == _cap({"memory_limit": "2GB"})
    assert settings.dataset_memory(3_000) is None
