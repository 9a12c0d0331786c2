"""``ct-pipelines publish ...``: read the publish log. Publishing itself is ``ct-pipelines run``."""

from __future__ import annotations

from pathlib import Path

import click
import duckdb

from ct_pipelines.core import warehouse
from ct_pipelines.core.settings import load_settings
from ct_pipelines.publish.state import publish_log


def _warehouse(path: Path | None, dataset_id: str) -> duckdb.DuckDBPyConnection:
    """``--warehouse`` as given, else the dataset's own file in the warehouse folder."""
    settings = load_settings()
    target = path or settings.warehouse_for(dataset_id)
    if not target.exists():
        raise click.ClickException(
            f"{target}: no DuckDB warehouse file here; run the pipeline first or pass --warehouse"
        )
    try:
        return warehouse.connect(target, settings)
    except warehouse.WarehouseBusy as exc:
        raise click.ClickException(str(exc)) from None


def _logs(path: Path | None, dataset_id: str | None, limit: int) -> list[dict]:
    """Publish log entries of one file, or of every dataset's file (each opened read-only, briefly)."""
    settings = load_settings()
    if path:
        sources = [path]
    elif dataset_id:
        sources = [settings.warehouse_for(dataset_id)]
    else:
        try:
            sources = [settings.warehouse_for(d) for d in warehouse.recorded_dataset_ids(settings)]
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    entries: list[dict] = []
    for source in sources:
        if not source.is_file():
            continue
        try:
            con = warehouse.connect(source, settings, read_only=True)
        except warehouse.WarehouseBusy as exc:
            click.echo(f"skipped: {exc}", err=True)
            continue
        try:
            entries += publish_log(con, dataset_id, limit)
        finally:
            con.close()
    return sorted(entries, key=lambda e: e["started_at"] or "", reverse=True)[:limit]


@click.group("publish")
def publish_group() -> None:
    """Send datasets to the open data portal and review past publishes."""


@publish_group.command(
    "run", hidden=True, context_settings={"ignore_unknown_options": True, "allow_extra_args": True}
)
def run_moved() -> None:
    """Replaced by ``ct-pipelines run --dataset ID`` (one way to run a stage)."""
    raise click.UsageError(
        "this command was replaced: run `ct-pipelines run --dataset DATASET_ID` (add --dry-run to preview, "
        "--until protect to stop before the portal); credentials come from CT_PORTAL_* through the portal resource"
    )


@publish_group.command("log")
@click.option("--dataset", "dataset_id", help="Only this dataset id")
@click.option(
    "--warehouse",
    type=click.Path(dir_okay=False, path_type=Path),
    help="DuckDB file (default: the dataset's file in CT_PIPELINES_WAREHOUSE)",
)
@click.option("--limit", default=20, show_default=True)
def log_command(dataset_id: str | None, warehouse: Path | None, limit: int) -> None:
    """List recent publishes, newest first."""
    entries = _logs(warehouse, dataset_id, limit)
    if not entries:
        click.echo("no publishes recorded yet")
    for e in entries:
        click.echo(
            f"{e['started_at']}  {e['dataset_id']:<24} {e['four_by_four'] or '-':<10} {e['mode'] or '-':<12} "
            f"{e['status']:<9} +{e['rows_created'] or 0:,} ~{e['rows_updated'] or 0:,} -{e['rows_deleted'] or 0:,} "
            f"{e['chunks'] or 0} chunks {e['duration_s'] or 0:.1f}s {e['message'] or ''}"
        )
