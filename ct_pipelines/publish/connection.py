"""A sodapy client configured for bulk publishing: retries, long timeouts, raw JSON bodies, no leaks.

sodapy alone sends one request with a 10 s timeout and no retries, so a busy portal turns into a
failed run. Everything here still goes through sodapy's session, auth and status handling; we only
mount a urllib3 ``Retry`` adapter, add a raw-bytes payload path and remember the last response (for
202 answers and request ids, which sodapy hides).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from sodapy import Socrata
from sodapy import utils as sodapy_utils
from urllib3.util.retry import Retry

RETRY_STATUSES = (429, 500, 502, 503, 504)
REQUEST_ID_HEADER = "X-Socrata-RequestId"
MASK = "***"


class PublishError(RuntimeError):
    """An expected publishing failure with a message meant for people (never contains secrets)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before giving up; tests shrink the waits, production keeps the defaults."""

    attempts: int = 6
    backoff_factor: float = 1.0
    backoff_max: float = 120.0
    accepted_polls: int = 10  # how many times to resend after a 202 "still processing"
    accepted_wait: float = 2.0


class PublishingClient(Socrata):
    """sodapy's client plus a pre-serialized JSON body path and memory of the last response."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.last_response: requests.Response | None = None
        self.session.hooks["response"].append(self._remember)

    def _remember(self, response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        self.last_response = response
        return response

    def _perform_update(self, method: str, resource: str, payload: Any) -> Any:
        """Accept bytes (JSON DuckDB already wrote) as well as sodapy's dict/list/file payloads."""
        if isinstance(payload, bytes | bytearray):
            return self._perform_request(
                method, resource, data=bytes(payload), headers={"Content-Type": "application/json"}
            )
        return super()._perform_update(method, resource, payload)


class PortalConnection:
    """Where and as whom to publish; builds the configured sodapy client on first use."""

    def __init__(
        self,
        domain: str,
        username: str | None = None,
        password: str | None = None,
        app_token: str | None = None,
        scheme: str = "https",
        timeout: float = 300.0,
        retries: RetryPolicy | None = None,
        target: str | None = None,
    ) -> None:
        if scheme not in ("http", "https"):
            raise ValueError("scheme must be 'http' (local portal) or 'https'")
        self.domain = domain.removeprefix("https://").removeprefix("http://").rstrip("/")
        # What publish state is keyed by: the domain, or a stable name for a portal whose address changes
        # between runs (the local portal listens on a fresh port each time).
        self.target = target or self.domain
        self.username = username
        self._password = password
        self._app_token = app_token
        self.scheme = scheme
        self.timeout = float(timeout)
        self.retries = retries or RetryPolicy()
        self._client: PublishingClient | None = None

    def __repr__(self) -> str:
        return f"PortalConnection(domain={self.domain!r}, scheme={self.scheme!r}, username={self.username!r})"

    @property
    def prefix(self) -> str:
        return f"{self.scheme}://"

    @property
    def client(self) -> PublishingClient:
        if self._client is None:
            self._client = self.new_client()
        return self._client

    def new_client(self) -> PublishingClient:
        """A separately configured client (own session): requests.Session is not guaranteed
        thread-safe, so each thread sending chunks at the same time gets one. The caller closes it."""
        client = PublishingClient(
            self.domain,
            self._app_token,
            username=self.username,
            password=self._password,
            session_adapter={"prefix": self.prefix, "adapter": self._adapter(writes_retry=True)},
            timeout=self.timeout,
        )
        # sodapy sends JSON without a Content-Type; Socrata documents application/json.
        client.session.headers.update(
            {"Content-Type": "application/json", "User-Agent": "ct-pipelines publisher"}
        )
        return client

    def _adapter(self, writes_retry: bool) -> HTTPAdapter:
        """Retry 429/5xx, timeouts and resets for every method (our writes are idempotent upserts or
        full replaces). ``writes_retry=False`` is for non-idempotent calls such as creating a dataset:
        only refusals that prove nothing was done (429, failed connects) are retried."""
        policy = self.retries
        retry = Retry(
            total=policy.attempts,
            connect=policy.attempts,
            read=policy.attempts if writes_retry else 0,
            other=policy.attempts if writes_retry else 0,
            status=policy.attempts,
            status_forcelist=RETRY_STATUSES if writes_retry else (429,),
            allowed_methods=frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"}),
            backoff_factor=policy.backoff_factor,
            backoff_max=policy.backoff_max,
            respect_retry_after_header=True,
            raise_on_status=False,  # let sodapy turn the final answer into a readable HTTPError
        )
        return HTTPAdapter(max_retries=retry)

    @contextmanager
    def without_write_retries(self) -> Iterator[PublishingClient]:
        """Temporarily mount a cautious adapter for a call that must not be repeated blindly."""
        client = self.client
        client.session.mount(self.prefix, self._adapter(writes_retry=False))
        try:
            yield client
        finally:
            client.session.mount(self.prefix, self._adapter(writes_retry=True))

    def url(self, path: str) -> str:
        return f"{self.prefix}{self.domain}{path}"

    def patch_json(self, path: str, body: dict[str, Any], params: dict[str, str] | None = None) -> Any:
        """PATCH through sodapy's session (sodapy has no PATCH), with its status handling."""
        response = self.client.session.patch(
            self.url(path),
            data=json.dumps(body).encode("utf-8"),
            params=params,
            headers={"Content-Type": "application/json", "X-Socrata-Host": self.domain},
            timeout=self.timeout,
        )
        if response.status_code not in (200, 202):
            sodapy_utils.raise_for_status(response)
        return response.json() if response.text else {}

    def get_json(self, path: str) -> Any:
        """GET a JSON document sodapy has no call for (the Metadata API), with its status handling."""
        response = self.client.session.get(
            self.url(path), headers={"X-Socrata-Host": self.domain}, timeout=self.timeout
        )
        if response.status_code != 200:
            sodapy_utils.raise_for_status(response)
        return response.json() if response.text else {}

    def last_request_id(self, client: PublishingClient | None = None) -> str | None:
        """Request id of the last answer ``client`` (default: this connection's own) received."""
        response = (client or self.client).last_response
        return response.headers.get(REQUEST_ID_HEADER) if response is not None else None

    def scrub(self, text: str) -> str:
        """Remove the password and app token from any text bound for logs, errors or metadata."""
        for secret in (self._password, self._app_token):
            if secret:
                text = text.replace(secret, MASK)
        return text

    def describe_failure(self, action: str, exc: BaseException) -> PublishError:
        """A readable, secret-free error for a failed HTTP call (status, server message, request id)."""
        detail = str(exc)
        response = getattr(exc, "response", None)
        if isinstance(exc, requests.exceptions.RetryError | requests.exceptions.ConnectionError):
            detail = f"the portal at {self.domain} could not be reached after retries ({type(exc).__name__})"
        elif isinstance(exc, requests.exceptions.Timeout):
            detail = f"the portal did not answer within {self.timeout:.0f} s"
        if response is not None and response.status_code == 413:
            detail += "; the request was too large: lower publish.chunk_rows or publish.chunk_bytes in the dataset YAML"
        if response is not None and response.headers.get(REQUEST_ID_HEADER):
            detail += f" (request id {response.headers[REQUEST_ID_HEADER]})"
        return PublishError(self.scrub(f"{action} failed: {detail}"))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> PortalConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_seconds(policy: RetryPolicy, attempt: int) -> float:
    """Exponential wait for 202 polling, capped like the HTTP retries."""
    return min(policy.accepted_wait * (2**attempt), policy.backoff_max)


def sleep_before_poll(policy: RetryPolicy, attempt: int) -> None:
    time.sleep(wait_seconds(policy, attempt))
