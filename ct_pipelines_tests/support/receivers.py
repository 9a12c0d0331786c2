"""Loopback receivers for alert tests: an SMTP server (aiosmtpd) and a webhook (http.server)."""

from __future__ import annotations

import email
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpInbox:
    """Collects every message; with a password, only logins using it are accepted."""

    def __init__(self, password: str | None = None) -> None:
        self.password = password
        self.messages: list[email.message.EmailMessage] = []
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd hook name
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword) and self.password is not None:
            self.logins.append((auth_data.login, auth_data.password))
            return AuthResult(success=auth_data.password == self.password.encode())
        return AuthResult(success=False)


@contextmanager
def smtp_server(inbox: SmtpInbox) -> Iterator[int]:
    """Run ``inbox`` on a free loopback port (with AUTH when it has a password); yields the port."""
    port = free_port()
    auth = {"authenticator": inbox.authenticate, "auth_require_tls": False} if inbox.password else {}
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **auth)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


class WebhookServer(ThreadingHTTPServer):
    """Records each POST as (path, headers, JSON body); paths under /broken answer 500."""

    requests: list[tuple[str, dict[str, str], Any]]

    @property
    def bodies(self) -> list[Any]:
        return [body for _, _, body in self.requests]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class _WebhookHandler(BaseHTTPRequestHandler):
    server: WebhookServer

    def do_POST(self) -> None:  # noqa: N802 - http.server hook name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append((self.path, dict(self.headers), body))
        self.send_response(500 if self.path.startswith("/broken") else 200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def webhook_server() -> Iterator[WebhookServer]:
    server = WebhookServer(("127.0.0.1", 0), _WebhookHandler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
