"""The reports in a real Chromium, as a staffer opens them: offline (every non-loopback request blocked), styled,
readable with JavaScript off, the masked CSV downloadable, and no serious accessibility violations (axe-core).

Needs the Debian packages ``chromium`` (and ``chromium-driver`` for Selenium users) and the pip packages
``playwright`` and ``axe-playwright-python``; Playwright drives the system browser, nothing is downloaded."""

from __future__ import annotations

import csv
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from ct_pipelines.report.cli import make_server
from ct_pipelines_tests.report.conftest import Site

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium on this machine (apt-get install chromium)"
)


@pytest.fixture(scope="module")
def site_url(defects_site: Site) -> Iterator[str]:
    server = make_server(defects_site.report.out_dir, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


def _page(browser, *, javascript: bool = True):
    """A page whose every request off the loopback interface is blocked and remembered."""
    context = browser.new_context(java_script_enabled=javascript, accept_downloads=True)
    page = context.new_page()
    page.blocked = []

    def guard(route) -> None:
        host = urlparse(route.request.url).hostname
        if host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            page.blocked.append(route.request.url)
            route.abort()

    page.route("**/*", guard)
    return page


def test_directory_and_dataset_page_render_styled_offline(browser, site_url: str, tmp_path: Path):
    page = _page(browser)
    page.goto(f"{site_url}/index.html")
    header = page.locator("header.site")
    assert (
        header.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(11, 46, 79)"
    )  # report.css loaded
    assert page.locator("table.directory tbody tr").count() == 1
    assert page.get_by_text("Blocked: 1 failed").is_visible()
    page.screenshot(path=str(tmp_path / "directory.png"), full_page=True)

    page.get_by_role("link", name="Immunization Clinic Visits").click()
    assert page.url.endswith("/datasets/dph_clinic_visits.html")
    assert page.locator("h1").inner_text() == "Immunization Clinic Visits"
    failures = page.locator("ul.failures li")
    assert failures.count() == 7  # six rule groups set rows aside (warnings) and the quarantine share blocked
    assert any(
        "3 rows have an age outside 0 to 120; they were set aside" in t for t in failures.all_inner_texts()
    )
    assert page.locator("strong.count").inner_text() == "11 rows set aside"
    assert page.locator("strong.count").evaluate("e => getComputedStyle(e).color") == "rgb(139, 26, 26)"
    assert page.locator("svg.trend polyline").count() == 3
    page.screenshot(path=str(tmp_path / "dataset.png"), full_page=True)
    assert page.blocked == []  # nothing was even asked of another host: no CDN, no web font


def test_set_aside_csv_downloads_with_one_row_per_row_set_aside(browser, site_url: str, tmp_path: Path):
    page = _page(browser)
    page.goto(f"{site_url}/datasets/dph_clinic_visits.html")
    with page.expect_download() as info:
        page.get_by_role("link", name="Download the set-aside rows (CSV, personal values masked)").click()
    saved = tmp_path / info.value.suggested_filename
    info.value.save_as(saved)
    rows = list(csv.DictReader(saved.open(encoding="utf-8")))
    assert saved.name == "dph_clinic_visits_set_aside.csv" and len(rows) == 11
    assert rows[0]["rules_broken"] == "required (visit_id): have an empty visit_id"


def test_sorting_and_agency_filter_work_with_javascript_off(browser, site_url: str):
    page = _page(browser, javascript=False)
    page.goto(f"{site_url}/index.html")
    page.locator("table.directory thead").get_by_role("link", name="Checks").click()
    assert page.url.endswith("/all--checks.html")
    assert page.locator('th[aria-sort="ascending"]').inner_text().startswith("Checks")
    page.get_by_role("navigation", name="Filter by agency").get_by_role(
        "link", name="Department of Public Health"
    ).click()
    assert page.url.endswith("/department-of-public-health--checks.html")
    assert page.locator("h1").inner_text() == "Datasets of the Department of Public Health"


def test_pages_have_no_serious_accessibility_violations(browser, site_url: str):
    axe_module = pytest.importorskip("axe_playwright_python.sync_playwright")
    page = _page(browser)
    for path in (
        "index.html",
        "datasets/dph_clinic_visits.html",
        "datasets/dph_clinic_visits_dictionary.html",
    ):
        page.goto(f"{site_url}/{path}")
        results = axe_module.Axe().run(page)
        serious = [v["id"] for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
        assert serious == [], f"{path}: {results.generate_report()}"
    assert page.blocked == []
