"""The ``ct-pipelines`` command: run the pipeline, check catalog files, profile extracts, and more."""

from __future__ import annotations

import atexit
import copy
import importlib
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from ct_pipelines.catalog.loader import Catalog, load_catalog
from ct_pipelines.catalog.models import Dataset
from ct_pipelines.core.settings import Settings, load_settings
from ct_pipelines.pipeline import STAGE_NAMES

if TYPE_CHECKING:
    from ct_pipelines.orchestration.runner import DatasetSummary
from ct_pipelines.ingest.errors import IngestError
from ct_pipelines.publish.changes import portal_changes

# Sub-commands owned by the packages, named after them; the names they had before stay as hidden aliases.
STAGE_GROUPS = {  # name: (module, attribute, hidden)
    "validate": ("ct_pipelines.validate.cli", "quality", False),
    "quality": ("ct_pipelines.validate.cli", "quality", True),
    "standardize": ("ct_pipelines.standardize.cli", "rel", False),
    "rel": ("ct_pipelines.standardize.cli", "rel", True),
    "protect": ("ct_pipelines.protect.cli", "privacy", False),
    "privacy": ("ct_pipelines.protect.cli", "privacy", True),
    "publish": ("ct_pipelines.publish.cli", "publish_group", False),
    "portal": ("ct_pipelines.portal.cli", "portal", False),
    "automation": ("ct_pipelines.automation.cli", "automation", False),
    "report": ("ct_pipelines.report.cli", "report_group", False),
}


class _LazyGroup(click.Group):
    """Imports a stage's sub-commands on use: importing all of them cost seconds before every ``run``."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """The command as a process (the console script, ``python -c``; tests call ``main.main``)."""
        try:
            return super().__call__(*args, **kwargs)
        except SystemExit as exc:
            if _EXIT.without_teardown:
                _exit_without_teardown(exc.code)
            raise

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *STAGE_GROUPS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, cmd_name) or _stage_group(cmd_name)


class _Exit:
    """Set by a command whose process should end without tearing the interpreter down."""

    without_teardown = False


_EXIT = _Exit()


def _declares(path: Path, dataset_id: str) -> bool:
    """Whether a dataset file that did not load is the one for ``dataset_id`` (by its id line, or its name)."""
    if path.stem == dataset_id:
        return True
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return re.search(rf"^id:\s*['\"]?{re.escape(dataset_id)}['\"]?\s*(#.*)?$", text, re.MULTILINE) is not None


def _exit_without_teardown(code: int | str | None) -> NoReturn:
    """End the process once its work is done and said: other threads finished, ``atexit`` handlers run
    (logging, temporary folders), output flushed, then ``os._exit``. What is skipped is the interpreter's
    own teardown, freeing every object that Dagster, Great Expectations and pandas built: about 1 s of
    CPU after a run (1.6 s on a loaded machine), more than some datasets' whole pipeline."""
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    if isinstance(code, str):  # as SystemExit does: the message to stderr, status 1
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


@click.group(cls=_LazyGroup)
@click.version_option(package_name="ct-pipelines")
def main() -> None:
    """Publish state agency data to an open data portal: fresh, documented, standardized and safe."""
    from ct_pipelines.core.private import private_by_default

    private_by_default()  # the warehouse, reports and run history are readable by their owner only


@main.command()
@click.option(
    "--catalog",
    "catalog_dir",
    type=click.Path(exists=True, path_type=Path),
    help="Folder of dataset YAML files (default: CT_PIPELINES_CATALOG or the bundled samples).",
)
@click.option("--dataset", "dataset_ids", multiple=True, help="Only this dataset (repeatable).")
@click.option(
    "--until",
    type=click.Choice(STAGE_NAMES),
    default=None,
    help="Run the stages up to and including this one (default: all five).",
)
@click.option("--dry-run", is_flag=True, help="Do everything except write to the portal.")
@click.option("--reingest", is_flag=True, help="Read the landing file again even if this version was loaded.")
@click.option(
    "--full-replace", is_flag=True, help="Replace the whole portal dataset instead of sending changes."
)
@click.option(
    "--allow-shrink", is_flag=True, help="Publish even if the table shrank past the dataset's limit."
)
@click.option(
    "--allow-deletes", is_flag=True, help="Publish even if it deletes more portal rows than the limit."
)
@click.option(
    "--new-portal-dataset",
    is_flag=True,
    help="Publish to a new portal dataset, not the one published to before (deleted on the portal, or "
    "with columns the YAML changed); the old one is left as it is.",
)
def run(
    catalog_dir: Path | None,
    dataset_ids: tuple[str, ...],
    until: str | None,
    dry_run: bool,
    reingest: bool,
    full_replace: bool,
    allow_shrink: bool,
    allow_deletes: bool,
    new_portal_dataset: bool,
) -> None:
    """Materialize every dataset's assets once, in process, and print a summary."""
    from ct_pipelines.core.results import RunOptions

    _EXIT.without_teardown = True  # everything is written and closed when it exits
    if catalog_dir:
        os.environ["CT_PIPELINES_CATALOG"] = str(catalog_dir.resolve())
    settings = load_settings()
    _check_warehouse(settings)
    _check_dagster_home()
    catalog = load_catalog(settings.catalog_dir)
    unknown = [d for d in dataset_ids if d not in {dataset.id for dataset in catalog.datasets}]
    if unknown:  # a command pasted without its --catalog ran the bundled samples and ended in a traceback
        from ct_pipelines.catalog.naming import closest

        own = [error for error in catalog.errors if _declares(error.path, unknown[0])]
        if own:  # its file is there but did not load: a helper read "not in the catalog" and looked elsewhere
            for error in own:
                click.echo(f"{error}", err=True)
            raise click.ClickException(
                f"dataset '{unknown[0]}' was not run: its file {own[0].path} has {len(own)} problem(s), "
                f"listed above; fix them (`ct-pipelines catalog validate {settings.catalog_dir}` checks the "
                "folder) and run again"
            )
        known = sorted(d.id for d in catalog.datasets)
        hint = closest(unknown[0], known)
        raise click.ClickException(
            f"dataset '{unknown[0]}' is not in the catalog {settings.catalog_dir}"
            + (f" (did you mean '{hint}'?)" if hint else f" (it holds: {', '.join(known) or 'no dataset'})")
            + "; pass --catalog with the folder that holds its YAML file"
        )
    _start_gx_worker(catalog, dataset_ids, until)  # before Dagster's import: it has seconds to do
    from ct_pipelines.orchestration.runner import run_catalog

    for error in catalog.errors:
        click.echo(f"skipped dataset file: {error}", err=True)
    _restrict_existing(settings)
    options = RunOptions(
        dry_run=dry_run,
        full_replace=full_replace,
        allow_shrink=allow_shrink,
        allow_deletes=allow_deletes,
        reingest=reingest,
        new_portal_dataset=new_portal_dataset,
    )
    summaries, _ = run_catalog(
        None, list(dataset_ids) or None, options=options, until=until, settings=settings, catalog=catalog
    )
    if not summaries:  # an empty table and "Published to" hid that nothing ran (the reasons went to stderr)
        files = f"{len(catalog.errors)} dataset file(s) in {settings.catalog_dir} were skipped"
        raise click.ClickException(
            f"no dataset ran: {files} (listed above); fix them and run again"
            if catalog.errors
            else f"no dataset ran: {settings.catalog_dir} holds no dataset file"
            + (f" with the id(s) {', '.join(dataset_ids)}" if dataset_ids else "")
        )
    click.echo(format_summary(summaries))
    _write_staff_reports(settings, catalog, [s.dataset_id for s in summaries] if dataset_ids else None)
    click.echo(f"\nWarehouse: {settings.warehouse_dir}  Reports: {settings.reports_dir}")
    published = any(s.portal_changes is not None for s in summaries)  # not after runs that stopped short
    if published and os.environ.get("CT_PORTAL_DOMAIN"):
        click.echo(
            f"Published to: {os.environ.get('CT_PORTAL_SCHEME', 'https')}://{os.environ['CT_PORTAL_DOMAIN']}"
        )
    elif published:
        click.echo(
            f"Published to the local portal in {settings.portal_data_dir}; browse it with:\n"
            f"  ct-pipelines portal serve --data {settings.portal_data_dir}"
        )
    failed = [s for s in summaries if not s.ok]
    if catalog.errors and not dataset_ids:  # a run of the named datasets is not failed by other files
        click.echo(
            f"\nExit status 1: {len(catalog.errors)} dataset file(s) in {settings.catalog_dir} were skipped "
            "(listed on stderr); fix them, or run the others with --dataset"
        )
    sys.exit(1 if failed or (catalog.errors and not dataset_ids) else 0)


def _start_gx_worker(catalog: Catalog, dataset_ids: tuple[str, ...], until: str | None) -> None:
    """Start importing Great Expectations in its own process when a dataset of this run will need it."""
    from ct_pipelines.validate.gx_suite import gx_check_names
    from ct_pipelines.validate.gx_worker import start_gx_worker

    if until == "ingest":
        return
    selected = [d for d in catalog.datasets if not dataset_ids or d.id in dataset_ids]
    if any(gx_check_names(d) for d in selected):
        start_gx_worker()


def _check_dagster_home() -> None:
    """Dagster refuses a DAGSTER_HOME that is not a folder with a traceback; say what to do instead."""
    home = os.environ.get("DAGSTER_HOME")
    if home and not Path(home).is_dir():
        raise click.ClickException(
            f"DAGSTER_HOME is {home}, which is not a folder; create it (mkdir -p {home}) and copy this "
            "project's dagster.yaml into it, or unset DAGSTER_HOME to use the project's own instance."
        )


def _restrict_existing(settings: Settings) -> None:
    """Files made before the umask (or by an older version) become owner-only too."""
    from ct_pipelines.core.private import dagster_home, instance_paths, restrict

    restrict(settings.warehouse_dir, *settings.warehouse_dir.glob("*.duckdb*"), settings.reports_dir)
    home = dagster_home() or (Path.cwd() if Path("dagster.yaml").is_file() else None)
    if home:
        restrict(*instance_paths(home))


def _check_warehouse(settings: Settings) -> None:
    """The warehouse is a folder of per-dataset files now; say so if the settings name the old file."""
    from ct_pipelines.core.settings import check_warehouse_dir

    try:
        check_warehouse_dir(settings.warehouse_dir)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    from ct_pipelines.core.legacy_warehouse import split_legacy_warehouse

    split = split_legacy_warehouse(settings.warehouse_dir)
    if split is not None:
        rows = sum(split.rows_per_file.values())
        click.echo(
            f"note: split the old single warehouse {split.legacy} into {len(split.rows_per_file)} files in "
            f"{split.folder} ({rows:,} rows, publish ledgers and snapshots kept); the old file is no longer "
            "read and can be deleted once you have checked a run.",
            err=True,
        )


def _write_staff_reports(settings: Settings, catalog: Catalog, ran: list[str] | None) -> None:
    """Every run refreshes the staff report site; a report problem is said, never fatal to the run.

    A run of some datasets rewrites their pages and, unless another run is writing a dataset right
    now (then the run that finishes later does it), the directory: runs side by side neither wait for
    one another (a file another run holds is busy at once; its run refreshes the directory when it ends)
    nor each render every page."""
    import duckdb

    from ct_pipelines.report.build import write_reports

    try:
        site = write_reports(settings, catalog, pages_for=ran, busy_wait=0.0 if ran else 10.0)
        if site.busy:
            click.echo(
                f"\n{len(site.busy)} other dataset(s) were being written by other runs; the report directory "
                "is refreshed by the run that finishes last."
            )
        click.echo(f"\nReports for agency staff: {site.index}  (serve them with `ct-pipelines report serve`)")
    except (OSError, ValueError, duckdb.Error) as exc:
        click.echo(f"\nThe staff reports were not refreshed: {exc}", err=True)


def format_summary(summaries: list[DatasetSummary]) -> str:
    """One line per dataset, then what a person must do about each one that did not publish."""
    headers = [
        "dataset",
        "status",
        "rows in",
        "left out",
        "set aside",
        "rows published",
        "checks passed",
        "checks failed",
        "warnings",
        "seconds",
    ]
    rows = [
        [
            s.dataset_id,
            s.status,
            _n(s.rows_in),
            _n(sum(s.rows_left_out.values()) or None),
            _n(s.rows_set_aside),
            _n(s.rows_published),
            str(s.checks_passed),
            str(s.checks_failed),
            str(s.warnings),
            f"{s.duration_s:.1f}",
        ]
        for s in summaries
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    out = [
        "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    for s in summaries:
        if s.dry_run_plan is not None:
            out.append(f"\n{s.dataset_id}: dry run, nothing sent; {_plan_in_words(s.dry_run_plan)}")
        if s.error:
            out.append(f"\n{s.dataset_id}: {s.failed_stage or 'the run'} failed: {s.error}")
        errors = [c for c in s.failed_checks if "(ERROR)" in c]
        if errors:
            out.append(f"\n{s.dataset_id}: not published; these ERROR checks failed:")
            out.extend(f"  - {line}" for line in errors)
        warnings = [c for c in s.failed_checks if "(WARN)" in c]
        if warnings:
            out.append(f"\n{s.dataset_id}: warnings:")
            out.extend(f"  - {line}" for line in warnings)
        if s.portal_changes is not None:
            kept = (
                f"; {s.rows_kept_as_published:,} row(s) set aside this run keep the values published before "
                "(their new values broke a rule)"
                if s.rows_kept_as_published
                else ""
            )
            deleted = s.portal_changes.get("deleted", 0)
            which = (
                f" (deleted: {', '.join(s.deleted_keys)}{' and more' if deleted > len(s.deleted_keys) else ''})"
                if s.deleted_keys
                else ""
            )
            where = f" (in the new portal dataset {s.created_dataset})" if s.created_dataset else ""
            out.append(
                f"\n{s.dataset_id}: {portal_changes(s.publish_mode, s.portal_changes)}{where}{which}{kept}"
            )
        if s.unfinished_publish:
            out.append(f"\n{s.dataset_id}: note: {s.unfinished_publish}")
        if s.rows_left_out:
            rules = ", ".join(f"{name} {count:,}" for name, count in s.rows_left_out.items())
            out.append(f"\n{s.dataset_id}: rows left out by the YAML's leave_out rules: {rules}")
        quarantined = s.rows_set_aside or 0
        if quarantined > 0 and s.quarantine_table:
            out.append(
                f"\n{s.dataset_id}: {quarantined:,} rows quarantined; read them with "
                f"`ct-pipelines validate quarantine {s.dataset_id}` (table {s.quarantine_table})"
            )
    return "\n".join(out)


def _plan_in_words(plan: dict[str, Any]) -> str:
    """What a publish would have done, as a sentence (the summary printed the plan's Python dict)."""
    how = {
        "replace": "would replace the portal's rows",
        "incremental": "would change the portal's rows one by one",
        "resync": "would compare every row on the portal and send what differs",
    }.get(str(plan.get("mode")), f"would publish ({plan.get('mode')})")
    if plan.get("would_create_dataset"):
        how = "would create a portal dataset and send its rows"

    def rows(key: str) -> str:
        count = int(plan.get(key) or 0)
        return f"{count:,} row{'s' if count != 1 else ''}"

    chunks = int(plan.get("chunks") or 0)
    words = (
        f"it {how}: {rows('rows_to_create')} to create, {rows('rows_to_update')} to update, "
        f"{rows('rows_to_delete')} to delete, in {chunks:,} chunk{'s' if chunks != 1 else ''} "
        f"({int(plan.get('bytes') or 0):,} bytes); the portal would then hold {rows('expected_row_count')}"
    )
    if plan.get("deleted_keys"):
        more = ", ..." if int(plan.get("rows_to_delete") or 0) > len(plan["deleted_keys"]) else ""
        words += f" (deleted: {', '.join(map(str, plan['deleted_keys']))}{more})"
    if plan.get("rows_kept_as_published"):
        words += f"; {rows('rows_kept_as_published')} set aside would keep their published values"
    return words


def _n(value: int | None) -> str:
    return "-" if value is None or value < 0 else f"{value:,}"


@main.group()
def catalog() -> None:
    """Check and list the dataset catalog."""


@catalog.command("validate")
@click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
def catalog_validate(path: Path | None) -> None:
    """Check dataset YAML files (a file or a folder); errors name the file, line and field."""
    if path:  # the landing folder and SQL are the ones this catalog would run with
        os.environ["CT_PIPELINES_CATALOG"] = str(path.resolve())
    settings = load_settings()
    result = load_catalog(settings.catalog_dir)
    problems = [str(error) for error in result.errors]
    for dataset in list(result.datasets):
        found = dataset_problems(dataset, settings)
        problems += [f"{result.sources[dataset.id]}: {problem}" for problem in found]
        if found:
            result.datasets.remove(dataset)
        for note in dataset_notes(dataset):
            click.echo(f"{result.sources[dataset.id]}: note: {note}", err=True)
    for problem in problems:
        click.echo(problem, err=True)
    click.echo(f"{len(result.datasets)} dataset(s) valid, {len(problems)} problem(s)")
    sys.exit(1 if problems else 0)


def dataset_problems(dataset: Dataset, settings: Settings) -> list[str]:
    """What would stop this dataset at run time, found from the YAML alone: rules that cannot be compiled,
    an extract path outside the landing folder, publish SQL that reads anything but its own view."""
    from ct_pipelines.ingest.landing import source_path_problem
    from ct_pipelines.pipeline import STAGES
    from ct_pipelines.protect.errors import PublishConfigError
    from ct_pipelines.protect.published import render_sql_file
    from ct_pipelines.protect.sandbox import check_sql

    problems: list[str] = []
    try:  # rules are compiled the way the pipeline will use them (custom checks exist, ranges fit types)
        for stage in STAGES:
            stage.check_specs(dataset)
    except ValueError as exc:
        problems.append(str(exc))
    if dataset.standardize is not None:
        from ct_pipelines.standardize.standardize import code_map_problems

        problems += code_map_problems(dataset.standardize)
    if (path_problem := source_path_problem(settings, dataset.ingest)) is not None:
        problems.append(path_problem)
    if dataset.protect.sql_file:
        names = {"source": "standardized", "standardized": "standardized"}
        names.update({name: name for name in dataset.protect.reference_tables})
        try:
            query = render_sql_file(dataset.sql_folder(settings.sql_dir), dataset.protect.sql_file, names)
            check_sql(query, set(names.values()), f"protect.sql_file {dataset.protect.sql_file}")
        except PublishConfigError as exc:
            problems.append(str(exc))
    return problems


def dataset_notes(dataset: Dataset) -> list[str]:
    """Worth fixing but not blocking: old block names, and what the data.json entry would lack."""
    from ct_pipelines.report.dcat import dcat_gaps

    return [
        *dataset.deprecations,
        *_measures_over_source_suppression(dataset),
        *(f"data.json: {gap}" for gap in dcat_gaps(dataset)),
    ]


def _measures_over_source_suppression(dataset: Dataset) -> list[str]:
    """An aggregate measure over a column whose values the source may hide: a run whose file holds such a
    value is refused (the sum would be too low), so say it before the first run."""
    aggregate = dataset.protect.aggregate if dataset.protect.mode == "aggregate" else None
    notes = []
    for measure in aggregate.measures if aggregate else []:
        column = dataset.column(measure.column) if measure.column else None
        if column is not None and column.suppressed_values:
            notes.append(
                f"protect.aggregate.measures: '{measure.name}' is the {measure.agg} of '{column.field_name}', "
                f"whose values the source may hide ({', '.join(repr(v) for v in column.suppressed_values)}); a "
                "run whose file holds one is refused, since the result would be too low. Publish the rows "
                "instead (protect.mode: rows), which keep each hidden value empty with its flag"
            )
    return notes


@catalog.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.option("--catalog", "catalog_dir", type=click.Path(exists=True, path_type=Path))
def catalog_list(as_json: bool, catalog_dir: Path | None) -> None:
    """List the datasets in the catalog."""
    result = load_catalog(catalog_dir or load_settings().catalog_dir)
    rows = [
        {
            "id": d.id,
            "title": d.title,
            "agency": d.agency,
            "category": str(d.category),
            "update_frequency": str(d.update_frequency),
            "portal_id": d.publish.id,
            "file": str(result.sources[d.id]),
        }
        for d in result.datasets
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(f"{row['id']:<40} {row['update_frequency']:<16} {row['agency']}")


@catalog.command("schema")
@click.option("--output", type=click.Path(path_type=Path), help="Write to a file instead of standard output.")
def catalog_schema(output: Path | None) -> None:
    """Print the JSON Schema of dataset files, for editor autocompletion."""
    from ct_pipelines.catalog.schema import schema_text

    text = schema_text()
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        click.echo(text)


DELIMITERS = {
    ",": ",",
    "comma": ",",
    "\t": "\t",
    "\\t": "\t",
    "tab": "\t",
    "|": "|",
    "pipe": "|",
    ";": ";",
    "semicolon": ";",
}


def _delimiter(_: click.Context, __: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    if value.lower() not in DELIMITERS:
        raise click.BadParameter(f"{value!r} is not a delimiter ingest reads; use one of , tab | ;")
    return DELIMITERS[value.lower()]


def _reader_options(command: click.decorators.FC) -> click.decorators.FC:
    """The reader options `profile` and `dataset new` share, so a starter file reads the file as profiled."""
    for option in reversed(
        [
            click.option(
                "--encoding", default="auto", show_default=True, help="A Python codec name such as cp1252."
            ),
            click.option("--sheet", default=None, help="Excel sheet name."),
            click.option(
                "--header-row",
                type=click.IntRange(min=1),
                default=None,
                help="1-based line of the header (detected by default).",
            ),
            click.option(
                "--delimiter",
                default=None,
                callback=_delimiter,
                help="One of , tab | ; (detected by default).",
            ),
        ]
    ):
        command = option(command)
    return command


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@_reader_options
def profile(
    file: Path, as_json: bool, encoding: str, sheet: str | None, header_row: int | None, delimiter: str | None
) -> None:
    """Show what the pipeline sees in a file: encoding, header, rows, columns and a sample."""
    from ct_pipelines.starter.profile import profile_file

    try:
        result = profile_file(
            file,
            encoding=encoding,
            sheet=sheet,
            header_row=header_row,
            delimiter=delimiter,
            workdir=load_settings().home / "tmp",
        )
    except IngestError as exc:
        raise click.ClickException(str(exc)) from exc
    data = result.as_json()
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    layout = [data["format"]]
    if data["encoding"]:
        layout.append(f"encoding {data['encoding']}{' with BOM' if data['bom'] else ''}")
    if data["delimiter"]:
        layout.append(f"delimiter {data['delimiter']!r}")
    if data["sheet"]:
        layout.append(f"sheet {data['sheet']!r}")
    if data["header_row"] is not None:  # JSON and Parquet have names, not a header line
        layout.append(f"header on line {data['header_row']}")
    click.echo(f"{file}: {', '.join(layout)}, {data['rows']:,} rows")
    for note in data["notes"]:
        click.echo(f"  {note}")
    for column in data["columns"]:
        markers = "".join(
            f"; {what} written as {', '.join(repr(v) for v in column[key])}"
            for key, what in (("null_values", "no value"), ("suppressed_values", "suppressed"))
            if column[key]
        )
        if column["two_digit_years"]:
            markers += "; two-digit years: `dataset new` asks for the pivot year"
        if column["not_numbers"]:
            markers += "; not numbers: " + ", ".join(
                f"{v!r} ({n:,})" for v, n in column["not_numbers"].items()
            )
        click.echo(
            f"  {column['field_name']:<40} {column['type']:<9} {column['nulls']:>8,} empty  "
            f"{column['distinct']:>8,} distinct   ({column['name']}{markers})"
        )
    for rule in data["leave_out"]:
        click.echo(
            f"  trailing rows that are not data ({rule['name']}): `dataset new` proposes leaving them out"
        )


@main.group()
def dataset() -> None:
    """Create dataset files."""


@dataset.command("new")
@click.option("--from", "source", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--id", "dataset_id", default=None, help="Dataset id (default: from the file name).")
@click.option("--output", type=click.Path(path_type=Path), help="Write here instead of standard output.")
@_reader_options
def dataset_new(
    source: Path,
    dataset_id: str | None,
    output: Path | None,
    encoding: str,
    sheet: str | None,
    header_row: int | None,
    delimiter: str | None,
) -> None:
    """Write a starter YAML for an extract (inferred types, <<TODO: ...>> markers to fill in)."""
    from ct_pipelines.starter.profile import profile_file, starter_yaml

    try:
        profiled = profile_file(
            source,
            encoding=encoding,
            sheet=sheet,
            header_row=header_row,
            delimiter=delimiter,
            workdir=load_settings().home / "tmp",
        )
    except IngestError as exc:
        raise click.ClickException(str(exc)) from exc
    text = starter_yaml(profiled, dataset_id)
    if output:
        output.write_text(text, encoding="utf-8")
        click.echo(
            f"wrote {output}; replace each <<TODO: ...>> marker, then run "
            f"`ct-pipelines catalog validate {output}`"
        )
    else:
        click.echo(text, nl=False)


@main.command(
    context_settings={
        "ignore_unknown_options": True,
        "allow_extra_args": True,
        "help_option_names": ["--help"],
    }
)
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Allow a non-loopback -h/--host (anyone on the network can use the UI).",
)
@click.pass_context
def dev(ctx: click.Context, allow_remote: bool) -> None:
    """Start the Dagster UI and daemon (`dagster dev`) on this project's instance."""
    from ct_pipelines.portal.cli import is_loopback

    host = _host_argument(ctx.args)
    if host is not None and not is_loopback(host) and not allow_remote:
        raise click.UsageError(
            f"{host} is not a loopback address, so the Dagster UI (which can launch runs and shows run "
            "logs) would be reachable from other machines; use -h 127.0.0.1, or add --allow-remote if "
            "that is intended."
        )
    env = {**os.environ, "DAGSTER_HOME": os.environ.get("DAGSTER_HOME", str(Path.cwd()))}
    command = [sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml", *ctx.args]
    sys.exit(subprocess.call(command, env=env))


def _host_argument(args: list[str]) -> str | None:
    """The value of `dagster dev`'s -h/--host among the passed-through arguments (last one wins)."""
    host = None
    for index, arg in enumerate(args):
        if arg in ("-h", "--host") and index + 1 < len(args):
            host = args[index + 1]
        elif arg.startswith("--host="):
            host = arg.split("=", 1)[1]
        elif arg.startswith("-h") and len(arg) > 2 and not arg.startswith("--"):
            host = arg[2:]
    return host


def _stage_group(name: str) -> click.Command | None:
    """A package's sub-command group, imported only when it is used (``run`` needs none of them)."""
    if name not in STAGE_GROUPS:
        return None
    module, attribute, hidden = STAGE_GROUPS[name]
    group = getattr(importlib.import_module(module), attribute)
    if hidden:  # a hidden copy, so help lists each group once
        group = copy.copy(group)
        group.hidden = True
    return group
