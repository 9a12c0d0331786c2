"""Step 2 of a publish: refuse what would damage the portal by accident, before any row moves.

A wrong number on the portal is worse than a refused run, so the guards refuse an empty table, one
whose row count fell by more than ``publish.max_shrink_share`` since the last publish, one that still
has PII columns or a row identifier that is missing or repeated, and an incremental publish that
would delete more than ``publish.max_delete_share`` of the portal's rows. Each refusal names the
counts, the limit, the YAML key and the flag that overrides it for one run.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass

import duckdb

from ct_pipelines.catalog.models import Dataset
from ct_pipelines.core.outcomes import CheckOutcome, Severity
from ct_pipelines.core.sql import quote_ident
from ct_pipelines.publish.serialize import TableColumn, row_json_sql
from ct_pipelines.publish.specs import GUARD_CHECK


def _percent(share: float) -> str:
    """39% or 5.4%: one decimal only where it changes the reading against a limit."""
    return f"{share:.1%}".replace(".0%", "%")


@dataclass
class GuardFacts:
    """What the guards judge: the table's rows, the rows last published, the planned deletes and
    the run's overrides."""

    row_count: int
    previous_count: int | None
    allow_shrink: bool = False
    allow_deletes: bool = False
    rows_to_delete: int = 0
    # An aggregate's source rows, now and for the table last published: its cells do not shrink when a
    # delivery does (every combination is published, 0 where no row is), so they are judged too.
    source_rows: int | None = None
    previous_source_rows: int | None = None

    @property
    def source_shrink(self) -> float | None:
        """Share of the source rows of the last published aggregate this one lacks, or None."""
        now, before = self.source_rows, self.previous_source_rows
        if now is None or not before or now >= before:
            return None
        return (before - now) / before

    @property
    def shrink(self) -> float | None:
        """Share of the last published rows the table has lost, or None when it did not shrink."""
        if not self.previous_count or self.row_count >= self.previous_count:
            return None
        return (self.previous_count - self.row_count) / self.previous_count


def table_size(
    con: duckdb.DuckDBPyConnection, table: str, columns: list[TableColumn], chunk_rows: int
) -> tuple[int, int]:
    """Rows, and JSON bytes when the row count alone does not already rule out a single request."""
    row_count = int(con.execute(f"SELECT count(*) FROM {quote_ident(table)}").fetchone()[0])
    if row_count > chunk_rows:
        return row_count, -1
    byte_count = con.execute(
        f"SELECT coalesce(sum(strlen({row_json_sql(columns)}) + 1), 0) FROM {quote_ident(table)}"
    ).fetchone()[0]
    return row_count, int(byte_count)


def table_problems(
    dataset: Dataset,
    columns: list[TableColumn],
    con: duckdb.DuckDBPyConnection,
    table: str,
    facts: GuardFacts,
) -> list[str]:
    """Why the table itself must not be published (empty, shrunk, PII, bad row identifier)."""
    config = dataset.publish
    problems: list[str] = []
    names = {c.name for c in columns}
    leaked = sorted(set(dataset.pii_fields) & names)
    if leaked:
        problems.append(f"the table still has personal columns ({', '.join(leaked)}); remove them first")
    if facts.row_count == 0 and not (config.allow_empty or facts.allow_shrink):
        problems.append(
            "the table is empty; publishing it would wipe the portal dataset "
            "(set publish.allow_empty: true in the dataset YAML, or run "
            f"{rerun_command(dataset, '--allow-shrink')} if that is intended)"
        )
    shrink = facts.shrink
    if (
        facts.row_count > 0
        and shrink is not None
        and shrink > config.max_shrink_share
        and not facts.allow_shrink
    ):
        problems.append(
            f"it has {facts.row_count:,} rows, {_percent(shrink)} fewer than the {facts.previous_count:,} last "
            f"published (limit {_percent(config.max_shrink_share)}); check the extract, or raise "
            f"publish.max_shrink_share in the dataset YAML, or run {rerun_command(dataset, '--allow-shrink')} if the "
            "drop is real"
        )
    source_shrink = facts.source_shrink
    if source_shrink is not None and source_shrink > config.max_shrink_share and not facts.allow_shrink:
        problems.append(
            f"it was built from {facts.source_rows:,} rows, {_percent(source_shrink)} fewer than the "
            f"{facts.previous_source_rows:,} rows of the table last published (limit "
            f"{_percent(config.max_shrink_share)}), so its figures would fall although it has as many cells; "
            "check that the extract is complete, or raise publish.max_shrink_share in the dataset YAML, or run "
            f"{rerun_command(dataset, '--allow-shrink')} if the drop is real"
        )
    key = dataset.row_identifier
    if key and key in names and facts.row_count:
        ident = quote_ident(key)
        nulls, dupes = con.execute(
            f"SELECT count(*) FILTER (WHERE {ident} IS NULL), count({ident}) - count(DISTINCT {ident}) "
            f"FROM {quote_ident(table)}"
        ).fetchone()
        if nulls or dupes:
            declared = next((c for c in dataset.columns if (c.field_name or c.source) == key), None)
            ruled = declared is not None and declared.required and declared.unique
            problems.append(
                f"the row identifier '{key}' must be filled and unique, but {nulls:,} rows have none "
                f"and {dupes:,} repeat another row's value"
                + (
                    ""
                    if ruled
                    else f" (add required: true and unique: true to column '{key}' in the dataset YAML, so "
                    "validation sets such rows aside and the rest are published)"
                )
            )
    return problems


def rerun_command(dataset: Dataset, flag: str) -> str:
    """The command that publishes this dataset alone past one guard. Pasted as it was once printed
    (`ct-pipelines run --allow-deletes`), it ran the bundled sample catalog instead."""
    catalog = os.environ.get("CT_PIPELINES_CATALOG")
    where = f" --catalog {shlex.quote(catalog)}" if catalog else ""
    return f"`ct-pipelines run{where} --dataset {dataset.id} {flag}`"


def delete_problems(dataset: Dataset, mode: str, facts: GuardFacts) -> list[str]:
    """Why the planned deletes must not be sent.

    An incremental publish is judged, and so is a replace of a table published whole (an aggregate),
    whose deletes are the cells it no longer has (see ``cells``). A first publish deletes nothing, and
    a full replace or resync asked for (YAML ``full_replace``, ``--full-replace``) or following a lost
    snapshot counts none: the shrink guard still judges the net loss. Deletes of rows the table lost
    under an accepted ``--allow-shrink`` are that shrink, so only deletes beyond it count then."""
    previous = facts.previous_count
    judged = mode in ("incremental", "replace")
    if not judged or not previous or not facts.rows_to_delete or facts.allow_deletes:
        return []
    explained = previous - facts.row_count if facts.allow_shrink and facts.shrink else 0
    counted = max(facts.rows_to_delete - explained, 0)
    limit = dataset.publish.max_delete_share
    if counted / previous <= limit:
        return []
    beyond = f", {counted:,} of them beyond the shrink accepted by --allow-shrink" if explained else ""
    what = (
        "check the extract (a file holding one period where the last held another replaces it whole)"
        if mode == "replace"
        else "check the extract and its row identifier"
    )
    return [
        f"it would delete {facts.rows_to_delete:,} of the {previous:,} rows on the portal "
        f"({_percent(facts.rows_to_delete / previous)}{beyond}; limit {_percent(limit)}); {what}, or raise "
        f"publish.max_delete_share in the dataset YAML, or run {rerun_command(dataset, '--allow-deletes')} if those "
        "rows really went away"
    ]


def guard_outcome(dataset: Dataset, problems: list[str], facts: GuardFacts) -> CheckOutcome:
    """The ``publish_guard`` check: passed, or refused with every problem found."""
    previous = facts.previous_count
    if not problems:
        summary = f"{facts.row_count:,} rows are ready to publish" + (
            f" ({previous:,} last time)." if previous is not None else "."
        )
    else:
        summary = (
            f"Publishing '{dataset.title}' was refused: {'; '.join(problems)}. The portal was not changed."
        )
    shrink = facts.shrink
    return CheckOutcome(
        name=GUARD_CHECK,
        passed=not problems,
        severity=Severity.ERROR,
        summary=summary,
        metadata={
            "row_count": facts.row_count,
            "previous_row_count": previous if previous is not None else -1,
            "shrink_share": round(shrink, 4) if shrink is not None else 0.0,
            "max_shrink_share": dataset.publish.max_shrink_share,
            "rows_to_delete": facts.rows_to_delete,
            "delete_share": round(facts.rows_to_delete / previous, 4) if previous else 0.0,
            "max_delete_share": dataset.publish.max_delete_share,
            "allow_shrink": facts.allow_shrink,
            "allow_deletes": facts.allow_deletes,
        },
    )
