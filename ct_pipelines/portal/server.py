"""HTTP face of the local portal: the part of Socrata's API that sodapy publishing and catalog
audits use, with Socrata's status codes, error bodies and headers. The routes live in
``routes_views`` (``/api/views``, Metadata API v1, catalog), ``routes_resource`` (``/resource``),
``routes_files`` (attachments) and ``routes_pages`` (browse pages, ``/data.json``); what they share
(auth, error bodies, id checks, escaping) is in :mod:`http`. Storage semantics live in
:mod:`ct_pipelines.portal.store`.

:class:`PortalApp` logs every request and offers tests one hook, ``interceptor``, that sees each
request before routing with the server's own ``send`` reachable (fault injection lives in the test
support package, ``ct_pipelines_tests/support/faults.py``; nothing in this package installs one).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ct_pipelines.portal import routes_files, routes_pages, routes_resource, routes_views
from ct_pipelines.portal.errors import PortalError, view_missing
from ct_pipelines.portal.http import Auth, Context, error_response
from ct_pipelines.portal.store import PortalStore

# (scope, receive, send, app): answer the request itself, or pass it on by awaiting app(scope, receive, send)
Interceptor = Callable[[Scope, Receive, Send, ASGIApp], Awaitable[None]]


class StatusRecorder:
    """The ``send`` handed to the app: notes the answer's status; ``inner`` is the server's own
    ``send`` (an interceptor that drops the connection needs it)."""

    def __init__(self, inner: Send) -> None:
        self.inner = inner
        self.status = 0

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self.inner(message)


class PortalApp(Starlette):
    """Starlette app that logs (method, path, status) of every request; status 0 when no answer
    was sent (a dropped connection)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.interceptor: Interceptor | None = None
        self.request_log: list[tuple[str, str, int]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        recorder = StatusRecorder(send)
        try:
            if self.interceptor is None:
                await super().__call__(scope, receive, recorder)
            else:
                await self.interceptor(scope, receive, recorder, super().__call__)
        finally:
            self.request_log.append((scope["method"], scope["path"], recorder.status))


def create_app(
    store: PortalStore,
    username: str | None = None,
    password: str | None = None,
    domain: str = "localhost",
) -> PortalApp:
    """The portal app over ``store``; ``domain`` is what the catalog reports as ``metadata.domain``."""
    ctx = Context(store, Auth(username, password), domain)
    routes = [
        *routes_pages.routes(ctx),
        *routes_views.routes(ctx),
        *routes_files.routes(ctx),
        *routes_resource.routes(ctx),
    ]
    app = PortalApp(routes=routes)
    app.add_exception_handler(404, _not_found)
    app.add_exception_handler(405, _method_not_allowed)
    app.state.store = store
    return app


async def _not_found(request: Request, exc: Exception) -> Response:
    return error_response(view_missing(request.url.path[:200]))


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    message = f"{request.method} is not allowed on {request.url.path[:200]}"
    return error_response(PortalError(405, "method_not_allowed", message))
