"""Ingest the newest landing file of a dataset into ``raw."<id>"``, with lineage, once per file version."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from ct_pipelines.catalog.models import Dataset, SourceFormat
from ct_pipelines.core.sql import stage_table
from ct_pipelines.ingest.errors import IngestError
from ct_pipelines.ingest.naming import field_names_for
from ct_pipelines.ingest.quirks import apply_quirks, produced_columns, recorded_quirks
from ct_pipelines.ingest.readers import (
    FileScan,
    ReadResult,
    create_rows_view,
    read_csv_into,
    read_excel_into,
    read_json_into,
    read_parquet_into,
    scan_file,
)

EXTENSIONS = {
    ".csv": SourceFormat.CSV, ".txt": SourceFormat.CSV, ".tsv": SourceFormat.CSV, ".psv": SourceFormat.CSV,
    ".xlsx": SourceFormat.EXCEL, ".xlsm": SourceFormat.EXCEL,
    ".json": SourceFormat.JSON, ".jsonl": SourceFormat.JSON, ".ndjson": SourceFormat.JSON,
    ".parquet": SourceFormat.PARQUET, ".pq": SourceFormat.PARQUET,
}
LEDGER = "meta.ingest_log"


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
    source_rows: int | None = None  # records in the file; = rows + rows left out when nothing is unpivoted
    rows_left_out: dict[str, int] = field(default_factory=dict)  # "left out by rule": rule name -> rows
    unpivoted_columns: int = 0

    def lineage(self) -> dict[str, object]:
        """Flat lineage for asset metadata and the ingest log."""
        data = asdict(self)
        data.pop("field_map")
        return data


def newest_file(landing_dir: Path, pattern: str) -> Path:
    """The most recently modified file matching the dataset's source path (a name or a glob)."""
    candidates = [p for p in landing_dir.glob(pattern) if p.is_file()]
    if not candidates:
        raise IngestError(landing_dir / pattern, "no file in the landing folder matches ingest.path",
                          f"drop the extract into {landing_dir} or correct ingest.path in the dataset YAML")
    return max(candidates, key=lambda p: (p.stat().st_mtime_ns, p.name))


def source_format(path: Path, declared: SourceFormat) -> SourceFormat:
    if declared != SourceFormat.AUTO:
        return declared
    fmt = EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise IngestError(path, f"cannot tell the format from the extension '{path.suffix}'",
                          "set ingest.format to csv, excel, json or parquet")
    return fmt


def ensure_meta(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS meta")
    con.execute(f"""CREATE TABLE IF NOT EXISTS {LEDGER} (
        dataset_id VARCHAR, path VARCHAR, sha256 VARCHAR, size_bytes BIGINT, rows BIGINT, columns INTEGER,
        format VARCHAR, encoding VARCHAR, run_id VARCHAR, ingested_at TIMESTAMP, duration_s DOUBLE,
        mtime_ns BIGINT)""")


def _name_mapper(dataset: Dataset, path: Path) -> tuple[Callable[[list[str]], list[str]], dict[str, str]]:
    """Map the file's header to field names: declared columns by source name, others derived."""
    declared = {_norm(c.source): c.field_name for c in dataset.columns}
    mapping: dict[str, str] = {}

    def names_for(header: list[str]) -> list[str]:
        explicit = [declared.get(_norm(h)) for h in header]
        names = field_names_for(header, explicit)
        found = {_norm(h) for h in header}
        made = produced_columns(dataset.ingest)  # exist only after unpivoting
        missing = [c.source for c in dataset.columns if _norm(c.source) not in found and c.field_name not in made]
        if missing:
            raise IngestError(path, f"columns declared in the dataset YAML are missing from the file: "
                              f"{', '.join(missing)} (the file has: {', '.join(header)})",
                              "fix the column's `source` name in the YAML, or ask the agency for the full extract",
                              column=missing[0])
        mapping.update(dict(zip(header, names, strict=True)))
        return names

    return names_for, mapping


def _norm(name: str) -> str:
    return " ".join(str(name).split()).casefold()


def ingest_dataset(con: duckdb.DuckDBPyConnection, dataset: Dataset, landing_dir: Path, *, run_id: str,
                   workdir: Path, force: bool = False, path: Path | None = None) -> IngestResult:
    """Load the dataset's newest landing file; a file whose SHA-256 was already ingested is skipped.

    The hash is computed on a thread while DuckDB reads (both release the GIL), so checking for a
    repeated file costs no extra pass; an unchanged path, size and mtime skips without reading at all.
    """
    ensure_meta(con)
    started = time.perf_counter()
    path = path or newest_file(landing_dir, dataset.ingest.path)
    stat = path.stat()
    table = raw_table(dataset.id)
    table_exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' "
                               "AND table_name = ?", [table]).fetchall()[0][0]

    def skipped(digest: str, rows: int) -> IngestResult:
        columns = len(con.execute(f'DESCRIBE "{table}"').fetchall()) - 2
        quirks = recorded_quirks(con, dataset, table, rows)
        return IngestResult(dataset.id, str(path), stat.st_size, digest, True, quirks.rows, columns, "unchanged",
                            None, False, None, None, None, round(time.perf_counter() - started, 3),
                            source_rows=rows, rows_left_out=quirks.left_out,
                            unpivoted_columns=quirks.unpivoted_columns)

    if table_exists and not force:
        same = con.execute(f"SELECT sha256, rows FROM {LEDGER} WHERE dataset_id = ? AND path = ? AND size_bytes = ? "
                           "AND mtime_ns = ? ORDER BY ingested_at DESC LIMIT 1",
                           [dataset.id, str(path), stat.st_size, stat.st_mtime_ns]).fetchone()
        if same:
            return skipped(same[0], same[1])
    names_for, mapping = _name_mapper(dataset, path)
    fmt = source_format(path, dataset.ingest.format)
    staging = f"_staging__{dataset.id}"
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-scan") as pool:
        scanning = pool.submit(scan_file, path)
        try:
            read = _read(con, dataset, path, fmt, staging, names_for, workdir, scanning.result)
        finally:
            scan = scanning.result()
    previous = con.execute(f"SELECT rows FROM {LEDGER} WHERE dataset_id = ? AND sha256 = ? "
                           "ORDER BY ingested_at DESC LIMIT 1", [dataset.id, scan.sha256]).fetchone()
    if previous and table_exists and not force:
        con.execute(f'DROP TABLE IF EXISTS "{staging}"')
        _log(con, dataset, path, stat, scan.sha256, read, run_id, time.perf_counter() - started)
        return skipped(scan.sha256, previous[0])
    data_table = f"ingest_rows__{dataset.id}"
    kind = con.execute("SELECT table_type FROM information_schema.tables WHERE table_schema = 'main' "
                       "AND table_name = ?", [table]).fetchall()
    if kind:  # a view now; a table in warehouses written before raw became a view
        con.execute(f'DROP {"VIEW" if kind[0][0] == "VIEW" else "TABLE"} "{table}"')
    con.execute(f'DROP TABLE IF EXISTS "{data_table}"')
    con.execute(f'ALTER TABLE "{staging}" RENAME TO "{data_table}"')
    create_rows_view(con, table, data_table, read, f"raw_lines__{dataset.id}")
    quirks = apply_quirks(con, dataset, path, table, read)
    duration = round(time.perf_counter() - started, 3)
    _log(con, dataset, path, stat, scan.sha256, read, run_id, duration)
    declared = {c.field_name for c in dataset.columns}
    names = [r[0] for r in con.execute(f'DESCRIBE "{table}"').fetchall() if r[0] not in ("_row", "_line")]
    undeclared = [n for n in names if declared and n not in declared]
    return IngestResult(dataset.id, str(path), stat.st_size, scan.sha256, False, quirks.rows, len(names),
                        read.format, read.encoding, read.bom, read.delimiter, read.header_line, read.sheet, duration,
                        dict(mapping), undeclared, read.rows, quirks.left_out, quirks.unpivoted_columns)


def _read(con: duckdb.DuckDBPyConnection, dataset: Dataset, path: Path, fmt: SourceFormat, table: str,
          names_for: Callable[[list[str]], list[str]], workdir: Path, scan: Callable[[], FileScan]) -> ReadResult:
    if fmt == SourceFormat.CSV:
        return read_csv_into(con, path, table, names_for, encoding=dataset.ingest.encoding,
                             delimiter=dataset.ingest.delimiter, header_row=dataset.ingest.header_row,
                             workdir=workdir, scan=scan)
    if fmt == SourceFormat.EXCEL:
        return read_excel_into(con, path, table, names_for, sheet=dataset.ingest.sheet,
                               header_row=dataset.ingest.header_row)
    if fmt == SourceFormat.JSON:
        return read_json_into(con, path, table, names_for)
    return read_parquet_into(con, path, table, names_for)


def _log(con: duckdb.DuckDBPyConnection, dataset: Dataset, path: Path, stat: os.stat_result, digest: str,
         read: ReadResult, run_id: str, duration: float) -> None:
    con.execute(f"INSERT INTO {LEDGER} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [dataset.id, str(path), digest, stat.st_size, read.rows, len(read.field_names), read.format,
                 read.encoding, run_id, datetime.now(UTC).replace(tzinfo=None), round(duration, 3), stat.st_mtime_ns])
