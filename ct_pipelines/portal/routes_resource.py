"""Routes of ``/resource`` (SODA 2): SoQL reads as JSON or CSV, upsert (POST) and replace (PUT)
of JSON or CSV bodies, and single rows by row identifier or ``:id``."""

from __future__ import annotations

import json
from email.utils import formatdate

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ct_pipelines.portal.common import parse_csv_rows
from ct_pipelines.portal.errors import bad_request
from ct_pipelines.portal.http import Context, csv_text, is_csv, json_response, read_body_text


class _ResourceRoutes:
    """The row routes over ``ctx.store``."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.store = self.ctx.store

    async def get_rows(self, request: Request) -> Response:
        view_id, fmt = request.path_params["view_id"], request.path_params["fmt"]
        if fmt not in ("json", "csv"):
            raise bad_request(f"Unsupported format .{fmt[:20]}; use .json or .csv")
        result = await run_in_threadpool(self.store.query, view_id, dict(request.query_params))
        view = self.store.get_view(view_id)
        headers = {
            "X-SODA2-Fields": json.dumps(result.fields),
            "X-SODA2-Types": json.dumps(result.types),
            "Last-Modified": formatdate(view.get("rowsUpdatedAt") or 0, usegmt=True),
        }
        if fmt == "csv":
            body = csv_text(result.fields, result.rows)
            return Response(body, media_type="text/csv; charset=utf-8", headers=headers)
        return json_response(result.records(), headers=headers)

    async def write_rows(self, request: Request) -> Response:
        view_id = request.path_params["view_id"]
        if request.path_params["fmt"] not in ("json", "csv"):
            raise bad_request("Send rows to /resource/{id}.json")
        replace = request.method == "PUT"
        body = await read_body_text(request)
        if is_csv(request):
            rows = parse_csv_rows(body)
            write = self.store.replace if replace else self.store.upsert
            return json_response(await run_in_threadpool(write, view_id, rows))
        # DuckDB parses the JSON text in the store: no Python object per row
        write_json = self.store.replace_json if replace else self.store.upsert_json
        return json_response(await run_in_threadpool(write_json, view_id, body))

    async def get_row(self, request: Request) -> Response:
        row = await run_in_threadpool(
            self.store.get_row, request.path_params["view_id"], request.path_params["row"]
        )
        return json_response(row)

    async def delete_row(self, request: Request) -> Response:
        view_id, row = request.path_params["view_id"], request.path_params["row"]
        return json_response(await run_in_threadpool(self.store.delete_row, view_id, row))


def routes(ctx: Context) -> list[Route]:
    """The row routes over ``ctx.store``."""
    r = _ResourceRoutes(ctx)
    endpoint = ctx.endpoint
    return [
        Route("/resource/{view_id}/{row}.json", endpoint(r.get_row), methods=["GET"]),
        Route("/resource/{view_id}/{row}.json", endpoint(r.delete_row, write=True), methods=["DELETE"]),
        Route("/resource/{view_id}.{fmt}", endpoint(r.get_rows), methods=["GET"]),
        Route("/resource/{view_id}.{fmt}", endpoint(r.write_rows, write=True), methods=["POST", "PUT"]),
    ]
