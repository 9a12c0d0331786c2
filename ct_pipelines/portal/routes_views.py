"""Routes of ``/api/views`` (create, read, update, delete, publish), the Metadata API v1 and the
catalog (Discovery API)."""

from __future__ import annotations

import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ct_pipelines.portal.http import Context, flag, json_response, read_json, whole


class _ViewRoutes:
    """The view, metadata and catalog routes over ``ctx.store``."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.store = self.ctx.store

    async def create_view(self, request: Request) -> Response:
        payload = await read_json(request)
        view = await run_in_threadpool(
            self.store.create_view, payload, self.ctx.auth.username or "ct-pipelines"
        )
        return json_response(view)

    async def get_view(self, request: Request) -> Response:
        return json_response(await run_in_threadpool(self.store.get_view, request.path_params["view_id"]))

    async def put_view(self, request: Request) -> Response:
        view_id = request.path_params["view_id"]
        if request.query_params.get("method") == "setPermission":
            value = request.query_params.get("value", "private")
            return json_response(await run_in_threadpool(self.store.set_permission, view_id, value))
        fields = await read_json(request)
        return json_response(await run_in_threadpool(self.store.update_view, view_id, fields))

    async def delete_view(self, request: Request) -> Response:
        view_id = request.path_params["view_id"]
        await run_in_threadpool(self.store.delete_view, view_id)
        return json_response({"message": "Deleted", "id": view_id})

    async def publish_view(self, request: Request) -> Response:
        return json_response(await run_in_threadpool(self.store.publish_view, request.path_params["view_id"]))

    async def get_metadata(self, request: Request) -> Response:
        body = await run_in_threadpool(
            self.store.metadata_v1,
            request.path_params["view_id"],
            self.ctx.base_url(request),
            self.ctx.domain_of(request),
        )
        return json_response(body)

    async def list_metadata(self, request: Request) -> Response:
        limit = whole(request.query_params.get("limit", "100"), "limit")
        page = max(whole(request.query_params.get("page", "1"), "page"), 1)
        views = sorted(await run_in_threadpool(self.store.list_views), key=lambda v: v["id"])
        chosen = views[(page - 1) * limit : page * limit]
        base, domain = self.ctx.base_url(request), self.ctx.domain_of(request)
        return json_response([self.store.metadata_v1(v["id"], base, domain) for v in chosen])

    async def patch_metadata(self, request: Request) -> Response:
        patch = await read_json(request)
        body, warnings = await run_in_threadpool(
            self.store.patch_metadata_v1,
            request.path_params["view_id"],
            patch,
            self.ctx.base_url(request),
            self.ctx.domain_of(request),
            flag(request.query_params.get("validateOnly")),
            flag(request.query_params.get("strict")),
        )
        if warnings:
            body["warnings"] = warnings
        return json_response(body)

    async def catalog(self, request: Request) -> Response:
        started = time.perf_counter()
        params = list(request.query_params.multi_items())
        domains = {self.ctx.domain.lower(), self.ctx.domain_of(request).lower()}
        body = await run_in_threadpool(
            self.store.catalog, params, self.ctx.base_url(request), domains, self.ctx.domain_of(request)
        )
        body["timings"]["serviceMillis"] = round((time.perf_counter() - started) * 1000)
        return json_response(body)


def routes(ctx: Context) -> list[Route]:
    """The view, metadata and catalog routes over ``ctx.store``."""
    r = _ViewRoutes(ctx)
    endpoint = ctx.endpoint
    return [
        Route("/api/views.json", endpoint(r.create_view, write=True), methods=["POST"]),
        Route("/api/views/metadata/v1", endpoint(r.list_metadata), methods=["GET"]),
        Route("/api/views/metadata/v1/{view_id}", endpoint(r.get_metadata), methods=["GET"]),
        Route("/api/views/metadata/v1/{view_id}", endpoint(r.patch_metadata, write=True), methods=["PATCH"]),
        Route(
            "/api/views/{view_id}/publication.json", endpoint(r.publish_view, write=True), methods=["POST"]
        ),
        Route("/api/views/{view_id}.json", endpoint(r.get_view), methods=["GET"]),
        Route("/api/views/{view_id}.json", endpoint(r.put_view, write=True), methods=["PUT"]),
        Route("/api/views/{view_id}.json", endpoint(r.delete_view, write=True), methods=["DELETE"]),
        Route("/api/catalog/v1", endpoint(r.catalog), methods=["GET"]),
    ]
