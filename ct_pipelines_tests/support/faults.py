"""Fault injection for the local portal (test support only: it never ships in ``ct_pipelines``),
so publisher retries and error handling can be tested against the failures data.ct.gov actually
produces (429 with Retry-After, 5xx, 413, slow answers, dropped connections, a 202 that sodapy
mistakes for success).

A :class:`FaultPlan` is the portal app's ``interceptor``:
``LocalPortal(path, interceptor=plan)`` (or ``portal.app.interceptor = plan`` on a running one).
Every fault except ``reset_after_apply`` fires before the request is applied, so a client that
retries it is safe; ``reset_after_apply`` applies the write and then drops the connection, to
test that a retried upsert is idempotent.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ct_pipelines.portal.errors import PortalError
from ct_pipelines.portal.http import error_response, json_response

FaultKind = Literal["429", "500", "503", "202", "slow", "413", "reset", "reset_after_apply"]
FAULT_KINDS: tuple[str, ...] = ("429", "500", "503", "202", "slow", "413", "reset", "reset_after_apply")


@dataclass
class FaultRule:
    """One fault: which requests it applies to and when it fires.

    ``at`` lists 1-based numbers among the requests this rule matches (``at=[1, 3]``: the first and
    third matching request); ``probability`` fires at random with ``seed``; with neither it fires on
    every matching request. ``413`` fires only for bodies over ``max_body_bytes`` when that is set.
    """

    kind: FaultKind
    at: Iterable[int] | None = None
    probability: float | None = None
    methods: Iterable[str] | None = None
    path_prefix: str = "/"
    retry_after: int | None = 1
    delay: float = 2.0
    max_body_bytes: int | None = None
    seed: int | None = None
    seen: int = field(default=0, init=False)
    fired: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"Unknown fault kind {self.kind!r}; use one of {', '.join(FAULT_KINDS)}")
        if self.probability is not None and not 0 <= self.probability <= 1:
            raise ValueError("probability must be between 0 and 1")
        self.at = set(self.at) if self.at is not None else None
        self.methods = {m.upper() for m in self.methods} if self.methods is not None else None
        self._random = random.Random(self.seed)

    def matches(self, method: str, path: str) -> bool:
        return (self.methods is None or method.upper() in self.methods) and path.startswith(self.path_prefix)

    def decide(self, body_size: int | None) -> bool:
        """Count this matching request and say whether the fault fires on it."""
        self.seen += 1
        if self.kind == "413" and self.max_body_bytes is not None and (body_size or 0) <= self.max_body_bytes:
            return False
        if self.at is not None:
            fire = self.seen in self.at
        elif self.probability is not None:
            fire = self._random.random() < self.probability
        else:
            fire = True
        self.fired += fire
        return fire


@dataclass
class FaultPlan:
    """The rules in force; the first rule that fires decides the fault of a request."""

    rules: list[FaultRule] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def choose(self, method: str, path: str, body_size: int | None) -> FaultRule | None:
        with self._lock:
            chosen = None
            for rule in self.rules:
                if rule.matches(method, path) and rule.decide(body_size) and chosen is None:
                    chosen = rule
            return chosen

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    @property
    def fired(self) -> int:
        return sum(rule.fired for rule in self.rules)

    async def __call__(self, scope: Scope, receive: Receive, send: Send, app: ASGIApp) -> None:
        """The portal's interceptor hook: apply the chosen fault, or pass the request on."""
        rule = self.choose(scope["method"], scope["path"], _content_length(scope))
        if rule is None:
            await app(scope, receive, send)
        elif rule.kind == "slow":
            await asyncio.sleep(rule.delay)
            await app(scope, receive, send)
        elif rule.kind == "reset":
            _drop_connection(send)
        elif rule.kind == "reset_after_apply":
            await app(scope, receive, _discard)
            _drop_connection(send)
        else:
            await _fault_response(rule)(scope, receive, send)


async def _discard(message: Message) -> None:
    """Swallow the answer of a request whose connection is then dropped."""


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            return int(value)
    return None


def _drop_connection(send: Send) -> None:
    """Abort the TCP connection so the client sees a reset (requests: ConnectionError). Works with
    uvicorn, whose ``send`` is a bound method of the request cycle that owns the transport; the
    portal hands interceptors a status recorder whose ``inner`` is that ``send``."""
    raw = getattr(send, "inner", send)
    cycle = getattr(raw, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise ConnectionResetError("fault injection: connection dropped")
    cycle.disconnected = True  # nothing more is written and uvicorn logs no error
    transport.abort()


def _fault_response(rule: FaultRule) -> Response:
    if rule.kind == "202":
        body = {
            "message": "Your request is being processed; retry it to get the result",
            "code": "processing",
        }
        return json_response(body, 202)
    messages = {
        "429": ("too_many_requests", "Too many requests; slow down and retry after the Retry-After delay"),
        "500": ("internal_error", "Internal server error (injected fault)"),
        "503": ("service_unavailable", "Service unavailable; retry later"),
        "413": ("request_too_large", "Request entity too large; send fewer rows per request"),
    }
    code, message = messages[rule.kind]
    headers = {}
    if rule.kind in ("429", "503") and rule.retry_after is not None:
        headers["Retry-After"] = str(rule.retry_after)
    return error_response(PortalError(int(rule.kind), code, message), headers)
