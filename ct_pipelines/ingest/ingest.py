"""Ingest the newest landing file of a dataset into ``raw."<id>"``, with lineage, once per file version."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from ct_pipelines.catalog.models import Dataset, Source, SourceFormat
from ct_pipelines.catalog.naming import field_names_for, match_declared, source_labels
from ct_pipelines.core.settings import Settings
from ct_pipelines.core.sql import ordered_rows_view, short_rows_table, source_lines_macro, stage_table
from ct_pipelines.core.warehouse import STAGE_RESULTS, drop_relation, relation_exists
from ct_pipelines.ingest.detect import describe_header, refuse_binary_as_text
from ct_pipelines.ingest.errors import IngestError
from ct_pipelines.ingest.landing import (
    Landing,
    LandingFile,
    names_several_files,
    newest_landing_file,
    ready_on_sight,
    refuse_unfinished,
    unread_arrivals,
)
from ct_pipelines.ingest.quirks import (
    QuirkResult,
    apply_quirks,
    has_quirks,
    produced_columns,
    recorded_quirks,
)
from ct_pipelines.ingest.readers import (
    FileScan,
    ReadResult,
    create_lines_macro,
    create_ordered_view,
    create_rows_view,
    read_csv_into,
    read_excel_into,
    read_json_into,
    read_parquet_into,
)
from ct_pipelines.ingest.snapshot import read_remote, read_stable

EXTENSIONS = {
    ".csv": SourceFormat.CSV,
    ".txt": SourceFormat.CSV,
    ".tsv": SourceFormat.CSV,
    ".psv": SourceFormat.CSV,
    ".xlsx": SourceFormat.EXCEL,
    ".xlsm": SourceFormat.EXCEL,
    ".json": SourceFormat.JSON,
    ".jsonl": SourceFormat.JSON,
    ".ndjson": SourceFormat.JSON,
    ".parquet": SourceFormat.PARQUET,
    ".pq": SourceFormat.PARQUET,
}
LEDGER = "meta.ingest_log"
HEADER_FORMATS = (SourceFormat.CSV, SourceFormat.EXCEL)  # formats whose header line ingest looks for


def raw_table(dataset_id: str) -> str:
    """Stage tables live in the main schema as ``<stage>__<dataset id>``: one plain identifier that every
    module can quote the same way. ``ingest__<id>`` is a view over ``ingest_rows__<id>`` (see create_rows_view)."""
    return stage_table("ingest", dataset_id)


@dataclass
class IngestResult:
    dataset_id: str
    path: str
    size_bytes: int
    sha256: str
    skipped: bool
    rows: int
    columns: int
    format: str
    encoding: str | None
    bom: bool
    delimiter: str | None
    header_line: int | None
    sheet: str | None
    duration_s: float
    field_map: dict[str, str] = field(default_factory=dict)  # source name -> API field name
    undeclared_columns: list[str] = field(default_factory=list)
    mtime_ns: int | None = None
    read_config: str | None = None  # hash of the YAML's source block and columns the file was read with
    reason: str = ""  # why the file was (re)read or skipped, in words
    resend_of_run: str | None = None  # this file version was ingested before, by that run
    fallback_lines: int = 0  # lines of a mostly UTF-8 file read as cp1252/latin-1
    first_fallback_line: int | None = None
    source_rows: int | None = None  # records in the file; = rows + rows left out when nothing is unpivoted
    rows_left_out: dict[str, int] = field(default_factory=dict)  # "left out by rule": rule name -> rows
    unpivoted_columns: int = 0
    # matching files that arrived after the file read last time and were not read (only the newest is)
    unread_arrivals: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the reader did that a person should know

    def lineage(self) -> dict[str, object]:
        """Flat lineage for asset metadata and the ingest log."""
        data = asdict(self)
        data.pop("field_map")
        return data


def newest_file(landing_dir: Path, pattern: str) -> Path:
    """The newest local file matching ``pattern`` (see landing.newest_landing_file, which the landing
    sensor shares and which also reads remote folders)."""
    return Path(newest_landing_file(landing_dir, Source(path=pattern)).location)


def source_format(path: Path | str, declared: SourceFormat) -> SourceFormat:
    if declared != SourceFormat.AUTO:
        return declared
    suffix = Path(str(path).rsplit("/", 1)[-1]).suffix
    fmt = EXTENSIONS.get(suffix.lower())
    if fmt is None:
        raise IngestError(
            path,
            f"cannot tell the format from the extension '{suffix}'",
            "set ingest.format to csv, excel, json or parquet",
        )
    return fmt


LOG_ADDED_COLUMNS = {
    "read_config": "VARCHAR",
    "status": "VARCHAR",
    "resend_of_run": "VARCHAR",
    "fallback_lines": "BIGINT",
}


def ensure_meta(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS meta")
    con.execute(f"""CREATE TABLE IF NOT EXISTS {LEDGER} (
        dataset_id VARCHAR, path VARCHAR, sha256 VARCHAR, size_bytes BIGINT, rows BIGINT, columns INTEGER,
        format VARCHAR, encoding VARCHAR, run_id VARCHAR, ingested_at TIMESTAMP, duration_s DOUBLE,
        mtime_ns BIGINT)""")
    for name, kind in LOG_ADDED_COLUMNS.items():  # warehouses written before these existed
        con.execute(f"ALTER TABLE {LEDGER} ADD COLUMN IF NOT EXISTS {name} {kind}")


def read_config_hash(dataset: Dataset) -> str:
    """Hash of the YAML parts that decide how a file is read (source block and columns): after a fix
    there, the same file is read again."""
    # When a file counts as arrived does not change how it is read.
    parts = {
        "source": dataset.ingest.model_dump(
            mode="json", exclude={"settle_seconds", "ready_marker", "each_file_complete"}
        ),
        "columns": [c.model_dump(mode="json") for c in dataset.columns],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def _name_mapper(
    dataset: Dataset, path: Path | str, fmt: SourceFormat = SourceFormat.CSV
) -> tuple[Callable[[list[str]], list[str]], dict[str, str]]:
    """Map the file's header to field names: declared columns by source name (exact first, then ignoring
    case and whitespace), the others derived and made distinct."""
    made = produced_columns(dataset.ingest)  # declared columns that exist only after unpivoting
    read_columns = [c for c in dataset.columns if c.field_name not in made]
    sources = [c.source for c in read_columns]
    mapping: dict[str, str] = {}
    header_fix = "set ingest.header_row if the header line was not found, " if fmt in HEADER_FORMATS else ""

    def names_for(header: list[str]) -> list[str]:
        positions, missing = match_declared(sources, header)
        if missing:
            raise IngestError(
                path,
                f"columns declared in the dataset YAML are missing from the file: "
                f"{', '.join(missing)} ({describe_header(header)})",
                f"fix the column's `source` name in the YAML, {header_fix}or ask the agency for the full extract",
                column=missing[0],
            )
        explicit: list[str | None] = [None] * len(header)
        for at, column in zip(positions, read_columns, strict=True):
            explicit[at] = column.field_name  # type: ignore[index]
        names = field_names_for(header, explicit)
        mapping.clear()
        mapping.update(zip(source_labels(header), names, strict=True))
        return names

    return names_for, mapping


def ingest_dataset(
    con: duckdb.DuckDBPyConnection,
    dataset: Dataset,
    landing_dir: Path | Landing | Settings,
    *,
    run_id: str,
    workdir: Path,
    force: bool = False,
    path: Path | None = None,
) -> IngestResult:
    """Load the dataset's newest landing file into ``ingest__<id>``, keyed by the file version and how it is read.

    A version is the file's name, size, mtime and SHA-256 plus a hash of the YAML's source block and
    columns. The file is skipped only when it is the version the raw table holds now, read the same way;
    an older file sent again after another one, or the same file after a YAML fix, is read (``force``
    reads regardless). The raw table and its ingest-log row change in one transaction. The landing
    folder may be remote (an fsspec URL, see remote.py); a file not yet complete is refused.
    """
    ensure_meta(con)
    started = time.perf_counter()
    found = _arrived_file(dataset, landing_dir, path)
    location = found.location
    config = read_config_hash(dataset)
    current = _current_version(con, dataset.id, raw_table(dataset.id))
    unread = (
        unread_arrivals(landing_dir, dataset.ingest, found, _previous_file_mtime(con, dataset.id, location))
        if path is None and names_several_files(dataset.ingest.path)
        else []
    )
    passed_over = [f.relative for f in unread]
    published = None if force else _published_version(con, dataset.id)  # what the portal holds now
    if published and path is None and names_several_files(dataset.ingest.path):
        _refuse_earlier_name(location, published[1])
    stat = found
    if current and not force and _same_version(current, found, config):
        reason = "unchanged: the table holds this file (same name, size and mtime), read the same way"
        return replace(
            _skipped(con, dataset, location, stat, current, config, started, reason),
            unread_arrivals=passed_over,
        )
    if stat.st_size == 0:
        raise IngestError(
            location,
            "the file is empty (0 bytes)",
            "check that the agency's export finished and ask for the file again",
        )
    staging = f"_staging__{dataset.id}"
    read, digest, stat, mapping = _read_version(con, dataset, found, staging, workdir)
    if current and not force and (current["sha256"], current["read_config"]) == (digest, config):
        con.execute(f'DROP TABLE IF EXISTS "{staging}"')
        seconds = time.perf_counter() - started
        _log(con, dataset, location, stat, digest, read, run_id, seconds, config, "unchanged")  # fmt: skip
        reason = "unchanged: same content (SHA-256) as the table holds, read the same way"
        return replace(
            _skipped(con, dataset, location, stat, current, config, started, reason),
            unread_arrivals=passed_over,
        )
    resend_of = _resend_of(con, dataset.id, digest, current)
    if (
        resend_of
        and published
        and published[0] != digest
        and _read_before(con, dataset.id, digest, published[0])
    ):
        con.execute(f'DROP TABLE IF EXISTS "{staging}"')
        raise _earlier_version(location, resend_of, published[1])
    reason = _reason(force, current, digest, resend_of)
    duration = round(time.perf_counter() - started, 3)
    quirks = _swap_in(
        con,
        dataset,
        staging,
        read,
        location,
        lambda: _log(
            con, dataset, location, stat, digest, read, run_id, duration, config, "ingested", resend_of
        ),
    )
    return replace(
        _ingested(
            con, dataset, location, stat, digest, read, mapping, quirks, duration, config, reason, resend_of
        ),
        unread_arrivals=passed_over,
    )


def _arrived_file(dataset: Dataset, landing_dir: Path | Landing | Settings, path: Path | None) -> LandingFile:
    """The file to read (``path``, or the newest match of ingest.path), refused while not complete."""
    landing = Landing.of(landing_dir)
    found = (
        LandingFile.local(path, landing.local, dataset.ingest.ready_marker)
        if path
        else newest_landing_file(landing, dataset.ingest)
    )
    refuse_unfinished(found, dataset.ingest)
    return found


def _same_version(current: dict[str, object], found: LandingFile, config: str) -> bool:
    """The raw table holds this file (same name, size and mtime), read with the same YAML."""
    held = (current["path"], current["size_bytes"], current["mtime_ns"], current["read_config"])
    return held == (found.location, found.st_size, found.st_mtime_ns, config)


def _load_version(
    found: LandingFile, workdir: Path, read: Callable, *, complete: bool
) -> tuple[ReadResult, str, LandingFile | os.stat_result]:
    """Read one unchanging version of the landing file (streamed to a local copy when it is remote)."""
    if found.root is None:
        return read_stable(Path(found.location), workdir, read, complete=complete)
    result, digest, (size, mtime_ns) = read_remote(
        found.location, found.root, workdir, read, complete=complete
    )
    return result, digest, LandingFile(found.location, found.relative, size, mtime_ns, None, found.root)


def _read_version(
    con: duckdb.DuckDBPyConnection, dataset: Dataset, found: LandingFile, staging: str, workdir: Path
) -> tuple[ReadResult, str, Any, dict[str, str]]:
    """Read the file version into ``staging`` (hashing the bytes actually loaded); nothing is left behind
    when the read fails."""
    fmt = source_format(found.name, dataset.ingest.format)
    names_for, mapping = _name_mapper(dataset, found.location, fmt)
    try:
        read, digest, stat = _load_version(
            found,
            workdir,
            lambda source, scan: _read(con, dataset, source, fmt, staging, names_for, workdir, scan),
            complete=ready_on_sight(found, dataset.ingest),
        )
    except BaseException:
        con.execute(f'DROP TABLE IF EXISTS "{staging}"')
        raise
    return read, digest, stat, mapping


def _ingested(
    con: duckdb.DuckDBPyConnection,
    dataset: Dataset,
    location: str,
    stat: Any,
    digest: str,
    read: ReadResult,
    mapping: dict[str, str],
    quirks: QuirkResult,
    duration: float,
    config: str,
    reason: str,
    resend_of: str | None,
) -> IngestResult:
    """The lineage of a file version just loaded: where from, how read, what the table holds now."""
    declared = {c.field_name for c in dataset.columns}
    names = [
        r[0]
        for r in con.execute(f'DESCRIBE "{raw_table(dataset.id)}"').fetchall()
        if r[0] not in ("_row", "_line")
    ]
    return IngestResult(
        dataset.id, location, stat.st_size, digest, False, quirks.rows, len(names), read.format, read.encoding,
        read.bom, read.delimiter, read.header_line, read.sheet, duration, dict(mapping),
        [n for n in names if declared and n not in declared], stat.st_mtime_ns, config, reason, resend_of,
        read.fallback_lines, read.first_fallback_line, read.rows, quirks.left_out, quirks.unpivoted_columns,
        notes=list(read.notes),
    )  # fmt: skip


def _resend_of(
    con: duckdb.DuckDBPyConnection, dataset_id: str, digest: str, current: dict[str, object] | None
) -> str | None:
    """The run that loaded these exact bytes before, when they come back after a different version."""
    earlier = con.execute(
        f"SELECT run_id FROM {LEDGER} WHERE dataset_id = ? AND sha256 = ? AND status IS "
        "DISTINCT FROM 'unchanged' ORDER BY ingested_at DESC LIMIT 1",
        [dataset_id, digest],
    ).fetchone()
    return earlier[0] if earlier and (current is None or current["sha256"] != digest) else None


def _read_before(con: duckdb.DuckDBPyConnection, dataset_id: str, digest: str, published: str) -> bool:
    """Whether these bytes were last read before the version the portal holds: a rollback. Read after it
    (a newer delivery whose publish was killed, then sent again), they are the retry that finishes it: a
    helper's re-sent file was refused as "before the version the portal holds now", which it never held."""
    row = con.execute(
        f"SELECT max(ingested_at) FILTER (WHERE sha256 = ?), max(ingested_at) FILTER (WHERE sha256 = ?) "
        f"FROM {LEDGER} WHERE dataset_id = ? AND status IS DISTINCT FROM 'unchanged'",
        [digest, published, dataset_id],
    ).fetchall()
    this, held = row[0] if row else (None, None)
    return this is None or held is None or this < held


def _previous_file_mtime(con: duckdb.DuckDBPyConnection, dataset_id: str, location: str) -> int | None:
    """The modification time of the last file read before the one found now (None before any), so a
    run that stopped over a passed-over delivery stops again until that file is dealt with."""
    row = con.execute(
        f"SELECT mtime_ns FROM {LEDGER} WHERE dataset_id = ? AND path <> ? AND mtime_ns IS NOT NULL "
        "ORDER BY ingested_at DESC LIMIT 1",
        [dataset_id, location],
    ).fetchone()
    return int(row[0]) if row else None


def _current_version(con: duckdb.DuckDBPyConnection, dataset_id: str, table: str) -> dict[str, object] | None:
    """The ingest-log row describing what the raw table holds now (None when there is no raw table)."""
    if not relation_exists(con, "main", table):
        return None
    cursor = con.execute(
        f"SELECT * FROM {LEDGER} WHERE dataset_id = ? ORDER BY ingested_at DESC LIMIT 1", [dataset_id]
    )
    row = cursor.fetchone()
    return dict(zip([d[0] for d in cursor.description], row, strict=True)) if row else None


def _name_order(name: str) -> list[tuple[int, int | str]]:
    """A file name's sort key with its numbers as numbers (extract_9 before extract_10)."""
    return [
        (0, int(part)) if part.isdigit() else (1, part.lower()) for part in re.split(r"(\d+)", name) if part
    ]


def _refuse_earlier_name(location: Path | str, published_path: str) -> None:
    """Under a path pattern, the newest file (by time) whose name sorts before the file the portal holds
    now is an earlier delivery saved again: a new user re-exported January's OCME file after March's
    was published, and, its bytes differing, it went out over March with status ok. Only names that
    differ in their numbers are compared (ocme_2019-01 and ocme_2019-03): words such as month names
    (april, march) do not sort by time."""
    name, held = Path(str(location)).name, Path(published_path).name
    same_words = re.sub(r"\d+", "#", name.lower()) == re.sub(r"\d+", "#", held.lower())
    if same_words and _name_order(name) < _name_order(held):
        raise IngestError(
            location,
            f"it is the newest file matching ingest.path, but its name sorts before {held}, the file the "
            "portal holds now, so it looks like an earlier delivery saved again, and nothing was read",
            "move it out of the landing folder, or, if it is the newer version, run again with --reingest",
        )


def _published_version(con: duckdb.DuckDBPyConnection, dataset_id: str) -> tuple[str, str] | None:
    """The SHA-256 and path of the file the last successful publish sent, from each run's stage results."""
    if not relation_exists(con, "meta", STAGE_RESULTS.split(".")[1]):
        return None
    row = con.execute(
        f"SELECT i.facts->>'sha256', i.facts->>'path' FROM {STAGE_RESULTS} p JOIN {STAGE_RESULTS} i ON i.run_id = p.run_id "
        "AND i.dataset_id = p.dataset_id AND i.stage = 'ingest' WHERE p.dataset_id = ? AND p.stage = 'publish' "
        "AND p.status = 'ok' ORDER BY p.recorded_at DESC LIMIT 1",
        [dataset_id],
    ).fetchone()
    return (row[0], row[1]) if row and row[0] else None


def _earlier_version(location: Path | str, resend_of: str, published: str) -> IngestError:
    """A file holding the bytes of a version read before a different one that the portal now holds:
    publishing it would take the portal back. A new user's older monthly file, touched, became the newest
    match of the path pattern and was published over the month after it with nothing said. (An earlier
    version sent again after one that was never published, say refused by a guard, is the fix, and goes.)"""
    held = "a later delivery under the same name" if str(published) == str(location) else published
    return IngestError(
        location,
        f"it holds the same bytes as the version read in run {resend_of}, before the version the portal "
        f"holds now ({held}), so publishing it would take the portal back to the earlier "
        "version, and nothing was read",
        "move the older file out of the landing folder, or, if the portal should go back to it, run again "
        "with --reingest",
    )


def _reason(force: bool, current: dict[str, object] | None, digest: str, resend_of: str | None) -> str:
    if force:
        return "read again on request (force / --reingest)"
    if current is None:
        return "first ingest of this dataset"
    if current["sha256"] == digest:
        return "the dataset YAML's source block or columns changed since the table was read"
    if resend_of:
        return f"re-send of a file version ingested earlier (run {resend_of}), after a different one"
    return "new file version"


def _skipped(
    con: duckdb.DuckDBPyConnection,
    dataset: Dataset,
    path: Path | str,
    stat: os.stat_result | LandingFile,
    current: dict[str, object],
    config: str,
    started: float,
    reason: str,
) -> IngestResult:
    columns = len(con.execute(f'DESCRIBE "{raw_table(dataset.id)}"').fetchall()) - 2
    quirks = recorded_quirks(con, dataset, raw_table(dataset.id), int(current["rows"]))
    return IngestResult(
        dataset.id,
        str(path),
        stat.st_size,
        str(current["sha256"]),
        True,
        quirks.rows,
        columns,
        "unchanged",
        None,
        False,
        None,
        None,
        None,
        round(time.perf_counter() - started, 3),
        mtime_ns=stat.st_mtime_ns,
        read_config=config,
        reason=reason,
        source_rows=int(current["rows"]),
        rows_left_out=quirks.left_out,
        unpivoted_columns=quirks.unpivoted_columns,
    )


def _keep_short_rows(con: duckdb.DuckDBPyConnection, dataset_id: str, read: ReadResult) -> None:
    """Rows with fewer fields than the header, for validation to set aside (see ``short_rows_table``)."""
    table = short_rows_table(dataset_id)
    con.execute(f'DROP TABLE IF EXISTS "{table}"')
    if read.short_rows is None:
        return
    con.register("_ingest_short", read.short_rows)
    try:
        con.execute(f'CREATE TABLE "{table}" AS SELECT at_rowid + 1 AS _row, fields FROM _ingest_short')
    finally:
        con.unregister("_ingest_short")


def _swap_in(
    con: duckdb.DuckDBPyConnection,
    dataset: Dataset,
    staging: str,
    read: ReadResult,
    path: Path | str,
    log: Callable[[], None],
) -> QuirkResult:
    """Replace the raw table with the staged rows (shaped by the declared quirks) and write its log row,
    all or nothing."""
    table, data_table = raw_table(dataset.id), f"ingest_rows__{dataset.id}"
    con.execute("BEGIN TRANSACTION")
    try:
        drop_relation(
            con, "main", table
        )  # a view now; a table in warehouses written before raw became a view
        con.execute(f'DROP TABLE IF EXISTS "{data_table}"')
        con.execute(f'ALTER TABLE "{staging}" RENAME TO "{data_table}"')
        create_rows_view(con, table, data_table, read, f"raw_lines__{dataset.id}")
        _keep_short_rows(con, dataset.id, read)
        quirks = apply_quirks(con, dataset, path, table, read)
        shaped = has_quirks(dataset.ingest)
        create_ordered_view(con, ordered_rows_view(dataset.id), table, data_table, read, shaped=shaped)
        create_lines_macro(
            con, source_lines_macro(dataset.id), table, read, shaped, f"raw_lines__{dataset.id}"
        )
        log()
        con.execute("COMMIT")
        return quirks
    except BaseException:
        con.execute("ROLLBACK")
        con.execute(f'DROP TABLE IF EXISTS "{staging}"')
        raise


def _read(
    con: duckdb.DuckDBPyConnection,
    dataset: Dataset,
    path: Path,
    fmt: SourceFormat,
    table: str,
    names_for: Callable[[list[str]], list[str]],
    workdir: Path,
    scan: Callable[[], FileScan],
) -> ReadResult:
    refuse_binary_as_text(path, fmt)  # a PDF or zip renamed .csv is named as such, not read as garbage
    if fmt == SourceFormat.CSV:
        return read_csv_into(
            con,
            path,
            table,
            names_for,
            encoding=dataset.ingest.encoding,
            delimiter=dataset.ingest.delimiter,
            header_row=dataset.ingest.header_row,
            workdir=workdir,
            scan=scan,
        )
    if fmt == SourceFormat.EXCEL:
        return read_excel_into(
            con, path, table, names_for, sheet=dataset.ingest.sheet, header_row=dataset.ingest.header_row
        )
    read = (read_json_into if fmt == SourceFormat.JSON else read_parquet_into)(con, path, table, names_for)
    if read.rows == 0:  # CSV and Excel readers say which header line had no rows after it
        raise IngestError(
            path,
            f"the {read.format} file holds no records",
            "check that the agency's export finished and ask for the file again",
        )
    return read


def _log(
    con: duckdb.DuckDBPyConnection,
    dataset: Dataset,
    path: Path | str,
    stat: os.stat_result | LandingFile,
    digest: str,
    read: ReadResult,
    run_id: str,
    duration: float,
    config: str,
    status: str,
    resend_of_run: str | None = None,
) -> None:
    con.execute(
        f"INSERT INTO {LEDGER} (dataset_id, path, sha256, size_bytes, rows, columns, format, encoding, "
        "run_id, ingested_at, duration_s, mtime_ns, read_config, status, resend_of_run, fallback_lines) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            dataset.id,
            str(path),
            digest,
            stat.st_size,
            read.rows,
            len(read.field_names),
            read.format,
            read.encoding,
            run_id,
            datetime.now(UTC).replace(tzinfo=None),
            round(duration, 3),
            stat.st_mtime_ns,
            config,
            status,
            resend_of_run,
            read.fallback_lines,
        ],
    )
