"""Portal-wide audit: the State Data Plan's metrics computed from the portal catalog.

Unlike CT's current audit (one 365-day threshold for every dataset), each dataset is held to its own
declared Update Frequency. Rules:

* Only assets of type ``dataset`` are audited (charts, maps, stories... are counted as skipped).
* Up to date = last data update (``data_updated_at``, i.e. rowsUpdatedAt) within the frequency's
  maximum gap plus ``tolerance``. "As needed" and "Not updated (historical only)" promise no cadence
  and count as up to date. A missing, unrecognised or "Other" frequency cannot be checked, so the
  dataset counts as not up to date and is reported separately as ``unknown_frequency``.
* Metadata completeness: description, category, tags, attribution, license, contact, update
  frequency and a description on every column (the handbook's fields), as a share of eight.
* Disaggregation: a column name or description contains a race/ethnicity word (race, ethnicity,
  hispanic, latino...) or a gender word (gender, sex). Word matching, so "race_ethnicity" counts.
* ``stale_365`` repeats CT's current single threshold so the two audits can be compared.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from ct_pipelines.automation.frequency import (
    DEFAULT_TOLERANCE,
    UNSCHEDULED,
    as_utc,
    frequency_timedelta,
    parse_frequency,
)
from ct_pipelines.catalog.handbook import UpdateFrequency
from ct_pipelines.catalog.portal_fields import MARKER_PREFIX, custom_field_location, domain_metadata_key

METADATA_FIELDS = (
    "description",
    "category",
    "tags",
    "attribution",
    "license",
    "contact",
    "update_frequency",
    "column_descriptions",
)
STATUSES = ("on_time", "overdue", "never_updated", "no_cadence", "unknown_frequency")
UP_TO_DATE_STATUSES = frozenset({"on_time", "no_cadence"})
AGE_BUCKETS = ((30, "days_0_30"), (90, "days_31_90"), (365, "days_91_365"))
RACE_WORDS = frozenset(
    {
        "race",
        "races",
        "racial",
        "ethnicity",
        "ethnicities",
        "ethnic",
        "hispanic",
        "latino",
        "latina",
        "latinx",
    }
)
GENDER_WORDS = frozenset({"gender", "genders", "sex"})
_WORD = re.compile(r"[a-z]+")

_FLAG_COLUMNS = [
    "up_to_date",
    "stale_365",
    *(f"has_{name}" for name in METADATA_FIELDS),
]
ROW_SCHEMA = pa.schema(
    [
        *((name, pa.string()) for name in ("dataset_id", "name", "agency", "category")),
        ("declared_frequency", pa.string()),
        ("update_frequency", pa.string()),
        ("last_update", pa.timestamp("us", "UTC")),
        ("days_since_update", pa.int64()),
        ("age_bucket", pa.string()),
        ("freshness_status", pa.string()),
        *((name, pa.bool_()) for name in _FLAG_COLUMNS),
        ("metadata_completeness", pa.float64()),
        ("metadata_complete", pa.bool_()),
        ("missing_metadata", pa.string()),
        ("disaggregated_race_ethnicity", pa.bool_()),
        ("disaggregated_gender", pa.bool_()),
        ("url", pa.string()),
    ]
)
"""Columns of the per-dataset audit rows, in CSV order."""

SNAPSHOT_TABLE = "audit_snapshots"
SNAPSHOT_ROWS_TABLE = "audit_snapshot_datasets"
TREND_KEYS = (
    "datasets",
    "up_to_date_pct",
    "metadata_complete_pct",
    "with_attribution_pct",
    "disaggregated_any_pct",
    "status_overdue",
    "status_unknown_frequency",
)


def _custom_key(attribute: str) -> str | None:
    location = custom_field_location(attribute)
    return domain_metadata_key(*location) if location else None


def _parse_time(value: Any) -> datetime | None:
    """Discovery API timestamps are ISO 8601 strings; view JSON uses epoch seconds. Accept both."""
    if value in (None, ""):
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, datetime):
        return as_utc(value)
    return as_utc(datetime.fromisoformat(str(value).replace("Z", "+00:00")))


def _words(texts: Iterable[Any]) -> set[str]:
    return set(_WORD.findall(" ".join(str(text) for text in texts if text).lower()))


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value in ([], {})


def _freshness(freq: UpdateFrequency | None, last: datetime | None, now: datetime, tolerance: float) -> str:
    gap = frequency_timedelta(freq)
    if freq in UNSCHEDULED:
        return "no_cadence"
    if gap is None:
        return "unknown_frequency"
    if last is None:
        return "never_updated"
    return "on_time" if now - last <= gap * (1 + tolerance) else "overdue"


def _age_bucket(days: int | None) -> str:
    if days is None:
        return "days_never"
    return next((name for limit, name in AGE_BUCKETS if days <= limit), "days_over_365")


def audit_record(
    record: Mapping[str, Any], now: datetime, tolerance: float, keys: Mapping[str, str | None]
) -> dict[str, Any]:
    """One dataset's audit row from one Discovery API record."""
    resource = record.get("resource") or {}
    classification = record.get("classification") or {}
    custom = {m.get("key"): m.get("value") for m in classification.get("domain_metadata") or []}
    declared = custom.get(keys["update_frequency"])
    freq = parse_frequency(declared)
    last = _parse_time(resource.get("data_updated_at"))
    days = None if last is None else (now - last).days
    status = _freshness(freq, last, now, tolerance)
    columns = resource.get("columns_field_name") or resource.get("columns_name") or []
    column_descriptions = resource.get("columns_description") or []
    present = {
        "description": not _blank(resource.get("description")),
        "category": not _blank(classification.get("domain_category")),
        "tags": any(  # the pipeline's own marker tag describes nothing
            not _blank(t) and not str(t).startswith(MARKER_PREFIX)
            for t in classification.get("domain_tags") or []
        ),
        "attribution": not _blank(resource.get("attribution")),
        "license": not _blank((record.get("metadata") or {}).get("license")),
        "contact": not (_blank(resource.get("contact_email")) and _blank(custom.get(keys["contact"]))),
        "update_frequency": freq is not None,
        "column_descriptions": bool(columns)
        and len(column_descriptions) >= len(columns)
        and not any(_blank(d) for d in column_descriptions),
    }
    words = _words([*columns, *(resource.get("columns_name") or []), *column_descriptions])
    return {
        "dataset_id": resource.get("id"),
        "name": resource.get("name"),
        "agency": custom.get(keys["agency"]) or resource.get("attribution") or "(no agency)",
        "category": classification.get("domain_category"),
        "declared_frequency": declared,
        "update_frequency": str(freq) if freq else None,
        "last_update": last,
        "days_since_update": days,
        "age_bucket": _age_bucket(days),
        "freshness_status": status,
        "up_to_date": status in UP_TO_DATE_STATUSES,
        "stale_365": days is None or days > 365,
        **{f"has_{name}": ok for name, ok in present.items()},
        "metadata_completeness": sum(present.values()) / len(present),
        "metadata_complete": all(present.values()),
        "missing_metadata": ", ".join(name for name, ok in present.items() if not ok),
        "disaggregated_race_ethnicity": bool(words & RACE_WORDS),
        "disaggregated_gender": bool(words & GENDER_WORDS),
        "url": record.get("permalink") or record.get("link"),
    }


def _pct(part: int, whole: int) -> float:
    return round(100 * part / whole, 1) if whole else 0.0


def summarize(rows: list[dict[str, Any]], skipped: int) -> dict[str, Any]:
    """Portal totals from audit rows: counts, percentages and a per-agency breakdown."""
    n = len(rows)
    statuses = Counter(r["freshness_status"] for r in rows)
    buckets = Counter(r["age_bucket"] for r in rows)
    up_to_date = sum(r["up_to_date"] for r in rows)
    complete = sum(r["metadata_complete"] for r in rows)
    race = sum(r["disaggregated_race_ethnicity"] for r in rows)
    gender = sum(r["disaggregated_gender"] for r in rows)
    either = sum(r["disaggregated_race_ethnicity"] or r["disaggregated_gender"] for r in rows)
    with_attribution = sum(r["has_attribution"] for r in rows)
    agencies: dict[str, Counter] = defaultdict(Counter)
    for r in rows:
        agencies[r["agency"]].update(
            datasets=1, up_to_date=int(r["up_to_date"]), metadata_complete=int(r["metadata_complete"])
        )
    return {
        "datasets": n,
        "skipped_non_dataset_assets": skipped,
        "up_to_date": up_to_date,
        "up_to_date_pct": _pct(up_to_date, n),
        **{f"status_{s}": statuses.get(s, 0) for s in STATUSES},
        "frequency_other": sum(r["update_frequency"] == UpdateFrequency.OTHER for r in rows),
        "stale_365": sum(r["stale_365"] for r in rows),
        **{
            name: buckets.get(name, 0)
            for name in (*(b for _, b in AGE_BUCKETS), "days_over_365", "days_never")
        },
        **{f"missing_{name}": sum(not r[f"has_{name}"] for r in rows) for name in METADATA_FIELDS},
        "metadata_complete": complete,
        "metadata_complete_pct": _pct(complete, n),
        "mean_metadata_completeness_pct": round(100 * sum(r["metadata_completeness"] for r in rows) / n, 1)
        if n
        else 0.0,
        "with_attribution": with_attribution,
        "with_attribution_pct": _pct(with_attribution, n),
        "disaggregated_race_ethnicity": race,
        "disaggregated_gender": gender,
        "disaggregated_any": either,
        "disaggregated_any_pct": _pct(either, n),
        "by_agency": [
            {"agency": agency, **counts}
            for agency, counts in sorted(agencies.items(), key=lambda item: (-item[1]["datasets"], item[0]))
        ],
    }


@dataclass
class AuditResult:
    """Per-dataset audit rows, portal totals, and (after :func:`run_audit`) the trend and CSV path."""

    run_at: datetime
    rows: list[dict[str, Any]]
    totals: dict[str, Any]
    run_id: str | None = None
    trend: dict[str, Any] = field(default_factory=dict)
    csv_path: Path | None = None

    def markdown(self) -> str:
        """Totals as a markdown table a program manager can read in the Dagster UI."""
        t = self.totals
        lines = [
            f"**Portal audit {self.run_at:%Y-%m-%d %H:%M} UTC** - {t['datasets']} datasets "
            f"({t['skipped_non_dataset_assets']} other assets not audited)",
            "",
            "| Measure | Value | Change since last audit |",
            "|---|---|---|",
        ]
        measures = [
            ("Up to date for their declared frequency", "up_to_date_pct", "%"),
            ("Overdue", "status_overdue", ""),
            ("Never updated", "status_never_updated", ""),
            ("No checkable frequency (missing or Other)", "status_unknown_frequency", ""),
            ("Not updated in 365 days (CT's current rule)", "stale_365", ""),
            ("Complete metadata", "metadata_complete_pct", "%"),
            ("Agency attribution", "with_attribution_pct", "%"),
            ("Disaggregated by race/ethnicity or gender", "disaggregated_any_pct", "%"),
        ]
        for label, key, unit in measures:
            change = self.trend.get(key, {}).get("change")
            shown = "" if change is None else f"{change:+g}{unit}"
            lines.append(f"| {label} | {t[key]:g}{unit} | {shown} |")
        missing = ", ".join(f"{name.replace('_', ' ')} {t[f'missing_{name}']}" for name in METADATA_FIELDS)
        lines += ["", f"Datasets missing each metadata field: {missing}."]
        return "\n".join(lines)

    def asset_metadata(self) -> dict[str, Any]:
        """JSON-serialisable metadata for the audit asset (the lead wraps ``summary`` as markdown)."""
        scalars = {k: v for k, v in self.totals.items() if isinstance(v, int | float)}
        extra = {"csv_path": str(self.csv_path)} if self.csv_path else {}
        return {"summary": self.markdown(), **scalars, "by_agency": self.totals["by_agency"][:50], **extra}


def audit_records(
    records: Iterable[Mapping[str, Any]], now: datetime, tolerance: float = DEFAULT_TOLERANCE
) -> AuditResult:
    """Audit Discovery API records (as returned by sodapy ``datasets()``); pure and linear."""
    now = as_utc(now)
    keys = {attr: _custom_key(attr) for attr in ("update_frequency", "contact", "agency")}
    rows, skipped = [], 0
    for record in records:
        if (record.get("resource") or {}).get("type", "dataset") != "dataset":
            skipped += 1
            continue
        rows.append(audit_record(record, now, tolerance, keys))
    return AuditResult(run_at=now, rows=rows, totals=summarize(rows, skipped))


CATALOG_MAX_LIMIT = 10_000


def fetch_catalog(client: Any) -> list[dict[str, Any]]:
    """Every catalog record of the client's domain from ``/api/catalog/v1`` via sodapy ``datasets()``.

    One request at the API's maximum page covers catalogs up to 10,000 assets (data.ct.gov has a few
    thousand). A full page may mean there are more, and sodapy raises on a short last page when a limit
    is given, so larger catalogs are re-read with sodapy's own paging (no limit)."""
    records = client.datasets(limit=CATALOG_MAX_LIMIT)
    return records if len(records) < CATALOG_MAX_LIMIT else client.datasets()


def _rows_table(result: AuditResult) -> pa.Table:
    table = pa.Table.from_pylist(result.rows, schema=ROW_SCHEMA)
    table = table.add_column(0, "run_at", pa.array([result.run_at] * len(table), pa.timestamp("us", "UTC")))
    return table.add_column(0, "run_id", pa.array([result.run_id] * len(table), pa.string()))


def _ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {SNAPSHOT_TABLE} (run_id VARCHAR PRIMARY KEY, run_at TIMESTAMPTZ, "
        "datasets BIGINT, up_to_date_pct DOUBLE, metadata_complete_pct DOUBLE, with_attribution_pct DOUBLE, "
        "disaggregated_any_pct DOUBLE, totals JSON)"
    )


def _previous_totals(
    con: duckdb.DuckDBPyConnection, run_id: str, run_at: datetime
) -> tuple[str, dict] | None:
    row = con.execute(
        f"SELECT run_id, totals FROM {SNAPSHOT_TABLE} WHERE run_id <> ? AND run_at <= ? "
        "ORDER BY run_at DESC LIMIT 1",
        [run_id, run_at],
    ).fetchone()
    return (row[0], json.loads(row[1])) if row else None


def trend(current: Mapping[str, Any], previous: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Change of the headline measures since a previous snapshot."""
    return {
        key: {
            "previous": previous[key],
            "current": current[key],
            "change": round(current[key] - previous[key], 1),
        }
        for key in TREND_KEYS
        if key in previous and key in current
    }


def save_snapshot(con: duckdb.DuckDBPyConnection, result: AuditResult) -> None:
    """Keep this run's totals and rows (replacing a re-run with the same id) so trends can be drawn."""
    _ensure_tables(con)
    t = result.totals
    con.execute(f"DELETE FROM {SNAPSHOT_TABLE} WHERE run_id = ?", [result.run_id])
    con.execute(
        f"INSERT INTO {SNAPSHOT_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            result.run_id,
            result.run_at,
            t["datasets"],
            t["up_to_date_pct"],
            t["metadata_complete_pct"],
            t["with_attribution_pct"],
            t["disaggregated_any_pct"],
            json.dumps(t),
        ],
    )
    con.register("audit_rows_view", _rows_table(result))
    try:
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {SNAPSHOT_ROWS_TABLE} AS SELECT * FROM audit_rows_view LIMIT 0"
        )
        con.execute(f"DELETE FROM {SNAPSHOT_ROWS_TABLE} WHERE run_id = ?", [result.run_id])
        con.execute(f"INSERT INTO {SNAPSHOT_ROWS_TABLE} BY NAME SELECT * FROM audit_rows_view")
    finally:
        con.unregister("audit_rows_view")


def _safe_file_stem(run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)


def write_csv(con: duckdb.DuckDBPyConnection, result: AuditResult, reports_dir: Path) -> Path:
    """Per-dataset rows at ``reports_dir/portal_audit/<run_id>.csv``, copied to ``latest.csv``."""
    folder = reports_dir / "portal_audit"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{_safe_file_stem(result.run_id or result.run_at.strftime('%Y%m%dT%H%M%S'))}.csv"
    con.register("audit_rows_view", _rows_table(result))
    try:
        con.execute(
            f"COPY (SELECT * EXCLUDE (run_id, run_at) FROM audit_rows_view) TO '{path.as_posix()}' (HEADER)"
        )
    finally:
        con.unregister("audit_rows_view")
    shutil.copyfile(path, folder / "latest.csv")
    return path


def run_audit(
    client: Any,
    con: duckdb.DuckDBPyConnection,
    reports_dir: Path,
    run_id: str,
    now: datetime,
    tolerance: float = DEFAULT_TOLERANCE,
) -> AuditResult:
    """Fetch the catalog, audit it, compare with the previous snapshot, keep a snapshot, write the CSV."""
    result = audit_records(fetch_catalog(client), now, tolerance)
    result.run_id = run_id
    _ensure_tables(con)
    previous = _previous_totals(con, run_id, result.run_at)
    if previous:
        result.trend = {"previous_run_id": previous[0], **trend(result.totals, previous[1])}
    save_snapshot(con, result)
    result.csv_path = write_csv(con, result, Path(reports_dir))
    return result
