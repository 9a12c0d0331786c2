"""Browse pages (``/``, ``/browse``, ``/d/{id}``) and ``/data.json``. Every value on a page goes
through :func:`http.esc`: dataset names, descriptions and cells are whatever a publisher sent."""

from __future__ import annotations

import json

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ct_pipelines.portal.common import is_four_by_four
from ct_pipelines.portal.errors import PortalError
from ct_pipelines.portal.http import Context, error_response, esc, page

DATA_JSON = "data.json"


class _PageRoutes:
    """The page routes over ``ctx.store``."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.store = self.ctx.store

    async def home(self, request: Request) -> Response:
        views = sorted(
            await run_in_threadpool(self.store.list_views), key=lambda v: (v.get("name") or "").lower()
        )
        items = "".join(
            f'<li><a href="/d/{esc(v["id"])}">{esc(v.get("name") or v["id"])}</a> '
            f"<small>{esc(v['id'])} · {esc(v.get('category') or 'no category')} · "
            f"{esc(v.get('publicationStage'))}</small></li>"
            for v in views[:1000]
        )
        note = f"<p>Showing 1,000 of {len(views):,}; use /api/catalog/v1.</p>" if len(views) > 1000 else ""
        return page(
            "Local portal", f"<h1>Local portal</h1><p>{len(views):,} datasets</p>{note}<ul>{items}</ul>"
        )

    async def dataset_page(self, request: Request) -> Response:
        view_id = request.path_params["view_id"]
        try:
            if not is_four_by_four(view_id):
                raise PortalError(404, "not_found", "Not found")
            view = await run_in_threadpool(self.store.get_view, view_id)
        except PortalError:
            return page("Not found", f"<h1>No dataset {esc(view_id[:64])}</h1>", 404)
        result = await run_in_threadpool(self.store.query, view_id, {"$limit": "20"})
        header = "".join(f"<th>{esc(f)}</th>" for f in result.fields)
        body_rows = "".join(
            "<tr>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>" for row in result.rows
        )
        facts = {
            k: view.get(k) for k in ("description", "category", "tags", "attribution", "publicationStage")
        }
        facts["rows"] = await run_in_threadpool(self.store.row_count, view_id)
        facts["custom_fields"] = view.get("metadata", {}).get("custom_fields")
        listing = "".join(f"<dt>{esc(k)}</dt><dd>{esc(json.dumps(v))}</dd>" for k, v in facts.items())
        link = f"/resource/{esc(view_id)}.json"
        content = (
            f"<p><a href='/'>All datasets</a></p><h1>{esc(view['name'])}</h1><dl>{listing}</dl>"
            f"<p>API: <a href='{link}'>{link}</a></p>"
            f"<table border=1><tr>{header}</tr>{body_rows}</table>"
        )
        return page(view["name"], content)

    async def data_json(self, request: Request) -> Response:
        """The DCAT-US catalog the reports job writes to ``<data dir>/data.json``; 404 until it does."""
        path = self.store.data_dir / DATA_JSON
        try:
            body = await run_in_threadpool(path.read_bytes)
        except FileNotFoundError:
            return error_response(
                PortalError(
                    404, "not_found", f"No {DATA_JSON} in the portal's data folder yet; publish one first"
                )
            )
        try:
            json.loads(body)
        except ValueError:
            # a broken catalog must not be served as if it were one
            return error_response(
                PortalError(
                    500,
                    "internal_error",
                    f"{DATA_JSON} in the portal's data folder is not valid JSON; "
                    "regenerate it with the reports job",
                )
            )
        return Response(body, media_type="application/json; charset=utf-8")


def routes(ctx: Context) -> list[Route]:
    """The page routes over ``ctx.store``."""
    r = _PageRoutes(ctx)
    return [
        Route("/", ctx.endpoint(r.home), methods=["GET"]),
        Route("/browse", ctx.endpoint(r.home), methods=["GET"]),
        Route("/d/{view_id}", r.dataset_page, methods=["GET"]),
        Route("/data.json", r.data_json, methods=["GET"]),
    ]
