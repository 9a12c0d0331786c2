"""Publish a DuckDB table to a Socrata portal: guarded, incremental, chunked, resumable, verified.

How a publish goes (one module per step):
1. finish any publish of this dataset that was interrupted (the ledger says which chunks landed;
   ``send``);
2. guard the table: refuse an empty or shrunken table, PII columns, a bad row identifier
   (``guards``); find a dataset an earlier run created without hearing back (``target``);
3. diff the table against the last published snapshot (row hashes in DuckDB) and materialize the
   change set, ordered by row key and cut into chunks (``plan``); refuse one that deletes too much
   of the portal's rows (``guards``);
4. create the dataset if needed, check the portal's columns still match (drift) and that the portal
   accepts the catalog metadata (validateOnly) (``target``, ``metadata``); all before any row moves;
5. send the chunks, up to ``publish.max_in_flight`` upserts at once (one PUT for a small full
   replace), recording each in the ledger as its answer arrives, and promote the new snapshot only
   when every chunk landed (``send``);
6. verify the portal's row count (``verify``), apply the metadata (``metadata``), and write one
   publish-log row.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

import duckdb

from ct_pipelines.catalog.blocks.protect import ProtectMode
from ct_pipelines.catalog.models import Dataset
from ct_pipelines.core.outcomes import CheckOutcome
from ct_pipelines.core.sql import quote_ident
from ct_pipelines.publish import state
from ct_pipelines.publish.cells import cells_removed, dimensions, keep_cells
from ct_pipelines.publish.connection import PortalConnection, PublishError
from ct_pipelines.publish.guards import (
    GuardFacts,
    delete_problems,
    guard_outcome,
    rerun_command,
    table_problems,
    table_size,
)
from ct_pipelines.publish.metadata import PortalDatasetMissing, drift_outcome, read_view, sync_metadata
from ct_pipelines.publish.plan import (
    Plan,
    build_plan,
    choose_mode,
    discard_run,
    held_count,
    portal_keys_table,
    register_plan,
    set_aside_keys,
)
from ct_pipelines.publish.send import (  # noqa: F401 - read_counters re-exported
    Progress,
    SendOptions,
    Tally,
    read_counters,
    send_run,
)
from ct_pipelines.publish.serialize import TableColumn, table_columns
from ct_pipelines.publish.specs import (  # noqa: F401 - check names and specs re-exported
    DRIFT_CHECK,
    GUARD_CHECK,
    METADATA_CHECK,
    VERIFY_CHECK,
    publish_check_specs,
)
from ct_pipelines.publish.target import create_dataset, ensure_published, find_marked_views
from ct_pipelines.publish.verify import (  # noqa: F401 - PublishVerificationError re-exported
    PublishVerificationError,
    portal_count,
    verify_outcome,
)


@dataclass
class PublishResult:
    """What a publish did (or, in a dry run, would do), ready for Dagster metadata and the CLI."""

    dataset_id: str
    four_by_four: str | None
    mode: str
    dry_run: bool
    published: bool
    rows_created: int = 0
    rows_updated: int = 0
    rows_deleted: int = 0
    rows_sent: int = 0
    chunks: int = 0
    chunks_planned: int = 0
    chunks_resumed: int = 0
    errors: int = 0
    portal_row_count: int | None = None
    request_ids: list[str] = field(default_factory=list)
    outcomes: list[CheckOutcome] = field(default_factory=list)
    log_row: dict[str, Any] = field(default_factory=dict)
    plan: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0

    @property
    def refused(self) -> bool:
        return any(outcome.blocks for outcome in self.outcomes)

    def metadata(self) -> dict[str, Any]:
        """JSON-serializable summary for the publish asset (no secrets: nothing here holds any)."""
        return {
            "four_by_four": self.four_by_four or "",
            "mode": self.mode,
            "dry_run": self.dry_run,
            "published": self.published,
            "rows_created": self.rows_created,
            "rows_updated": self.rows_updated,
            "rows_deleted": self.rows_deleted,
            "rows_sent": self.rows_sent,
            "chunks": self.chunks,
            "chunks_planned": self.chunks_planned,
            "chunks_resumed": self.chunks_resumed,
            "progress": f"{self.chunks} of {self.chunks_planned} chunks sent",
            "portal_row_count": self.portal_row_count if self.portal_row_count is not None else -1,
            "duration_s": round(self.duration_s, 3),
            "request_ids": self.request_ids[:50],
            "plan": self.plan,
            "checks": [
                {"name": o.name, "passed": o.passed, "severity": o.severity.value, "summary": o.summary}
                for o in self.outcomes
            ],
        }


class _Job:
    """One publish in progress: its inputs, where it writes, what it has sent, and its log row."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        dataset: Dataset,
        table: str,
        portal: PortalConnection,
        run_id: str,
        dry_run: bool,
        send: SendOptions,
    ) -> None:
        self.con, self.dataset, self.table, self.portal = con, dataset, table, portal
        self.run_id, self.dry_run, self.send = run_id, dry_run, send
        self.started, self.started_at = time.monotonic(), datetime.now()
        self.columns, self.key = _columns_and_key(con, dataset, table)
        self.dimensions = dimensions(dataset, [c.name for c in self.columns])
        self.four_by_four = dataset.publish.id or state.find_target(con, dataset.id, portal.target)
        self.result = PublishResult(dataset.id, self.four_by_four, mode="", dry_run=dry_run, published=False)
        self.tally = Tally()
        self.new_target = False  # --new-portal-dataset: create one, adopting none

    @cached_property
    def set_aside_keys(self) -> str | None:
        """The keys validation set aside this run, written once per publish (see plan.set_aside_keys)."""
        return set_aside_keys(self.con, self.dataset, self.key) if self.key else None

    def say(self, message: str) -> None:
        if self.send.progress:
            self.send.progress(message)

    def record_target(self, four_by_four: str) -> None:
        """Save the dataset's 4x4 at once (before anything else can fail) and write to it from now on."""
        state.record_target(self.con, self.dataset.id, self.portal.target, four_by_four)
        self.four_by_four = self.result.four_by_four = four_by_four

    def refuse(self, outcome: CheckOutcome) -> PublishResult:
        self.result.outcomes.append(outcome)
        self.result.mode = "refused"
        return self.finish("refused", outcome.summary)

    def finish(self, status: str, message: str = "", publish_id: str | None = None) -> PublishResult:
        """Fill the result from the tally and write the publish-log row (not in a dry run)."""
        result, tally = self.result, self.tally
        result.duration_s = time.monotonic() - self.started
        result.rows_created, result.rows_updated, result.rows_deleted = (
            tally.created,
            tally.updated,
            tally.deleted,
        )
        result.errors, result.rows_sent, result.request_ids = tally.errors, tally.rows_sent, tally.request_ids
        result.log_row = {
            "run_id": self.run_id, "publish_id": publish_id, "dataset_id": self.dataset.id,
            "four_by_four": result.four_by_four, "started_at": self.started_at, "finished_at": datetime.now(),
            "mode": result.mode, "chunks": tally.chunks_sent, "chunks_resumed": result.chunks_resumed,
            "rows_created": tally.created, "rows_updated": tally.updated, "rows_deleted": tally.deleted,
            "errors": tally.errors, "duration_s": round(result.duration_s, 3),
            "request_ids": tally.request_ids, "status": status, "message": self.portal.scrub(message),
        }  # fmt: skip
        if not self.dry_run:
            state.write_log(self.con, result.log_row)
        result.log_row = {
            k: (v.isoformat(timespec="seconds") if isinstance(v, datetime) else v)
            for k, v in result.log_row.items()
        }
        return result


def _columns_and_key(
    con: duckdb.DuckDBPyConnection, dataset: Dataset, table: str
) -> tuple[list[TableColumn], TableColumn | None]:
    try:
        columns = table_columns(con, table)
    except duckdb.CatalogException:
        raise PublishError(
            f"The table '{table}' to publish for '{dataset.id}' does not exist in DuckDB."
        ) from None
    key = next((c for c in columns if c.name == dataset.row_identifier), None)
    if dataset.row_identifier and key is None:
        raise PublishError(
            f"The row identifier '{dataset.row_identifier}' of '{dataset.id}' is not a column of '{table}'; "
            "fix row_identifier in the dataset YAML."
        )
    return columns, key


def publish_table(
    con: duckdb.DuckDBPyConnection,
    dataset: Dataset,
    table: str,
    portal: PortalConnection,
    *,
    run_id: str,
    dry_run: bool = False,
    force_full_replace: bool = False,
    allow_shrink: bool = False,
    allow_deletes: bool = False,
    new_portal_dataset: bool = False,
    sync_metadata_fields: bool = True,
    progress: Progress | None = None,
    after_chunk: Callable[[int], None] | None = None,
) -> PublishResult:
    """Publish ``table`` as ``dataset`` to the portal; see the module docstring for the steps.

    Returns a PublishResult whose ``outcomes`` include a failed blocking check when the publish was
    refused (the portal is then untouched). Raises PublishError for failures met while sending (the
    ledger keeps what landed, so running again resumes) and PublishVerificationError when the portal
    does not hold what was sent. ``allow_shrink`` / ``allow_deletes`` override the shrink and delete
    guards for this run; ``new_portal_dataset`` publishes to a new portal dataset instead of the
    recorded one (which is left as it is); ``after_chunk`` is called with each applied chunk's index (tests use it to
    simulate a crash).
    """
    state.ensure_schema(con)
    send = SendOptions(dataset.publish.max_in_flight, progress, after_chunk)
    if new_portal_dataset and dataset.publish.id:
        raise PublishError(
            f"'{dataset.id}' names its portal dataset in publish.id ({dataset.publish.id}), so "
            "--new-portal-dataset cannot choose another; change publish.id in the dataset YAML instead"
        )
    job = _Job(con, dataset, table, portal, run_id, dry_run, send)
    if new_portal_dataset:  # the recorded target is forgotten when the new one is recorded
        job.four_by_four = job.result.four_by_four = None
        job.new_target = True
    try:
        interrupted = _finish_interrupted(job)  # 1
        incremental = not (force_full_replace or dataset.publish.full_replace)
        facts, byte_count, has_snapshot = _guard_table(
            job, interrupted, allow_shrink, allow_deletes, incremental
        )  # 2
        problems = table_problems(dataset, job.columns, con, table, facts)
        if not problems and _adopt_marked_dataset(job):
            facts, byte_count, has_snapshot = _guard_table(
                job, interrupted, allow_shrink, allow_deletes, incremental
            )
            problems = table_problems(dataset, job.columns, con, table, facts)
        if problems:
            return job.refuse(guard_outcome(dataset, problems, facts))
        plan, previous = _plan(job, interrupted, force_full_replace, has_snapshot, byte_count)  # 3
        facts.rows_to_delete = plan.deletes
        guard = guard_outcome(dataset, delete_problems(dataset, plan.mode, facts), facts)
        if not guard.blocks:
            job.result.outcomes.append(guard)
        refusal = guard if guard.blocks else _prepare_target(job, sync_metadata_fields)  # 4
        if refusal is not None:
            plan.drop(con, previous)
            return job.refuse(refusal)
        if _holds_these_rows(job, plan, has_snapshot, force_full_replace):
            plan.drop(con, previous)
            return _unchanged_result(job, plan, sync_metadata_fields)
        if dry_run:
            return _dry_run_result(job, plan, previous)
        _send_plan(job, plan, previous)  # 5
        return _verify_and_sync(job, plan, sync_metadata_fields, plan.publish_id)  # 6
    except PublishError as exc:
        if not job.result.log_row:
            job.finish("failed", str(exc))
        raise


def _finish_interrupted(job: _Job) -> dict[str, Any] | None:
    """Step 1: finish (or, in a dry run, describe) a publish of this dataset that was interrupted, so
    the portal is back to a known state; one aimed at another target is abandoned."""
    con, four_by_four = job.con, job.four_by_four
    interrupted = state.unfinished_publish(con, job.dataset.id)
    if interrupted and (interrupted["four_by_four"], interrupted["domain"]) != (
        four_by_four,
        job.portal.target,
    ):
        discard_run(con, interrupted)
        return None
    if interrupted and not job.dry_run:
        job.say(f"resuming the interrupted publish {interrupted['publish_id']} of {four_by_four}")
        before = job.tally.chunks_sent
        job.result.chunks_planned += int(interrupted["chunks"]) - len(
            state.applied_chunks(con, interrupted["publish_id"])
        )
        send_run(con, job.portal, interrupted, job.run_id, job.tally, job.send)
        job.result.chunks_resumed = job.tally.chunks_sent - before
    elif interrupted:
        job.result.plan["interrupted_publish"] = {
            "publish_id": interrupted["publish_id"],
            "chunks": interrupted["chunks"],
            "chunks_applied": len(state.applied_chunks(con, interrupted["publish_id"])),
        }
    return interrupted


def _guard_table(
    job: _Job, interrupted: dict[str, Any] | None, allow_shrink: bool, allow_deletes: bool, incremental: bool
) -> tuple[GuardFacts, int, bool]:
    """Step 2's inputs: the rows the portal will hold and the row count they are compared with (the
    snapshot's, the one an interrupted publish will leave, or the portal's when there is no snapshot).
    An incremental publish keeps the published rows whose new version was set aside: they count."""
    con, dataset, four_by_four = job.con, job.dataset, job.four_by_four
    row_count, byte_count = table_size(con, job.table, job.columns, dataset.publish.chunk_rows)
    previous_count = (
        state.published_row_count(con, dataset.id, job.portal.target, four_by_four) if four_by_four else None
    )
    has_snapshot = previous_count is not None
    if interrupted and job.dry_run:
        previous_count = int(interrupted["expected_count"])
    elif not has_snapshot and four_by_four:
        previous_count = portal_count(job.portal, four_by_four)
    if incremental and has_snapshot and job.key is not None:
        row_count += held_count(con, dataset, job.table, job.key, job.set_aside_keys)
    facts = GuardFacts(row_count, previous_count, allow_shrink, allow_deletes)
    if dataset.protect.mode != ProtectMode.ROWS and four_by_four:
        facts.source_rows, facts.previous_source_rows = state.aggregate_source_rows(
            con, dataset.id, four_by_four
        )
    return facts, byte_count, has_snapshot


def _adopt_marked_dataset(job: _Job) -> bool:
    """With no known target, use a dataset an earlier run created but never heard back about (it
    carries our marker) instead of creating a second one. Not in a dry run, which reads nothing."""
    if job.four_by_four or job.dry_run or job.new_target or not job.dataset.publish.create_if_missing:
        return False
    found = find_marked_views(job.portal, job.dataset)
    if not found:
        return False
    job.record_target(found[0])
    job.result.plan["adopted_dataset"] = found[0]
    job.say(f"found {found[0]} on {job.portal.domain}, created for '{job.dataset.id}' by an earlier run")
    return True


def _plan(
    job: _Job,
    interrupted: dict[str, Any] | None,
    force_full_replace: bool,
    has_snapshot: bool,
    byte_count: int,
) -> tuple[Plan, str | None]:
    """Step 3: choose the mode and materialize the change set; returns it with the table it was
    compared with (a snapshot, or a temporary one to drop afterwards)."""
    con, dataset, four_by_four = job.con, job.dataset, job.four_by_four
    fits = 0 <= byte_count <= dataset.publish.chunk_bytes
    if interrupted and job.dry_run:
        has_snapshot = True  # the plan is relative to what the resumed publish will leave
    mode = choose_mode(dataset, job.key, force_full_replace, has_snapshot, not four_by_four, fits)
    previous: str | None = None
    if mode == "incremental":
        previous = (
            state.planned_snapshot(con, interrupted)
            if interrupted and job.dry_run
            else state.snapshot_table(dataset.id)
        )
    elif mode == "resync" and job.key is not None and four_by_four:
        previous = portal_keys_table(con, job.portal, four_by_four, job.key)
    held_keys = job.set_aside_keys if mode == "incremental" and job.key is not None else None
    plan = build_plan(con, dataset, job.table, job.columns, mode, previous, job.dry_run, held_keys)
    if mode == "replace" and has_snapshot and not (force_full_replace or dataset.publish.full_replace):
        # a replace removes the cells the table no longer has: counted, so the delete guard judges them
        plan.counts["delete"] = cells_removed(con, dataset.id, job.table, job.dimensions)
    deleted = plan.deleted_keys(con) if mode == "incremental" else []
    job.result.mode, job.result.plan = mode, {**job.result.plan, **plan.summary(), "deleted_keys": deleted}
    return plan, previous


def _prepare_target(job: _Job, sync_metadata_fields: bool) -> CheckOutcome | None:
    """Step 4: create the dataset (or finish publishing one created last run), then check its
    columns and the catalog metadata; returns the outcome that refuses the publish, if any."""
    dataset, portal = job.dataset, job.portal
    if job.four_by_four is None:
        if not dataset.publish.create_if_missing:
            raise PublishError(
                f"'{dataset.id}' has no publish.id and create_if_missing is off; set publish.id to the 4x4."
            )
        if job.dry_run:
            job.result.plan["would_create_dataset"] = True
            return None
        four_by_four = create_dataset(portal, dataset, job.columns, job.record_target)
        job.result.plan["created_dataset"] = four_by_four  # the run's summary names it
        job.say(f"created dataset {four_by_four} on {portal.domain}")
    else:
        try:
            view = read_view(portal, job.four_by_four)
        except PortalDatasetMissing:
            raise PublishError(
                f"the portal at {portal.domain} has no dataset {job.four_by_four} any more (deleted there?), so "
                f"nothing was published; to publish '{dataset.id}' as a new portal dataset, run "
                + rerun_command(dataset, "--new-portal-dataset")
                + (", after removing publish.id from the dataset YAML" if dataset.publish.id else "")
                + ", or take it out of the catalog if it was retired"
            ) from None
        if not job.dry_run:
            ensure_published(portal, dataset, view, job.record_target)
        drift = drift_outcome(
            portal, job.four_by_four, job.columns, view, rerun_command(dataset, "--new-portal-dataset")
        )
        if drift.blocks:
            return drift
        job.result.outcomes.append(drift)
    if sync_metadata_fields:
        validation = sync_metadata(portal, dataset, job.four_by_four, apply=False)
        if validation.blocks:
            return validation
    return None


def _holds_these_rows(job: _Job, plan: Plan, has_snapshot: bool, force_full_replace: bool) -> bool:
    """A table replaced whole (no row identifier: every aggregate) whose rows are exactly the ones this
    target got last time: the same multiset of row hashes, which cover every column's name, type and
    value. A scheduled run then sends nothing, rather than rewriting the portal (and its 'updated' date)
    with the same rows. ``--full-replace`` sends anyway."""
    if plan.mode != "replace" or not has_snapshot or force_full_replace:
        return False
    pending, snapshot = quote_ident(plan.pending), quote_ident(state.snapshot_table(job.dataset.id))
    differ = job.con.execute(
        f"SELECT count(*) FROM ((SELECT row_hash FROM {pending} EXCEPT ALL SELECT row_hash FROM {snapshot}) "
        f"UNION ALL (SELECT row_hash FROM {snapshot} EXCEPT ALL SELECT row_hash FROM {pending}))"
    ).fetchone()[0]
    return differ == 0


def _unchanged_result(job: _Job, plan: Plan, sync_metadata_fields: bool) -> PublishResult:
    """Nothing sent: the portal's row count is still checked and, outside a dry run, metadata synced."""
    job.result.mode = "unchanged"
    job.result.plan = {**job.result.plan, "mode": "unchanged", "rows_to_create": 0, "chunks": 0, "bytes": 0}
    job.say(
        f"{job.four_by_four} holds these {plan.expected_count:,} rows already (the rows sent last time); nothing sent"
    )
    if job.dry_run:
        return job.finish("dry_run")
    return _verify_and_sync(job, plan, sync_metadata_fields, publish_id=None)


def _dry_run_result(job: _Job, plan: Plan, previous: str | None) -> PublishResult:
    plan.drop(job.con, previous)
    result = job.finish("dry_run")
    result.chunks = result.chunks_planned = len(plan.chunks)
    result.rows_created = plan.counts.get("create", 0)
    result.rows_updated = plan.counts.get("update", 0)
    result.rows_deleted = plan.deletes
    return result


def _send_plan(job: _Job, plan: Plan, previous: str | None) -> None:
    """Step 5: register the plan (so a crash can resume it), send it and promote the snapshot."""
    assert job.four_by_four is not None
    run = register_plan(job.con, plan, job.dataset, job.run_id, job.portal.target, job.four_by_four)
    job.result.chunks_planned += len(plan.chunks)
    plan_figures = plan.summary()
    job.say(
        f"{plan.mode} publish of {job.four_by_four}: rows {plan_figures['rows_to_create']:,} to create, "
        f"{plan_figures['rows_to_update']:,} to update, {plan_figures['rows_to_delete']:,} to delete, in "
        f"{len(plan.chunks)} chunk(s), {plan_figures['bytes']:,} bytes in all; the portal should then hold "
        f"{plan_figures['expected_row_count']:,} rows"
    )
    send_run(job.con, job.portal, run, job.run_id, job.tally, job.send)
    job.result.chunks = job.tally.chunks_sent
    if previous and previous.startswith("publish_tmp_"):
        job.con.execute(f"DROP TABLE IF EXISTS {previous}")


def _verify_and_sync(
    job: _Job, plan: Plan, sync_metadata_fields: bool, publish_id: str | None
) -> PublishResult:
    """Step 6: the portal must hold exactly the table's rows; then the catalog metadata is applied.
    ``publish_id`` is the plan's, or None when nothing was sent."""
    assert job.four_by_four is not None
    result = job.result
    result.portal_row_count = portal_count(job.portal, job.four_by_four)
    verified = verify_outcome(
        result.portal_row_count, plan.expected_count, job.tally.counters(), job.tally.describe()
    )
    result.outcomes.append(verified)
    if not verified.passed:
        job.finish("failed", verified.summary, publish_id)
        raise PublishVerificationError(
            f"Publishing '{job.dataset.id}' to {job.four_by_four} did not verify: {verified.summary}"
        )
    if sync_metadata_fields:  # validated in step 4
        result.outcomes.append(
            sync_metadata(job.portal, job.dataset, job.four_by_four, apply=True, validate=False)
        )
    result.published = True
    keep_cells(job.con, job.dataset.id, job.table, job.dimensions)
    return job.finish("published", verified.summary, publish_id)
