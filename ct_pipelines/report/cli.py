"""``ct-pipelines report build`` and ``report serve``: the staff reports without Python or Dagster."""

from __future__ import annotations

import functools
import http.server
from pathlib import Path

import click


@click.group("report")
def report_group() -> None:
    """Reports agency staff read in a browser: dataset directory, dataset pages, dictionaries, data.json."""


@report_group.command("build")
@click.option(
    "--catalog",
    "catalog_dir",
    type=click.Path(exists=True, path_type=Path),
    help="Folder of dataset YAML files (default: CT_PIPELINES_CATALOG or the bundled samples).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write the site to (default: <reports folder>/site).",
)
@click.option(
    "--portal-url",
    help="Portal the links and data.json point at (default: CT_PORTAL_DOMAIN, "
    "else the local portal at http://127.0.0.1:8765).",
)
def build(catalog_dir: Path | None, out_dir: Path | None, portal_url: str | None) -> None:
    """Write the report site and data.json (also into the local portal's data folder)."""
    from ct_pipelines.catalog.loader import load_catalog
    from ct_pipelines.core.settings import load_settings
    from ct_pipelines.core.warehouse import recorded_dataset_ids
    from ct_pipelines.report.build import write_reports

    settings = load_settings()
    catalog = load_catalog(catalog_dir or settings.catalog_dir)
    for error in catalog.errors:
        click.echo(f"skipped dataset file: {error}", err=True)
    try:
        if not recorded_dataset_ids(settings):
            raise click.ClickException(
                f"No dataset has run yet: {settings.warehouse_dir} holds no dataset file; run "
                "`ct-pipelines run` first, or set CT_PIPELINES_WAREHOUSE to the warehouse folder."
            )
        result = write_reports(settings, catalog, out_dir=out_dir, portal_url=portal_url)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    for dataset_id in result.busy:
        click.echo(f"{dataset_id}: a run is writing it now; its page was kept, build again after the run")
    click.echo(f"Wrote {len(result.dataset_pages)} dataset pages; open {result.index}")
    click.echo(f"data.json: {result.data_json} and {result.portal_data_json}")
    for dataset_id, reasons in result.data_json_skipped.items():
        click.echo(f"not in data.json: {dataset_id}: {'; '.join(reasons)}")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        return None


def make_server(folder: Path, host: str, port: int) -> http.server.ThreadingHTTPServer:
    """A static file server for ``folder`` (read-only: GET and HEAD only)."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    return http.server.ThreadingHTTPServer((host, port), handler)


@report_group.command("serve")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Interface to listen on (loopback by default)."
)
@click.option("--port", default=8766, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    help="Site folder (default: <reports folder>/site).",
)
@click.option(
    "--allow-remote", is_flag=True, help="Allow a non-loopback --host (anyone on the network can read)."
)
def serve(host: str, port: int, folder: Path | None, allow_remote: bool) -> None:
    """Serve the report site until Ctrl+C."""
    from ct_pipelines.core.settings import load_settings
    from ct_pipelines.portal.cli import is_loopback

    if not is_loopback(host) and not allow_remote:
        raise click.BadParameter(
            f"{host} is not a loopback address; the reports would be readable from other "
            "machines. Use 127.0.0.1, or add --allow-remote if that is intended.",
            param_hint="--host",
        )
    folder = folder or load_settings().reports_dir / "site"
    if not (folder / "index.html").is_file():
        raise click.ClickException(f"No report in {folder}; run `ct-pipelines report build` first.")
    try:
        server = make_server(folder, host, port)
    except OSError as exc:
        raise click.ClickException(
            f"Cannot listen on {host}:{port} ({exc.strerror}); choose another --port."
        ) from exc
    click.echo(f"Reports: http://{host}:{server.server_address[1]}/  (from {folder.resolve()}; Ctrl+C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
