"""A throwaway PostgreSQL server for tests: initdb into a temporary folder, pg_ctl start on loopback.

initdb refuses to run as root, so as root the server runs as the ``postgres`` system user (Debian's
postgresql package creates it) through ``runuser``, else as ``nobody``. Authentication is ``trust`` on
127.0.0.1 only; nothing listens on another interface.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ct_pipelines_tests.support.receivers import free_port

SUPERUSER = "ct_test"
DATABASE = "dagster"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server can be started here; the message says why and what to install."""


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    username: str
    database: str
    password: str = "unused-with-trust-auth"

    @property
    def url(self) -> str:
        return f"postgresql://{self.username}:{self.password}@{self.host}:{self.port}/{self.database}"

    def env(self) -> dict[str, str]:
        """The DAGSTER_PG_* variables that deploy/dagster.production.yaml reads."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_DB": self.database,
            "DAGSTER_PG_USERNAME": self.username,
            "DAGSTER_PG_PASSWORD": self.password,
        }


def find_bindir() -> Path:
    """The folder with initdb and pg_ctl: ``pg_config --bindir``, else the newest /usr/lib/postgresql/*/bin."""
    candidates: list[Path] = []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(Path(out.stdout.strip()))
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    raise PostgresUnavailable(
        "no initdb/pg_ctl found (pg_config --bindir, /usr/lib/postgresql/*/bin); "
        "install the server with `apt-get install -y postgresql`"
    )


def _server_user() -> str | None:
    """None to run as ourselves; as root, a system user that initdb accepts."""
    if os.geteuid() != 0:
        return None
    if not shutil.which("runuser"):
        raise PostgresUnavailable("running as root and `runuser` is missing, so initdb cannot drop root")
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise PostgresUnavailable("running as root and neither a `postgres` nor a `nobody` user exists")


def _run(cmd: list[str], user: str | None, timeout: float = 60) -> None:
    full = ["runuser", "-u", user, "--", *cmd] if user else cmd
    done = subprocess.run(full, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise PostgresUnavailable(
            f"`{' '.join(cmd[:2])}` failed: {(done.stderr or done.stdout).strip()[-400:]}"
        )


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a server with one database (``dagster``) and stop it, deleting its files, on exit."""
    bindir = find_bindir()
    user = _server_user()
    root = Path(tempfile.mkdtemp(prefix="ct-pg-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    if user:
        entry = pwd.getpwnam(user)
        for path in (root, sockets):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    port = free_port()
    ctl = str(bindir / "pg_ctl")
    try:
        _run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            user,
        )
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets} -c fsync=off -c max_connections=100"
        _run(
            [ctl, "-D", str(data), "-o", options, "-l", str(root / "server.log"), "-w", "-t", "60", "start"],
            user,
        )
        try:
            yield create_database(PostgresServer("127.0.0.1", port, SUPERUSER, "postgres"), DATABASE)
        finally:
            _run([ctl, "-D", str(data), "-m", "fast", "-w", "stop"], user)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def create_database(server: PostgresServer, name: str) -> PostgresServer:
    """A new empty database on the same server (the server's own first connection waits for it to start)."""
    import psycopg2

    deadline = time.monotonic() + 30
    while True:
        try:
            con = psycopg2.connect(
                host=server.host, port=server.port, user=server.username, dbname="postgres"
            )
            break
        except psycopg2.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    con.autocommit = True
    with con.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    con.close()
    return PostgresServer(server.host, server.port, server.username, name)


def query(server: PostgresServer, sql: str, params: tuple = ()) -> list[tuple]:
    """Rows of one query against the test database (a fresh connection each time)."""
    import psycopg2

    con = psycopg2.connect(host=server.host, port=server.port, user=server.username, dbname=server.database)
    try:
        with con.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    finally:
        con.close()
