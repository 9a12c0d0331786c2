"""Row writes of the local portal: upsert, replace and row deletes. A write's body is validated
and staged (:mod:`staging`) outside the lock, on a connection of its own, so concurrent writes
parse their bodies in parallel; only the apply (:mod:`applying`), a short transaction on the
dataset table, holds the lock."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import duckdb

from ct_pipelines.portal import applying, common, staging
from ct_pipelines.portal.errors import dataset_missing
from ct_pipelines.portal.reads import ReadsMixin, row_missing
from ct_pipelines.portal.staging import Layout


class WritesMixin(ReadsMixin):
    """The ``/resource`` writes of :class:`~ct_pipelines.portal.store.PortalStore`."""

    def upsert(self, view_id: str, rows: list[Mapping[str, Any]]) -> dict[str, int]:
        """``POST /resource/{id}.json``: update or create by row identifier (or ``:id``), delete rows
        marked ``:deleted``; append when the dataset has no row identifier."""
        return self._write(view_id, staging.rows_json(rows), replace=False)

    def replace(self, view_id: str, rows: list[Mapping[str, Any]]) -> dict[str, int]:
        """``PUT /resource/{id}.json``: truncate, then load the payload."""
        return self._write(view_id, staging.rows_json(rows), replace=True)

    def upsert_json(self, view_id: str, body: str) -> dict[str, int]:
        """:meth:`upsert` of a request body as sent (a JSON array of row objects, or one object),
        parsed by DuckDB: no Python object per row, which made JSON parsing the portal's main cost."""
        return self._write(view_id, body, replace=False)

    def replace_json(self, view_id: str, body: str) -> dict[str, int]:
        """:meth:`replace` of a request body as sent."""
        return self._write(view_id, body, replace=True)

    def _write(self, view_id: str, body: str, replace: bool) -> dict[str, int]:
        """Stage unlocked, apply locked (see the module docstring)."""
        # a view is replaced, never edited in its layout, so reading it unlocked gives a consistent
        # snapshot; it is checked again under the lock before the apply
        layout = Layout.of(self._view(view_id, dataset_missing(view_id)))
        with self._writers_lock:
            writer = self._writers.pop() if self._writers else self._spawner.cursor()
        try:
            with (
                self._one_thread_per_write(writer),
                staging.payload_file(writer, self.data_dir, body) as payload,
            ):
                staged = staging.stage_payload(writer, payload, layout)
                with self._lock:
                    view = self._view(view_id, dataset_missing(view_id))
                    target = self._target(view)
                    if Layout.of(view) != layout:  # the columns changed while this body was staged
                        layout = Layout.of(view)
                        staging.drop_staging(writer)
                        staged = staging.stage_payload(writer, payload, layout)
                    return self._apply(writer, view, target, staged, layout, replace)
        finally:
            staging.drop_staging(writer)
            with self._writers_lock:
                self._writers.append(writer)

    def _apply(
        self,
        writer: duckdb.DuckDBPyConnection,
        view: dict[str, Any],
        target: applying.Target,
        staged: staging.Staged,
        layout: Layout,
        replace: bool,
    ) -> dict[str, int]:
        """One transaction: the rows, and the dataset's rowsUpdatedAt in the same commit (the
        caller holds the lock)."""
        writer.execute("BEGIN TRANSACTION")
        try:
            if replace:
                counts = applying.apply_replace(writer, target, staged.fields, layout.row_identifier)
            else:
                counts = applying.apply_upsert(writer, target, staged, layout.row_identifier)
            touched = self._stamp_rows_updated(writer, view)
            writer.execute("COMMIT")
        except BaseException:
            writer.execute("ROLLBACK")
            raise
        self._views[view["id"]] = touched
        self._protect()
        return counts

    @contextmanager
    def _one_thread_per_write(self, con: duckdb.DuckDBPyConnection) -> Iterator[None]:
        """One request's rows are too few for a second DuckDB thread to pay for its coordination
        (measured: each statement of a 10,000-row write takes about 30% less time), and concurrent
        writes use the other cores. ``threads`` is a database-wide setting that costs a millisecond or
        two to change, so it stays at 1 across writes until a read of a whole dataset needs every
        thread (:meth:`_all_threads`)."""
        with self._writers_lock:
            self._active_writes += 1
            if not self._one_thread:
                con.execute("SET threads = 1")
                self._one_thread = True
        try:
            yield
        finally:
            with self._writers_lock:
                self._active_writes -= 1

    @staticmethod
    def _stamp_rows_updated(con: duckdb.DuckDBPyConnection, view: dict[str, Any]) -> dict[str, Any]:
        """The view with a new ``rowsUpdatedAt``, saved through ``con`` (inside the caller's
        transaction when it has one); the caller installs it in ``_views`` once that commits."""
        touched = {**view, "rowsUpdatedAt": common.now_epoch()}
        con.execute("UPDATE views SET doc = ? WHERE id = ?", [json.dumps(touched), view["id"]])
        return touched

    def delete_row(self, view_id: str, row_key: str) -> list[dict[str, str]]:
        """``DELETE /resource/{id}/{row}.json``; 404 ``row.missing`` when nothing matches."""
        with self._lock:
            view = self._view(view_id, dataset_missing(view_id))
            table = self._ensure_table(view)
            condition, params = self._row_condition(view, row_key)
            found = self._con.execute(
                f'DELETE FROM {table} WHERE {condition} RETURNING ":id"', params
            ).fetchall()
            if not found:
                raise row_missing(view_id, row_key)
            self._views[view_id] = self._stamp_rows_updated(self._con, view)
            self._protect()
            return [{"typ": "delete", "id": found[0][0]}]
