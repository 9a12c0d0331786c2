"""The one error type of the local portal, shaped like Socrata's error bodies so clients that parse
``{code, error, message, data}`` (and sodapy, which appends ``message`` to its exception text) see
what they would see against data.ct.gov."""

from __future__ import annotations

from typing import Any


class PortalError(Exception):
    """An expected failure with the HTTP status and Socrata error code to answer with."""

    def __init__(self, status: int, code: str, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.data = data or {}

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "error": True, "message": self.message, "data": self.data}


def dataset_missing(view_id: str) -> PortalError:
    """``/resource/...`` answer for an unknown 4x4 (recorded from Socrata in 2025)."""
    return PortalError(404, "dataset.missing", "Not found", {"id": view_id})


def view_missing(view_id: str) -> PortalError:
    """``/api/views/...`` answer for an unknown 4x4 (recorded from Socrata in 2025)."""
    return PortalError(404, "not_found", "Not found", {"id": view_id})


def bad_request(message: str, **data: Any) -> PortalError:
    return PortalError(400, "invalid_request", message, data)
