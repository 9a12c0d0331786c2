"""Step 4 of a publish: send the change set's chunks, a few in flight, each recorded in the ledger.

Upsert chunks touch disjoint row keys and resending one is harmless, so the ledger only needs to
know which chunks were answered: after a crash the recorded ones are skipped and the rest resent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Generator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import requests

from ct_pipelines.core.sql import quote_ident
from ct_pipelines.publish import state
from ct_pipelines.publish.connection import (
    PortalConnection,
    PublishError,
    PublishingClient,
    sleep_before_poll,
)
from ct_pipelines.publish.verify import PublishVerificationError

DELETE_CHECK_BATCH = 200

Progress = Callable[[str], None]


def read_counters(answer: Any) -> dict[str, int]:
    """Counters from an upsert/replace answer, in either key style Socrata uses."""
    if not isinstance(answer, dict):
        raise PublishError(
            f"The portal answered a data upload with something unexpected ({type(answer).__name__})."
        )

    def pick(*names: str) -> int:
        return int(next((answer[n] for n in names if n in answer and answer[n] is not None), 0))

    return {
        "created": pick("Rows Created", "rows_created"),
        "updated": pick("Rows Updated", "rows_updated"),
        "deleted": pick("Rows Deleted", "rows_deleted"),
        "errors": pick("Errors", "errors"),
    }


@dataclass
class Tally:
    """What the portal said it did, summed over the chunks of one publish (resumed ones included)."""

    created: int = 0
    updated: int = 0
    deleted: int = 0
    errors: int = 0
    rows_sent: int = 0
    chunks_sent: int = 0
    request_ids: list[str] = field(default_factory=list)

    def add(self, counters: dict[str, int], rows: int, request_id: str | None) -> None:
        self.created += counters["created"]
        self.updated += counters["updated"]
        self.deleted += counters["deleted"]
        self.errors += counters["errors"]
        self.rows_sent += rows
        self.chunks_sent += 1
        if request_id:
            self.request_ids.append(request_id)

    def counters(self) -> dict[str, int]:
        return {
            "created": self.created,
            "updated": self.updated,
            "deleted": self.deleted,
            "errors": self.errors,
        }

    def describe(self) -> str:
        return f"created {self.created:,}, updated {self.updated:,}, deleted {self.deleted:,}, errors {self.errors:,}"


@dataclass(frozen=True)
class _Answer:
    """What one chunk's request brought back (read on the worker thread that sent it)."""

    counters: dict[str, int]
    request_id: str | None


def _send_body(
    portal: PortalConnection, client: PublishingClient, four_by_four: str, mode: str, body: bytes
) -> _Answer:
    """One upsert (or replace) with the bounded 202 loop sodapy lacks; HTTP retries live in the adapter."""
    send = client.replace if mode == "replace" else client.upsert
    for attempt in range(portal.retries.accepted_polls + 1):
        answer = send(four_by_four, body)
        last = client.last_response
        if last is None or last.status_code != 202:
            return _Answer(read_counters(answer), portal.last_request_id(client))
        if attempt < portal.retries.accepted_polls:
            sleep_before_poll(portal.retries, attempt)
    raise PublishError(
        f"The portal kept answering '202 still processing' for {four_by_four} after "
        f"{portal.retries.accepted_polls} tries; run the publish again to resume."
    )


class _ChunkSender:
    """Sends up to ``workers`` chunks at once so the portal applies one while the next is built and
    travels. Each worker thread has its own sodapy client (a requests.Session is not guaranteed
    thread-safe); DuckDB is never touched here."""

    def __init__(self, portal: PortalConnection, four_by_four: str, mode: str, workers: int) -> None:
        self._portal, self._four_by_four, self._mode = portal, four_by_four, mode
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="publish-chunk")
        self._local = threading.local()
        self._clients: list[PublishingClient] = []
        self._clients_lock = threading.Lock()

    def _client(self) -> PublishingClient:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._portal.new_client()
            with self._clients_lock:
                self._clients.append(client)
        return client

    def _send(self, body: bytes) -> _Answer:
        return _send_body(self._portal, self._client(), self._four_by_four, self._mode, body)

    def submit(self, body: bytes) -> Future[_Answer]:
        return self._pool.submit(self._send, body)

    def close(self) -> None:
        """Wait for requests still in flight (an interrupted publish must not leave a late write that
        could land after the resumed one), then close every worker's session."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        for client in self._clients:
            client.close()

    def __enter__(self) -> _ChunkSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _soql_literal(key_json: str) -> str:
    value = json.loads(key_json)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return json.dumps(value)


def _already_deleted(
    con: duckdb.DuckDBPyConnection,
    portal: PortalConnection,
    run: dict[str, Any],
    pending: str,
    first_seq: int,
    last_seq: int,
    errors: int,
) -> int:
    """How many reported errors are deletes of rows that are already gone.

    A chunk resent after its answer was lost (connection reset after the portal applied it) deletes
    the same rows twice, and the portal counts the second delete as an error. When every delete of
    the chunk is confirmed absent on the portal, those errors are harmless."""
    key_field = run.get("key_field")
    deleted = [
        r[0]
        for r in con.execute(
            f"SELECT row_key FROM {pending} WHERE op = 'delete' AND seq BETWEEN ? AND ?",
            [first_seq, last_seq],
        ).fetchall()
    ]
    if not key_field or not deleted or errors > len(deleted):
        return 0
    ident = quote_ident(key_field).replace('"', "`")
    for start in range(0, len(deleted), DELETE_CHECK_BATCH):
        listed = ", ".join(_soql_literal(k) for k in deleted[start : start + DELETE_CHECK_BATCH])
        try:
            still_there = portal.client.get(
                run["four_by_four"],
                select=key_field,
                where=f"{ident} in ({listed})",
                limit=DELETE_CHECK_BATCH,
            )
        except requests.exceptions.RequestException as exc:
            raise portal.describe_failure(f"Checking deleted rows of {run['four_by_four']}", exc) from None
        if still_there:
            return 0
    return errors


def _chunk_bodies(
    con: duckdb.DuckDBPyConnection, pending: str, seq_ranges: list[tuple[int, int]]
) -> Generator[bytes, None, None]:
    """Request bodies of the chunks, in order. DuckDB writes each one on a cursor of its own while
    the previous chunk is in flight, so building bodies costs the publish no wall time."""
    if not seq_ranges:
        return
    reader = con.cursor()
    # joined here, not by string_agg(body ORDER BY seq): DuckDB's ordered aggregates cannot spill, and a
    # 10 MB chunk of 3,000-column rows ran out of the memory they get
    sql = f"SELECT body FROM {pending} WHERE seq BETWEEN ? AND ? ORDER BY seq"

    def build(first_seq: int, last_seq: int) -> bytes:
        bodies = reader.execute(sql, [first_seq, last_seq]).fetchall()
        return ("[" + ",".join(body for (body,) in bodies) + "]").encode("utf-8")

    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            ahead = pool.submit(build, *seq_ranges[0])
            for following in [*seq_ranges[1:], None]:
                body = ahead.result()
                if following is not None:
                    ahead = pool.submit(build, *following)  # built while ``body`` is being sent
                yield body
    finally:
        reader.close()


@dataclass(frozen=True)
class Chunk:
    index: int
    first_seq: int
    last_seq: int
    row_count: int
    first_key: str | None
    last_key: str | None


@dataclass
class SendOptions:
    """How one publish sends: chunks in flight, and who hears about each applied chunk."""

    max_in_flight: int = 1
    progress: Progress | None = None
    after_chunk: Callable[[int], None] | None = None  # tests use it to simulate a crash


def send_run(
    con: duckdb.DuckDBPyConnection,
    portal: PortalConnection,
    run: dict[str, Any],
    run_id: str,
    tally: Tally,
    options: SendOptions,
) -> int:
    """Send every chunk of ``run`` the ledger does not list as applied, then promote the snapshot;
    returns how many chunks were skipped as already applied.

    Up to ``max_in_flight`` chunks travel at once and each is recorded (on this thread, which owns
    ``con``) as its answer arrives: after a crash, recorded chunks are skipped and those that were in
    flight are sent again. After a failure no new chunk starts, the answers still in flight are
    recorded, and the failure of the lowest chunk is raised."""
    chunks = [
        Chunk(*row)
        for row in con.execute(
            "SELECT chunk_index, first_seq, last_seq, row_count, first_key, last_key FROM publish_chunks "
            "WHERE publish_id = ? ORDER BY chunk_index",
            [run["publish_id"]],
        ).fetchall()
    ]
    done = state.applied_chunks(con, run["publish_id"])
    to_send = [chunk for chunk in chunks if chunk.index not in done]
    workers = 1 if run["mode"] == "replace" else max(1, min(options.max_in_flight, len(to_send)))
    _RunSender(con, portal, run, run_id, tally, options, len(chunks)).send(to_send, workers)
    state.promote_snapshot(con, run, datetime.now())
    return len(done)


class _RunSender:
    """The in-flight loop of :func:`send_run`: submit, collect answers, record them, refill."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        portal: PortalConnection,
        run: dict[str, Any],
        run_id: str,
        tally: Tally,
        options: SendOptions,
        chunk_total: int,
    ) -> None:
        self.con, self.portal, self.run, self.run_id = con, portal, run, run_id
        self.tally, self.options, self.chunk_total = tally, options, chunk_total
        self.pending = quote_ident(state.pending_table(run["dataset_id"]))
        self.failures: list[tuple[int, PublishError]] = []
        self.in_flight: dict[Future[_Answer], Chunk] = {}

    def send(self, to_send: list[Chunk], workers: int) -> None:
        bodies = _chunk_bodies(self.con, self.pending, [(c.first_seq, c.last_seq) for c in to_send])
        queued = zip(to_send, bodies, strict=True)
        try:
            with _ChunkSender(self.portal, self.run["four_by_four"], self.run["mode"], workers) as sender:

                def refill() -> None:
                    while not self.failures and len(self.in_flight) < workers:
                        following = next(queued, None)
                        if following is None:
                            return
                        self.in_flight[sender.submit(following[1])] = following[0]

                refill()
                while self.in_flight:
                    finished, _ = wait(self.in_flight, return_when=FIRST_COMPLETED)
                    answered = self._collect(finished)
                    refill()  # the next chunks travel while these answers are written to the ledger
                    self._record(answered)
        finally:
            bodies.close()
        if self.failures:
            raise min(self.failures, key=lambda failure: failure[0])[1]

    def _collect(self, finished: set[Future[_Answer]]) -> list[tuple[Chunk, _Answer]]:
        """The answers of finished requests, in chunk order; failed requests become failures."""
        answered: list[tuple[Chunk, _Answer]] = []
        for future in sorted(finished, key=lambda f: self.in_flight[f].index):
            chunk = self.in_flight.pop(future)
            action = (
                f"Sending chunk {chunk.index + 1} of {self.chunk_total} ({chunk.row_count:,} rows) "
                f"to {self.run['four_by_four']}"
            )
            try:
                answered.append((chunk, future.result()))
            except requests.exceptions.RequestException as exc:
                self.failures.append((chunk.index, self.portal.describe_failure(action, exc)))
            except PublishError as exc:
                self.failures.append((chunk.index, exc))
        return answered

    def _record(self, answered: list[tuple[Chunk, _Answer]]) -> None:
        for chunk, answer in answered:
            problem = _record_chunk(
                self.con, self.portal, self.run, self.run_id, self.pending, chunk, answer, self.tally,
                self.chunk_total,
            )  # fmt: skip
            if problem:
                self.failures.append((chunk.index, problem))
                continue
            if self.options.progress:
                self.options.progress(
                    f"chunk {chunk.index + 1} of {self.chunk_total}: {chunk.row_count:,} rows sent "
                    f"({self.tally.describe()})"
                )
            if self.options.after_chunk:
                self.options.after_chunk(chunk.index)


def _record_chunk(
    con: duckdb.DuckDBPyConnection,
    portal: PortalConnection,
    run: dict[str, Any],
    run_id: str,
    pending: str,
    chunk: Chunk,
    answer: _Answer,
    tally: Tally,
    chunk_total: int,
) -> PublishVerificationError | None:
    """Write the chunk's answer to the ledger; returns the error to raise when rows were refused."""
    counters = dict(answer.counters)
    if counters["errors"]:
        counters["errors"] -= _already_deleted(
            con, portal, run, pending, chunk.first_seq, chunk.last_seq, counters["errors"]
        )
    status = "applied" if counters["errors"] == 0 else "error"
    con.execute(
        "INSERT INTO publish_ledger VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            run["publish_id"],
            run_id,
            run["dataset_id"],
            chunk.index,
            chunk.first_key,
            chunk.last_key,
            chunk.row_count,
            counters["created"],
            counters["updated"],
            counters["deleted"],
            counters["errors"],
            answer.request_id,
            status,
            datetime.now(),
        ],
    )
    tally.add(counters, chunk.row_count, answer.request_id)
    if status == "applied":
        return None
    return PublishVerificationError(
        f"The portal reported {counters['errors']:,} row errors in chunk {chunk.index + 1} of {chunk_total} "
        f"for {run['four_by_four']} (rows {chunk.first_key} to {chunk.last_key}; {tally.describe()} so far"
        + (f"; request id {answer.request_id}" if answer.request_id else "")
        + "). Fix those rows and publish again; applied chunks are not resent."
    )
