"""``ct-pipelines validate ...``: list a dataset's checks, validate an ingested table, read the quarantine."""

from __future__ import annotations

from pathlib import Path

import click
import duckdb

from ct_pipelines.catalog.loader import parse_dataset_file
from ct_pipelines.catalog.models import Dataset
from ct_pipelines.core.settings import load_settings
from ct_pipelines.core.sql import quote_ident
from ct_pipelines.core.warehouse import WarehouseBusy, connect
from ct_pipelines.validate.rules import DatasetRuleError
from ct_pipelines.validate.validate import quality_check_specs


def _load(path: Path) -> Dataset:
    dataset, errors = parse_dataset_file(path)
    if dataset is None:
        lines = [f"{e.path}:{e.line or '?'}: {e.field or 'file'}: {e.message}" for e in errors]
        raise click.ClickException("the dataset file has problems:\n" + "\n".join(lines))
    return dataset


def _warehouse_option(function):  # type: ignore[no-untyped-def]
    return click.option(
        "--warehouse",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="DuckDB file; defaults to the dataset's file in CT_PIPELINES_WAREHOUSE (./data/warehouse/<id>.duckdb)",
    )(function)


@click.group(name="quality")
def quality() -> None:
    """Data-quality gates: column rules (pandera), Great Expectations suites and the quarantine."""


@quality.command(name="checks")
@click.argument("dataset_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def list_checks(dataset_file: Path) -> None:
    """List the checks DATASET_FILE declares and whether each blocks publishing."""
    dataset = _load(dataset_file)
    try:
        specs = quality_check_specs(dataset)
    except DatasetRuleError as exc:
        raise click.ClickException(f"{dataset_file}: {exc}") from None
    for spec in specs:
        click.echo(f"{spec.name:<40} {'blocks' if spec.blocking else 'warns '}  {spec.description}")


@quality.command(
    name="validate", hidden=True, context_settings={"ignore_unknown_options": True, "allow_extra_args": True}
)
def validate_moved() -> None:
    """Replaced by ``ct-pipelines run --dataset ID --until validate`` (one way to run a stage)."""
    raise click.UsageError(
        "this command was replaced: run `ct-pipelines run --dataset DATASET_ID --until validate`, which reads the "
        "extract and validates it exactly as a scheduled run does"
    )


@quality.command(name="quarantine")
@click.argument("dataset_id")
@_warehouse_option
@click.option("--run-id", default=None, help="Only this run (default: the latest run)")
@click.option("--limit", default=20, show_default=True, help="Rows to show")
def show_quarantine(dataset_id: str, warehouse: Path | None, run_id: str | None, limit: int) -> None:
    """Show why rows of DATASET_ID were set aside (values of pii columns are masked)."""
    settings = load_settings()
    try:
        path = warehouse or settings.warehouse_for(dataset_id)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    table = quote_ident(f"quarantine__{dataset_id}")
    if not path.is_file():
        raise click.ClickException(f"no quarantine recorded for '{dataset_id}': {path} does not exist")
    try:
        con = connect(path, settings, read_only=True)
    except (duckdb.Error, WarehouseBusy) as exc:
        raise click.ClickException(f"cannot open the warehouse {path}: {exc}") from None
    try:
        run = (
            run_id
            or con.execute(f"SELECT run_id FROM {table} ORDER BY quarantined_at DESC LIMIT 1").fetchone()[0]
        )  # type: ignore[index]
        summary = con.execute(
            f"SELECT reason, count(*) FROM {table} WHERE run_id = ? GROUP BY 1 ORDER BY 2 DESC", [run]
        ).fetchall()
        rows = con.execute(
            f"SELECT source_line, _row, column_name, rule, value FROM {table} WHERE run_id = ? ORDER BY _row LIMIT ?",
            [run, limit],
        ).fetchall()
        identifiers = _row_identifiers(con, settings, dataset_id, sorted({r[1] for r in rows}))
    except (duckdb.CatalogException, TypeError):
        raise click.ClickException(f"no quarantine recorded for '{dataset_id}' in {path}") from None
    finally:
        con.close()
    click.echo(f"Run {run}:")
    for reason, count in summary:
        click.echo(f"  {count:>8,} rows {reason}")
    for line, row, column, rule, value in rows:
        where = (
            f"line {line} (row {row})" if line is not None else f"row {row}"
        )  # JSON and Parquet have no lines
        named = f", {identifiers[0]} {identifiers[1][row]!r}" if identifiers and row in identifiers[1] else ""
        click.echo(f"  {where}{named}: {column} {rule}: {value!r}")


def _row_identifiers(
    con: duckdb.DuckDBPyConnection, settings, dataset_id: str, rows: list[int]
) -> tuple[str, dict[int, str]] | None:
    """The published row_identifier of each listed row, so a person can find the record (a helper saw
    "line 5108 (row 5105)" and had to look up which case it was); none when the identifier is personal."""
    from ct_pipelines.catalog.loader import load_catalog

    dataset = next((d for d in load_catalog(settings.catalog_dir).datasets if d.id == dataset_id), None)
    key = dataset.row_identifier if dataset else None
    if not key or not rows or key in dataset.pii_fields:
        return None
    ingested = f"ingest__{dataset_id}"
    try:
        found = con.execute(
            f"SELECT _row, CAST({quote_ident(key)} AS VARCHAR) FROM {quote_ident(ingested)} WHERE list_contains(?, _row)",
            [rows],
        ).fetchall()
    except (
        duckdb.Error
    ):  # an ingest table of another shape (renamed column, older run): lines still say where
        return None
    return key, {int(r): v for r, v in found if v is not None}
