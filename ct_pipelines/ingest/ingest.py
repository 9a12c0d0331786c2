"""Ingest the newest landing file of a dataset into ``raw."<id>"``, with lineage, once per file version."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from ct_pipelines.catalog.models import Dataset, SourceFormat
from ct_pipelines.ingest.errors import IngestError
from ct_pipelines.ingest.naming import field_names_for
from ct_pipelines.ingest.readers import (
    ReadResult,
    file_digest,
    read_csv_into,
    read_excel_into,
    read_json_into,
    read_parquet_into,
)

EXTENSIONS = {
    ".csv": SourceFormat.CSV, ".txt": SourceFormat.CSV, ".tsv": SourceFormat.CSV, ".psv": SourceFormat.CSV,
    ".xlsx": SourceFormat.EXCEL, ".xlsm": SourceFormat.EXCEL,
    ".json": SourceFormat.JSON, ".jsonl": SourceFormat.JSON, ".ndjson": SourceFormat.JSON,
    ".parquet": SourceFormat.PARQUET, ".pq": SourceFormat.PARQUET,
}
LEDGER = "meta.ingest_log"


def raw_table(dataset_id: str) -> str:
    return f'raw."{dataset_id}"'


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

    def lineage(self) -> dict[str, object]:
        """Flat lineage for asset metadata and the ingest log."""
        data = asdict(self)
        data.pop("field_map")
        return data


def newest_file(landing_dir: Path, pattern: str) -> Path:
    """The most recently modified file matching the dataset's source path (a name or a glob)."""
    candidates = [p for p in landing_dir.glob(pattern) if p.is_file()]
    if not candidates:
        raise IngestError(landing_dir / pattern, "no file in the landing folder matches source.path",
                          f"drop the extract into {landing_dir} or correct source.path in the dataset YAML")
    return max(candidates, key=lambda p: (p.stat().st_mtime_ns, p.name))


def source_format(path: Path, declared: SourceFormat) -> SourceFormat:
    if declared != SourceFormat.AUTO:
        return declared
    fmt = EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise IngestError(path, f"cannot tell the format from the extension '{path.suffix}'",
                          "set source.format to csv, excel, json or parquet")
    return fmt


def ensure_meta(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute("CREATE SCHEMA IF NOT EXISTS meta")
    con.execute(f"""CREATE TABLE IF NOT EXISTS {LEDGER} (
        dataset_id VARCHAR, path VARCHAR, sha256 VARCHAR, size_bytes BIGINT, rows BIGINT, columns INTEGER,
        format VARCHAR, encoding VARCHAR, run_id VARCHAR, ingested_at TIMESTAMP, duration_s DOUBLE)""")


def _name_mapper(dataset: Dataset, path: Path) -> tuple[Callable[[list[str]], list[str]], dict[str, str]]:
    """Map the file's header to field names: declared columns by source name, others derived."""
    declared = {_norm(c.source): c.field_name for c in dataset.columns}
    mapping: dict[str, str] = {}

    def names_for(header: list[str]) -> list[str]:
        explicit = [declared.get(_norm(h)) for h in header]
        names = field_names_for(header, explicit)
        found = {_norm(h) for h in header}
        missing = [c.source for c in dataset.columns if _norm(c.source) not in found]
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
    """Load the dataset's newest landing file; a file whose SHA-256 was already ingested is skipped."""
    ensure_meta(con)
    started = time.perf_counter()
    path = path or newest_file(landing_dir, dataset.source.path)
    size = path.stat().st_size
    digest = file_digest(path)
    table = raw_table(dataset.id)
    previous = con.execute(f"SELECT rows FROM {LEDGER} WHERE dataset_id = ? AND sha256 = ? "
                           "ORDER BY ingested_at DESC LIMIT 1", [dataset.id, digest]).fetchone()
    table_exists = con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'raw' AND table_name = ?",
                               [dataset.id]).fetchone()[0]
    if previous and table_exists and not force:
        columns = len(con.execute(f"DESCRIBE {table}").fetchall()) - 2
        return IngestResult(dataset.id, str(path), size, digest, True, previous[0], columns, "unchanged", None,
                            False, None, None, None, round(time.perf_counter() - started, 3))
    names_for, mapping = _name_mapper(dataset, path)
    fmt = source_format(path, dataset.source.format)
    staging = f'raw."_staging_{dataset.id}"'
    read: ReadResult
    if fmt == SourceFormat.CSV:
        read = read_csv_into(con, path, staging, names_for, encoding=dataset.source.encoding,
                             delimiter=dataset.source.delimiter, header_row=dataset.source.header_row,
                             workdir=workdir)
    elif fmt == SourceFormat.EXCEL:
        read = read_excel_into(con, path, staging, names_for, sheet=dataset.source.sheet,
                               header_row=dataset.source.header_row)
    elif fmt == SourceFormat.JSON:
        read = read_json_into(con, path, staging, names_for)
    else:
        read = read_parquet_into(con, path, staging, names_for)
    con.execute(f"DROP TABLE IF EXISTS {table}")
    con.execute(f'ALTER TABLE {staging} RENAME TO "{dataset.id}"')
    duration = round(time.perf_counter() - started, 3)
    declared = {c.field_name for c in dataset.columns}
    undeclared = [n for n in read.field_names if declared and n not in declared]
    con.execute(f"INSERT INTO {LEDGER} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [dataset.id, str(path), digest, size, read.rows, len(read.field_names), read.format,
                 read.encoding, run_id, datetime.now(UTC).replace(tzinfo=None), duration])
    return IngestResult(dataset.id, str(path), size, digest, False, read.rows, len(read.field_names), read.format,
                        read.encoding, read.bom, read.delimiter, read.header_line, read.sheet, duration,
                        dict(mapping), undeclared)
