"""The static report from a real planted-defects run: what staff read, the masked set-aside CSV, the dictionaries,
and the pieces around it (check results table, CLI, Dagster UI setting)."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import re
import shutil
from html import unescape
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from ct_pipelines.catalog.loader import load_catalog
from ct_pipelines.cli import main
from ct_pipelines.core.outcomes import CheckOutcome, Severity
from ct_pipelines.core.settings import load_settings
from ct_pipelines.report.build import write_reports
from ct_pipelines.report.checks import record_check_results
from ct_pipelines.report.cli import report_group
from ct_pipelines_tests.report.conftest import DEFECTS, Site, run_and_record

REPO = Path(__file__).resolve().parents[2]


def _text(path: Path) -> str:
    """The page as a person reads it: tags dropped, whitespace collapsed."""
    html = re.sub(r"<svg.*?</svg>", " ", path.read_text(encoding="utf-8"), flags=re.S)
    html = re.sub(r"</?(code|small|span|strong|a)\b[^>]*>", "", html)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def test_directory_lists_the_dataset_with_its_status_and_sort_and_filter_pages(defects_site: Site):
    out = defects_site.report.out_dir
    text = _text(out / "index.html")
    assert "Immunization Clinic Visits Department of Public Health Health and Human Services Daily" in text
    assert (
        "Blocked: 1 failed" in text
    )  # the quarantine share (5% set aside, 2% allowed) blocks the defects run
    assert "On time" in text  # the fixed extract was published minutes ago; Daily allows a day
    # the cadence's date and the deadline with its grace: an annual dataset once read "due by" 14 months on
    expected = re.search(r"next update expected (\S+); overdue after (\S+) \d\d:\d\d UTC", text)
    assert expected, text
    cadence, deadline = (dt.date.fromisoformat(expected.group(i)) for i in (1, 2))
    assert 0 <= (deadline - cadence).days <= 1  # Daily: a day after publishing, then a grace of hours
    assert "1 blocked by failed checks, 0 overdue" in text
    published = re.search(r"Blocked: 1 failed (\S+) (\d+)%", text)
    assert published and published.group(1) == "200"  # the portal still holds the 200 fixed rows
    # No-JavaScript sorting and filtering: one pre-rendered page per sort key, and per agency.
    for key in (
        "title",
        "agency",
        "category",
        "frequency",
        "ingest",
        "publish",
        "freshness",
        "checks",
        "rows",
        "completeness",
    ):
        assert (out / f"all--{key}.html").is_file()
        assert (out / f"department-of-public-health--{key}.html").is_file()
    assert 'href="department-of-public-health--title.html"' in (out / "index.html").read_text()


def test_dataset_page_says_what_failed_in_words_and_how_many_rows_were_set_aside(defects_site: Site):
    text = _text(defects_site.report.dataset_pages["dph_clinic_visits"])
    assert "11 rows set aside in the last validation" in text
    assert "3 rows have an age outside 0 to 120; they were set aside and the other rows go on" in text
    assert "2 rows have a vaccine outside the allowed values (Influenza, COVID-19, Tdap)" in text
    assert "1 row has a visit_date in the future; it was set aside and the other rows go on" in text
    # Every rule in words, including the ones that passed, with its own result.
    assert (
        "Rows that have a town that is not one of Connecticut's 169 towns are set aside and not published."
        in text
    )
    assert (
        "Rows that have an age outside 0 to 120 are set aside and not published. (column age) "
        "Sets rows aside (pandera) failed: 3 rows set aside" in text
    )
    assert "No more than 2% of rows may be set aside. If not, nothing is published." in text
    # History: the fixed run published 200 rows, the defects run set 10 aside and published nothing;
    # of its 7 failed checks, 1 stopped publishing (too many rows set aside) and 6 are warnings (each row
    # rule's rows went to quarantine and the rest went on), in columns of their own, as the run prints them.
    runs = re.findall(
        r"[0-9a-f]{8} \S+ \S+ (\d+) (\d+) (not published|\d+) (.+?) (\d+) (\d+)(?= [0-9a-f]{8} | *$)",
        text.split("Last runs")[1].split("Data dictionary")[0].split("oldest first")[1],
    )
    assert runs[-2:] == [
        ("200", "0", "200", "the portal's rows were replaced by the 200 sent", "0", "0"),
        ("200", "11", "not published", "none", "1", "6"),
    ]
    assert "<svg" in defects_site.report.dataset_pages["dph_clinic_visits"].read_text()


def test_set_aside_csv_has_one_line_per_row_set_aside_with_the_rules_it_broke(defects_site: Site):
    path = defects_site.report.dataset_pages["dph_clinic_visits"].parent / "dph_clinic_visits_set_aside.csv"
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert [int(r["source_line"]) for r in rows] == [6, 10, 12, 13, 21, 22, 23, 31, 32, 41, 42]
    assert (
        rows[4]["rules_broken"] == "ranges (age): have an age outside 0 to 120" and int(rows[4]["age"]) > 120
    )


def test_set_aside_csv_stops_at_its_row_limit_and_the_page_says_where_the_rest_are(
    defects_site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The CSV holds the first rows in file order (4 here, standing in for 100,000: a spreadsheet would
    drop rows past its last without a word) and the page names the quarantine table that has them all."""
    monkeypatch.setattr("ct_pipelines.report.build.SET_ASIDE_CSV_ROWS", 4)
    settings = dataclasses.replace(defects_site.settings, reports_dir=tmp_path / "reports")
    report = write_reports(settings, load_catalog(DEFECTS / "catalog"))
    page = report.dataset_pages["dph_clinic_visits"]
    rows = list(csv.DictReader((page.parent / "dph_clinic_visits_set_aside.csv").open(encoding="utf-8")))
    assert [int(r["source_line"]) for r in rows] == [6, 10, 12, 13]  # the first four in file order
    assert (
        "the first 4 in file order. All 11 are in the quarantine table "
        "(ct-pipelines validate quarantine dph_clinic_visits)" in _text(page)
    )
    assert "in file order. All" not in _text(defects_site.report.dataset_pages["dph_clinic_visits"])


def test_data_dictionary_as_csv_and_xlsx(defects_site: Site):
    folder = defects_site.report.dataset_pages["dph_clinic_visits"].parent
    rows = list(csv.DictReader((folder / "dph_clinic_visits_dictionary.csv").open(encoding="utf-8-sig")))
    assert [r["Field name"] for r in rows] == [
        "visit_id",
        "visit_date",
        "town",
        "age",
        "sex",
        "vaccine",
        "doses",
    ]
    assert rows[3]["Allowed values or range"] == "from 0 to 120" and rows[3]["Source column"] == "Age"
    sheet = load_workbook(folder / "dph_clinic_visits_dictionary.xlsx").active
    assert [c.value for c in sheet[6]][:5] == ["sex", "Sex", "text", None, "one of: F, M"]


PII_YAML = (
    (DEFECTS / "catalog" / "dph_clinic_visits.yaml")
    .read_text()
    .replace(
        "  - source: Town\n", "  - source: Patient Name\n    pii: true\n  - source: Note\n  - source: Town\n"
    )
)


def test_set_aside_rows_never_show_personal_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An agency extract with a name column marked pii and a free-text note holding an SSN on a defective row."""
    monkeypatch.setenv("CT_PIPELINES_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CT_PIPELINES_LANDING", str(tmp_path / "landing"))
    monkeypatch.delenv("CT_PORTAL_DOMAIN", raising=False)
    (tmp_path / "landing").mkdir()
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "dph_clinic_visits.yaml").write_text(PII_YAML)
    lines = (DEFECTS / "landing" / "dph_clinic_visits.csv").read_text().splitlines()
    out = [lines[0].replace("Visit Date,", "Visit Date,Patient Name,Note,")]
    for n, line in enumerate(lines[1:], start=2):
        note = "called back, SSN 123-45-6789 on file" if n == 6 else "routine"
        first, rest = line.split(",", 2)[:2], line.split(",", 2)[2]
        out.append(",".join([*first, f"Pat Doe{n}", f'"{note}"', rest]))
    (tmp_path / "landing" / "dph_clinic_visits.csv").write_text("\n".join(out) + "\n")
    settings = load_settings()
    run_and_record(tmp_path / "catalog", settings)
    report = write_reports(settings, load_catalog(tmp_path / "catalog"))
    path = report.dataset_pages["dph_clinic_visits"].parent / "dph_clinic_visits_set_aside.csv"
    text = path.read_text()
    rows = list(csv.DictReader(text.splitlines()))
    assert len(rows) == 11 and {r["patient_name"] for r in rows} == {"***"}
    assert (
        rows[0]["source_line"] == "6"
        and rows[0]["note"].startswith("called back, SSN***")
        and "123" not in rows[0]["note"]
    )
    assert "Doe" not in text and "6789" not in text
    assert "Doe" not in report.dataset_pages["dph_clinic_visits"].read_text()
    dictionary = (path.parent / "dph_clinic_visits_dictionary.csv").read_text(encoding="utf-8-sig")
    assert 'patient_name,Patient Name,text,,,,,"no: personal information, left out"' in dictionary


def test_check_results_are_replaced_per_run_and_stage_and_keep_only_numbers(tmp_path: Path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    outcome = CheckOutcome(
        "ranges",
        False,
        Severity.ERROR,
        "3 rows have an age outside 0 to 120.",
        {"failing_rows": 3, "sample": [{"name": "Pat Doe"}], "share": 0.015},
    )
    assert record_check_results(con, "ds", "validate", "run1", [outcome]) == 1
    assert record_check_results(con, "ds", "validate", "run1", [outcome]) == 1
    rows = con.execute(
        "SELECT check_name, passed, severity, failing_rows, figures FROM meta.check_results"
    ).fetchall()
    assert rows == [("ranges", False, "ERROR", 3, '{"failing_rows": 3, "share": 0.015}')]


def test_report_cli_builds_and_serve_refuses_other_interfaces(
    defects_site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    runner = CliRunner()
    refused = runner.invoke(
        report_group, ["serve", "--host", "0.0.0.0", "--dir", str(defects_site.report.out_dir)]
    )
    assert refused.exit_code == 2 and "not a loopback address" in refused.output
    monkeypatch.setenv("CT_PIPELINES_HOME", str(tmp_path / "empty"))
    missing = runner.invoke(report_group, ["build"])
    assert missing.exit_code == 1 and "run `ct-pipelines run` first" in missing.output
    monkeypatch.setenv("CT_PIPELINES_HOME", str(defects_site.settings.home))
    built = runner.invoke(
        report_group, ["build", "--catalog", str(DEFECTS / "catalog"), "--out", str(tmp_path / "s")]
    )
    assert built.exit_code == 0, built.output
    assert (tmp_path / "s" / "datasets" / "dph_clinic_visits.html").is_file()


def test_dagster_ui_does_not_show_the_first_open_community_modal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.chdir(tmp_path)
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        assert instance.nux_enabled is False
    finally:
        instance.dispose()


AGES = """\
id: ages
title: Ages at intake
description: One row per intake, for tests.
agency: Department of Public Health
category: Health and Human Services
update_frequency: Monthly
contact: dph.data@ct.gov
ingest: {path: ages.csv}
columns:
- {source: Case, type: code, required: true}
- {source: Age, type: integer}
"""


def test_a_run_that_stopped_shows_as_failed_and_each_type_rule_counts_its_own_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A new user's report said 'Warnings: 1' and '0 blocked' while the last runs had failed (the portal
    answered 404), and gave both of Age's type rules the group's 3 rows where 2 were not integers and 1
    had a decimal comma."""
    for folder in ("catalog", "landing"):
        (tmp_path / folder).mkdir()
    monkeypatch.setenv("CT_PIPELINES_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CT_PIPELINES_LANDING", raising=False)
    monkeypatch.delenv("CT_PORTAL_DOMAIN", raising=False)
    ages = [str(20 + i) for i in range(200)]
    ages[3], ages[9], ages[11] = "12 3", "4 1", "1,2"
    (tmp_path / "landing" / "ages.csv").write_text(
        "Case,Age\r\n" + "".join(f'C{i:04d},"{a}"\r\n' for i, a in enumerate(ages)), encoding="utf-8"
    )
    catalog = tmp_path / "catalog" / "ages.yaml"
    catalog.write_text(AGES, encoding="utf-8")
    assert CliRunner().invoke(main, ["run", "--catalog", str(catalog.parent)]).exit_code == 0
    page = tmp_path / "home" / "reports" / "site" / "datasets" / "ages.html"
    text = _text(page)
    assert "Checks Passed" in text or "Warnings" in text
    why = text.split("Why rows were set aside")[1].split("Download")[0]
    assert "types age Rows that have an age that is not a valid integer 2" in why
    assert (
        "types age Rows that have an age with a comma that does not separate thousands (such as 1,2), so not a whole number 1"
        in why
    )
    results = dict(
        re.findall(
            r"Rows that (have an age [^.]*?) are set aside and not published\. \(column age\) "
            r"Sets rows aside \(pandera\) (failed: \d+ rows? set aside|passed)",
            text,
        )
    )
    assert results["have an age that is not a valid integer"] == "failed: 2 rows set aside"
    assert [v for k, v in results.items() if "comma" in k] == ["failed: 1 row set aside"]

    catalog.write_text(
        AGES + "protect: {mode: aggregate, aggregate: {dimensions: [nowhere]}}\n", encoding="utf-8"
    )
    failed = CliRunner().invoke(main, ["run", "--catalog", str(catalog.parent)])
    assert failed.exit_code == 1
    text = _text(page)
    assert "Checks Failed at Protect (privacy)" in text
    assert (
        "The last run stopped at Protect (privacy): protect.aggregate: dimension column 'nowhere' does not exist"
        in text
    )
    index = _text(tmp_path / "home" / "reports" / "site" / "index.html")
    assert "Failed at Protect (privacy)" in index and "1 blocked" in index
