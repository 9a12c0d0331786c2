"""HTTP face of the local portal: the part of Socrata's API that sodapy publishing and catalog
audits use, with Socrata's status codes, error bodies and headers. Request parsing and answer
shaping only; storage semantics live in :mod:`ct_pipelines.portal.store`.

Authentication (documented choice, after the reference notes 2.5): a write without credentials
gets ``403 {"code": "permission_denied", "message": "You must be logged in to access this
resource"}`` (sodapy's recorded 403 body); wrong credentials get ``401 {"code":
"invalid_credentials"}``. Reads are open.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import csv
import html
import io
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from ct_pipelines.portal.errors import PortalError, bad_request, view_missing
from ct_pipelines.portal.faults import FaultPlan, FaultRule
from ct_pipelines.portal.store import PortalStore, parse_csv_rows

JSON_TYPE = "application/json; charset=utf-8"
Handler = Callable[[Request], Awaitable[Response]]


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    payload = json.dumps(body, separators=(",", ":")).encode()
    all_headers = {"X-Socrata-RequestId": secrets.token_hex(12), **(headers or {})}
    return Response(payload, status_code=status, media_type=JSON_TYPE, headers=all_headers)


def _error(error: PortalError) -> Response:
    headers = {
        "X-Error-Code": error.code,
        "X-Error-Message": error.message.encode("ascii", "replace").decode()[:200],
    }
    return _json(error.body(), error.status, headers)


class _Auth:
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


class PortalApp(Starlette):
    """Starlette app that logs every request and injects faults before routing, where it still
    holds the server's own ``send`` (needed to drop the TCP connection without an answer)."""

    def __init__(self, *args: Any, faults: FaultPlan | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.faults = faults
        self.request_log: list[tuple[str, str, int]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        status = 0

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            rule = self.faults.choose(method, path, _content_length(scope)) if self.faults else None
            if rule is None:
                await super().__call__(scope, receive, recording_send)
            elif rule.kind == "slow":
                await asyncio.sleep(rule.delay)
                await super().__call__(scope, receive, recording_send)
            elif rule.kind == "reset":
                _drop_connection(send)
            elif rule.kind == "reset_after_apply":
                await super().__call__(scope, receive, _discard)
                _drop_connection(send)
            else:
                await _fault_response(rule)(scope, receive, recording_send)
        finally:
            self.request_log.append((method, path, status))


async def _discard(message: Message) -> None:
    """Swallow the answer of a request whose connection is then dropped."""


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            return int(value)
    return None


def _drop_connection(send: Send) -> None:
    """Abort the TCP connection so the client sees a reset (requests: ConnectionError). Works with
    uvicorn, whose ``send`` is a bound method of the request cycle that owns the transport."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise ConnectionResetError("fault injection: connection dropped")
    cycle.disconnected = True  # nothing more is written and uvicorn logs no error
    transport.abort()


def _fault_response(rule: FaultRule) -> Response:
    if rule.kind == "202":
        body = {
            "message": "Your request is being processed; retry it to get the result",
            "code": "processing",
        }
        return _json(body, 202)
    messages = {
        "429": ("too_many_requests", "Too many requests; slow down and retry after the Retry-After delay"),
        "500": ("internal_error", "Internal server error (injected fault)"),
        "503": ("service_unavailable", "Service unavailable; retry later"),
        "413": ("request_too_large", "Request entity too large; send fewer rows per request"),
    }
    code, message = messages[rule.kind]
    headers = {}
    if rule.kind in ("429", "503") and rule.retry_after is not None:
        headers["Retry-After"] = str(rule.retry_after)
    return _error_with_headers(PortalError(int(rule.kind), code, message), headers)


def _error_with_headers(error: PortalError, headers: dict[str, str]) -> Response:
    response = _error(error)
    response.headers.update(headers)
    return response


def create_app(
    store: PortalStore,
    username: str | None = None,
    password: str | None = None,
    faults: FaultPlan | None = None,
    domain: str = "localhost",
) -> Starlette:
    """The portal app over ``store``; ``domain`` is what the catalog reports as ``metadata.domain``."""
    auth = _Auth(username, password)

    def base_url(request: Request) -> str:
        return f"{request.url.scheme}://{request.headers.get('host', domain)}"

    def domain_of(request: Request) -> str:
        return request.headers.get("host", domain)

    def endpoint(handler: Handler, write: bool = False) -> Handler:
        """Answer PortalErrors as Socrata error bodies; check credentials first for writes."""

        async def wrapped(request: Request) -> Response:
            try:
                if write:
                    auth.require(request)
                return await handler(request)
            except PortalError as error:
                return _error(error)

        return wrapped

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

    def view_id_of(request: Request) -> str:
        return request.path_params["view_id"]

    # ---------------------------------------------------------------- /api/views
    async def create_view(request: Request) -> Response:
        payload = await read_json(request)
        view = await run_in_threadpool(store.create_view, payload, auth.username or "ct-pipelines")
        return _json(view)

    async def get_view(request: Request) -> Response:
        return _json(await run_in_threadpool(store.get_view, view_id_of(request)))

    async def put_view(request: Request) -> Response:
        view_id = view_id_of(request)
        if request.query_params.get("method") == "setPermission":
            value = request.query_params.get("value", "private")
            return _json(await run_in_threadpool(store.set_permission, view_id, value))
        fields = await read_json(request)
        return _json(await run_in_threadpool(store.update_view, view_id, fields))

    async def delete_view(request: Request) -> Response:
        await run_in_threadpool(store.delete_view, view_id_of(request))
        return _json({"message": "Deleted", "id": view_id_of(request)})

    async def publish_view(request: Request) -> Response:
        return _json(await run_in_threadpool(store.publish_view, view_id_of(request)))

    # ---------------------------------------------------------------- metadata API v1
    async def get_metadata(request: Request) -> Response:
        body = await run_in_threadpool(
            store.metadata_v1, view_id_of(request), base_url(request), domain_of(request)
        )
        return _json(body)

    async def list_metadata(request: Request) -> Response:
        limit = _whole(request.query_params.get("limit", "100"), "limit")
        page = max(_whole(request.query_params.get("page", "1"), "page"), 1)
        views = sorted(await run_in_threadpool(store.list_views), key=lambda v: v["id"])
        chosen = views[(page - 1) * limit : page * limit]
        return _json([store.metadata_v1(v["id"], base_url(request), domain_of(request)) for v in chosen])

    async def patch_metadata(request: Request) -> Response:
        patch = await read_json(request)
        validate_only = _flag(request.query_params.get("validateOnly"))
        strict = _flag(request.query_params.get("strict"))
        body, warnings = await run_in_threadpool(
            store.patch_metadata_v1,
            view_id_of(request),
            patch,
            base_url(request),
            domain_of(request),
            validate_only,
            strict,
        )
        if warnings:
            body["warnings"] = warnings
        return _json(body)

    # ---------------------------------------------------------------- catalog
    async def catalog(request: Request) -> Response:
        started = time.perf_counter()
        params = list(request.query_params.multi_items())
        domains = {domain.lower(), domain_of(request).lower()}
        body = await run_in_threadpool(store.catalog, params, base_url(request), domains, domain_of(request))
        body["timings"]["serviceMillis"] = round((time.perf_counter() - started) * 1000)
        return _json(body)

    # ---------------------------------------------------------------- /resource
    async def get_rows(request: Request) -> Response:
        view_id, fmt = view_id_of(request), request.path_params["fmt"]
        if fmt not in ("json", "csv"):
            raise bad_request(f"Unsupported format .{fmt}; use .json or .csv")
        params = dict(request.query_params)
        result = await run_in_threadpool(store.query, view_id, params)
        view = store.get_view(view_id)
        headers = {
            "X-SODA2-Fields": json.dumps(result.fields),
            "X-SODA2-Types": json.dumps(result.types),
            "Last-Modified": formatdate(view.get("rowsUpdatedAt") or 0, usegmt=True),
        }
        if fmt == "csv":
            return Response(
                _csv(result.fields, result.rows), media_type="text/csv; charset=utf-8", headers=headers
            )
        return _json(result.records(), headers=headers)

    async def write_rows(request: Request) -> Response:
        view_id = view_id_of(request)
        if request.path_params["fmt"] not in ("json", "csv"):
            raise bad_request("Send rows to /resource/{id}.json")
        replace = request.method == "PUT"
        body = await read_body_text(request)
        if is_csv(request):
            rows = parse_csv_rows(body)
            write = store.replace if replace else store.upsert
            return _json(await run_in_threadpool(write, view_id, rows))
        # DuckDB parses the JSON text in the store: no Python object per row
        write_json = store.replace_json if replace else store.upsert_json
        return _json(await run_in_threadpool(write_json, view_id, body))

    async def get_row(request: Request) -> Response:
        row = await run_in_threadpool(store.get_row, view_id_of(request), request.path_params["row"])
        return _json(row)

    async def delete_row(request: Request) -> Response:
        result = await run_in_threadpool(store.delete_row, view_id_of(request), request.path_params["row"])
        return _json(result)

    # ---------------------------------------------------------------- browse pages
    async def home(request: Request) -> Response:
        views = sorted(await run_in_threadpool(store.list_views), key=lambda v: (v.get("name") or "").lower())
        items = "".join(
            f'<li><a href="/d/{v["id"]}">{html.escape(v.get("name") or v["id"])}</a> '
            f"<small>{v['id']} · {html.escape(v.get('category') or 'no category')} · {v['publicationStage']}</small></li>"
            for v in views[:1000]
        )
        note = f"<p>Showing 1,000 of {len(views):,}; use /api/catalog/v1.</p>" if len(views) > 1000 else ""
        return _page(
            "Local portal", f"<h1>Local portal</h1><p>{len(views):,} datasets</p>{note}<ul>{items}</ul>"
        )

    async def dataset_page(request: Request) -> Response:
        view_id = request.path_params["view_id"]
        try:
            view = await run_in_threadpool(store.get_view, view_id)
        except PortalError:
            return _page("Not found", f"<h1>No dataset {html.escape(view_id)}</h1>", 404)
        result = await run_in_threadpool(store.query, view_id, {"$limit": "20"})
        header = "".join(f"<th>{html.escape(f)}</th>" for f in result.fields)
        body_rows = "".join(
            "<tr>" + "".join(f"<td>{html.escape('' if v is None else str(v))}</td>" for v in row) + "</tr>"
            for row in result.rows
        )
        facts = {
            k: view.get(k) for k in ("description", "category", "tags", "attribution", "publicationStage")
        }
        facts["rows"] = await run_in_threadpool(store.row_count, view_id)
        facts["custom_fields"] = view.get("metadata", {}).get("custom_fields")
        listing = "".join(f"<dt>{k}</dt><dd>{html.escape(json.dumps(v))}</dd>" for k, v in facts.items())
        content = (
            f"<p><a href='/'>All datasets</a></p><h1>{html.escape(view['name'])}</h1><dl>{listing}</dl>"
            f"<p>API: <a href='/resource/{view_id}.json'>/resource/{view_id}.json</a></p>"
            f"<table border=1><tr>{header}</tr>{body_rows}</table>"
        )
        return _page(view["name"], content)

    routes = [
        Route("/", endpoint(home), methods=["GET"]),
        Route("/browse", endpoint(home), methods=["GET"]),
        Route("/d/{view_id}", endpoint(dataset_page), methods=["GET"]),
        Route("/api/views.json", endpoint(create_view, write=True), methods=["POST"]),
        Route("/api/views/metadata/v1", endpoint(list_metadata), methods=["GET"]),
        Route("/api/views/metadata/v1/{view_id}", endpoint(get_metadata), methods=["GET"]),
        Route("/api/views/metadata/v1/{view_id}", endpoint(patch_metadata, write=True), methods=["PATCH"]),
        Route("/api/views/{view_id}/publication.json", endpoint(publish_view, write=True), methods=["POST"]),
        Route("/api/views/{view_id}.json", endpoint(get_view), methods=["GET"]),
        Route("/api/views/{view_id}.json", endpoint(put_view, write=True), methods=["PUT"]),
        Route("/api/views/{view_id}.json", endpoint(delete_view, write=True), methods=["DELETE"]),
        Route("/api/catalog/v1", endpoint(catalog), methods=["GET"]),
        Route("/resource/{view_id}/{row}.json", endpoint(get_row), methods=["GET"]),
        Route("/resource/{view_id}/{row}.json", endpoint(delete_row, write=True), methods=["DELETE"]),
        Route("/resource/{view_id}.{fmt}", endpoint(get_rows), methods=["GET"]),
        Route("/resource/{view_id}.{fmt}", endpoint(write_rows, write=True), methods=["POST", "PUT"]),
    ]
    app = PortalApp(routes=routes, faults=faults)
    app.add_exception_handler(404, _not_found)
    app.add_exception_handler(405, _method_not_allowed)
    app.state.store = store
    return app


async def _not_found(request: Request, exc: Exception) -> Response:
    return _error(view_missing(request.url.path))


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    return _error(
        PortalError(405, "method_not_allowed", f"{request.method} is not allowed on {request.url.path}")
    )


def _flag(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("true", "1", "yes")


def _whole(value: str, name: str) -> int:
    try:
        return max(int(value), 0)
    except ValueError as exc:
        raise bad_request(f"{name} must be a whole number, got {value!r}") from exc


def _csv(fields: list[str], rows: list[tuple[Any, ...]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(fields)
    for row in rows:
        writer.writerow(
            ["" if v is None else ("true" if v is True else "false" if v is False else v) for v in row]
        )
    return out.getvalue()


def _page(title: str, content: str, status: int = 200) -> Response:
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
        f"<body style='font-family:sans-serif;max-width:70em;margin:auto'>{content}</body></html>",
        status_code=status,
    )
