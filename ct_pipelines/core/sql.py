"""SQL identifiers and the warehouse's table names, written once for every stage."""

from __future__ import annotations


def quote_ident(name: str) -> str:
    """A DuckDB identifier in double quotes, embedded quotes doubled, so any column or table name is safe."""
    return '"' + str(name).replace('"', '""') + '"'


def quote_qualified(name: str) -> str:
    """A dotted name (``schema.table``) with each part quoted."""
    return ".".join(quote_ident(part) for part in name.split("."))


def stage_table(stage: str, dataset_id: str) -> str:
    """The table a stage writes for a dataset: ``<stage>__<dataset id>`` (e.g. ``validate__dmv_ev``)."""
    return f"{stage}__{dataset_id}"


def quarantine_table(dataset_id: str) -> str:
    """Rows the validate stage set aside, each with its reason: ``quarantine__<dataset id>``."""
    return f"quarantine__{dataset_id}"
