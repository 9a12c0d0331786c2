"""Catalog entries shared by the publish tests, so each test file states only what it varies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from ct_pipelines.catalog.models import Dataset
from ct_pipelines.portal.local import LocalPortal
from ct_pipelines.publish.connection import PortalConnection, RetryPolicy
from ct_pipelines.publish.publisher import PublishResult, publish_table
from ct_pipelines_tests.support.faults import FaultPlan


def rows_dataset(**fields: Any) -> Dataset:
    """A dataset of made-up rows keyed by ``id``; ``fields`` add to or override the catalog entry."""
    return Dataset.model_validate(
        {
            "description": "Rows made up inside a test.",
            "agency": "Department of Testing",
            "contact": "data.officer@ct.gov",
            "source": {"path": "rows.csv"},
            "row_identifier": "id",
            **fields,
        }
    )


PASSWORD = "pw-Secret-9f3k2"
APP_TOKEN = "tok-Secret-71hq0"
QUICK = RetryPolicy(attempts=6, backoff_factor=0.01, backoff_max=0.05, accepted_wait=0.01)


def portal_dataset(**portal: object) -> Dataset:
    return rows_dataset(
        id="portal_rows",
        title="Rows for portal tests",
        category="Health and Human Services",
        update_frequency="Weekly",
        columns=[
            {"source": "id", "type": "integer", "description": "Row number"},
            {"source": "town", "description": "Town of the event"},
            {"source": "amount", "type": "number"},
            {"source": "day", "type": "date"},
        ],
        portal={"chunk_rows": 10, **portal},
    )


class Harness:
    """A warehouse, a local portal and a publisher connection wired together for one test; its
    rows are made-up events keyed by ``id`` (see :func:`portal_dataset`)."""

    def __init__(self, tmp_path: Path, faults: FaultPlan) -> None:
        self.con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
        self.portal = LocalPortal(tmp_path / "portal", password=PASSWORD, interceptor=faults).start()
        self.faults = faults
        self.connection = PortalConnection(
            self.portal.domain,
            self.portal.username,
            PASSWORD,
            APP_TOKEN,
            scheme="http",
            timeout=10,
            retries=QUICK,
        )

    def make_rows(self, count: int) -> None:
        self.con.execute(
            f"""CREATE OR REPLACE TABLE out AS SELECT i::BIGINT AS id, 'Town ' || (i % 7) AS town,
                (i * 1.25)::DOUBLE AS amount, DATE '2024-01-01' + i::INTEGER AS day FROM range({count}) r(i)"""
        )

    def publish(self, dataset: Dataset | None = None, **kwargs: Any) -> PublishResult:
        return publish_table(
            self.con, dataset or portal_dataset(), "out", self.connection, run_id="test", **kwargs
        )

    def portal_rows(self, four_by_four: str) -> list[tuple]:
        client = self.portal.socrata_client()
        rows = client.get(four_by_four, order="id", limit=100_000)
        return sorted((int(r["id"]), r.get("town"), float(r["amount"]), r.get("day")) for r in rows)

    def table_rows(self) -> list[tuple]:
        return sorted(
            (i, t, a, f"{d.isoformat()}T00:00:00.000")
            for i, t, a, d in self.con.execute("SELECT id, town, amount, day FROM out").fetchall()
        )

    def writes(self) -> list[tuple[str, str, int]]:
        return [
            r for r in self.portal.request_log if r[0] in ("POST", "PUT", "DELETE") or "validateOnly" in r[1]
        ]

    def data_writes(self) -> list[tuple[str, str, int]]:
        return [
            r for r in self.portal.request_log if r[0] in ("POST", "PUT") and r[1].startswith("/resource/")
        ]

    def close(self) -> None:
        self.connection.close()
        self.portal.stop()
        self.con.close()
