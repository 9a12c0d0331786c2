"""Write the static report site: a directory of every dataset and one page per dataset.

Plain HTML and one CSS file shipped in the package (no CDN, no JavaScript needed), so agency staff
can open it from a shared drive or ``ct-pipelines report serve``. Sorting and the agency filter are
pre-rendered pages, because the pages must work with JavaScript off.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from jinja2 import Environment, FileSystemLoader, select_autoescape

from ct_pipelines.automation.frequency import (
    UNSCHEDULED,
    as_utc,
    frequency_timedelta,
    is_overdue,
    overdue_deadline,
    parse_frequency,
)
from ct_pipelines.catalog.loader import Catalog
from ct_pipelines.catalog.models import Dataset
from ct_pipelines.core import warehouse
from ct_pipelines.core.settings import Settings
from ct_pipelines.core.sql import quote_literal
from ct_pipelines.report import dcat
from ct_pipelines.report.chart import trend_svg
from ct_pipelines.report.dictionary import HEADERS, dictionary_rows, write_dictionary
from ct_pipelines.report.warehouse import (
    Recorded,
    file_state,
    keep_recorded,
    load_recorded,
    masked_set_aside_sql,
    read_recorded,
    settled,
)
from ct_pipelines.report.words import STAGE_LABELS, RuleText, rules_in_words

HERE = Path(__file__).resolve().parent
LOCAL_PORTAL_URL = "http://127.0.0.1:8765"
#: Rows in the set-aside CSV: a person reviews far fewer than the 1,048,575 a spreadsheet opens, and
#: writing them all took 1.2 of a 5M-row run's 16 s (393,201 set aside); the quarantine table keeps all.
SET_ASIDE_CSV_ROWS = 100_000
RECORDED_CACHE_DIR = ".recorded"  # under the reports folder, beside (not inside) the served site
SORT_KEYS = {
    "title": ("Title", lambda r: r.dataset.title.lower()),
    "agency": ("Agency", lambda r: (r.dataset.agency.lower(), r.dataset.title.lower())),
    "category": ("Category", lambda r: (str(r.dataset.category), r.dataset.title.lower())),
    "frequency": ("Frequency", lambda r: (str(r.dataset.update_frequency), r.dataset.title.lower())),
    "ingest": ("Last ingest", lambda r: r.last_ingest or datetime.min),
    "publish": ("Last publish", lambda r: r.last_publish or datetime.min),
    "freshness": ("Freshness", lambda r: (r.freshness, r.dataset.title.lower())),
    "checks": ("Checks", lambda r: (r.check_rank, r.dataset.title.lower())),
    "rows": ("Rows", lambda r: r.portal_rows if r.portal_rows is not None else -1),
    "completeness": ("Metadata", lambda r: r.completeness),
}


@dataclass
class DirectoryRow:
    """One dataset's line in the directory, with everything computed for display."""

    dataset: Dataset
    recorded: Recorded
    last_ingest: datetime | None
    last_publish: datetime | None
    freshness: str
    freshness_note: str
    check_status: str
    check_rank: int
    portal_rows: int | None
    completeness: int
    missing_metadata: list[str]
    portal_url: str | None


@dataclass
class ReportResult:
    """Where the site went and what data.json left out (dataset id -> reasons)."""

    out_dir: Path
    index: Path
    dataset_pages: dict[str, Path] = field(default_factory=dict)
    data_json: Path | None = None
    portal_data_json: Path | None = None
    data_json_skipped: dict[str, list[str]] = field(default_factory=dict)
    busy: list[str] = field(default_factory=list)  # datasets a running run held: their pages were kept


def default_portal_url() -> str:
    """The portal the links point at: ``CT_PORTAL_DOMAIN`` when set, else the local portal's default address."""
    domain = os.environ.get("CT_PORTAL_DOMAIN")
    return f"{os.environ.get('CT_PORTAL_SCHEME', 'https')}://{domain}" if domain else LOCAL_PORTAL_URL


def metadata_completeness(dataset: Dataset) -> tuple[int, list[str]]:
    """Percent of the optional catalog fields filled in, and the names of those missing."""
    items = {
        "tags": bool(dataset.tags),
        "row label": bool(dataset.row_label),
        "geographic unit": dataset.geographic_unit is not None,
        "temporal coverage": bool(dataset.temporal_coverage),
        "source link": bool(dataset.source_link),
        "row identifier": bool(dataset.row_identifier),
        "license URL": dcat.license_url(dataset.license) is not None,
        "every column described": bool(dataset.columns)
        and all(c.description.strip() for c in dataset.columns),
    }
    missing = [name for name, ok in items.items() if not ok]
    return round(100 * (len(items) - len(missing)) / len(items)), missing


def _freshness(dataset: Dataset, last_publish: datetime | None, now: datetime) -> tuple[str, str]:
    if parse_frequency(dataset.update_frequency) in UNSCHEDULED:
        return "No schedule", f"{dataset.update_frequency}: no update is promised"
    if last_publish is None:
        return "Overdue", "never published"
    if is_overdue(last_publish, dataset.update_frequency, now):
        return (
            "Overdue",
            f"overdue since {overdue_deadline(last_publish, dataset.update_frequency):%Y-%m-%d %H:%M} UTC",
        )
    deadline = overdue_deadline(last_publish, dataset.update_frequency)
    gap = frequency_timedelta(dataset.update_frequency)
    if deadline is None or gap is None:
        return "No schedule", f"{dataset.update_frequency} has no checkable cadence"
    # the deadline allows a grace beyond the cadence: say both, so an annual dataset is not read as due in 14 months
    return "On time", (
        f"next update expected {as_utc(last_publish) + gap:%Y-%m-%d}; overdue after {deadline:%Y-%m-%d %H:%M} UTC"
    )


def _check_status(recorded: Recorded) -> tuple[str, int]:
    """Words and a sort rank (blocked or failed first)."""
    if recorded.failed_stage:
        return f"Failed at {STAGE_LABELS.get(recorded.failed_stage, recorded.failed_stage)}", 0
    if not recorded.checks:
        return "Not recorded", 3
    errors = [c for c in recorded.checks if not c.passed and c.severity == "ERROR"]
    warnings = [c for c in recorded.checks if not c.passed and c.severity != "ERROR"]
    if errors:
        return f"Blocked: {len(errors)} failed", 0
    if warnings:
        return f"Warnings: {len(warnings)}", 1
    return f"Passed ({len(recorded.checks)})", 2


def directory_row(dataset: Dataset, recorded: Recorded, portal_url: str, now: datetime) -> DirectoryRow:
    ingest = recorded.last_ingest["ingested_at"] if recorded.last_ingest else None
    publish = recorded.last_publish["finished_at"] if recorded.last_publish else None
    freshness, note = _freshness(dataset, publish, now)
    status, rank = _check_status(recorded)
    percent, missing = metadata_completeness(dataset)
    link = f"{portal_url.rstrip('/')}/d/{recorded.four_by_four}" if recorded.four_by_four else None
    return DirectoryRow(
        dataset,
        recorded,
        ingest,
        publish,
        freshness,
        note,
        status,
        rank,
        recorded.portal_rows,
        percent,
        missing,
        link,
    )


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "agency"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["n"] = lambda v: "–" if v is None else f"{v:,}"
    env.filters["when"] = lambda v: "never" if v is None else f"{v:%Y-%m-%d %H:%M}"
    return env


def _directory_pages(env: Environment, rows: list[DirectoryRow], out: Path, generated: str) -> Path:
    """index.html plus one page per sort key and per agency x sort key (the no-JavaScript sort and filter)."""
    agencies = sorted({r.dataset.agency for r in rows})
    template = env.get_template("directory.html.j2")
    scopes: list[tuple[str | None, str]] = [(None, "all")] + [(a, _slug(a)) for a in agencies]
    for agency, scope in scopes:
        shown = [r for r in rows if agency is None or r.dataset.agency == agency]
        for key, (_, sort) in SORT_KEYS.items():
            ordered = sorted(shown, key=sort, reverse=key in ("ingest", "publish", "rows"))
            html = template.render(
                root="",
                rows=ordered,
                sort_key=key,
                sort_keys=SORT_KEYS,
                agency=agency,
                scope=scope,
                agencies=[(a, _slug(a)) for a in agencies],
                generated=generated,
                page_name=lambda s, k: f"{s}--{k}.html",
            )
            (out / f"{scope}--{key}.html").write_text(html, encoding="utf-8")
    index = out / "index.html"
    shutil.copyfile(out / "all--title.html", index)
    return index


def _write_set_aside(con: duckdb.DuckDBPyConnection, dataset: Dataset, folder: Path) -> Path | None:
    """The first SET_ASIDE_CSV_ROWS set-aside rows in source-line order (the page says when there are
    more; the quarantine table keeps them all)."""
    sql = masked_set_aside_sql(con, dataset.id, dataset.pii_fields, SET_ASIDE_CSV_ROWS)
    if sql is None:
        return None
    path = folder / f"{dataset.id}_set_aside.csv"
    con.execute(f"COPY ({sql}) TO {quote_literal(str(path))} (HEADER, DELIMITER ',')")
    return path


def _published_columns(con: duckdb.DuckDBPyConnection, dataset: Dataset) -> list[tuple[str, str]] | None:
    name = f"protect__{dataset.id}"
    if not warehouse.relation_exists(con, "main", name):
        return None
    return [(r[0], r[1]) for r in con.execute(f'DESCRIBE "{name}"').fetchall()]


def _dataset_page(
    env: Environment, con: duckdb.DuckDBPyConnection, row: DirectoryRow, folder: Path, generated: str
) -> Path:
    dataset = row.dataset
    dictionary = dictionary_rows(dataset, _published_columns(con, dataset))
    files = write_dictionary(dictionary, folder, dataset.id)
    set_aside = _write_set_aside(con, dataset, folder)
    rules = rules_in_words(dataset)
    context: dict[str, Any] = {
        "root": "../",
        "row": row,
        "d": dataset,
        "r": row.recorded,
        "rules": rules,
        "results": rule_results(rules, row.recorded),
        "failed": [c for c in row.recorded.checks if not c.passed],
        "stage_labels": STAGE_LABELS,
        "set_aside_csv": set_aside.name if set_aside else None,
        "set_aside_csv_rows": SET_ASIDE_CSV_ROWS,
        "dictionary": dictionary,
        "headers": HEADERS,
        "dictionary_files": {k: p.name for k, p in files.items()},
        "chart": trend_svg(row.recorded.runs),
        "generated": generated,
        "gaps": dcat.dcat_gaps(dataset, _facts(row.recorded)),
    }
    env.get_template("dictionary.html.j2").stream(**context).dump(
        str(folder / f"{dataset.id}_dictionary.html")
    )
    page = folder / f"{dataset.id}.html"
    env.get_template("dataset.html.j2").stream(**context).dump(str(page))
    return page


def rule_results(rules: list[RuleText], recorded: Recorded) -> list[str]:
    """The last result of each rule in words: a row rule's own count of rows set aside, not its group's."""
    by_check = {c.check: c for c in recorded.checks}
    per_rule = {(s.rule_group, s.rule, s.column): s.rows for s in recorded.set_aside_rules}
    out = []
    for rule in rules:
        result = by_check.get(rule.check)
        if result is None:
            out.append("not run")
        elif result.passed:
            out.append("passed")
        elif rule.engine == "pandera" and rule.severity == "ERROR":
            rows = per_rule.get((rule.check, rule.rule, rule.column), 0)
            out.append(f"failed: {rows:,} row{'' if rows == 1 else 's'} set aside" if rows else "passed")
        elif result.failing_rows is not None:
            out.append(f"failed: {result.failing_rows:,} row{'' if result.failing_rows == 1 else 's'}")
        else:
            out.append("failed")
    return out


def _facts(recorded: Recorded) -> dcat.PortalFacts:
    modified = recorded.last_publish["finished_at"] if recorded.last_publish else None
    return dcat.PortalFacts(recorded.four_by_four, modified)


def write_data_json(
    catalog: Catalog, records: dict[str, Recorded], portal_url: str, targets: list[Path]
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Build, validate (refusing to write an invalid file) and write the DCAT-US data.json to each target."""
    document, skipped = dcat.build_data_json(
        [(d, _facts(records[d.id])) for d in catalog.datasets], portal_url
    )
    errors = dcat.validate_data_json(document)
    if errors:
        raise ValueError(
            f"data.json would not be valid DCAT-US 1.1 ({errors[0]}); fix the dataset file named "
            "by that entry's position and rebuild"
        )
    text = json.dumps(document, indent=2, default=str) + "\n"
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return document, skipped


def write_reports(
    settings: Settings,
    catalog: Catalog,
    *,
    out_dir: Path | None = None,
    portal_url: str | None = None,
    now: datetime | None = None,
    busy_wait: float = warehouse.READ_WAIT_SECONDS,
    pages_for: Collection[str] | None = None,
) -> ReportResult:
    """Write the site to ``out_dir`` (default ``settings.reports_dir / "site"``) and data.json to the portal.

    Reads only the warehouse (each dataset's file read-only, one at a time) and the catalog, so it can run
    after a pipeline run, on its own, or while other datasets' runs write their files. A dataset whose
    file a run holds longer than ``busy_wait`` keeps its previous page and is listed in ``busy``.
    ``pages_for`` (a run's own datasets) limits the dataset pages rewritten; such a refresh leaves the
    directory and data.json to a later one when another dataset is busy, rather than show it empty.
    Raises ``ValueError`` (before writing data.json) if data.json would not be valid."""
    out = out_dir or settings.reports_dir / "site"
    (out / "datasets").mkdir(parents=True, exist_ok=True)
    portal_url = portal_url or default_portal_url()
    now = now or datetime.now(UTC)
    records, busy = _read_records(settings, catalog, busy_wait)  # read-only opens, side by side
    # Runs of different datasets finish at the same time and each refreshes the site: one writes at a time.
    with (out / ".build.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return _write_site(settings, catalog, out, portal_url, now, records, busy, pages_for)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _read_records(
    settings: Settings, catalog: Catalog, busy_wait: float
) -> tuple[dict[str, Recorded], list[str]]:
    """What each dataset recorded; a dataset whose file a run holds past ``busy_wait`` is listed busy.

    A dataset's file is opened only when it changed since the last read (see ``load_recorded``)."""
    records: dict[str, Recorded] = {}
    busy: list[str] = []
    for d in catalog.datasets:
        cache = settings.reports_dir / RECORDED_CACHE_DIR / f"{d.id}.json"
        state = file_state(settings.warehouse_for(d.id))
        kept = load_recorded(cache, state)
        if kept is not None:
            records[d.id] = kept
            continue
        try:
            with warehouse.open_recorded(settings, d.id, wait=busy_wait) as con:
                records[d.id] = read_recorded(con, d.id)
        except warehouse.WarehouseBusy:
            busy.append(d.id)
            records[d.id] = Recorded()
            continue
        if state == file_state(settings.warehouse_for(d.id)) and settled(state, time.time_ns()):
            keep_recorded(cache, state, records[d.id])  # unchanged while it was read, and not just written
    return records, busy


def _write_site(
    settings: Settings,
    catalog: Catalog,
    out: Path,
    portal_url: str,
    now: datetime,
    records: dict[str, Recorded],
    busy: list[str],
    pages_for: Collection[str] | None,
) -> ReportResult:
    datasets_dir = out / "datasets"
    shutil.copyfile(HERE / "static" / "report.css", out / "report.css")
    generated = f"{now:%Y-%m-%d %H:%M} UTC"
    env = _environment()
    rows = [directory_row(d, records[d.id], portal_url, now) for d in catalog.datasets]
    pages = {d.id: datasets_dir / f"{d.id}.html" for d in catalog.datasets}
    for row in rows:
        dataset_id = row.dataset.id
        if dataset_id in busy or not (
            pages_for is None or dataset_id in pages_for or not pages[dataset_id].is_file()
        ):
            continue
        try:
            with warehouse.open_recorded(settings, dataset_id, wait=0) as con:
                pages[dataset_id] = _dataset_page(env, con, row, datasets_dir, generated)
        except warehouse.WarehouseBusy:  # a run started on it since it was read: its page waits
            busy.append(dataset_id)
    if busy and pages_for is not None and (out / "index.html").is_file():
        return ReportResult(out, out / "index.html", pages, busy=busy)
    result = ReportResult(out, _directory_pages(env, rows, out, generated), pages, busy=busy)
    result.data_json, result.portal_data_json = out / "data.json", settings.portal_data_dir / "data.json"
    _, result.data_json_skipped = write_data_json(
        catalog, records, portal_url, [result.data_json, result.portal_data_json]
    )
    return result
