"""Routes of ``/api/views`` (create, read, update, delete, publish), the Metadata API v1 and the
catalog (Discovery API)."""

from __future__ import annotations

import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ct_pipelines.portal.http import Context, flag, json_response, read_json, whole


def routes(ctx: Context) -> list[Route]:
    """The view, metadata and catalog routes over ``ctx.store``."""
    store = ctx.store

    async def create_view(request: Request) -> Response:
        payload = await read_json(request)
        view = await run_in_threadpool(store.create_view, payload, ctx.auth.username or "ct-pipelines")
        return json_response(view)

    async def get_view(request: Request) -> Response:
        return json_response(await run_in_threadpool(store.get_view, request.path_params["view_id"]))

    async def put_view(request: Request) -> Response:
        view_id = request.path_params["view_id"]
        if request.query_params.get("method") == "setPermission":
            value = request.query_params.get("value", "private")
            return json_response(await run_in_threadpool(store.set_permission, view_id, value))
        fields = await read_json(request)
        return json_response(await run_in_threadpool(store.update_view, view_id, fields))

    async def delete_view(request: Request) -> Response:
        view_id = request.path_params["view_id"]
        await run_in_threadpool(store.delete_view, view_id)
        return json_response({"message": "Deleted", "id": view_id})

    async def publish_view(request: Request) -> Response:
        return json_response(await run_in_threadpool(store.publish_view, request.path_params["view_id"]))

    async def get_metadata(request: Request) -> Response:
        body = await run_in_threadpool(
            store.metadata_v1, request.path_params["view_id"], ctx.base_url(request), ctx.domain_of(request)
        )
        return json_response(body)

    async def list_metadata(request: Request) -> Response:
        limit = whole(request.query_params.get("limit", "100"), "limit")
        page = max(whole(request.query_params.get("page", "1"), "page"), 1)
        views = sorted(await run_in_threadpool(store.list_views), key=lambda v: v["id"])
        chosen = views[(page - 1) * limit : page * limit]
        base, domain = ctx.base_url(request), ctx.domain_of(request)
        return json_response([store.metadata_v1(v["id"], base, domain) for v in chosen])

    async def patch_metadata(request: Request) -> Response:
        patch = await read_json(request)
        body, warnings = await run_in_threadpool(
            store.patch_metadata_v1,
            request.path_params["view_id"],
            patch,
            ctx.base_url(request),
            ctx.domain_of(request),
            flag(request.query_params.get("validateOnly")),
            flag(request.query_params.get("strict")),
        )
        if warnings:
            body["warnings"] = warnings
        return json_response(body)

    async def catalog(request: Request) -> Response:
        started = time.perf_counter()
        params = list(request.query_params.multi_items())
        domains = {ctx.domain.lower(), ctx.domain_of(request).lower()}
        body = await run_in_threadpool(
            store.catalog, params, ctx.base_url(request), domains, ctx.domain_of(request)
        )
        body["timings"]["serviceMillis"] = round((time.perf_counter() - started) * 1000)
        return json_response(body)

    endpoint = ctx.endpoint
    return [
        Route("/api/views.json", endpoint(create_view, write=True), methods=["POST"]),
        Route("/api/views/metadata/v1", endpoint(list_metadata), methods=["GET"]),
        Route("/api/views/metadata/v1/{view_id}", endpoint(get_metadata), methods=["GET"]),
        Route("/api/views/metadata/v1/{view_id}", endpoint(patch_metadata, write=True), methods=["PATCH"]),
        Route("/api/views/{view_id}/publication.json", endpoint(publish_view, write=True), methods=["POST"]),
        Route("/api/views/{view_id}.json", endpoint(get_view), methods=["GET"]),
        Route("/api/views/{view_id}.json", endpoint(put_view, write=True), methods=["PUT"]),
        Route("/api/views/{view_id}.json", endpoint(delete_view, write=True), methods=["DELETE"]),
        Route("/api/catalog/v1", endpoint(catalog), methods=["GET"]),
    ]
