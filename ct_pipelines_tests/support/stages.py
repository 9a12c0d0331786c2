"""Drive one extract through the pipeline's stage functions to a local portal, for the quality tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from ct_pipelines import pipeline
from ct_pipelines.catalog.models import Dataset
from ct_pipelines.core.results import RunOptions, StageResult
from ct_pipelines.core.settings import Settings
from ct_pipelines.core.sql import quarantine_table
from ct_pipelines.portal.local import LocalPortal
from ct_pipelines.publish.connection import PortalConnection


def make_dataset(dataset_id: str, columns: list[dict[str, Any]], **fields: Any) -> Dataset:
    """A dataset with an integer ``id`` column followed by ``columns``, keyed by it when rows are published
    (an aggregate has no row identifier)."""
    rows = fields.get("protect", {}).get("mode", "rows") == "rows"
    return Dataset.model_validate(
        {
            "id": dataset_id,
            "title": f"Quality test {dataset_id.replace('_', ' ')}",
            "description": "Rows made up inside a quality test.",
            "agency": "Department of Testing",
            "category": "Government",
            "update_frequency": "Weekly",
            "contact": "data.officer@ct.gov",
            "source": {"path": f"{dataset_id}.csv"},
            "row_identifier": "id" if rows else None,
            "columns": [{"source": "id", "type": "integer", "required": True, "unique": True}, *columns],
            **fields,
        }
    )


@dataclass
class StageRun:
    con: duckdb.DuckDBPyConnection
    results: dict[str, StageResult] = field(default_factory=dict)
    four_by_four: str | None = None

    @property
    def blocked(self) -> bool:
        return any(o.blocks for o in self.results["validate"].outcomes)

    def outcome(self, name: str) -> Any:
        return next(o for o in self.results["validate"].outcomes if o.name == name)

    def valid(self, column: str) -> list[object]:
        return [
            r[0]
            for r in self.con.execute(
                f'SELECT "{column}" FROM "validate__{self.id}" ORDER BY _row'
            ).fetchall()
        ]

    def quarantine(self) -> list[tuple]:
        return self.con.execute(
            f'SELECT source_line, rule, column_name, value, reason FROM "{quarantine_table(self.id)}" '
            "ORDER BY source_line, rule"
        ).fetchall()

    @property
    def id(self) -> str:
        return str(self.results["validate"].table).removeprefix("validate__")


def settings_for(tmp_path: Path, portal: LocalPortal) -> Settings:
    (tmp_path / "landing").mkdir(exist_ok=True)
    return Settings(
        home=tmp_path,
        catalog_dir=tmp_path,
        landing_dir=tmp_path / "landing",
        warehouse_dir=tmp_path / "warehouse",
        reports_dir=tmp_path / "reports",
        portal_data_dir=portal.data_dir,
        sql_dir=tmp_path / "sql",
    )


def run_stages(
    tmp_path: Path,
    portal: LocalPortal,
    dataset: Dataset,
    csv_text: str,
    *,
    publish: bool = True,
    options: RunOptions = RunOptions(),
) -> StageRun:
    """Ingest, validate, and (unless a check blocks) standardize, protect and publish to ``portal``."""
    settings = settings_for(tmp_path, portal)
    (settings.landing_dir / dataset.ingest.path).write_text(csv_text, encoding="utf-8")
    settings.warehouse_dir.mkdir(exist_ok=True)
    run = StageRun(duckdb.connect(str(settings.warehouse_for(dataset.id))))
    connection = PortalConnection(
        portal.domain, portal.username, portal.password, app_token="local-portal", scheme="http", timeout=30
    )
    for stage, result in pipeline.run_stages(
        run.con,
        dataset,
        settings,
        run_id="run-1",
        options=options,
        portal=connection,
        until="publish" if publish else "validate",
    ):
        run.results[stage.name] = result
    if "publish" in run.results:
        run.four_by_four = str(run.results["publish"].facts["four_by_four"])
    return run


def portal_rows(portal: LocalPortal, four_by_four: str) -> list[dict[str, Any]]:
    return sorted(portal.socrata_client().get(four_by_four, limit=1000), key=lambda r: int(r["id"]))


def portal_types(portal: LocalPortal, four_by_four: str) -> dict[str, str]:
    columns = portal.socrata_client().get_metadata(four_by_four)["columns"]
    return {c["fieldName"]: c["dataTypeName"] for c in columns if not c["fieldName"].startswith(":")}
