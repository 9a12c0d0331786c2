"""DuckDB-backed storage of the local portal: view JSON for every dataset and one typed table per
dataset, with Socrata's upsert/replace/query semantics. Usable without HTTP (benchmarks seed it
directly); the HTTP layer in :mod:`server` only parses requests and shapes answers.

The store is assembled from its parts: :mod:`core` (the database, the lock, tables),
:mod:`views` (dataset definitions, metadata, catalog), :mod:`attachments` (a view's files),
:mod:`reads` (SoQL queries), :mod:`writes` with :mod:`staging` and :mod:`applying` (upserts and
replaces), and :mod:`common` (types, ids, quoting and file modes they share).
"""

from __future__ import annotations

from ct_pipelines.portal.attachments import AttachmentsMixin
from ct_pipelines.portal.common import (
    DEFAULT_LIMIT,
    JSON_TYPES,
    NOT_ROWS,
    STORAGE_TYPES,
    QueryResult,
    new_four_by_four,
    now_epoch,
    parse_csv_rows,
    table_name,
)
from ct_pipelines.portal.writes import WritesMixin

__all__ = [
    "DEFAULT_LIMIT",
    "JSON_TYPES",
    "NOT_ROWS",
    "STORAGE_TYPES",
    "PortalStore",
    "QueryResult",
    "new_four_by_four",
    "now_epoch",
    "parse_csv_rows",
    "table_name",
]


class PortalStore(AttachmentsMixin, WritesMixin):
    """Datasets of the local portal in one DuckDB file under ``data_dir`` (created owner-only);
    one lock serialises access to the shared connection and every change to a dataset. Writes
    stage their payloads on connections of their own, unlocked."""
