"""Read what the pipeline recorded in the DuckDB warehouse, for the reports.

Every reader tolerates a missing table (a dataset that never ran, a warehouse made before a stage
existed) and answers "nothing recorded" instead of failing, because a report must cover the whole
catalog even when half of it has not run yet.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from ct_pipelines.core.sql import ordered_rows_view, quote_ident, quote_literal
from ct_pipelines.core.warehouse import STAGE_RESULTS, relation_exists
from ct_pipelines.publish.changes import portal_changes, recorded_changes
from ct_pipelines.report.checks import CHECK_RESULTS

MASK = "***"


@dataclass
class CheckRow:
    stage: str
    check: str
    passed: bool
    severity: str
    summary: str
    failing_rows: int | None


@dataclass
class SetAsideRule:
    rule_group: str
    rule: str  # one rule of the group (a column's type rules: not an integer, a decimal comma)
    column: str
    reason: str
    rows: int


@dataclass
class RunRow:
    run_id: str
    at: datetime | None
    rows_in: int | None = None
    set_aside: int | None = None
    published: int | None = None
    checks_failed: int | None = None  # ERROR checks that failed: they stop publishing
    warnings: int | None = None  # WARN checks that failed
    portal_changes: str | None = None  # what the publish did to the portal, in words


@dataclass
class Recorded:
    """What the warehouse knows about one dataset."""

    last_ingest: dict[str, Any] | None = None
    last_publish: dict[str, Any] | None = None
    portal_rows: int | None = None
    four_by_four: str | None = None
    last_run_id: str | None = None
    checks: list[CheckRow] = field(default_factory=list)
    set_aside_rows: int = 0
    set_aside_rules: list[SetAsideRule] = field(default_factory=list)
    last_plan: dict[str, Any] | None = None
    runs: list[RunRow] = field(default_factory=list)
    failed_stage: str | None = None  # the stage at which the latest run stopped with an error
    failure: str | None = None  # its message
    shaped: dict[str, Any] = field(default_factory=dict)  # the last ingest's rows left out by rule, unpivot


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> dict[str, Any] | None:
    cursor = con.execute(sql, params)
    row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cursor.description], row, strict=True))


def last_validation_run(con: duckdb.DuckDBPyConnection, dataset_id: str) -> str | None:
    """The run id of the latest validation (``quality.history``), the run whose set-aside rows are shown."""
    if not relation_exists(con, "quality", "history"):
        return None
    row = con.execute(
        "SELECT run_id FROM quality.history WHERE dataset_id = ? ORDER BY recorded_at DESC LIMIT 1",
        [dataset_id],
    ).fetchone()
    return row[0] if row else None


def _checks(con: duckdb.DuckDBPyConnection, dataset_id: str) -> tuple[str | None, list[CheckRow]]:
    if not relation_exists(con, "meta", "check_results"):
        return None, []
    latest = con.execute(
        f"SELECT run_id FROM {CHECK_RESULTS} WHERE dataset_id = ? ORDER BY recorded_at DESC LIMIT 1",
        [dataset_id],
    ).fetchone()
    if not latest:
        return None, []
    rows = con.execute(
        f"SELECT stage, check_name, passed, severity, summary, failing_rows FROM {CHECK_RESULTS} "
        "WHERE dataset_id = ? AND run_id = ? ORDER BY passed, stage, check_name",
        [dataset_id, latest[0]],
    ).fetchall()
    return latest[0], [CheckRow(*row) for row in rows]


def _set_aside(
    con: duckdb.DuckDBPyConnection, dataset_id: str, run_id: str | None
) -> tuple[int, list[SetAsideRule]]:
    table = f"quarantine__{dataset_id}"
    if run_id is None or not relation_exists(con, "main", table):
        return 0, []
    total = con.execute(
        f"SELECT count(DISTINCT _row) FROM {quote_ident(table)} WHERE run_id = ?", [run_id]
    ).fetchone()[0]
    rules = con.execute(
        f"SELECT rule_group, rule, column_name, any_value(reason), count(DISTINCT _row) FROM {quote_ident(table)} "
        "WHERE run_id = ? GROUP BY ALL ORDER BY 5 DESC, 1, 2, 3",
        [run_id],
    ).fetchall()
    return int(total), [SetAsideRule(*r) for r in rules]


def _publish(con: duckdb.DuckDBPyConnection, dataset_id: str, recorded: Recorded) -> None:
    if relation_exists(con, "main", "publish_log"):
        recorded.last_publish = _one(
            con,
            "SELECT * FROM publish_log WHERE dataset_id = ? AND status = 'published' "
            "ORDER BY finished_at DESC LIMIT 1",
            [dataset_id],
        )
    if relation_exists(con, "main", "publish_state"):
        state = _one(
            con, "SELECT four_by_four, row_count FROM publish_state WHERE dataset_id = ?", [dataset_id]
        )
        if state:
            recorded.four_by_four, recorded.portal_rows = state["four_by_four"], state["row_count"]
    if relation_exists(con, "main", "publish_runs"):
        recorded.last_plan = _one(
            con,
            "SELECT mode, status, chunks, planned_created, planned_updated, "
            "planned_deleted, expected_count, key_field, started_at FROM publish_runs "
            "WHERE dataset_id = ? ORDER BY started_at DESC LIMIT 1",
            [dataset_id],
        )


def _portal_changes(con: duckdb.DuckDBPyConnection, dataset_id: str, runs: dict[str, RunRow]) -> None:
    """Each run's publish in words (rows replaced, created, updated, deleted, or nothing changed), from
    the publish stage's recorded facts; a dry run or a refused publish changed nothing and says none."""
    if not relation_exists(con, "meta", "stage_results"):
        return
    marks = ", ".join("?" * len(runs))
    for run_id, facts in con.execute(
        f"SELECT run_id, facts FROM {STAGE_RESULTS} WHERE dataset_id = ? AND stage = 'publish' "
        f"AND status = 'ok' AND run_id IN ({marks}) ORDER BY recorded_at",
        [dataset_id, *runs],
    ).fetchall():
        recorded = json.loads(facts or "{}")
        if not recorded.get("dry_run"):
            runs[run_id].portal_changes = portal_changes(recorded.get("mode"), recorded_changes(recorded))


def _runs(con: duckdb.DuckDBPyConnection, dataset_id: str, limit: int) -> list[RunRow]:
    """One row per run that validated this dataset, newest last; figures from each stage's own record."""
    if not relation_exists(con, "quality", "history"):
        return []
    runs = {
        r[0]: RunRow(r[0], r[1], rows_in=r[2])
        for r in con.execute(
            "SELECT run_id, recorded_at, row_count FROM quality.history WHERE dataset_id = ? "
            f"ORDER BY recorded_at DESC LIMIT {int(limit)}",
            [dataset_id],
        ).fetchall()
    }
    if not runs:
        return []
    ids = list(runs)
    marks = ", ".join("?" * len(ids))
    quarantine = f"quarantine__{dataset_id}"
    if relation_exists(con, "main", quarantine):
        for run_id, n in con.execute(
            f"SELECT run_id, count(DISTINCT _row) FROM {quote_ident(quarantine)} WHERE run_id IN ({marks}) GROUP BY 1",
            ids,
        ).fetchall():
            runs[run_id].set_aside = n
    for run in runs.values():
        run.set_aside = run.set_aside or 0
    if relation_exists(con, "main", "publish_runs"):
        for run_id, n in con.execute(
            f"SELECT run_id, max(expected_count) FROM publish_runs WHERE dataset_id = ? "
            f"AND status = 'applied' AND run_id IN ({marks}) GROUP BY 1",
            [dataset_id, *ids],
        ).fetchall():
            runs[run_id].published = n
    _portal_changes(con, dataset_id, runs)
    if not relation_exists(con, "meta", "check_results"):
        return sorted(runs.values(), key=lambda r: r.at or datetime.min)
    for run_id, failed, warned in con.execute(
        f"SELECT run_id, count(*) FILTER (WHERE NOT passed AND severity = 'ERROR'), "
        f"count(*) FILTER (WHERE NOT passed AND severity <> 'ERROR') FROM {CHECK_RESULTS} "
        f"WHERE dataset_id = ? AND run_id IN ({marks}) GROUP BY 1",
        [dataset_id, *ids],
    ).fetchall():
        runs[run_id].checks_failed, runs[run_id].warnings = failed, warned
    return sorted(runs.values(), key=lambda r: r.at or datetime.min)


def read_recorded(con: duckdb.DuckDBPyConnection, dataset_id: str, history: int = 10) -> Recorded:
    """Everything the reports show about one dataset (works on a read-only connection)."""
    recorded = Recorded()
    if relation_exists(con, "meta", "ingest_log"):
        recorded.last_ingest = _one(
            con,
            "SELECT path, rows, format, encoding, run_id, ingested_at "
            "FROM meta.ingest_log WHERE dataset_id = ? ORDER BY ingested_at DESC LIMIT 1",
            [dataset_id],
        )
    recorded.last_run_id, recorded.checks = _checks(con, dataset_id)
    validation_run = last_validation_run(con, dataset_id)
    recorded.set_aside_rows, recorded.set_aside_rules = _set_aside(con, dataset_id, validation_run)
    _publish(con, dataset_id, recorded)
    recorded.runs = _runs(con, dataset_id, history)
    recorded.failed_stage, recorded.failure = _failure(con, dataset_id)
    recorded.shaped = _shaped(con, dataset_id)
    return recorded


def _shaped(con: duckdb.DuckDBPyConnection, dataset_id: str) -> dict[str, Any]:
    """How the last ingest shaped the file's rows: rows left out by a rule (a footer Total), count columns
    unpivoted into rows. A new user read 204 rows in the run's summary and 1,421 on the page, unexplained."""
    if not relation_exists(con, "meta", "stage_results"):
        return {}
    row = con.execute(
        f"SELECT facts FROM {STAGE_RESULTS} WHERE dataset_id = ? AND stage = 'ingest' AND status = 'ok' "
        "ORDER BY recorded_at DESC LIMIT 1",
        [dataset_id],
    ).fetchone()
    facts = json.loads(row[0] or "{}") if row else {}
    if not (facts.get("rows_left_out") or facts.get("unpivoted_columns")):
        return {}
    return {k: facts.get(k) for k in ("rows", "rows_left_out", "unpivoted_columns")}


def _failure(con: duckdb.DuckDBPyConnection, dataset_id: str) -> tuple[str | None, str | None]:
    """The stage that failed in the dataset's latest run, and its message: a run that raised (a portal
    answering 404, a refused aggregate) records no failed check, so the reports read it as healthy."""
    if not relation_exists(con, "meta", "stage_results"):
        return None, None
    row = con.execute(
        f"SELECT stage, message FROM {STAGE_RESULTS} WHERE dataset_id = ? AND status = 'failed' AND run_id = "
        f"(SELECT run_id FROM {STAGE_RESULTS} WHERE dataset_id = ? ORDER BY recorded_at DESC LIMIT 1)",
        [dataset_id, dataset_id],
    ).fetchone()
    return (row[0], row[1]) if row else (None, None)


def masked_set_aside_sql(
    con: duckdb.DuckDBPyConnection, dataset_id: str, pii_fields: list[str], limit: int | None = None
) -> str | None:
    """A SELECT of the latest run's set-aside rows with every PII value masked, or None if nothing was set aside.

    Each row carries its source line, the rules it broke and the whole record from ``ingest__<id>``; columns
    marked ``pii`` show ``***``, and in every other text value an SSN, e-mail, phone number, date of birth,
    street address or record number (the privacy scanner's patterns) is replaced by ``***``."""
    from ct_pipelines.protect.pii import ANY_PATTERN

    run_id = last_validation_run(con, dataset_id)
    quarantine = f"quarantine__{dataset_id}"
    if run_id is None or not relation_exists(con, "main", quarantine):
        return None
    # The record is joined by _row from the rows without line numbers when ingest wrote them (the
    # line-numbered view pays a join on every row of the extract); the line comes from quarantine.
    raw = next(
        (
            name
            for name in (ordered_rows_view(dataset_id), f"ingest__{dataset_id}")
            if relation_exists(con, "main", name)
        ),
        None,
    )
    raw_columns = [r[0] for r in con.execute(f"DESCRIBE {quote_ident(raw)}").fetchall()] if raw else []
    pii = set(pii_fields)
    masked = quote_literal(ANY_PATTERN)  # every pattern in one pass over each value
    selected = []
    for column in raw_columns:
        if column in ("_row", "_line"):
            continue
        ref = f"r.{quote_ident(column)}"
        if column in pii:
            expr = f"CASE WHEN {ref} IS NULL THEN NULL ELSE '{MASK}' END"
        else:
            expr = f"regexp_replace({ref}::VARCHAR, {masked}, '{MASK}', 'g')"
        selected.append(f"{expr} AS {quote_ident(column)}")
    body = "".join(", " + s for s in selected)
    joined = f" LEFT JOIN {quote_ident(raw)} r ON r._row = q._row" if raw_columns else ""
    return (
        # sorted as a list: string_agg(... ORDER BY) is an ordered aggregate, twice as slow per set-aside row.
        # Sorting the texts sorts by rule group, then column: both are [a-z0-9_] names, and the ' (' and ')'
        # after them sort before any of those characters (0.3 s for 393K rows, where structs took 0.5 s).
        f"WITH q AS (SELECT _row, min(source_line) AS source_line, array_to_string(list_sort("
        f"list(rule_group || ' (' || column_name || '): ' || reason)), '; ') AS rules_broken "
        f"FROM {quote_ident(quarantine)} WHERE run_id = {quote_literal(run_id)} GROUP BY _row"
        # the first rows in file order are chosen before the records are joined and masked
        + (f" ORDER BY source_line, _row LIMIT {int(limit)}) " if limit is not None else ") ")
        + f"SELECT q.source_line, q.rules_broken{body} FROM q{joined} ORDER BY q.source_line, q._row"
    )


def json_figures(value: str | None) -> dict[str, Any]:
    return json.loads(value) if value else {}


# What each dataset recorded, kept beside the reports so that refreshing the directory after a run of one
# dataset reads the other datasets' files only when they changed: opening 40 DuckDB files cost ~5 s per
# run, in proportion to the catalog. An entry is used only while its dataset's file (and write-ahead log)
# has the same inode, size and modification time as when it was read, so it always says what the file says.
RECORDED_CACHE_VERSION = 2


def file_state(path: Path) -> list[int] | None:
    """Inode, size and modification time of a dataset's file and its write-ahead log; None if no file."""
    state: list[int] = []
    for candidate in (path, path.with_name(path.name + ".wal")):
        try:
            stat = candidate.stat()
        except FileNotFoundError:
            if candidate == path:
                return None
            state += [-1, -1, -1]
            continue
        state += [stat.st_ino, stat.st_size, stat.st_mtime_ns]
    return state


#: A file modified less than this long ago is read again next time rather than kept: on a file system
#: with coarse modification times, a write in the same tick with the same size would look unchanged.
SETTLED_NS = 2_000_000_000


def settled(state: list[int] | None, now_ns: int) -> bool:
    """Whether a file state (see :func:`file_state`) is old enough to be kept."""
    return state is not None and all(now_ns - mtime >= SETTLED_NS for mtime in state[2::3] if mtime >= 0)


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"__datetime__": value.isoformat()}
    if isinstance(value, date):
        return {"__date__": value.isoformat()}
    if isinstance(value, Decimal):
        return {"__decimal__": str(value)}
    raise TypeError(f"cannot keep {type(value).__name__} in the recorded cache")


def _decode(value: dict[str, Any]) -> Any:
    if "__datetime__" in value:
        return datetime.fromisoformat(value["__datetime__"])
    if "__date__" in value:
        return date.fromisoformat(value["__date__"])
    if "__decimal__" in value:
        return Decimal(value["__decimal__"])
    return value


def load_recorded(cache: Path, state: list[int] | None) -> Recorded | None:
    """The cached record if it was read from the file in exactly this state, else None."""
    try:
        kept = json.loads(cache.read_text(encoding="utf-8"), object_hook=_decode)
        if kept.get("version") != RECORDED_CACHE_VERSION or kept.get("state") != state:
            return None
        data = kept["recorded"]
        return Recorded(
            **{k: v for k, v in data.items() if k not in ("checks", "set_aside_rules", "runs")},
            checks=[CheckRow(**c) for c in data["checks"]],
            set_aside_rules=[SetAsideRule(**r) for r in data["set_aside_rules"]],
            runs=[RunRow(**r) for r in data["runs"]],
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def keep_recorded(cache: Path, state: list[int] | None, recorded: Recorded) -> None:
    """Keep ``recorded`` as read from the file in ``state`` (written whole, then renamed into place)."""
    try:
        text = json.dumps(
            {"version": RECORDED_CACHE_VERSION, "state": state, "recorded": asdict(recorded)}, default=_encode
        )
    except TypeError:  # a value JSON cannot hold: read the file next time instead
        return
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_name(f".{cache.name}.{os.getpid()}")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, cache)
