"""Issue 17 acceptance: a corpus of hostile extracts goes through ONE ``ct-pipelines run``.

Per case: the run's message names the file and the line or column in one sentence without a Python
exception name; rows are conserved (rows in = left out + set aside + published) or nothing is published; and no
planted personal value appears anywhere a person or another system can read it: the command's output,
the Dagster event log and instance files, the warehouse (except the raw ``ingest__*``, ``ingest_rows__*``
and ``_staging__*`` tables, where raw values live by design), the reports, the log files and the portal.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from click.testing import CliRunner

from ct_pipelines.cli import main
from ct_pipelines.orchestration.runner import run_catalog
from ct_pipelines.portal.common import table_name
from ct_pipelines_tests.support.corpus import (
    OK,
    STOPPED,
    Case,
    build_cases,
    csv_text,
    person,
    table,
    write_corpus,
    zipped_texts,
)

CASES = build_cases()
RAW_PREFIXES = ("ingest__", "ingest_rows__", "_staging__")
EXCEPTION_NAME = re.compile(
    r"\b\w*(Error|Exception|Invalid|Warning)\b|Traceback|BadZipFile|\bErrno\b|<class |object at 0x"
)
XFAIL_OUTCOME: dict[str, str] = {}  # case id -> why it does not end as expected yet (strict xfail)
# the stage tables between ingest and protect keep PII columns by design today (protect drops them)
STAGE_TABLES = ("validate__", "standardize__")


@dataclass
class Outcome:
    status: str
    rows_in: int
    left_out: int  # by the YAML's leave_out rules
    set_aside: int  # in quarantine
    published: int
    messages: list[str]
    failed_stage: str | None = None  # the stage named in "<stage> failed: <message>"


@dataclass
class CorpusRun:
    exit_code: int
    outcomes: dict[str, Outcome]
    texts: dict[str, str]  # where -> searchable text
    portal_views: set[str]
    portal_rows: dict[str, int]
    modes: dict[str, int]  # file -> permission bits, for the warehouse, reports and Dagster instance


def _n(cell: str) -> int:
    return 0 if cell == "-" else int(cell.replace(",", ""))


def _parse_summary(output: str) -> dict[str, Outcome]:
    ids = {case.dataset_id for case in CASES}
    outcomes: dict[str, Outcome] = {}
    lines = output.splitlines()
    for line in lines:
        cells = re.split(r"\s{2,}", line.strip())
        if cells and cells[0] in ids and len(cells) == 10:
            outcomes[cells[0]] = Outcome(cells[1], _n(cells[2]), _n(cells[3]), _n(cells[4]), _n(cells[5]), [])
    current: str | None = None
    for line in lines:
        head = re.match(r"^(c\d\d_\w+): (.*)$", line)
        if head and head.group(1) in outcomes:
            current, rest = head.group(1), head.group(2)
            if " failed: " in rest and not rest.startswith("not published"):
                stage, message = rest.split(" failed: ", 1)
                outcomes[current].messages.append(message)
                outcomes[current].failed_stage = stage
        elif current and line.startswith("  - ") and "(ERROR)" in line:
            outcomes[current].messages.append(line[4:])
        elif not line.strip():
            current = None
    return outcomes


def _warehouse_texts(home: Path) -> dict[str, str]:
    """Every table of every dataset's warehouse file, raw ingest tables aside."""
    texts: dict[str, str] = {}
    for path in sorted((home / "warehouse").glob("*.duckdb")):
        texts |= _table_texts(path, skip_raw=True)
    return texts


def _table_texts(path: Path, skip_raw: bool) -> dict[str, str]:
    texts: dict[str, str] = {}
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.execute(
            "SELECT database_name, schema_name, table_name FROM duckdb_tables() ORDER BY ALL"
        ).fetchall()
        for db, schema, name in tables:
            if skip_raw and name.startswith(RAW_PREFIXES):
                continue
            ref = f'"{db}"."{schema}"."{name}"'
            columns = [r[0] for r in con.execute(f"DESCRIBE {ref}").fetchall()]
            rows = con.execute(f"SELECT * FROM {ref}").fetchall()
            texts[f"{path.name}:{schema}.{name}"] = "\n".join(
                [" | ".join(columns), *(" | ".join(map(str, row)) for row in rows)]
            )
    return texts


def _file_texts(root: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    texts: dict[str, str] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.suffix in skip:
            continue
        data = path.read_bytes()
        texts[str(path)] = data.decode("utf-8", "replace")
        if path.suffix in (".xlsx", ".zip"):
            texts[str(path) + "!"] = "\n".join(zipped_texts(path))
    return texts


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory: pytest.TempPathFactory) -> CorpusRun:
    root = tmp_path_factory.mktemp("corpus")
    home, landing, dagster_home = root / "home", root / "landing", root / "dagster"
    write_corpus(CASES, root / "catalog", landing)
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    logged = io.StringIO()  # every Python log record of the run, whichever logger or handler it took
    handler = logging.StreamHandler(logged)
    logging.getLogger().addHandler(handler)
    umask = os.umask(0o022)  # as on a typical server; the CLI must make its files private itself
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("CT_PIPELINES_HOME", str(home))
        mp.setenv("CT_PIPELINES_LANDING", str(landing))
        mp.setenv("DAGSTER_HOME", str(dagster_home))
        mp.delenv("CT_PORTAL_DOMAIN", raising=False)
        mp.delenv("CT_PIPELINES_CATALOG", raising=False)
        result = CliRunner().invoke(main, ["run", "--catalog", str(root / "catalog")], catch_exceptions=False)
        instance = dg.DagsterInstance.get()
        try:
            (run,) = instance.get_runs()
            events = "\n".join(repr(e) for e in instance.all_logs(run.run_id))
        finally:
            instance.dispose()
            logging.getLogger().removeHandler(handler)
            os.umask(umask)
    texts = {
        "stdout": result.stdout,
        "stderr": result.stderr,
        "dagster events": events,
        "logging": logged.getvalue(),
    }
    texts |= _warehouse_texts(home)
    texts |= _file_texts(home / "reports")
    texts |= _file_texts(home / "logs") if (home / "logs").exists() else {}
    texts |= _file_texts(dagster_home)  # event log (SQLite), run storage, compute logs if any
    portal_db = [p for p in (home / "portal").glob("*.duckdb")]
    for path in portal_db:
        texts |= _table_texts(path, skip_raw=False)
    texts |= _file_texts(home / "portal", skip=(".duckdb", ".wal"))
    views, counts = set(), {}
    for path in portal_db:
        with duckdb.connect(str(path), read_only=True) as con:
            for name, row_count in _portal_views(con):
                views.add(name)
                counts[name] = row_count
    private = [
        *(home / "warehouse").glob("*.duckdb"),
        *(home / "reports").rglob("*"),
        *dagster_home.rglob("*"),
    ]
    modes = {str(p): stat.S_IMODE(p.stat().st_mode) for p in private if p.name != "dagster.yaml"}
    (root / "output.txt").write_text(result.stdout + "\n--- stderr\n" + result.stderr, encoding="utf-8")
    return CorpusRun(result.exit_code, _parse_summary(result.stdout), texts, views, counts, modes)


def _portal_views(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int]]:
    """(view name, row count) per dataset on the local portal."""
    names = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if "views" not in names:
        return []
    out = []
    for view_id, doc in con.execute("SELECT id, doc FROM views").fetchall():
        table = table_name(view_id)
        count = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] if table in names else 0
        out.append((json.loads(doc)["name"], count))
    return out


def _title(case: Case) -> str:
    return f"Hostile input case {case.number}"


def test_the_corpus_has_forty_cases_of_every_kind() -> None:
    assert len(CASES) >= 40
    assert len({c.dataset_id for c in CASES}) == len(CASES)
    assert sum(1 for c in CASES if c.planted) >= 35


def test_one_run_reports_every_case_and_fails_because_some_extracts_are_bad(corpus_run: CorpusRun) -> None:
    assert corpus_run.exit_code == 1
    assert set(corpus_run.outcomes) == {c.dataset_id for c in CASES}


def test_warehouse_reports_and_dagster_instance_are_readable_by_the_owner_only(corpus_run: CorpusRun) -> None:
    assert any(p.endswith(".duckdb") and "/warehouse/" in p for p in corpus_run.modes)
    assert any(p.endswith(".db") for p in corpus_run.modes)  # the instance's SQLite storage
    assert any(p.endswith("index.html") for p in corpus_run.modes)
    shared = {path: oct(mode) for path, mode in corpus_run.modes.items() if mode & 0o077}
    assert not shared


def _params(xfail: dict[str, str]) -> list:
    return [
        pytest.param(
            case, id=case.dataset_id, marks=[pytest.mark.xfail(strict=True, reason=xfail[case.dataset_id])]
        )
        if case.dataset_id in xfail
        else pytest.param(case, id=case.dataset_id)
        for case in CASES
    ]


@pytest.mark.parametrize("case", _params(XFAIL_OUTCOME))
def test_each_case_ends_as_expected_with_rows_conserved(corpus_run: CorpusRun, case: Case) -> None:
    outcome = corpus_run.outcomes[case.dataset_id]
    if case.expect == OK:
        assert outcome.status == "ok", outcome.messages
    if case.expect == STOPPED:
        assert outcome.status in ("FAILED", "blocked")
    if outcome.status == "ok":
        assert outcome.rows_in > 0
        assert outcome.rows_in == outcome.left_out + outcome.set_aside + outcome.published
        assert corpus_run.portal_rows[_title(case)] == outcome.published
    else:
        assert outcome.published == 0
        assert _title(case) not in corpus_run.portal_views
        assert outcome.messages, "a stopped dataset says why"


@pytest.mark.parametrize("case", _params({}))
def test_each_message_names_the_file_and_where_in_one_plain_sentence(
    corpus_run: CorpusRun, case: Case
) -> None:
    outcome = corpus_run.outcomes[case.dataset_id]
    for message in outcome.messages:
        assert "\n" not in message
        assert not EXCEPTION_NAME.search(message), message
        assert len(re.findall(r"[.!?](\s+[A-Z]|$)", message)) <= 1, message
    if outcome.status == "FAILED":
        (message,) = outcome.messages
        names = [name for name, _ in case.files]
        assert any(name in message for name in names), message
        assert re.search(r"\b(line|column|byte|sheet)\b|file (is|holds no)\b|not a readable", message), (
            message
        )
    if outcome.failed_stage == "ingest":
        # "<file>, line 7: <what is wrong>; <what to do>." - one sentence, the fix included
        (message,) = outcome.messages
        assert message.endswith(".") and not re.search(r"[.!?]\s+[A-Z]", message), message
        assert "; " in message and "Fix:" not in message, message


def _leaks(run: CorpusRun, case: Case, stage_tables: bool) -> list[str]:
    return sorted(
        {
            f"{value!r} in {where}"
            for value in case.planted
            for where, text in run.texts.items()
            if (":main." + STAGE_TABLES[0] in where or ":main." + STAGE_TABLES[1] in where) == stage_tables
            and value in text
        }
    )


@pytest.mark.parametrize("case", CASES, ids=[c.dataset_id for c in CASES])
def test_no_planted_personal_value_appears_anywhere(corpus_run: CorpusRun, case: Case) -> None:
    leaks = _leaks(corpus_run, case, stage_tables=False)
    assert not leaks, leaks[:10]


def test_no_planted_personal_value_in_the_tables_between_ingest_and_protect(corpus_run: CorpusRun) -> None:
    leaks = [leak for case in CASES for leak in _leaks(corpus_run, case, stage_tables=True)]
    assert not leaks, leaks[:10]


def test_resends_a_b_a_and_an_in_place_overwrite_publish_each_version_and_leak_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """Run by run: A (12 rows), B (10 rows: a shrink past the 10% guard, so refused), A again, then A
    overwritten in place with 14 rows."""
    case = next(c for c in CASES if c.dataset_id.endswith("resend_a_b_a"))
    monkeypatch.setenv("CT_PIPELINES_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CT_PIPELINES_LANDING", str(tmp_path / "landing"))
    monkeypatch.delenv("CT_PORTAL_DOMAIN", raising=False)
    (tmp_path / "catalog").mkdir()
    (tmp_path / "landing").mkdir()
    (tmp_path / "catalog" / "resend.yaml").write_text(case.yaml_text(), encoding="utf-8")
    a, b = case.files[0][1], case.files[1][1]
    header, rows = table(case.number, 14)
    a_longer = csv_text(header, rows).encode()
    sends = [("c45_batch_1.csv", a, 12), ("c45_batch_2.csv", b, 10), ("c45_batch_3.csv", a, 12)]
    sends.append(("c45_batch_3.csv", a_longer, 14))  # the agency overwrites the same file
    published = []
    for step, (name, data, _) in enumerate(sends):
        path = tmp_path / "landing" / name
        path.write_bytes(data)
        os.utime(path, (1_767_225_600 + step * 60,) * 2)
        (summary,), _ = run_catalog(str(tmp_path / "catalog"), instance=dg.DagsterInstance.ephemeral())
        published.append((summary.status, summary.rows_in, summary.rows_published))
    assert published == [("ok", 12, 12), ("blocked", 10, None), ("ok", 12, 12), ("ok", 14, 14)]
    with duckdb.connect(str(tmp_path / "home" / "portal" / "portal.duckdb"), read_only=True) as con:
        assert [count for _, count in _portal_views(con)] == [14]
    out = capfd.readouterr()
    texts = {"stdout": out.out, "stderr": out.err}
    texts |= _warehouse_texts(tmp_path / "home")
    texts |= _file_texts(tmp_path / "home" / "reports") if (tmp_path / "home" / "reports").exists() else {}
    texts |= _table_texts(tmp_path / "home" / "portal" / "portal.duckdb", skip_raw=False)
    values = [value for r in range(1, 15) for value in person(case.number, r).values()]
    leaks = {
        f"{v!r} in {where}"
        for v in values
        for where, text in texts.items()
        if v in text and not any(":main." + t in where for t in STAGE_TABLES)
    }
    assert not leaks, sorted(leaks)[:10]
