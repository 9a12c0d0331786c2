"""Rows set aside keep the source line an agency would open the file at, while the valid rows are read
without line numbers (the scan reads ``ingest_ordered__<id>``, not the line-numbered view).

The extracts are written the way case-management exports come out: notes with line breaks inside quotes
(Windows line ends inside and between records), a title line above the header, a footer total."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ct_pipelines.portal.local import LocalPortal
from ct_pipelines_tests.support.stages import make_dataset, run_stages


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPortal]:
    with LocalPortal(tmp_path_factory.mktemp("portal")) as local:
        yield local


def agency_extract(rows: int, *, title: bool, footer: bool) -> tuple[str, dict[int, int]]:
    """The CSV text and, for each record id, the physical line its record starts on (1-based)."""
    lines = ["Quarterly visits, exported 2026-11-30"] if title else []
    lines.append("id,age,note")
    starts: dict[int, int] = {}
    for n in range(1, rows + 1):
        starts[n] = len(lines) + 1
        age = "abc" if n % 7 == 0 else ("150" if n % 11 == 0 else str(20 + n % 50))
        if n % 3 == 0:  # a note typed with Enter in it: one record over three lines
            lines += [f'{n},{age},"first line', "second line", 'third line"']
        else:
            lines.append(f"{n},{age},plain note {n}")
    if footer:
        lines.append("Total,,")
    return "\r\n".join(lines) + "\r\n", starts


@pytest.mark.parametrize(
    ("title", "footer"), [(False, False), (True, False), (True, True)], ids=["plain", "title", "footer"]
)
def test_set_aside_rows_name_their_source_line_and_valid_rows_keep_file_order(
    tmp_path: Path, portal: LocalPortal, title: bool, footer: bool
):
    rows = 400
    text, starts = agency_extract(rows, title=title, footer=footer)
    source: dict = {"path": f"lines_{int(title)}{int(footer)}.csv"}
    if title:
        source["header_row"] = 2
    if footer:
        source["leave_out"] = [{"name": "footer total", "column": "id", "equals": "Total"}]
    dataset = make_dataset(
        f"lines_{int(title)}{int(footer)}",
        [{"source": "age", "type": "integer", "min": 0, "max": 120}, {"source": "note"}],
        validate={"max_quarantine_share": 0.5},
        source=source,
    )
    run = run_stages(tmp_path, portal, dataset, text, publish=False)

    bad_type = [n for n in range(1, rows + 1) if n % 7 == 0]
    bad_range = [n for n in range(1, rows + 1) if n % 11 == 0 and n % 7 != 0]
    assert run.results["ingest"].rows_out == rows
    assert run.results["validate"].rows_in == rows
    assert run.results["validate"].rows_set_aside == len(bad_type) + len(bad_range)
    assert run.results["validate"].rows_out == rows - len(bad_type) - len(bad_range)

    quarantined = run.con.execute(
        f'SELECT _row, source_line, value FROM "quarantine__{dataset.id}" ORDER BY _row'
    ).fetchall()
    expected = sorted(bad_type + bad_range)
    assert [r[0] for r in quarantined] == expected  # records are numbered 1.. in file order
    assert [r[1] for r in quarantined] == [starts[n] for n in expected]
    assert [r[2] for r in quarantined] == ["abc" if n % 7 == 0 else "150" for n in expected]

    kept = run.con.execute(f'SELECT _row, id, note FROM "validate__{dataset.id}"').fetchall()
    assert [r[0] for r in kept] == [n for n in range(1, rows + 1) if n not in set(expected)]
    assert [r[1] for r in kept] == [r[0] for r in kept]
    notes = {r[1]: r[2] for r in kept}
    assert notes[3].splitlines() == ["first line", "second line", "third line"]
    assert notes[4] == "plain note 4"
    columns = {r[0] for r in run.con.execute(f'DESCRIBE "validate__{dataset.id}"').fetchall()}
    assert "_line" not in columns


@pytest.mark.parametrize("shape", ["plain", "quoted_newlines", "left_out", "json"])
def test_ingest_lines_macro_gives_every_row_the_line_the_numbered_view_gives(
    tmp_path: Path, portal: LocalPortal, shape: str
):
    """Validation asks ``ingest_lines__<id>`` for the set-aside rows' lines; for every row it must agree
    with ``ingest__<id>``, however the rows were read (numbered by position, shifted by quoted newlines,
    shaped by a leave-out rule, numbered by the reader)."""
    text, starts = agency_extract(60, title=shape != "plain", footer=shape == "left_out")
    source: dict = {"path": f"macro_{shape}.{'json' if shape == 'json' else 'csv'}"}
    if shape == "plain":
        text = "id,age,note\n" + "".join(f"{n},{n},note {n}\n" for n in range(1, 61))
    elif shape == "json":
        text = "[" + ",".join(f'{{"id": {n}, "age": {n}, "note": "n{n}"}}' for n in range(1, 61)) + "]"
    else:
        source["header_row"] = 2
    if shape == "left_out":
        source["leave_out"] = [{"name": "footer total", "column": "id", "equals": "Total"}]
    dataset = make_dataset(f"macro_{shape}", [{"source": "age"}, {"source": "note"}], source=source)
    run = run_stages(tmp_path, portal, dataset, text, publish=False)

    assert run.results["ingest"].rows_out == 60
    run.con.execute(f'CREATE TEMP TABLE every_row AS SELECT _row FROM "ingest__{dataset.id}"')
    from_view = run.con.execute(f'SELECT _row, _line FROM "ingest__{dataset.id}" ORDER BY _row').fetchall()
    from_macro = run.con.execute(
        f"SELECT _row, _line FROM \"ingest_lines__{dataset.id}\"('every_row') ORDER BY _row"
    ).fetchall()
    assert len(from_macro) == 60 and from_macro == from_view
    if shape in ("quoted_newlines", "left_out"):
        assert [line for _, line in from_macro] == [starts[n] for n in range(1, 61)]
