"""The old single warehouse file is split into per-dataset files on first use, ledgers kept: a rerun
finds each dataset's portal 4x4 and snapshot, sends nothing new and creates no second dataset."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from ct_pipelines.cli import main
from ct_pipelines.core.legacy_warehouse import legacy_file, split_legacy_warehouse
from ct_pipelines.core.sql import quote_ident

DATASET = """\
id: {id}
title: Visits by Town {id}
description: Visits counted per town, for the warehouse split test.
agency: Department of Testing
category: Government
update_frequency: Weekly
contact: data.officer@ct.gov
ingest:
  path: {id}.csv
row_identifier: town
columns:
  - source: Town
    required: true
    unique: true
  - source: Visits
    type: integer
"""
IDS = ("visits_north", "visits_south")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CT_PIPELINES_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CT_PIPELINES_LANDING", str(tmp_path / "landing"))
    monkeypatch.setenv("CT_PIPELINES_CATALOG", str(tmp_path / "catalog"))
    monkeypatch.delenv("CT_PIPELINES_WAREHOUSE", raising=False)
    monkeypatch.delenv("CT_PORTAL_DOMAIN", raising=False)
    (tmp_path / "landing").mkdir()
    (tmp_path / "catalog").mkdir()
    for n, dataset_id in enumerate(IDS):
        (tmp_path / "catalog" / f"{dataset_id}.yaml").write_text(
            DATASET.format(id=dataset_id), encoding="utf-8"
        )
        towns = ["Hartford", "Bristol", "Salem", "Lyme"][: 3 + n]
        rows = ["Town,Visits", *(f"{town},{i}" for i, town in enumerate(towns, 1))]
        (tmp_path / "landing" / f"{dataset_id}.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return tmp_path / "home"


def _merge_into_one_file(folder: Path, target: Path) -> dict[str, list[tuple]]:
    """The old layout: every dataset's tables in one file (row-wise union of the shared ones)."""
    contents: dict[str, list[tuple]] = {}
    with duckdb.connect(str(target)) as con:
        for n, part in enumerate(sorted(folder.glob("*.duckdb"))):
            con.execute(f"ATTACH '{part}' AS p{n} (READ_ONLY)")
            tables = con.execute(
                "SELECT schema_name, table_name, sql FROM duckdb_tables() WHERE database_name = ?", [f"p{n}"]
            ).fetchall()
            for schema, name, ddl in tables:
                qualified = f"{quote_ident(schema)}.{quote_ident(name)}"
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
                con.execute(f"SET schema = {quote_ident(schema)}")
                exists = con.execute(
                    "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
                    "AND schema_name = ? AND table_name = ?",
                    [schema, name],
                ).fetchone()[0]
                if not exists:
                    con.execute(ddl)
                con.execute("SET schema = 'main'")
                con.execute(f"INSERT INTO {qualified} SELECT * FROM p{n}.{qualified}")
                contents.setdefault(f"{part.stem}:{schema}.{name}", []).extend(
                    sorted(map(str, con.execute(f"SELECT * FROM p{n}.{qualified}").fetchall()))
                )
            for (ddl,) in con.execute(
                "SELECT sql FROM duckdb_views() WHERE database_name = ? AND NOT internal",
                [f"p{n}"],
            ).fetchall():
                con.execute(ddl)
            con.execute(f"DETACH p{n}")
    return contents


def _contents(folder: Path) -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = {}
    for part in sorted(folder.glob("*.duckdb")):
        with duckdb.connect(str(part), read_only=True) as con:
            for schema, name in con.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall():
                rows = con.execute(f"SELECT * FROM {quote_ident(schema)}.{quote_ident(name)}").fetchall()
                out[f"{part.stem}:{schema}.{name}"] = sorted(map(str, rows))
    return out


def test_split_gives_each_dataset_exactly_its_own_tables_and_rows(home: Path) -> None:
    result = CliRunner().invoke(main, ["run"])
    assert result.exit_code == 0, result.output
    folder = home / "warehouse"
    before = _contents(folder)
    merged = _merge_into_one_file(folder, legacy_file(folder))
    assert merged == before  # the merge itself lost nothing
    shutil.rmtree(folder)

    split = split_legacy_warehouse(folder)

    assert split is not None and set(split.rows_per_file) == {f"{i}.duckdb" for i in IDS}
    assert _contents(folder) == before
    with duckdb.connect(str(folder / "visits_north.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM ingest__visits_north").fetchone()[0] == 3  # the view too
        key = con.execute(
            "SELECT constraint_type FROM duckdb_constraints() WHERE table_name = 'publish_runs'"
        )
        assert ("PRIMARY KEY",) in key.fetchall()
    assert split_legacy_warehouse(folder) is None  # once only


def test_a_run_after_the_split_republishes_nothing_and_creates_no_second_dataset(home: Path) -> None:
    first = CliRunner().invoke(main, ["run"])
    assert first.exit_code == 0, first.output
    folder = home / "warehouse"
    _merge_into_one_file(folder, legacy_file(folder))
    shutil.rmtree(folder)

    again = CliRunner().invoke(main, ["run"])

    assert again.exit_code == 0, again.output
    assert "split the old single warehouse" in again.output
    with duckdb.connect(str(home / "portal" / "portal.duckdb"), read_only=True) as portal:
        names = sorted(r[0] for r in portal.execute("SELECT doc->>'name' FROM views").fetchall())
    assert names == [f"Visits by Town {i}" for i in IDS]
    for dataset_id, rows in zip(IDS, (3, 4), strict=True):
        with duckdb.connect(str(folder / f"{dataset_id}.duckdb"), read_only=True) as con:
            runs = con.execute(
                "SELECT rows_out FROM meta.stage_results WHERE stage = 'publish' ORDER BY recorded_at"
            ).fetchall()
            sent = con.execute("SELECT coalesce(sum(row_count), 0) FROM publish_chunks").fetchone()[0]
        assert runs[0][0] == rows and len(runs) == 2
        assert sent == rows  # the second publish found its snapshot: nothing resent
