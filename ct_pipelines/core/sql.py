"""SQL identifiers and the warehouse's table names, written once for every stage."""

from __future__ import annotations


def quote_ident(name: str) -> str:
    """A DuckDB identifier in double quotes, embedded quotes doubled, so any column or table name is safe."""
    return '"' + str(name).replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """A DuckDB string literal, embedded quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def quote_qualified(name: str) -> str:
    """A dotted name (``schema.table``) with each part quoted."""
    return ".".join(quote_ident(part) for part in name.split("."))


def stage_table(stage: str, dataset_id: str) -> str:
    """The table a stage writes for a dataset: ``<stage>__<dataset id>`` (e.g. ``validate__dmv_ev``)."""
    return f"{stage}__{dataset_id}"


#: How a read of the standardized rows fails when the valid rows hold a label standardize has not seen
#: (validate re-run alone): standardize writes it into its view, protect recognizes it.
STALE_LABELS = "run standardize again before reading"


def quarantine_table(dataset_id: str) -> str:
    """Rows the validate stage set aside, each with its reason: ``quarantine__<dataset id>``."""
    return f"quarantine__{dataset_id}"


def release_table(protected_table: str) -> str:
    """Protect's suppressed cells (dims as text, true value, hidden, count column), written each run."""
    return f"{protected_table}__release"


def released_table(protected_table: str) -> str:
    """The cells the portal got last (``release_table`` copied when a publish succeeds): the next run keeps
    what that release hid hidden and what it showed shown, cell by unchanged cell."""
    return f"{protected_table}__released"


def short_rows_table(dataset_id: str) -> str:
    """Ingested rows that had fewer fields than the header (``_row``, ``fields``), which validation sets
    aside: ``ingest_short__<dataset id>``, present only when some row was short."""
    return f"ingest_short__{dataset_id}"


def ordered_rows_view(dataset_id: str) -> str:
    """The ingested rows with ``_row`` but without ``_line``, in ``_row`` order: ``ingest_ordered__<id>``.

    What a full read that needs no source lines reads (validation's one scan). ``ingest__<id>`` also gives
    each row's source line, which for a file with quoted newlines is a join paid on every row (at 5M rows,
    two thirds of the scan's time); the lines of the few rows that need them are looked up afterwards."""
    return f"ingest_ordered__{dataset_id}"


def source_lines_macro(dataset_id: str) -> str:
    """A table macro giving the source line of chosen rows: ``ingest_lines__<id>('<table of _row>')``.

    Ingest writes it beside its views; it numbers only the rows asked for, where ``ingest__<id>`` would
    number every row of the extract first (validation asks for the lines of the rows it sets aside)."""
    return f"ingest_lines__{dataset_id}"
