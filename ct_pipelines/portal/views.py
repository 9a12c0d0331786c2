"""Views (dataset definitions) of the local portal: create, seed, update, publish, delete, and the
Metadata API v1 and catalog answers built from them. A created dataset's id is always generated;
only seeding (benchmarks, tests, never HTTP) may choose one, and it must be a 4x4."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa

from ct_pipelines.core.sql import quote_ident
from ct_pipelines.portal import common, discovery, metadata_api
from ct_pipelines.portal.common import FIELD_NAME, STORAGE_TYPES
from ct_pipelines.portal.core import StoreCore
from ct_pipelines.portal.errors import bad_request

_VIEW_READ_ONLY = {
    "id",
    "createdAt",
    "rowsUpdatedAt",
    "viewLastModified",
    "owner",
    "publicationStage",
    "tableId",
}


class ViewsMixin(StoreCore):
    """The ``/api/views`` side of :class:`~ct_pipelines.portal.store.PortalStore`."""

    def list_views(self) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(v) for v in self._views.values()]

    def get_view(self, view_id: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._view(view_id))

    def create_view(self, payload: Mapping[str, Any], owner: str = "ct-pipelines") -> dict[str, Any]:
        """``POST /api/views.json``: a working copy (``publicationStage: unpublished``) with a new
        4x4; an ``id`` in the payload is ignored, as Socrata does."""
        with self._lock:
            view = self._build_view(payload, owner, common.new_four_by_four(self._views))
            self._insert_views([view])
            return copy.deepcopy(view)

    def seed_views(self, records: Iterable[Mapping[str, Any]], owner: str = "ct-pipelines") -> list[str]:
        """Create many datasets in one transaction (benchmarks: a 10,000-dataset catalog without
        10,000 HTTP calls). A record is a create payload and may also carry ``id`` (a 4x4),
        ``createdAt``, ``rowsUpdatedAt``, ``viewLastModified``, ``publicationStage`` and
        ``metadata.custom_fields``."""
        with self._lock:
            pending: dict[str, dict[str, Any]] = {}
            for record in records:
                taken = {**self._views, **pending}
                view_id = record.get("id") if isinstance(record, Mapping) else None
                if view_id is None:
                    view_id = common.new_four_by_four(taken)
                elif not common.is_four_by_four(view_id):
                    raise bad_request(
                        f"Dataset id {str(view_id)[:40]!r} is not a 4x4 like 'abcd-1234'; "
                        "use four lowercase letters or digits, a dash, and four more",
                        field="id",
                    )
                elif view_id in taken:
                    raise bad_request(f"Dataset {view_id} already exists")
                view = self._build_view(record, owner, view_id)
                for key in ("createdAt", "rowsUpdatedAt", "viewLastModified", "publicationStage"):
                    if key in record:
                        view[key] = record[key]
                pending[view["id"]] = view
            self._insert_views(list(pending.values()))
            return list(pending)

    def _insert_views(self, views: list[dict[str, Any]]) -> None:
        table = pa.table({"id": [v["id"] for v in views], "doc": [json.dumps(v) for v in views]})
        self._con.register("_new_views", table)
        try:
            self._con.execute("INSERT INTO views SELECT id, doc FROM _new_views")
        finally:
            self._con.unregister("_new_views")
        for view in views:
            self._views[view["id"]] = view
        self._protect()

    def _save_view(self, view: dict[str, Any]) -> None:
        self._con.execute("UPDATE views SET doc = ? WHERE id = ?", [json.dumps(view), view["id"]])
        self._views[view["id"]] = view
        self._protect()

    def _build_view(self, payload: Mapping[str, Any], owner: str, view_id: str) -> dict[str, Any]:
        if not isinstance(payload, Mapping):
            raise bad_request("The dataset definition must be a JSON object")
        name = payload.get("name")
        if not isinstance(name, str) or not name.strip():
            raise bad_request("A dataset needs a name")
        if problem := metadata_api.category_problem(payload.get("category")):
            raise bad_request(problem, field="category")
        columns = self._build_columns(payload.get("columns") or [])
        metadata = dict(payload.get("metadata") or {})
        stamp = common.now_epoch()
        view: dict[str, Any] = {
            "id": view_id,
            "name": name,
            "assetType": "dataset",
            "attribution": payload.get("attribution"),
            "attributionLink": payload.get("attributionLink"),
            "category": payload.get("category"),
            "createdAt": stamp,
            "description": payload.get("description") or "",
            "displayType": "table",
            "downloadCount": 0,
            "hideFromCatalog": False,
            "hideFromDataJson": False,
            "newBackend": True,
            "provenance": "official",
            "publicationStage": "unpublished",
            "publicationAppendEnabled": False,
            "rowsUpdatedAt": stamp,
            "tags": list(payload.get("tags") or []),
            "viewCount": 0,
            "viewLastModified": stamp,
            "viewType": "tabular",
            "columns": columns,
            "metadata": metadata,
            "owner": {"id": "ctpl-0wnr", "displayName": owner},
            "tableAuthor": {"id": "ctpl-0wnr", "displayName": owner},
            "isPublic": True,
        }
        for key in ("license", "licenseId", "externalId", "contactEmail"):
            if key in payload:
                view[key] = payload[key]
        self._set_row_identifier(view, metadata.get("rowIdentifier"))
        return view

    def _build_columns(self, specs: Any) -> list[dict[str, Any]]:
        if not isinstance(specs, list):
            raise bad_request("columns must be a list of {fieldName, name, dataTypeName}")
        columns: list[dict[str, Any]] = []
        for position, spec in enumerate(specs, start=1):
            if not isinstance(spec, Mapping):
                raise bad_request(f"Column {position} must be an object")
            display = spec.get("name") or spec.get("fieldName")
            field = spec.get("fieldName") or re.sub(r"[^a-z0-9_]+", "_", str(display or "").lower()).strip(
                "_"
            )
            data_type = (spec.get("dataTypeName") or "text").lower()
            if not isinstance(field, str) or not FIELD_NAME.match(field) or field.startswith("_ct_"):
                raise bad_request(
                    f"Column {position} has the field name {field!r}; use lowercase letters, digits and _",
                    column=position,
                )
            if data_type not in STORAGE_TYPES:
                raise bad_request(
                    f"Column {field!r} has the unknown type {data_type!r}; "
                    f"use one of {', '.join(STORAGE_TYPES)}",
                    column=field,
                )
            if any(c["fieldName"] == field for c in columns):
                raise bad_request(f"Two columns have the field name {field!r}", column=field)
            columns.append(
                {
                    "id": self._next_column_id,
                    "name": display or field,
                    "dataTypeName": data_type,
                    "description": spec.get("description") or "",
                    "fieldName": field,
                    "position": position,
                    "renderTypeName": data_type,
                    "tableColumnId": self._next_column_id,
                    "format": dict(spec.get("format") or {}),
                }
            )
            self._next_column_id += 1
        return columns

    @staticmethod
    def _set_row_identifier(view: dict[str, Any], field: str | None) -> None:
        if field in (None, ""):
            view["metadata"].pop("rowIdentifier", None)
            view.pop("rowIdentifierColumnId", None)
            return
        column = next((c for c in view["columns"] if c["fieldName"] == field), None)
        if column is None:
            raise bad_request(
                f"The row identifier {field!r} is not one of the dataset's columns", field="rowIdentifier"
            )
        view["metadata"]["rowIdentifier"] = field
        view["rowIdentifierColumnId"] = column["id"]

    def update_view(self, view_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """``PUT /api/views/{id}.json``: each top-level key sent replaces the stored one; ``columns``
        update names and descriptions by fieldName; ``metadata`` is replaced wholesale."""
        if not isinstance(fields, Mapping):
            raise bad_request("The body must be a JSON object of view fields")
        with self._lock:
            view = copy.deepcopy(self._view(view_id))
            for key, value in fields.items():
                if key in _VIEW_READ_ONLY:
                    continue
                if key == "columns":
                    self._update_columns(view, value)
                elif key == "metadata":
                    if not isinstance(value, Mapping):
                        raise bad_request("metadata must be an object")
                    view["metadata"] = dict(value)
                elif key == "category" and (problem := metadata_api.category_problem(value)):
                    raise bad_request(problem, field="category")
                else:
                    view[key] = value
            old_row_identifier = self._views[view_id]["metadata"].get("rowIdentifier")
            if "rowIdentifier" not in view["metadata"] and old_row_identifier:
                # the row identifier belongs to the columns, not the free-form metadata: keep it
                view["metadata"]["rowIdentifier"] = old_row_identifier
            if view["metadata"].get("rowIdentifier") != old_row_identifier:
                self._set_row_identifier(view, view["metadata"].get("rowIdentifier"))
                self._check_unique_row_identifier(view)
            view["viewLastModified"] = common.now_epoch()
            self._save_view(view)
            return copy.deepcopy(view)

    @staticmethod
    def _update_columns(view: dict[str, Any], specs: Any) -> None:
        if not isinstance(specs, list):
            raise bad_request("columns must be a list")
        by_field = {c["fieldName"]: c for c in view["columns"]}
        for spec in specs:
            field = spec.get("fieldName") if isinstance(spec, Mapping) else None
            if field not in by_field:
                raise bad_request(
                    f"Column {field!r} does not exist; columns cannot be added through /api/views",
                    column=field,
                )
            for key in ("name", "description", "format"):
                if key in spec:
                    by_field[field][key] = spec[key]

    def _check_unique_row_identifier(self, view: dict[str, Any]) -> None:
        field = view["metadata"].get("rowIdentifier")
        table = self._ensure_table(view)
        if field is None:
            return
        column = quote_ident(field)
        nulls, dupes = self._con.execute(
            f"SELECT count(*) FILTER (WHERE {column} IS NULL), count(*) - count(DISTINCT {column}) FROM {table}"
        ).fetchone()
        if nulls or dupes:
            raise bad_request(
                f"Cannot make {field!r} the row identifier: {nulls} rows have no value and {dupes} repeat one",
                field="rowIdentifier",
            )

    def publish_view(self, view_id: str) -> dict[str, Any]:
        with self._lock:
            view = copy.deepcopy(self._view(view_id))
            view["publicationStage"] = "published"
            view["publicationDate"] = common.now_epoch()
            view["viewLastModified"] = view["publicationDate"]
            self._save_view(view)
            return copy.deepcopy(view)

    def set_permission(self, view_id: str, value: str) -> dict[str, Any]:
        with self._lock:
            view = copy.deepcopy(self._view(view_id))
            view["isPublic"] = value.startswith("public")
            self._save_view(view)
            return copy.deepcopy(view)

    def delete_view(self, view_id: str) -> None:
        with self._lock:
            view = self._view(view_id)
            name = common.table_name(view["id"])
            self._con.execute(f"DROP TABLE IF EXISTS {quote_ident(name)}")
            self._con.execute(f"DROP SEQUENCE IF EXISTS {quote_ident(common.sequence_name(view_id))}")
            self._tables.discard(name)
            self._con.execute("DELETE FROM attachments WHERE view_id = ?", [view_id])
            self._con.execute("DELETE FROM views WHERE id = ?", [view_id])
            del self._views[view_id]

    # ------------------------------------------------------------------ metadata API / catalog
    def metadata_v1(self, view_id: str, base_url: str, domain: str) -> dict[str, Any]:
        with self._lock:
            return metadata_api.metadata_v1(self._view(view_id), base_url, domain)

    def patch_metadata_v1(
        self,
        view_id: str,
        patch: Any,
        base_url: str,
        domain: str,
        validate_only: bool = False,
        strict: bool = False,
    ) -> tuple[dict[str, Any], list[dict[str, str]]]:
        """Return (metadata as it is, or would be with ``validate_only``, warnings)."""
        with self._lock:
            view, warnings = metadata_api.apply_patch(self._view(view_id), patch, strict)
            if not validate_only:
                view["viewLastModified"] = common.now_epoch()
                self._save_view(view)
            return metadata_api.metadata_v1(view, base_url, domain), warnings

    def catalog(
        self, params: list[tuple[str, str]], base_url: str, domains: set[str], domain: str
    ) -> dict[str, Any]:
        with self._lock:
            views = list(self._views.values())
            return discovery.search_catalog(views, params, base_url, domains, domain)
