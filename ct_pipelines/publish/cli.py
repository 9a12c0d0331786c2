"""``ct-pipelines publish ...``: publish a DuckDB table by hand, preview it, read the publish log.

Credentials come only from the environment (CT_PORTAL_USERNAME, CT_PORTAL_PASSWORD,
CT_PORTAL_APP_TOKEN) so they never show up in shell history or the process list.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import click
import duckdb
import yaml
from pydantic import ValidationError

from ct_pipelines.catalog.models import Dataset
from ct_pipelines.core import warehouse
from ct_pipelines.core.settings import load_settings
from ct_pipelines.publish.connection import PortalConnection, PublishError
from ct_pipelines.publish.publisher import publish_table
from ct_pipelines.publish.state import publish_log


def _load_dataset(path: Path) -> Dataset:
    try:
        return Dataset.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError) as exc:
        raise click.ClickException(f"{path}: cannot read the dataset file ({exc})") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise click.ClickException(f"{path}: {problems}") from None


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


@publish_group.command("run")
@click.argument("dataset_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--table", required=True, help="DuckDB table holding the rows to publish")
@click.option(
    "--warehouse",
    type=click.Path(dir_okay=False, path_type=Path),
    help="DuckDB file (default: the dataset's file in CT_PIPELINES_WAREHOUSE)",
)
@click.option("--domain", envvar="CT_PORTAL_DOMAIN", required=True, help="Portal host, e.g. data.ct.gov")
@click.option("--scheme", type=click.Choice(["https", "http"]), default="https", show_default=True)
@click.option("--dry-run", is_flag=True, help="Show what would be sent; change nothing")
@click.option("--full-replace", is_flag=True, help="Resend every row instead of only the changes")
@click.option("--allow-shrink", is_flag=True, help="Publish even if the table is empty or shrank a lot")
@click.option(
    "--allow-deletes", is_flag=True, help="Publish even if it deletes more than publish.max_delete_share"
)
def run_command(
    dataset_file: Path,
    table: str,
    warehouse: Path | None,
    domain: str,
    scheme: str,
    dry_run: bool,
    full_replace: bool,
    allow_shrink: bool,
    allow_deletes: bool,
) -> None:
    """Publish TABLE as the dataset described in DATASET_FILE."""
    dataset = _load_dataset(dataset_file)
    con = _warehouse(warehouse, dataset.id)
    portal = PortalConnection(
        domain,
        os.environ.get("CT_PORTAL_USERNAME"),
        os.environ.get("CT_PORTAL_PASSWORD"),
        os.environ.get("CT_PORTAL_APP_TOKEN"),
        scheme=scheme,
    )
    try:
        result = publish_table(
            con,
            dataset,
            table,
            portal,
            run_id=f"cli-{uuid.uuid4().hex[:8]}",
            dry_run=dry_run,
            force_full_replace=full_replace,
            allow_shrink=allow_shrink,
            allow_deletes=allow_deletes,
            progress=click.echo,
        )
    except PublishError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        portal.close()
        con.close()
    for outcome in result.outcomes:
        mark = "ok  " if outcome.passed else "FAIL"
        click.echo(f"[{mark}] {outcome.name}: {outcome.summary}")
    if result.refused:
        raise click.ClickException("nothing was published")
    if dry_run:
        plan = result.plan
        click.echo(
            f"dry run ({plan.get('mode')}): would create {plan.get('rows_to_create', 0):,}, update "
            f"{plan.get('rows_to_update', 0):,}, delete {plan.get('rows_to_delete', 0):,} rows in "
            f"{plan.get('chunks', 0)} chunks"
            + (" (and create the dataset)" if plan.get("would_create_dataset") else "")
        )
    else:
        click.echo(
            f"published {result.four_by_four}: created {result.rows_created:,}, updated {result.rows_updated:,}, "
            f"deleted {result.rows_deleted:,} in {result.chunks} chunks ({result.duration_s:.1f} s)"
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
