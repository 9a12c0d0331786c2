"""``ct-pipelines portal serve``: run the local SODA-compatible portal in the foreground."""

from __future__ import annotations

import ipaddress
import os
import secrets
import signal
import socket
import sys
from pathlib import Path

import click

from ct_pipelines.portal.common import write_private
from ct_pipelines.portal.running import PASSWORD_ENV, PASSWORD_FILE, announce, withdraw


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _password_for(data_dir: Path, given: str | None) -> tuple[str, str]:
    """(password, where it came from). Without one, a random password is kept in a private file in
    the data directory so it is never printed but can still be read by the person who started it."""
    if given:
        return given, "--password or " + PASSWORD_ENV
    path = data_dir / PASSWORD_FILE
    if not path.exists():
        write_private(path, (secrets.token_urlsafe(18) + "\n").encode())
    return path.read_text().strip(), f"the file {path}"


@click.group("portal")
def portal() -> None:
    """A local stand-in for data.ct.gov (Socrata) to publish to and audit without touching the real portal."""


@portal.command("serve")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Interface to listen on (loopback by default)."
)
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--data",
    "data_dir",
    default=Path("data/portal"),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory holding the portal's DuckDB file.",
)
@click.option("--username", default="ct-pipelines", show_default=True, help="Basic-auth user for writes.")
@click.option(
    "--password", envvar=PASSWORD_ENV, default=None, help=f"Basic-auth password (or set {PASSWORD_ENV})."
)
@click.option(
    "--allow-remote", is_flag=True, help="Allow a non-loopback --host (anyone on the network can read)."
)
def serve(
    host: str, port: int, data_dir: Path, username: str, password: str | None, allow_remote: bool
) -> None:
    """Serve the Socrata API subset that publishing and auditing use, until Ctrl+C."""
    import uvicorn

    from ct_pipelines.portal.common import private_dir
    from ct_pipelines.portal.server import create_app
    from ct_pipelines.portal.store import PortalStore

    if not is_loopback(host) and not allow_remote:
        raise click.BadParameter(
            f"{host} is not a loopback address; the portal would be reachable from other machines. "
            "Use 127.0.0.1, or add --allow-remote if that is intended.",
            param_hint="--host",
        )
    private_dir(data_dir)
    secret, source = _password_for(data_dir, password)
    try:
        sock = socket.create_server((host, port))
    except OSError as exc:
        raise click.ClickException(
            f"Cannot listen on {host}:{port} ({exc.strerror}); choose another --port."
        ) from exc
    bound_port = sock.getsockname()[1]
    # while serving, everything the portal creates (also the DuckDB log, which DuckDB recreates
    # after checkpoints) is owner-only from the start
    previous_umask = os.umask(0o077)
    try:
        store = PortalStore(data_dir)
        domain = f"{host}:{bound_port}"
        app = create_app(store, username, secret, domain=domain)
        click.echo(f"Local portal: browse http://{domain}/  (data in {data_dir.resolve()})")
        click.echo(f"sodapy: Socrata('{domain}', None, username='{username}', password=<from {source}>,")
        click.echo(
            "               session_adapter={'prefix': 'http://', 'adapter': requests.adapters.HTTPAdapter()})"
        )
        # runs find this server through the file and publish to it instead of opening the same DuckDB file
        announce(data_dir, host, bound_port, username)
        # uvicorn shuts down on SIGTERM and then raises it again with the handler found at start: the
        # default one ended the process before `finally`, leaving the server file behind
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off")).run(sockets=[sock])
        finally:
            withdraw(data_dir)
            store.close()
    finally:
        os.umask(previous_umask)
