"""A real SFTP server on loopback for remote-landing tests: asyncssh on its own event loop in a thread,
serving one folder (chrooted) with password authentication and a host key generated per server."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncssh

USERNAME, PASSWORD = "agency", "s3cret-Landing!"


@dataclass(frozen=True)
class SftpServer:
    port: int
    fingerprint: str  # SHA256:... as ssh-keygen -l prints it
    root: Path  # what the server shows as /

    def url(self, path: str) -> str:
        return f"sftp://127.0.0.1:{self.port}{path}"


class _Auth(asyncssh.SSHServer):
    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return (username, password) == (USERNAME, PASSWORD)


@contextmanager
def sftp_server(root: Path) -> Iterator[SftpServer]:
    """Serve ``root`` over SFTP on 127.0.0.1 at a free port until the block ends."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="sftp-server", daemon=True)
    thread.start()
    key = asyncssh.generate_private_key("ssh-ed25519")

    async def start() -> asyncssh.SSHAcceptor:
        return await asyncssh.listen(
            "127.0.0.1",
            0,
            server_host_keys=[key],
            server_factory=_Auth,
            sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=str(root).encode()),
            allow_scp=False,
        )

    async def stop(acceptor: asyncssh.SSHAcceptor) -> None:
        acceptor.close()
        await acceptor.wait_closed()
        sessions = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for session in sessions:  # a client that has not hung up yet
            session.cancel()
        await asyncio.gather(*sessions, return_exceptions=True)

    acceptor = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=30)
    try:
        yield SftpServer(acceptor.get_port(), key.get_fingerprint("sha256"), root)
    finally:
        asyncio.run_coroutine_threadsafe(stop(acceptor), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()
