"""The protect stage: the table the portal receives, without PII, aggregated and suppressed as declared."""

from __future__ import annotations

from typing import Any

import duckdb

from ct_pipelines.catalog.blocks.protect import ProtectMode
from ct_pipelines.catalog.models import Dataset
from ct_pipelines.catalog.naming import field_name
from ct_pipelines.core.results import Progress, RunOptions, StageError, StageResult, quiet
from ct_pipelines.core.settings import Settings
from ct_pipelines.core.sql import STALE_LABELS, quote_ident, stage_table
from ct_pipelines.core.warehouse import relation_exists

INTERNAL_COLUMNS = {"_row", "_line"}  # source positions, for quarantine and lineage; never published


def _undeclared_columns(con: duckdb.DuckDBPyConnection, dataset: Dataset) -> list[str]:
    """Extract columns the dataset file does not declare, when it declares its columns and publishes
    rows: a later delivery's new "Contact Person" column reached a new portal dataset with people's names,
    and on an existing one blocked every run as schema drift. Such a column waits until it is declared."""
    raw = stage_table("ingest", dataset.id)
    if (
        dataset.protect.mode != ProtectMode.ROWS
        or not dataset.columns
        or not relation_exists(con, "main", raw)
    ):
        return []
    shaped = dataset.ingest.unpivot
    declared = {name for c in dataset.columns for name in (c.field_name, c.source, field_name(c.source))}
    declared |= {shaped.name, shaped.value} if shaped else set()
    columns = [r[0] for r in con.execute(f"DESCRIBE {quote_ident(raw)}").fetchall()]
    return [c for c in columns if c not in declared and not c.startswith("_")]


def run(
    con: duckdb.DuckDBPyConnection,
    dataset: Dataset,
    settings: Settings,
    *,
    run_id: str,
    options: RunOptions = RunOptions(),
    progress: Progress = quiet,
    portal: Any = None,
) -> StageResult:
    """Build ``protect__<id>`` from a view of the standardized rows that never shows PII or positions."""
    from ct_pipelines.protect.pii import PiiLeakError
    from ct_pipelines.protect.published import PublishConfigError, build_published_table, privacy_outcomes

    source, target = stage_table("standardize", dataset.id), stage_table("protect", dataset.id)
    public = f"{source}__without_internal"
    undeclared = _undeclared_columns(con, dataset)
    kept = [
        r[0]
        for r in con.execute(f"DESCRIBE {quote_ident(source)}").fetchall()
        if r[0] not in INTERNAL_COLUMNS and r[0] not in undeclared
    ]
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {quote_ident(public)} AS SELECT "
        + ", ".join(quote_ident(c) for c in kept)
        + f" FROM {quote_ident(source)}"
    )
    rows_in = con.execute(f"SELECT count(*) FROM {quote_ident(public)}").fetchone()[0]
    try:
        result = build_published_table(
            con,
            dataset,
            public,
            target,
            dataset.sql_folder(settings.sql_dir),
            tables={"standardized": public},
        )
    except (PublishConfigError, PiiLeakError, duckdb.InvalidInputException) as exc:
        if STALE_LABELS in str(exc):  # the standardized view refused a label (see core.sql.STALE_LABELS)
            raise StageError(
                f"dataset '{dataset.id}' has a race, ethnicity or language label that its last standardize "
                "run did not see (validate ran again after it); run standardize before protect, or run every stage"
            ) from exc
        if isinstance(exc, duckdb.InvalidInputException):
            raise
        raise StageError(str(exc)) from exc
    finally:
        con.execute(f"DROP VIEW IF EXISTS {quote_ident(public)}")
    outcomes = privacy_outcomes(con, dataset, result)
    # validate drops the personal columns standardize does not read; protect leaves out the rest
    left_out = sorted({*dataset.pii_fields, *result.excluded_pii_columns})
    facts: dict[str, Any] = {
        "mode": str(result.mode),
        "columns": result.columns,
        "pii_columns_left_out": left_out,
    }
    if result.suppression is not None:
        facts["cells_suppressed_primary"] = result.suppression.primary_count
        facts["cells_suppressed_complementary"] = result.suppression.complementary_count
    # A column of its own whose name extends a personal one's (OCME's date_type, beside date) is left
    # out too, since ssn_last4 must be; a helper could not tell why, so the way to keep it is said.
    declared = {c.field_name for c in dataset.columns if c.field_name and not c.pii}
    by_name = sorted(c for c in result.excluded_pii_columns if c in declared)
    facts["left_out_as_derived"] = by_name
    facts["left_out_undeclared"] = undeclared
    derived = (
        f"; left out because its name extends a personal column's: {', '.join(by_name)} (if it holds no "
        "personal data, give it another field_name)"
        if by_name
        else ""
    )
    if undeclared:
        derived += (
            f"; not in the dataset file, so not published: {', '.join(undeclared)} (declare each under columns "
            "to publish it, with pii: true if it identifies a person)"
        )
    personal = [c for c in left_out if c not in by_name]
    progress(
        f"{dataset.id}: published table has {result.row_count:,} rows ({result.mode})"
        + (f"; personal columns not published: {', '.join(personal)}" if personal else "")
        + derived
    )
    return StageResult(
        table=target, rows_in=rows_in, rows_out=result.row_count, outcomes=outcomes, facts=facts
    )
