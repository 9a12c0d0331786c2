"""Which file version is ingested, and from where: re-sends, YAML fixes, forced reads, files rewritten
while being read, and source paths that try to leave the landing folder."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import duckdb
import pytest

from ct_pipelines.ingest import snapshot
from ct_pipelines.ingest.errors import IngestError
from ct_pipelines.ingest.ingest import ingest_dataset
from ct_pipelines.ingest.landing import source_path_problem

OLD = 1_700_000_000  # an mtime well in the past: the file is settled, not being uploaded


def land(folder: Path, name: str, text: str, mtime: int = OLD) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    os.utime(path, (mtime, mtime))
    return path


def towns(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute("SELECT town FROM ingest__sample ORDER BY _row").fetchall()]


def log(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute(
        "SELECT run_id, status, rows, resend_of_run FROM meta.ingest_log ORDER BY ingested_at"
    ).fetchall()


def test_a_version_sent_again_after_another_is_ingested_and_called_a_resend(tmp_path, make_dataset):
    con = duckdb.connect()
    dataset = make_dataset("extract.csv")
    a, b = "town,count\nAndover,1\nBristol,2\n", "town,count\nCanton,3\n"

    def run(run_id: str, text: str, mtime: int):
        land(tmp_path, "extract.csv", text, mtime)
        return ingest_dataset(con, dataset, tmp_path, run_id=run_id, workdir=tmp_path / "w")

    first, second, third = run("r1", a, OLD), run("r2", b, OLD + 60), run("r3", a, OLD + 120)
    assert [first.skipped, second.skipped, third.skipped] == [False, False, False]
    assert towns(con) == ["Andover", "Bristol"] and third.rows == 2
    assert third.resend_of_run == "r1" and "re-send" in third.reason
    assert third.sha256 == first.sha256 == hashlib.sha256(a.encode()).hexdigest()
    assert log(con) == [("r1", "ingested", 2, None), ("r2", "ingested", 1, None), ("r3", "ingested", 2, "r1")]


def test_same_content_with_a_new_mtime_is_skipped_and_logged_once(tmp_path, make_dataset):
    con = duckdb.connect()
    dataset = make_dataset("extract.csv")
    land(tmp_path, "extract.csv", "town\nAndover\n")
    ingest_dataset(con, dataset, tmp_path, run_id="r1", workdir=tmp_path / "w")
    land(tmp_path, "extract.csv", "town\nAndover\n", OLD + 60)
    touched = ingest_dataset(con, dataset, tmp_path, run_id="r2", workdir=tmp_path / "w")
    again = ingest_dataset(con, dataset, tmp_path, run_id="r3", workdir=tmp_path / "w")
    assert touched.skipped and "same content" in touched.reason
    assert again.skipped and "same name, size and mtime" in again.reason
    assert log(con) == [("r1", "ingested", 1, None), ("r2", "unchanged", 1, None)]


def test_a_yaml_fix_rereads_the_same_file_and_force_rereads_it_anyway(tmp_path, make_dataset):
    con = duckdb.connect()
    land(tmp_path, "extract.csv", "Title line\nTown,Count\nAndover,1\n")
    before = ingest_dataset(con, make_dataset("extract.csv"), tmp_path, run_id="r1", workdir=tmp_path / "w")
    fixed = make_dataset(
        "extract.csv", columns=[{"source": "Town", "field_name": "town_name"}, {"source": "Count"}]
    )
    after = ingest_dataset(con, fixed, tmp_path, run_id="r2", workdir=tmp_path / "w")
    assert not after.skipped and after.read_config != before.read_config and "YAML" in after.reason
    assert after.resend_of_run is None
    assert con.execute("SELECT town_name FROM ingest__sample").fetchall() == [("Andover",)]
    assert ingest_dataset(con, fixed, tmp_path, run_id="r3", workdir=tmp_path / "w").skipped
    forced = ingest_dataset(con, fixed, tmp_path, run_id="r4", workdir=tmp_path / "w", force=True)
    assert not forced.skipped and "force" in forced.reason
    assert [r[:2] for r in log(con)] == [("r1", "ingested"), ("r2", "ingested"), ("r4", "ingested")]


def test_a_failed_read_leaves_the_raw_table_and_the_log_as_they_were(tmp_path, make_dataset):
    con = duckdb.connect()
    dataset = make_dataset("extract.csv")
    land(tmp_path, "extract.csv", "town,count\nAndover,1\n")
    ingest_dataset(con, dataset, tmp_path, run_id="r1", workdir=tmp_path / "w")
    land(tmp_path, "extract.csv", "town,count\nBristol,2,extra\n", OLD + 60)
    with pytest.raises(IngestError, match="expected 2 fields"):
        ingest_dataset(con, dataset, tmp_path, run_id="r2", workdir=tmp_path / "w")
    assert towns(con) == ["Andover"] and [r[0] for r in log(con)] == ["r1"]
    assert con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name LIKE '_staging%'"
    ).fetchone() == (0,)


@pytest.mark.parametrize(
    "fresh_seconds", [0.0, snapshot.FRESH_SECONDS], ids=["read-in-place", "snapshot-copy"]
)
def test_a_file_rewritten_in_place_during_ingest_is_logged_with_the_hash_of_what_was_loaded(
    tmp_path, make_dataset, monkeypatch, fresh_seconds
):
    # A writer rewrites the same inode with version B as soon as the reader's first scratch file appears
    # in the work folder, i.e. while the file is being read. A file's ctime cannot be set back, so the
    # in-place read (used for files settled for FRESH_SECONDS) is reached by setting that window to 0.
    # Whichever version ends up loaded, the recorded SHA-256 must be that version's, and the log must
    # agree with the table.
    monkeypatch.setattr(snapshot, "FRESH_SECONDS", fresh_seconds)
    rows = 200_000
    a = "town,count\n" + "".join(f"Andover,{n}\n" for n in range(rows - 1)) + "Andover,caf\xe9\n"
    b = "town,count\n" + "".join(f"Bristol,{n}\n" for n in range(rows - 1)) + "Bristol,caf\xe9\n"
    encoded = {name: text.encode("cp1252") for name, text in (("A", a), ("B", b))}
    path = tmp_path / "extract.csv"
    path.write_bytes(encoded["A"])
    os.utime(path, (OLD, OLD))
    work = tmp_path / "w"
    work.mkdir()
    done = threading.Event()

    def rewrite_when_reading() -> None:
        while not done.is_set():
            if any(work.iterdir()):
                with path.open("r+b") as handle:  # same inode, same size: only the bytes change
                    handle.write(encoded["B"])
                return

    writer = threading.Thread(target=rewrite_when_reading)
    writer.start()
    con = duckdb.connect()
    try:
        result = ingest_dataset(con, make_dataset("extract.csv"), tmp_path, run_id="r1", workdir=work)
    finally:
        done.set()
        writer.join()
    loaded = con.execute("SELECT DISTINCT town FROM ingest__sample").fetchall()
    assert len(loaded) == 1 and result.rows == rows
    version = "A" if loaded[0][0] == "Andover" else "B"
    assert result.sha256 == hashlib.sha256(encoded[version]).hexdigest()
    assert con.execute("SELECT sha256 FROM meta.ingest_log").fetchall() == [(result.sha256,)]


def test_a_file_changed_seconds_ago_is_read_from_a_snapshot_with_its_hash(tmp_path, make_dataset):
    text = "town,count\nAndover,1\n"
    (tmp_path / "extract.csv").write_text(text, encoding="utf-8")  # mtime now: maybe still uploading
    con = duckdb.connect()
    result = ingest_dataset(con, make_dataset("extract.csv"), tmp_path, run_id="r1", workdir=tmp_path / "w")
    assert result.sha256 == hashlib.sha256(text.encode()).hexdigest() and towns(con) == ["Andover"]
    assert not any((tmp_path / "w").iterdir())  # the snapshot is removed


@pytest.mark.parametrize("pattern", ["../secret.csv", "sub/../../secret.csv", "/etc/passwd"])
def test_source_paths_outside_the_landing_folder_are_refused(tmp_path, make_dataset, pattern):
    landing = tmp_path / "landing"
    landing.mkdir()
    (tmp_path / "secret.csv").write_text("a\n1\n", encoding="utf-8")
    dataset = make_dataset(pattern)
    with pytest.raises(IngestError) as info:
        ingest_dataset(duckdb.connect(), dataset, landing, run_id="r", workdir=tmp_path / "w")
    assert "outside the landing folder" in str(info.value) or "climbs out" in str(info.value)
    assert "relative to the landing folder" in str(info.value)
    problem = source_path_problem(landing, dataset.ingest)
    assert problem is not None and problem.startswith("ingest.path: ") and problem.endswith(".")
    assert "relative to the landing folder" in problem and "Fix:" not in problem


def test_a_symlink_leading_out_of_the_landing_folder_is_refused(tmp_path, make_dataset):
    landing = tmp_path / "landing"
    landing.mkdir()
    (tmp_path / "secret.csv").write_text("a\n1\n", encoding="utf-8")
    (landing / "extract.csv").symlink_to(tmp_path / "secret.csv")
    dataset = make_dataset("*.csv")
    with pytest.raises(IngestError, match="symbolic link that leads outside"):
        ingest_dataset(duckdb.connect(), dataset, landing, run_id="r", workdir=tmp_path / "w")
    assert "symbolic link" in (source_path_problem(landing, dataset.ingest) or "")


def test_absolute_paths_inside_the_landing_folder_and_links_within_it_are_read(tmp_path, make_dataset):
    landing = tmp_path / "landing"
    (landing / "2026").mkdir(parents=True)
    land(landing / "2026", "extract.csv", "town\nAndover\n")
    (landing / "current.csv").symlink_to(landing / "2026" / "extract.csv")
    for pattern in (str(landing / "2026" / "extract.csv"), "current.csv", "2026/*.csv"):
        dataset = make_dataset(pattern)
        assert source_path_problem(landing, dataset.ingest) is None
        con = duckdb.connect()
        assert ingest_dataset(con, dataset, landing, run_id="r", workdir=tmp_path / "w").rows == 1
        assert towns(con) == ["Andover"]


def test_the_bundled_sample_catalog_passes_the_source_path_check():
    from ct_pipelines.catalog.loader import load_catalog
    from ct_pipelines.core.settings import SAMPLE_CATALOG_DIR, SAMPLE_LANDING_DIR

    catalog = load_catalog(SAMPLE_CATALOG_DIR)
    assert catalog.datasets
    problems = [source_path_problem(SAMPLE_LANDING_DIR, d.ingest) for d in catalog.datasets]
    assert problems == [None] * len(catalog.datasets)


def test_a_fresh_file_that_grows_while_ingest_copies_it_is_refused(tmp_path, make_dataset, monkeypatch):
    # The agency's upload appends while ingest takes its snapshot: the copy is a half-copied extract.
    path = tmp_path / "extract.csv"
    path.write_text("town,count\nAndover,1\n", encoding="utf-8")  # mtime now: the upload is under way
    copy, appends = snapshot._copy, ["Bristol,2\n"]

    def copy_while_uploading(source: Path, workdir: Path) -> Path:
        copied = copy(source, workdir)
        if appends:  # one more block arrives while the first copy is taken
            with source.open("a", encoding="utf-8") as upload:
                upload.write(appends.pop())
        return copied

    monkeypatch.setattr(snapshot, "_copy", copy_while_uploading)
    con = duckdb.connect()
    with pytest.raises(IngestError, match="still being written") as refused:
        ingest_dataset(con, make_dataset("extract.csv"), tmp_path, run_id="r1", workdir=tmp_path / "w")
    assert str(path) in str(refused.value) and "; let the upload finish" in str(refused.value)
    assert con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main'"
    ).fetchone() == (0,)
    # Declared complete (atomic rename), the same change is a rewrite: read again, from a stable copy.
    appends.append("Bristol,2\n")
    renamed = make_dataset("extract.csv", source={"settle_seconds": 0})
    result = ingest_dataset(con, renamed, tmp_path, run_id="r2", workdir=tmp_path / "w")
    assert result.rows == 3 and towns(con) == ["Andover", "Bristol", "Bristol"]


def test_a_declared_ready_marker_must_be_there_and_newer_than_the_file(tmp_path, make_dataset):
    dataset = make_dataset("extract_*.csv", source={"ready_marker": ".ok"})
    land(tmp_path, "extract_01.csv", "town\nAndover\n", OLD)
    con = duckdb.connect()
    with pytest.raises(IngestError, match=r"extract_01.csv.ok is missing"):
        ingest_dataset(con, dataset, tmp_path, run_id="r1", workdir=tmp_path / "w")
    land(tmp_path, "extract_01.csv.ok", "", OLD - 60)  # left over from an earlier upload
    with pytest.raises(IngestError, match="older than the file"):
        ingest_dataset(con, dataset, tmp_path, run_id="r1", workdir=tmp_path / "w")
    land(tmp_path, "extract_01.csv.ok", "", OLD + 1)  # the glob matches the marker too; it is not data
    result = ingest_dataset(con, dataset, tmp_path, run_id="r1", workdir=tmp_path / "w")
    assert result.path.endswith("extract_01.csv") and towns(con) == ["Andover"]


@pytest.mark.parametrize(
    ("pattern", "roots", "landing_url", "expected"),
    [
        (
            "sftp://files.ct.gov/elsewhere/x.csv",
            ("sftp://files.ct.gov/agency",),
            None,
            "outside every declared",
        ),
        ("sftp://files.ct.gov/agency/../other/x.csv", ("sftp://files.ct.gov/agency",), None, "outside every"),
        ("s3://bucket/x.csv", (), None, "none is declared"),
        ("../x.csv", (), "sftp://files.ct.gov/agency", "leaves the remote landing folder"),
        ("sftp://files.ct.gov/agency/2026/x_*.csv", ("sftp://files.ct.gov/agency",), None, None),
        ("x_*.csv", (), "sftp://files.ct.gov/agency", None),
    ],
)
def test_remote_source_paths_are_checked_without_connecting(
    tmp_path, make_dataset, pattern, roots, landing_url, expected
):
    """`catalog validate` confines a URL to the declared remote folders from the YAML alone (the hosts
    here do not exist, so any attempt to connect would fail the test)."""
    from ct_pipelines.ingest.landing import Landing

    landing = Landing(tmp_path / "landing", roots, landing_url)
    problem = source_path_problem(landing, make_dataset(pattern).ingest)
    if expected is None:
        assert problem is None
    else:
        assert problem is not None and problem.startswith("ingest.path: ") and expected in problem


def test_an_earlier_name_is_judged_by_its_numbers_only():
    """extract_9 comes before extract_10, and 2019-01 before 2019-03; month names (april after march)
    do not sort by time, so names that differ in words are never compared."""
    from ct_pipelines.ingest.ingest import _refuse_earlier_name

    with pytest.raises(IngestError, match="its name sorts before ocme_2019-03.csv"):
        _refuse_earlier_name("landing/ocme_2019-01.csv", "/landing/ocme_2019-03.csv")
    with pytest.raises(IngestError, match="its name sorts before extract_10.csv"):
        _refuse_earlier_name("extract_9.csv", "extract_10.csv")
    _refuse_earlier_name("extract_11.csv", "extract_10.csv")  # a later number goes
    _refuse_earlier_name("ocme_april.csv", "ocme_march.csv")  # words: not compared
    _refuse_earlier_name("ocme_final.csv", "ocme_2019-03.csv")
