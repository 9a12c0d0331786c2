"""``ct-pipelines privacy ...``: suppress a count table from the command line, outside any pipeline run."""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path
from typing import Any

import click
import pandas as pd

from ct_pipelines.protect.suppression import NODE_LIMIT, SuppressionInputError, suppress

WHOLE_NUMBER = re.compile(r"^(\d+|\d{1,3}(,\d{3})+)$")  # 1234 or 1,234 as spreadsheets export it


@click.group(name="privacy")
def privacy() -> None:
    """Protect tables before publishing (small-cell suppression)."""


def _read_cells(path: Path, dims: list[str], count: str) -> pd.DataFrame:
    """Read every column as text so counts can be checked line by line with useful messages."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise click.ClickException(f"{path}: cannot read the CSV ({exc})") from exc
    missing = [c for c in [*dims, count] if c not in frame.columns]
    if missing:
        raise click.ClickException(
            f"{path}: column(s) {', '.join(missing)} not in the header; "
            f"the header has: {', '.join(frame.columns)}"
        )
    for position, text in enumerate(frame[count]):
        if not WHOLE_NUMBER.match(text.strip()):
            line = position + 2  # header is line 1
            raise click.ClickException(
                f"{path}, line {line}, column '{count}': {text!r} is not a whole number of zero or more; "
                "fix the count (suppressed markers such as '*' must be replaced by the true count)"
            )
    frame[count] = frame[count].str.strip().str.replace(",", "", regex=False).astype("int64")
    return frame


@privacy.command(name="suppress")
@click.option("--dims", required=True, help="Dimension column(s), comma-separated: D1 or D1,D2")
@click.option("--count", "count", required=True, help="Column holding the counts")
@click.option("--threshold", type=click.IntRange(min=1), required=True, help="Counts 1..T are sensitive")
@click.option("--protect-zeros", is_flag=True, help="Treat zeros as sensitive too")
@click.option("--total-label", default="Total", show_default=True, help="Label of margin rows")
@click.option(
    "--method",
    type=click.Choice(["auto", "heuristic", "optimal"]),
    default="auto",
    show_default=True,
    help="auto: the better of the exact minimum (HiGHS MILP, within --node-limit) and the heuristic",
)
@click.option(
    "--node-limit",
    type=click.IntRange(min=1),
    default=NODE_LIMIT,
    show_default=True,
    help="MILP nodes per table",
)
@click.option(
    "--time-limit",
    type=click.FloatRange(min=0.01),
    default=60.0,
    show_default=True,
    help="Safety stop, seconds",
)
@click.argument("input_csv", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def suppress_command(
    dims: str,
    count: str,
    threshold: int,
    protect_zeros: bool,
    total_label: str,
    method: str,
    node_limit: int,
    time_limit: float,
    input_csv: Path,
) -> None:
    """Read interior cells from INPUT_CSV; write the protected table with margins as CSV to standard output.

    The count is left empty where suppressed and a `suppressed` column says true/false. Other columns
    pass through on interior rows.
    """
    dimensions = [d.strip() for d in dims.split(",") if d.strip()]
    cells = _read_cells(input_csv, dimensions, count)
    if "suppressed" in cells.columns:
        raise click.ClickException(f"{input_csv}: the input already has a 'suppressed' column; rename it")
    duplicated = cells.duplicated(dimensions, keep="first")
    if duplicated.any():
        position = int(duplicated.to_numpy().nonzero()[0][0])
        key = ", ".join(f"{d}={cells[d].iloc[position]!r}" for d in dimensions)
        raise click.ClickException(
            f"{input_csv}, line {position + 2}: the cell ({key}) appears more than once; "
            "add up or remove the duplicate"
        )
    try:
        result = suppress(
            cells,
            dimensions,
            count,
            threshold,
            protect_zeros,
            total_label,
            method=method,
            time_limit=time_limit,
            node_limit=node_limit,
        )
    except SuppressionInputError as exc:
        raise click.ClickException(f"{input_csv}: {exc}") from exc
    if not result.audit_passed:
        raise click.ClickException(
            f"{input_csv}: the table could not be protected; cells still disclosed: {result.failures}"
        )
    _write_protected(cells, dimensions, count, result)


def _write_protected(cells: Any, dimensions: list[str], count: str, result: Any) -> None:
    """The protected table as CSV on standard output, and what suppression cost on standard error."""
    extra = [c for c in cells.columns if c not in (*dimensions, count)]
    output = result.table.merge(cells[[*dimensions, *extra]], on=dimensions, how="left")
    output.loc[output["is_margin"], extra] = ""
    columns = list(cells.columns)
    text = output[columns].astype(object).where(output[columns].notna(), "")
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow([*columns, "suppressed"])
    for values, hidden in zip(text.itertuples(index=False, name=None), output["suppressed"], strict=True):
        writer.writerow([*values, "true" if hidden else "false"])
    loss = result.loss
    cost = (
        f"; hidden: {loss.hidden_count:,} of {loss.total_count:,} ({loss.hidden_share:.1%}), "
        f"largest hidden total {loss.largest_hidden_margin:,}"
        if loss is not None
        else ""
    )
    click.echo(
        f"{result.primary_count} cells suppressed as small, {result.complementary_count} as complements "
        f"({result.method}); audit passed ({result.lp_solves} attacker LPs){cost}",
        err=True,
    )
