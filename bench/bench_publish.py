"""Publishing cost against the local portal: sodapy's usual path vs ours, first publish and republish.

    .venv/bin/python -m bench.bench_publish --rows 1000000 [--repeat 3]  (3 is the default)

Stages (each client runs in a spawned child process so its peak RSS is its own):
- sodapy baseline: ``to_dict('records')`` + ``Socrata.upsert`` in 10,000-row chunks into a new dataset;
- first publish: ``publish_table`` into a new dataset (DuckDB writes the JSON, chunked upserts,
  ``--in-flight`` of them at once);
- republish after 1% of rows changed (updates, inserts, deletes): only the changes are sent.
Seconds are the stage's own work (after imports; the sodapy stage includes reading the table into
pandas and ``to_dict``). Prints a markdown table; ratios are against the sodapy baseline (first two rows) and against our first
publish (the republish row).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import run_in_child
from ct_pipelines.catalog.blocks.publish import PublishConfig

USERNAME, PASSWORD = "bench", "bench-password"
COLUMNS = [
    {"fieldName": "id", "name": "id", "dataTypeName": "number"},
    {"fieldName": "town", "name": "town", "dataTypeName": "text"},
    {"fieldName": "amount", "name": "amount", "dataTypeName": "number"},
    {"fieldName": "event_date", "name": "event_date", "dataTypeName": "calendar_date"},
    {"fieldName": "flag", "name": "flag", "dataTypeName": "checkbox"},
    {"fieldName": "note", "name": "note", "dataTypeName": "text"},
]


def make_table(warehouse: str, rows: int) -> None:
    import duckdb

    con = duckdb.connect(warehouse)
    con.execute(
        f"""CREATE OR REPLACE TABLE bench_rows AS SELECT i::BIGINT AS id, 'Town ' || (i % 169) AS town,
            round(random() * 1000, 2)::DOUBLE AS amount, DATE '2015-01-01' + (i % 3000)::INTEGER AS event_date,
            i % 3 = 0 AS flag, 'note number ' || i AS note FROM range({rows}) r(i)"""
    )
    con.close()


def change_one_percent(warehouse: str, rows: int) -> int:
    """0.5% updated, 0.25% deleted, 0.25% new rows: 1% of the table changes."""
    import duckdb

    con = duckdb.connect(warehouse)
    step = 200  # every 200th row updated = 0.5%
    con.execute(f"UPDATE bench_rows SET amount = amount + 1 WHERE id % {step} = 1")
    con.execute(f"DELETE FROM bench_rows WHERE id % {step * 2} = 3")
    con.execute(
        f"""INSERT INTO bench_rows SELECT ({rows} + i)::BIGINT, 'Town new', 1.0, DATE '2024-01-01', false, 'new'
            FROM range({rows // 400}) r(i)"""
    )
    changed = con.execute(f"SELECT count(*) FROM bench_rows WHERE id % {step} = 1").fetchone()[0]
    con.close()
    return changed + rows // 400 + rows // 400


def run_client(target: Any, *args: Any) -> tuple[float, dict[str, Any]]:
    """(peak RSS MB, target's figures) of a client run in a spawned process, with its own CPU seconds."""
    run = run_in_child(target, *args)
    run.value["cpu"] = run.cpu_seconds  # the client's own CPU, without the portal's
    return run.peak_rss_mb, run.value


def sodapy_baseline(domain: str, warehouse: str) -> dict[str, int]:
    import duckdb
    from requests.adapters import HTTPAdapter
    from sodapy import Socrata

    started = time.perf_counter()
    con = duckdb.connect(warehouse, read_only=True)
    frame = con.execute("SELECT * FROM bench_rows ORDER BY id").fetchdf()
    con.close()
    frame["event_date"] = frame["event_date"].astype(str) + "T00:00:00.000"  # what users do before json.dumps
    client = Socrata(
        domain, None, username=USERNAME, password=PASSWORD, timeout=300,
        session_adapter={"prefix": "http://", "adapter": HTTPAdapter()},
    )  # fmt: skip
    four_by_four = client.create("sodapy baseline", columns=COLUMNS, row_identifier="id")["id"]
    client.publish(four_by_four)
    created = 0
    for start in range(0, len(frame), 10_000):
        answer = client.upsert(four_by_four, frame.iloc[start : start + 10_000].to_dict("records"))
        created += answer["Rows Created"]
    client.close()
    return {"rows_sent": len(frame), "created": created, "seconds": time.perf_counter() - started}


def ours(domain: str, warehouse: str, run_id: str, in_flight: int) -> dict[str, int]:
    import duckdb

    from ct_pipelines.catalog.models import Dataset
    from ct_pipelines.publish.connection import PortalConnection
    from ct_pipelines.publish.publisher import publish_table

    dataset = Dataset.model_validate(
        {
            "id": "bench_rows",
            "title": "Benchmark rows",
            "description": "Synthetic rows for the publishing benchmark.",
            "agency": "Office of Policy and Management",
            "category": "Government",
            "update_frequency": "Daily",
            "contact": "bench@ct.gov",
            "ingest": {"path": "bench.csv"},
            "row_identifier": "id",
            "publish": {"max_in_flight": in_flight},
        }
    )
    con = duckdb.connect(warehouse)
    started = time.perf_counter()
    with PortalConnection(domain, USERNAME, PASSWORD, scheme="http") as portal:
        result = publish_table(con, dataset, "bench_rows", portal, run_id=run_id, sync_metadata_fields=False)
    con.close()
    return {
        "rows_sent": result.rows_sent,
        "created": result.rows_created,
        "chunks": result.chunks,
        "seconds": time.perf_counter() - started,
    }


def run_once(rows: int, in_flight: int) -> dict[str, Any]:
    """One baseline, first publish and republish against one fresh local portal."""
    from ct_pipelines.portal.local import LocalPortal

    with tempfile.TemporaryDirectory() as tmp:
        warehouse = str(Path(tmp) / "bench.duckdb")
        make_table(warehouse, rows)
        with LocalPortal(Path(tmp) / "portal", username=USERNAME, password=PASSWORD) as portal:
            base_mb, base = run_client(sodapy_baseline, portal.domain, warehouse)
            first_mb, first = run_client(ours, portal.domain, warehouse, "bench-1", in_flight)
            changed = change_one_percent(warehouse, rows)
            again_mb, again = run_client(ours, portal.domain, warehouse, "bench-2", in_flight)
    return {
        "changed": changed,
        "base": {**base, "mb": base_mb},
        "first": {**first, "mb": first_mb},
        "again": {**again, "mb": again_mb},
    }


def print_run(rows: int, run: dict[str, Any], label: str) -> None:
    base, first, again = run["base"], run["first"], run["again"]
    base_s, first_s, again_s = base["seconds"], first["seconds"], again["seconds"]
    print(
        f"| {label}sodapy to_dict + upsert (10k chunks) | {base_s:.2f} | {base['mb']:.0f} | {base['cpu']:.2f} | "
        f"{base['rows_sent']:,} | 1.00 |"
    )
    print(
        f"| {label}publish_table first publish | {first_s:.2f} | {first['mb']:.0f} | {first['cpu']:.2f} | "
        f"{first['rows_sent']:,} | {base_s / first_s:.2f}x faster wall, "
        f"{base['cpu'] / first['cpu']:.2f}x less client CPU than sodapy |"
    )
    print(
        f"| {label}publish_table republish (1% changed) | {again_s:.2f} | {again['mb']:.0f} | {again['cpu']:.2f} | "
        f"{again['rows_sent']:,} ({again['rows_sent'] / rows:.2%}) | {again_s / first_s:.1%} of first publish |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs (fresh portal each), summarized by their median: single runs on a shared machine vary a lot",
    )
    parser.add_argument(
        "--in-flight",
        type=int,
        default=PublishConfig().max_in_flight,
        help="upsert chunks publish_table keeps in flight (portal.max_in_flight)",
    )
    args = parser.parse_args()

    runs = [run_once(args.rows, args.in_flight) for _ in range(args.repeat)]
    changed = runs[0]["changed"]
    print(
        f"\n{args.rows:,} rows; republish after {changed:,} rows changed ({changed / args.rows:.2%}); "
        f"publish_table with {args.in_flight} chunk(s) in flight\n"
    )
    print("| stage | wall seconds | peak RSS MB | client CPU s | rows sent | ratio |")
    print("|---|---:|---:|---:|---:|---|")
    for number, run in enumerate(runs, start=1):
        print_run(args.rows, run, f"run {number}: " if len(runs) > 1 else "")
    if len(runs) > 1:
        ratios = sorted(r["base"]["seconds"] / r["first"]["seconds"] for r in runs)
        shares = sorted(r["again"]["seconds"] / r["first"]["seconds"] for r in runs)
        print(
            f"\nmedian of {len(runs)} runs: first publish {statistics.median(ratios):.2f}x faster than sodapy "
            f"(range {ratios[0]:.2f}-{ratios[-1]:.2f}); republish {statistics.median(shares):.1%} of first publish"
        )


if __name__ == "__main__":
    main()
