"""Attachments of a dataset: ``POST /api/views/{id}/files`` takes a multipart form (the first part
with a filename, preferably named ``file``) or a raw body (name from ``?filename=``), answers
``{"file": assetId, "filename": ...}`` and lists it in ``metadata.attachments``; ``GET
/api/views/{id}/files/{assetId}`` downloads it (sodapy's ``download_attachments`` shape). Downloads
are always served as attachments with ``nosniff``, so an uploaded page never runs on the portal."""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import HTTP

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ct_pipelines.portal.attachments import MAX_ATTACHMENT_BYTES
from ct_pipelines.portal.errors import PortalError, bad_request
from ct_pipelines.portal.http import Context, json_response

_SERVED_TYPES = {"application/pdf", "text/csv", "text/plain", "application/json", "application/zip"}


def parse_upload(content_type: str, body: bytes, filename: str | None) -> tuple[str | None, str, bytes]:
    """(filename, content type, bytes) of an upload, multipart or raw."""
    if not content_type.lower().startswith("multipart/form-data"):
        return filename, content_type.split(";")[0].strip() or "application/octet-stream", body
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    parts = [p for p in message.iter_parts() if p.get_filename()] if message.is_multipart() else []
    if not parts:
        raise bad_request(
            "The multipart body has no file part; send the file as a part named 'file' with a filename"
        )
    part = next((p for p in parts if p.get_param("name", header="content-disposition") == "file"), parts[0])
    return part.get_filename(), part.get_content_type(), part.get_payload(decode=True) or b""


def routes(ctx: Context) -> list[Route]:
    """The attachment routes over ``ctx.store``."""
    store = ctx.store

    async def upload(request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_ATTACHMENT_BYTES + 64 * 1024:
            raise PortalError(
                413, "request_too_large", f"Attachments are limited to {MAX_ATTACHMENT_BYTES:,} bytes"
            )
        body = await request.body()
        filename, content_type, content = parse_upload(
            request.headers.get("content-type", ""), body, request.query_params.get("filename")
        )
        answer = await run_in_threadpool(
            store.add_attachment, request.path_params["view_id"], filename, content_type, content
        )
        return json_response(answer)

    async def download(request: Request) -> Response:
        filename, content_type, content = await run_in_threadpool(
            store.get_attachment, request.path_params["view_id"], request.path_params["asset_id"]
        )
        headers = {
            "Content-Disposition": f'attachment; filename="{filename}"',  # safe_filename: no quotes
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox",
        }
        media_type = content_type if content_type in _SERVED_TYPES else "application/octet-stream"
        return Response(content, media_type=media_type, headers=headers)

    endpoint = ctx.endpoint
    return [
        Route("/api/views/{view_id}/files", endpoint(upload, write=True), methods=["POST"]),
        Route("/api/views/{view_id}/files/{asset_id}", endpoint(download), methods=["GET"]),
    ]
