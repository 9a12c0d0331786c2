"""What every route module of the local portal shares: Socrata-shaped JSON and error answers,
the Basic-auth check for writes, body readers, HTML pages with escaped values, and the endpoint
wrapper that refuses any dataset id that is not a 4x4 before a handler sees it.

Authentication (documented choice, after the reference notes 2.5): a write without credentials
gets ``403 {"code": "permission_denied", "message": "You must be logged in to access this
resource"}`` (sodapy's recorded 403 body); wrong credentials get ``401 {"code":
"invalid_credentials"}``. Reads are open.
"""

from __future__ import annotations

import base64
import binascii
import csv
import html
import io
import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from ct_pipelines.portal.common import is_four_by_four
from ct_pipelines.portal.errors import PortalError, bad_request, dataset_missing, view_missing
from ct_pipelines.portal.store import PortalStore

JSON_TYPE = "application/json; charset=utf-8"
Handler = Callable[[Request], Awaitable[Response]]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    payload = json.dumps(body, separators=(",", ":")).encode()
    all_headers = {"X-Socrata-RequestId": secrets.token_hex(12), **(headers or {})}
    return Response(payload, status_code=status, media_type=JSON_TYPE, headers=all_headers)


def error_response(error: PortalError, headers: dict[str, str] | None = None) -> Response:
    all_headers = {
        "X-Error-Code": error.code,
        "X-Error-Message": error.message.encode("ascii", "replace").decode()[:200],
        **(headers or {}),
    }
    return json_response(error.body(), error.status, all_headers)


class Auth:
    """HTTP Basic check for writes; with no configured credentials, writes are open (tests only)."""

    def __init__(self, username: str | None, password: str | None) -> None:
        self.username = username
        self.password = password

    def require(self, request: Request) -> None:
        if self.username is None or self.password is None:
            return
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("basic "):
            raise PortalError(403, "permission_denied", "You must be logged in to access this resource")
        try:
            user, _, given = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise PortalError(401, "invalid_credentials", "Invalid username or password") from exc
        good_user = secrets.compare_digest(user.encode(), self.username.encode())
        good_password = secrets.compare_digest(given.encode(), self.password.encode())
        if not (good_user and good_password):
            raise PortalError(401, "invalid_credentials", "Invalid username or password")


@dataclass(frozen=True)
class Context:
    """What the route modules need: the store, the write check and the domain the catalog reports."""

    store: PortalStore
    auth: Auth
    domain: str

    def base_url(self, request: Request) -> str:
        return f"{request.url.scheme}://{self.domain_of(request)}"

    def domain_of(self, request: Request) -> str:
        return request.headers.get("host", self.domain)

    def endpoint(self, handler: Handler, write: bool = False) -> Handler:
        """Answer PortalErrors as Socrata error bodies; refuse a dataset id that is not a 4x4 with
        Socrata's 404 before anything else; check credentials for writes."""

        async def wrapped(request: Request) -> Response:
            try:
                check_view_id(request)
                if write:
                    self.auth.require(request)
                return await handler(request)
            except PortalError as error:
                return error_response(error)

        return wrapped


def check_view_id(request: Request) -> None:
    """404 (``dataset.missing`` under /resource, ``not_found`` elsewhere) for an id that is not a
    4x4, so no id that could carry SQL, a path or markup reaches the store or a page."""
    view_id = request.path_params.get("view_id")
    if view_id is None or is_four_by_four(view_id):
        return
    shown = str(view_id)[:64]
    if request.url.path.startswith("/resource/"):
        raise dataset_missing(shown)
    raise view_missing(shown)


async def read_json(request: Request) -> Any:
    body = await request.body()
    try:
        return json.loads(body.decode("utf-8-sig") or "null")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad_request(f"The body is not valid JSON: {exc}") from exc


def is_csv(request: Request) -> bool:
    return request.headers.get("content-type", "").lower().startswith("text/csv")


async def read_body_text(request: Request) -> str:
    try:
        return (await request.body()).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if is_csv(request):
            raise bad_request("The CSV body must be UTF-8 encoded") from exc
        raise bad_request(f"The body is not valid JSON: {exc}") from exc


def flag(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("true", "1", "yes")


def whole(value: str, name: str) -> int:
    try:
        return max(int(value), 0)
    except ValueError as exc:
        raise bad_request(f"{name} must be a whole number, got {value!r}") from exc


def csv_text(fields: list[str], rows: list[tuple[Any, ...]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(fields)
    for row in rows:
        writer.writerow(
            ["" if v is None else ("true" if v is True else "false" if v is False else v) for v in row]
        )
    return out.getvalue()


def esc(value: Any) -> str:
    """Any value as HTML text or attribute content (quotes escaped too)."""
    return html.escape("" if value is None else str(value), quote=True)


def page(title: str, content: str, status: int = 200) -> Response:
    """An HTML page; ``content`` must already be built from :func:`esc`-escaped values."""
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title></head>"
        f"<body style='font-family:sans-serif;max-width:70em;margin:auto'>{content}</body></html>",
        status_code=status,
        headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"},
    )
