"""Files attached to a dataset (a data dictionary, a methods note), kept as Socrata keeps them:
listed in the view's ``metadata.attachments`` as ``{assetId, filename, name}`` and downloaded from
``/api/views/{id}/files/{assetId}?download=true&filename=...`` (what sodapy's
``download_attachments`` requests). The bytes live in the portal's DuckDB file."""

from __future__ import annotations

import copy
import re
import uuid
from typing import Any

from ct_pipelines.portal import common
from ct_pipelines.portal.errors import PortalError, bad_request
from ct_pipelines.portal.views import ViewsMixin

MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024
ASSET_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._() -]+")


def safe_filename(name: str | None) -> str:
    """A filename a client can save under without leaving its folder (sodapy joins it to a path):
    no folders, no leading dots, only plain characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    cleaned = _UNSAFE_NAME.sub("_", base).strip(" .")[:200]
    return cleaned or "attachment"


def file_missing(view_id: str, asset_id: str) -> PortalError:
    return PortalError(404, "not_found", "Not found", {"id": view_id, "file": asset_id[:64]})


class AttachmentsMixin(ViewsMixin):
    """``POST``/``GET /api/views/{id}/files`` of :class:`~ct_pipelines.portal.store.PortalStore`."""

    def add_attachment(
        self, view_id: str, filename: str | None, content_type: str, content: bytes
    ) -> dict[str, Any]:
        """Store a file for the view and list it in ``metadata.attachments``; returns
        ``{"file": assetId, "filename": ...}``."""
        if not content:
            raise bad_request(
                "The attachment is empty; send the file's bytes as the body or a multipart 'file' part"
            )
        if len(content) > MAX_ATTACHMENT_BYTES:
            raise PortalError(
                413,
                "request_too_large",
                f"The attachment has {len(content):,} bytes; the local portal takes at most "
                f"{MAX_ATTACHMENT_BYTES:,}",
            )
        name = safe_filename(filename)
        asset_id = str(uuid.uuid4())
        with self._lock:
            original = self._view(view_id)
            view = copy.deepcopy(original)
            attachments = list(view["metadata"].get("attachments") or [])
            attachments.append({"assetId": asset_id, "filename": name, "name": name})
            view["metadata"]["attachments"] = attachments
            view["viewLastModified"] = common.now_epoch()
            self._con.execute("BEGIN TRANSACTION")
            try:
                self._con.execute(
                    "INSERT INTO attachments VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        asset_id,
                        view_id,
                        name,
                        content_type or "application/octet-stream",
                        view["viewLastModified"],
                        content,
                    ],
                )
                self._save_view(view)
                self._con.execute("COMMIT")
            except BaseException:
                self._con.execute("ROLLBACK")
                self._views[view_id] = original
                raise
        return {"file": asset_id, "filename": name}

    def get_attachment(self, view_id: str, asset_id: str) -> tuple[str, str, bytes]:
        """(filename, content type, bytes) of one of the view's files; 404 otherwise."""
        if not ASSET_ID.match(asset_id):
            raise file_missing(view_id, asset_id)
        with self._lock:
            self._view(view_id)
            found = self._con.execute(
                "SELECT filename, content_type, content FROM attachments WHERE asset_id = ? AND view_id = ?",
                [asset_id, view_id],
            ).fetchone()
        if found is None:
            raise file_missing(view_id, asset_id)
        return found[0], found[1], bytes(found[2])
