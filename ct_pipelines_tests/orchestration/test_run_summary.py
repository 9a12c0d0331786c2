"""What `ct-pipelines run` says it did to the portal: a resend that changes nothing, and a delivery that
changes rows, read the same in the summary table, so a line under it says which it was."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from ct_pipelines.cli import main
from ct_pipelines.portal.store import PortalStore

CATALOG = """\
id: licenses
title: Fishing licenses sold
description: One row per license sold, for tests.
agency: Department of Energy and Environmental Protection
category: Environment and Natural Resources
update_frequency: Weekly
contact: deep.data@ct.gov
ingest: {path: licenses.csv}
row_identifier: license_id
columns:
- {source: License ID, type: code, required: true, unique: true}
- {source: Town}
"""


def _licenses_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A catalog folder with the licenses dataset, a landing folder and a home; returns the extract's path."""
    for folder in ("catalog", "landing"):
        (tmp_path / folder).mkdir()
    (tmp_path / "catalog" / "licenses.yaml").write_text(CATALOG, encoding="utf-8")
    monkeypatch.setenv("CT_PIPELINES_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CT_PIPELINES_LANDING", raising=False)
    monkeypatch.delenv("CT_PORTAL_DOMAIN", raising=False)
    return tmp_path / "landing" / "licenses.csv"


def _portal_values(tmp_path: Path, field: str) -> list[str]:
    """One field of every row the local portal holds for the licenses dataset, sorted."""
    store = PortalStore(tmp_path / "home" / "portal")
    try:
        (view,) = store.list_views()
        return sorted(r[field] for r in store.query(view["id"], {"$limit": "100"}).records())
    finally:
        store.close()


def test_the_run_says_whether_the_portal_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    extract = _licenses_project(tmp_path, monkeypatch)

    def deliver(towns: list[str], *options: str) -> str:
        extract.write_text(
            "License ID,Town\r\n" + "".join(f"L{i:04d},{t}\r\n" for i, t in enumerate(towns)),
            encoding="utf-8",
        )
        result = CliRunner().invoke(main, ["run", "--catalog", str(tmp_path / "catalog"), *options])
        assert result.exit_code == 0, result.output
        return result.output

    towns = ["Hartford", "Mystic", "Groton", "Salem"]
    first = deliver(towns)
    assert "licenses: the portal's rows were replaced by the 4 sent" in first
    assert "Published to the local portal in" in first
    assert "licenses: nothing changed on the portal; it held these rows" in deliver(towns)
    changed = [*towns[:3], "Old Lyme", "Lyme"]
    assert "licenses: on the portal, rows 1 created, 1 updated" in deliver(changed)
    dry = deliver(changed[:4] + ["Essex"], "--dry-run")
    assert "licenses: dry run, nothing sent" in dry and "Published to" not in dry
    assert (
        "it would change the portal's rows one by one: 0 rows to create, 1 row to update, 0 rows to delete, "
        "in 1 chunk ("
        in dry
        and "the portal would then hold 5 rows" in dry
        and "{" not in dry
    )
    # The staff report's last runs say the same, one run per row, oldest first.
    page = (tmp_path / "home" / "reports" / "site" / "datasets" / "licenses.html").read_text(encoding="utf-8")
    history = page[page.index('id="history"') : page.index('id="dict"')]
    rows = re.findall(r"<tr><td><code>.*?</tr>", history)
    assert [re.findall(r"<td>([^<]*)</td>", row)[-1] for row in rows] == [
        "the portal&#39;s rows were replaced by the 4 sent",
        "nothing changed on the portal; it held these rows",
        "on the portal, rows 1 created, 1 updated",
        "none",  # the dry run
    ]


def test_a_refused_delivery_is_said_once_in_short_lines_without_a_stack_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Dagster's console printed a refusal as a stack trace, twice, behind job names and run ids."""
    _licenses_project(tmp_path, monkeypatch).write_text(
        "License ID,Town\r\nL0001,Hartford\r\nL0001,Mystic\r\nL0002,Groton\r\n", encoding="utf-8"
    )
    result = CliRunner().invoke(main, ["run", "--catalog", str(tmp_path / "catalog")])
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert lines and all(
        re.match(r"\d\d:\d\d:\d\d (ERROR |WARNING )?licenses[:/ ]", line) for line in lines
    ), lines
    refusal = [line for line in lines if "licenses was not published: ERROR check 'quarantine_share'" in line]
    assert len(refusal) == 1, lines
    assert not [line for line in lines if "Traceback" in line or "Stack Trace" in line or 'File "' in line]
    assert [line.split(" ", 1)[1] for line in lines if "not run" in line] == [
        f"WARNING licenses/{stage} not run: publishing stopped at validate"
        for stage in ("standardize", "protect", "publish")
    ]
    assert "licenses  blocked" in result.stdout


def test_an_unexpected_error_keeps_its_stack_trace(capfd: pytest.CaptureFixture[str]):
    """An error that is not a refusal is a bug to report: the short line is followed by its trace."""
    import dagster as dg

    from ct_pipelines.orchestration.terminal_log import terminal_logger

    @dg.asset
    def breaks() -> None:
        raise ValueError("the parser met a case it does not know")

    @dg.asset
    def refuses() -> None:
        raise dg.Failure(description="refuses was not published: the file is empty")

    defs = dg.Definitions(assets=[breaks, refuses], jobs=[dg.define_asset_job("both")])
    job = defs.resolve_job_def("both").with_logger_defs({"console": terminal_logger})
    result = job.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
    )
    assert not result.success
    err = capfd.readouterr().err
    assert re.search(r"^\d\d:\d\d:\d\d ERROR breaks: Execution of step \"breaks\" failed\.$", err, re.M), err
    assert 'File "' in err
    assert err.count("refuses was not published: the file is empty") == 1, err
    assert err.count("ValueError: the parser met a case it does not know") == 1, err  # not again for the run


def test_a_delivery_passed_over_by_a_newer_one_stops_the_run_until_the_yaml_says_files_are_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """ingest.path is a pattern and two files land before the next run: a run reads only the newest, as
    the whole dataset, so rows only in the older one would leave the portal. The run stops, again on a
    retry, and goes on once the YAML says every file holds the whole dataset."""
    _licenses_project(tmp_path, monkeypatch)
    catalog = tmp_path / "catalog" / "licenses.yaml"
    catalog.write_text(CATALOG.replace("path: licenses.csv", "path: licenses_*.csv"), encoding="utf-8")

    def land(name: str, ids: range, minute: int) -> None:
        path = tmp_path / "landing" / name
        path.write_text(
            "License ID,Town\r\n" + "".join(f"L{i:04d},Hartford\r\n" for i in ids), encoding="utf-8"
        )
        os.utime(path, (1_767_225_600 + minute * 60,) * 2)

    def run(exit_code: int) -> str:
        result = CliRunner().invoke(main, ["run", "--catalog", str(tmp_path / "catalog")])
        assert result.exit_code == exit_code, result.output
        return result.stdout

    def portal_rows() -> list[str]:
        return _portal_values(tmp_path, "license_id")

    first = [f"L{i:04d}" for i in range(1, 4)]
    land("licenses_2026_01.csv", range(1, 4), 0)
    assert "licenses  ok      3 " in run(0) and portal_rows() == first
    land("licenses_2026_02.csv", range(4, 6), 10)  # only the new licenses of each month
    land("licenses_2026_03.csv", range(1, 8), 20)
    for _ in range(2):  # a retry of the same run stops again
        blocked = run(1)
        assert "licenses  blocked" in blocked and portal_rows() == first
        line = next(line for line in blocked.splitlines() if "no_delivery_passed_over (ERROR)" in line)
        assert "1 file(s) matching ingest.path were not read: licenses_2026_02.csv; a run reads only" in line
        assert "set ingest.each_file_complete: true in the dataset YAML" in line
    catalog.write_text(catalog.read_text(encoding="utf-8").replace("}", ", each_file_complete: true}", 1))
    complete = run(0)
    assert "licenses  ok      7 " in complete and portal_rows() == [f"L{i:04d}" for i in range(1, 8)]
    assert "no_delivery_passed_over (WARN): 1 file(s) matching ingest.path were not read" in complete


def test_a_row_set_aside_on_a_resend_is_said_to_keep_its_published_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A resend with one mistyped town: the row is set aside and the portal keeps its earlier values. The
    run said 'nothing changed on the portal' while the portal no longer matched the file; it now says so.
    And the shrink guard counted the table without the kept row: 1 of 4 set aside refused the publish as
    a 25% shrink, though the portal keeps 4 rows."""
    extract = _licenses_project(tmp_path, monkeypatch)
    catalog = tmp_path / "catalog" / "licenses.yaml"
    catalog.write_text(
        CATALOG.replace("- {source: Town}", "- {source: Town, allowed_values: [Hartford, Mystic, Groton]}")
        + "validate: {max_quarantine_share: 0.5}\n",
        encoding="utf-8",
    )

    def deliver(towns: list[str]) -> str:
        extract.write_text(
            "License ID,Town\r\n" + "".join(f"L{i:04d},{t}\r\n" for i, t in enumerate(towns)),
            encoding="utf-8",
        )
        result = CliRunner().invoke(main, ["run", "--catalog", str(tmp_path / "catalog")])
        assert result.exit_code == 0, result.output
        return result.stdout

    deliver(["Hartford", "Mystic", "Groton", "Mystic"])
    second = deliver(["Hartford", "Mystik", "Groton", "Mystic"])
    assert (
        "licenses: nothing changed on the portal; it held these rows; 1 row(s) set aside this run keep the "
        "values published before (their new values broke a rule)" in second
    )


def test_an_earlier_delivery_that_became_the_newest_file_does_not_take_the_portal_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Monthly files under a path pattern: October, then November, were published. Then October's file
    was touched (copied back, restored from a backup) and became the newest match: the run published
    October over November with status ok. It is now refused, the portal keeps November, and --reingest
    takes the portal back when that is what the agency wants."""
    _licenses_project(tmp_path, monkeypatch)
    yaml_path = tmp_path / "catalog" / "licenses.yaml"
    yaml_path.write_text(CATALOG.replace("{path: licenses.csv}", "{path: licenses_*.csv}"), encoding="utf-8")
    months = {
        "2026-10": ["Hartford", "Mystic", "Groton"],
        "2026-11": ["Hartford", "Mystic", "Groton", "Salem"],
    }

    def run(*options: str):
        return CliRunner().invoke(main, ["run", "--catalog", str(tmp_path / "catalog"), *options])

    def portal_towns() -> list[str]:
        return _portal_values(tmp_path, "town")

    files = {}
    for step, (month, towns) in enumerate(months.items()):  # October, then November a month later
        files[month] = tmp_path / "landing" / f"licenses_{month}.csv"
        rows = "".join(f"L{i:04d},{town}\r\n" for i, town in enumerate(towns))
        files[month].write_text("License ID,Town\r\n" + rows, encoding="utf-8")
        os.utime(files[month], (1_767_225_600 + step * 60,) * 2)
        assert run().exit_code == 0 and portal_towns() == sorted(towns)
    os.utime(files["2026-10"], (1_767_227_000,) * 2)  # the older file touched: now the newest match
    refused = run()
    assert refused.exit_code == 1
    assert (
        "licenses_2026-10.csv: it is the newest file matching ingest.path, but its name sorts before"
        in refused.output
    )
    assert "licenses_2026-11.csv, the file the portal holds now" in refused.output
    assert "run again with --reingest" in refused.output
    assert portal_towns() == sorted(months["2026-11"])
    # re-exported with every field quoted: other bytes, the same earlier delivery
    rows = "".join(f'"L{i:04d}","{town}"\r\n' for i, town in enumerate(months["2026-10"]))
    files["2026-10"].write_text('"License ID","Town"\r\n' + rows, encoding="utf-8")
    os.utime(files["2026-10"], (1_767_228_000,) * 2)
    assert run().exit_code == 1 and portal_towns() == sorted(months["2026-11"])
    back = run("--reingest")  # the way back, as the message says; then the portal's guards speak
    assert back.exit_code == 1 and "fewer than the 4 last published" in back.output, back.output
    assert run("--reingest", "--allow-shrink", "--allow-deletes").exit_code == 0
    assert portal_towns() == sorted(months["2026-10"])


def test_a_portal_dataset_deleted_or_of_other_columns_is_replaced_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A new user deleted the portal dataset after a type change was refused: every run then ended
    'Reading the columns of mcrm-b6u7 failed: 404 Client Error', with no next step, also --full-replace.
    Both refusals now name --new-portal-dataset, which publishes to a new portal dataset."""
    extract = _licenses_project(tmp_path, monkeypatch)
    extract.write_text("License ID,Town,Fee\r\nL0001,Hartford,10\r\nL0002,Mystic,12\r\n", encoding="utf-8")
    yaml_path = tmp_path / "catalog" / "licenses.yaml"
    yaml_path.write_text(CATALOG + "- {source: Fee}\n", encoding="utf-8")  # published as text first

    def run(*options: str):
        return CliRunner().invoke(main, ["run", "--catalog", str(tmp_path / "catalog"), *options])

    def views() -> list[dict]:
        store = PortalStore(tmp_path / "home" / "portal")
        try:
            return [
                {**view, "rows": store.query(view["id"], {"$limit": "10"}).records()}
                for view in store.list_views()
            ]
        finally:
            store.close()

    assert run().exit_code == 0
    (first,) = views()
    assert {c["fieldName"]: c["dataTypeName"] for c in first["columns"]}["fee"] == "text"
    yaml_path.write_text(CATALOG + "- {source: Fee, type: integer}\n", encoding="utf-8")
    drift = run()
    assert (
        drift.exit_code == 1
        and "of another type: fee (number in the table, text on the portal)" in drift.output
    )
    # the command names the catalog it ran: pasted without it, it ran the bundled samples and failed
    again = f"`ct-pipelines run --catalog {tmp_path / 'catalog'} --dataset licenses --new-portal-dataset`"
    assert f"{again} (the old one keeps" in drift.output.replace("\n", " ")

    store = PortalStore(tmp_path / "home" / "portal")
    store.delete_view(first["id"])
    store.close()
    gone = run("--full-replace")
    assert gone.exit_code == 1
    assert f"has no dataset {first['id']} any more (deleted there?), so nothing was published" in gone.output
    assert f"run {again}" in gone.output.replace("\n", " ")

    moved = run("--new-portal-dataset")
    assert moved.exit_code == 0
    (second,) = views()
    assert (
        f"licenses: the portal's rows were replaced by the 2 sent (in the new portal dataset {second['id']})"
        in (" ".join(moved.output.split()))
    )
    assert second["id"] != first["id"]
    assert {c["fieldName"]: c["dataTypeName"] for c in second["columns"]}["fee"] == "number"
    assert sorted((r["license_id"], r["fee"]) for r in second["rows"]) == [("L0001", "10"), ("L0002", "12")]
    assert run().exit_code == 0 and [v["id"] for v in views()] == [second["id"]]  # it is the target now


def test_the_same_bytes_as_an_earlier_version_sent_again_under_one_name_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """One file name, overwritten each month: January's bytes put back after February was published
    would take the portal back; the run stops, and a retry stops again (the pipeline still holds
    February), until --reingest says that is what the agency wants."""
    extract = _licenses_project(tmp_path, monkeypatch)
    january = "License ID,Town\r\nL0001,Hartford\r\nL0002,Mystic\r\n"
    february = january + "L0003,Groton\r\n"

    def deliver(text: str, *options: str):
        extract.write_text(text, encoding="utf-8")
        return CliRunner().invoke(main, ["run", "--catalog", str(tmp_path / "catalog"), *options])

    assert deliver(january).exit_code == 0 and deliver(february).exit_code == 0
    refused = deliver(january)
    assert refused.exit_code == 1
    assert "licenses.csv: it holds the same bytes as the version read in run" in refused.output
    assert "before the version the portal holds now (a later delivery under the same name)" in " ".join(
        refused.output.split()
    )
    assert _portal_values(tmp_path, "license_id") == ["L0001", "L0002", "L0003"]
    assert deliver(january).exit_code == 1  # again: the pipeline still holds February
    assert deliver(january, "--reingest", "--allow-shrink", "--allow-deletes").exit_code == 0
    assert _portal_values(tmp_path, "license_id") == ["L0001", "L0002"]


def test_a_newer_delivery_sent_again_after_its_publish_stopped_is_read_not_refused_as_going_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A helper's big delivery was read, its publish killed, the next file refused by a guard, and the big
    file sent again: it was refused as "before the version the portal holds now", a version the portal
    never held. Bytes first read after the published version are a retry, not a step back."""
    extract = _licenses_project(tmp_path, monkeypatch)
    rows = [f"L{i:04d},Hartford\r\n" for i in range(1, 101)]

    def deliver(lines: list[str], *options: str):
        extract.write_text("License ID,Town\r\n" + "".join(lines), encoding="utf-8")
        return CliRunner().invoke(main, ["run", "--catalog", str(tmp_path / "catalog"), *options])

    assert deliver(rows).exit_code == 0  # published: 100 licenses
    newer = rows[:50] + [f"L{i:04d},Mystic\r\n" for i in range(101, 121)]  # read, then refused by a guard
    assert deliver(newer).exit_code == 1
    assert deliver(rows[:10]).exit_code == 1  # a cut file, refused too
    retried = deliver(newer, "--allow-shrink", "--allow-deletes")
    assert retried.exit_code == 0, retried.output
    assert "before the version the portal holds now" not in retried.output
    assert len(_portal_values(tmp_path, "license_id")) == 70


def test_a_dataset_not_in_the_catalog_is_named_with_the_catalog_to_pass(tmp_path: Path, monkeypatch):
    """A refusal's command, pasted without its --catalog, ran the bundled samples and ended in a
    49-line Dagster traceback (AssetKey(s) ... were selected, but no AssetsDefinition objects supply
    these keys). It now says which catalog was read and what to pass."""
    _licenses_project(tmp_path, monkeypatch)
    catalog = str(tmp_path / "catalog")
    missing = CliRunner().invoke(main, ["run", "--catalog", catalog, "--dataset", "dph_covid_town_race"])
    assert missing.exit_code == 1 and "Traceback" not in missing.output
    assert (
        f"dataset 'dph_covid_town_race' is not in the catalog {catalog} (it holds: licenses); pass --catalog "
        "with the folder that holds its YAML file" in " ".join(missing.output.split())
    )
    typo = CliRunner().invoke(main, ["run", "--catalog", catalog, "--dataset", "license"])
    assert typo.exit_code == 1 and "(did you mean 'licenses'?)" in typo.output


def test_a_dataset_whose_file_did_not_load_is_named_with_its_problems_not_as_missing(
    tmp_path: Path, monkeypatch
):
    """A helper's YAML had a description under 10 characters; `run --dataset` said it was not in the catalog
    and suggested another folder, while the reason sat among other files' skipped lines."""
    _licenses_project(tmp_path, monkeypatch)
    catalog = tmp_path / "catalog"
    (catalog / "enrollment_draft.yaml").write_text(
        CATALOG.replace("id: licenses", "id: dss_enroll").replace(
            "description: One row per license sold, for tests.", "description: Short."
        ),
        encoding="utf-8",
    )
    (catalog / "other.yaml").write_text("id: other\ntitle: <<TODO: a title>>\n", encoding="utf-8")
    refused = CliRunner().invoke(main, ["run", "--catalog", str(catalog), "--dataset", "dss_enroll"])
    text = " ".join(refused.output.split())
    assert refused.exit_code == 1 and "not in the catalog" not in text
    assert (
        f"dataset 'dss_enroll' was not run: its file {catalog / 'enrollment_draft.yaml'} has 1 problem(s)"
        in text
    )
    assert "enrollment_draft.yaml:3: description" in text and "other.yaml" not in text


def test_a_run_blocked_before_publish_says_the_portal_holds_part_of_a_stopped_publish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A helper's publish was killed at chunk 3 of 11; the next delivery was blocked by validation, and
    nothing said that the portal still held half of the killed one."""
    import ct_pipelines.publish.send as send

    extract = _licenses_project(tmp_path, monkeypatch)
    yaml_path = tmp_path / "catalog" / "licenses.yaml"
    yaml_path.write_text(CATALOG + "publish: {chunk_rows: 10}\n", encoding="utf-8")
    extract.write_text(
        "License ID,Town\r\n" + "".join(f"L{i:04d},Hartford\r\n" for i in range(1, 51)), encoding="utf-8"
    )
    record = send._record_chunk

    def crash_after_the_first(*args, **kwargs):
        record(*args, **kwargs)
        raise RuntimeError("killed")  # the process dies once the first chunk is on the portal

    monkeypatch.setattr(send, "_record_chunk", crash_after_the_first)
    run = ["run", "--catalog", str(tmp_path / "catalog")]
    assert CliRunner().invoke(main, run).exit_code == 1
    monkeypatch.setattr(send, "_record_chunk", record)
    extract.write_text("License ID,Town\r\n" + "".join(",Hartford\r\n" for _ in range(50)), encoding="utf-8")
    blocked = CliRunner().invoke(main, run)
    text = " ".join(blocked.output.split())
    assert blocked.exit_code == 1 and "not published; these ERROR checks failed" in text
    assert "licenses: note: a publish to " in text
    assert (
        "stopped part-way in run" in text and "(1 of 5 chunks sent), so the portal holds part of it" in text
    )


def test_a_repeated_row_identifier_without_its_rules_names_the_rules_that_set_such_rows_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A helper's delivery with one repeated key was refused whole, with no way to publish the rest."""
    extract = _licenses_project(tmp_path, monkeypatch)
    yaml_path = tmp_path / "catalog" / "licenses.yaml"
    yaml_path.write_text(
        CATALOG.replace(
            "- {source: License ID, type: code, required: true, unique: true}",
            "- {source: License ID, type: code}",
        ),
        encoding="utf-8",
    )
    rows = "".join(f"L{i:04d},Hartford\r\n" for i in range(1, 60))
    extract.write_text("License ID,Town\r\n" + rows + "L0002,Groton\r\n", encoding="utf-8")
    run = ["run", "--catalog", str(tmp_path / "catalog")]
    refused = CliRunner().invoke(main, run)
    text = " ".join(refused.output.split())
    assert refused.exit_code == 1 and "0 rows have none and 1 repeat another row's value" in text
    assert "(add required: true and unique: true to column 'license_id' in the dataset YAML" in text
    yaml_path.write_text(CATALOG, encoding="utf-8")  # as the message says
    assert CliRunner().invoke(main, run).exit_code == 0
    published = _portal_values(tmp_path, "license_id")
    assert len(published) == 58 and "L0002" not in published  # both L0002 rows set aside: they differ
