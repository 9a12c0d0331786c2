"""Line endings as agencies send them: exports from different tools concatenated into one file (CRLF rows
then LF rows), a file edited in two editors, old Mac exports ending lines in a lone CR, and Windows
scripts that write CR CR LF. Every row loads with its exact values (no CR left at the end of the last
column, CRLF kept inside quoted values) and with the line an editor shows it on, which is what quarantine
reports; ordinary files are read in place without the extra pass.
"""

from __future__ import annotations

import random
from pathlib import Path

import duckdb
import pytest

from ct_pipelines.ingest import delimited
from ct_pipelines.ingest.ingest import ingest_dataset
from ct_pipelines.ingest.newlines import LineEnds, file_line_ends, normalised_blocks
from ct_pipelines.ingest.scan import _Counter

TOWNS = ["Hartford", "New Haven", "Stamford", "Waterbury"]


def export(rows: list[list[str]], terminator: str) -> tuple[str, list[int]]:
    """CSV text as an export tool writes it (values holding a comma, quote, CR or LF quoted), and how many
    physical lines each record takes."""

    def cell(value: str) -> str:
        quoted = any(ch in value for ch in ',"\r\n')
        return '"' + value.replace('"', '""') + '"' if quoted else value

    records = [",".join(cell(v) for v in row) + terminator for row in rows]
    spans = [len(r.replace("\r\n", "\n").replace("\r", "\n").splitlines()) for r in records]
    return "".join(records), spans


def clients(first: int, count: int, note_every: int = 0, note: str = "") -> list[list[str]]:
    rows = []
    for n in range(first, first + count):
        text = note if note_every and n % note_every == 0 else f"visit {n}"
        rows.append([f"C{n:06d}", TOWNS[n % 4], text, str(n % 9)])
    return rows


def ingest(tmp_path: Path, make_dataset, name: str, **fields):
    con = duckdb.connect()
    result = ingest_dataset(con, make_dataset(name, **fields), tmp_path, run_id="t", workdir=tmp_path / "w")
    rows = con.execute("SELECT _row, _line, client_id, town, note, visits FROM ingest__sample ORDER BY _row")
    return con, result, rows.fetchall()


def expected_lines(spans: list[int], first_line: int) -> list[int]:
    lines, at = [], first_line
    for span in spans:
        lines.append(at)
        at += span
    return lines


HEADER = ["Client ID", "Town", "Note", "Visits"]


def test_a_crlf_export_with_an_lf_export_appended_loads_every_row_exactly(tmp_path, make_dataset):
    # A Windows tool's export (CRLF, notes with an Excel line break quoted) past the 256 KB sample, then
    # rows a Unix job appended (LF, a note with a CRLF inside its quotes): the mix starts late in the file.
    windows, windows_spans = export([HEADER, *clients(1, 9_000, 97, "called back\nsecond visit")], "\r\n")
    unix, unix_spans = export(clients(9_001, 2_500, 101, "left voicemail\r\nno answer"), "\n")
    assert len(windows.encode()) > 256 * 1024
    (tmp_path / "clients.csv").write_bytes((windows + unix).encode("utf-8"))

    con, result, rows = ingest(tmp_path, make_dataset, "clients.csv")

    assert result.rows == len(rows) == 11_500 and result.encoding == "utf-8"
    expected = clients(1, 9_000, 97, "called back\nsecond visit") + clients(
        9_001, 2_500, 101, "left voicemail\r\nno answer"
    )
    assert [list(r[2:]) for r in rows] == expected  # no CR at the end of the last column, CRLF kept inside
    assert [r[1] for r in rows] == expected_lines(windows_spans[1:] + unix_spans, 2)
    assert [r[0] for r in rows] == list(range(1, 11_501))
    assert con.execute("SELECT count(*) FROM ingest__sample WHERE visits LIKE '%' || chr(13)").fetchone() == (
        0,
    )


def test_a_file_edited_in_two_editors_mixes_endings_from_the_first_lines(tmp_path, make_dataset):
    text = 'Client ID,Town,Note,Visits\r\nC1,Hartford,ok,1\nC2,Stamford,"two\nlines",2\r\nC3,Bristol,,3\nC4,Union,x,4'
    (tmp_path / "x.csv").write_bytes(text.encode())
    _, result, rows = ingest(tmp_path, make_dataset, "x.csv")
    assert rows == [
        (1, 2, "C1", "Hartford", "ok", "1"),
        (2, 3, "C2", "Stamford", "two\nlines", "2"),
        (3, 5, "C3", "Bristol", None, "3"),
        (4, 6, "C4", "Union", "x", "4"),
    ]
    assert result.rows == 4


def test_an_old_mac_export_ending_lines_in_cr_keeps_its_line_numbers(tmp_path, make_dataset):
    text, spans = export([HEADER, *clients(1, 40, 7, "Café crème\nsecond line")], "\r")
    (tmp_path / "mac.csv").write_bytes(text.encode("mac-roman"))
    _, result, rows = ingest(tmp_path, make_dataset, "mac.csv", source={"encoding": "mac-roman"})
    assert [list(r[2:]) for r in rows] == clients(1, 40, 7, "Café crème\nsecond line")
    assert [r[1] for r in rows] == expected_lines(spans[1:], 2)
    assert result.rows == 40


@pytest.mark.parametrize("encoding", ["cp1252", "utf-16"])
def test_mixed_endings_in_a_file_that_is_not_utf8_are_evened_out_while_decoding(
    tmp_path, make_dataset, encoding
):
    text = 'Client ID,Town,Note,Visits\r\nC1,Hartford,Renée,1\nC2,Stamford,"Zoë\r\nsaid",2\r\nC3,Bristol,Café,3\n'
    (tmp_path / "x.csv").write_bytes(text.encode(encoding))
    _, result, rows = ingest(tmp_path, make_dataset, "x.csv")
    assert rows == [
        (1, 2, "C1", "Hartford", "Renée", "1"),
        (2, 3, "C2", "Stamford", "Zoë\r\nsaid", "2"),
        (3, 5, "C3", "Bristol", "Café", "3"),
    ]
    assert result.encoding == encoding


def test_blank_lines_between_rows_and_cr_cr_lf_keep_every_row_on_its_line(tmp_path, make_dataset):
    # A Windows script writing CRLF rows through a text-mode file doubles the CR (CR CR LF), which editors
    # and Excel show as a blank line after each row; Excel-saved files carry rows of delimiters only.
    doubled = 'Client ID,Town,Note,Visits\r\r\nC1,Hartford,ok,1\r\r\nC2,Stamford,"a\r\r\nb",2\r\r\n'
    (tmp_path / "doubled.csv").write_bytes(doubled.encode())
    _, _, rows = ingest(tmp_path, make_dataset, "doubled.csv")
    assert rows == [(1, 3, "C1", "Hartford", "ok", "1"), (2, 5, "C2", "Stamford", "a\r\r\nb", "2")]

    blanks = 'Client ID,Town,Note,Visits\n\nC1,Hartford,"x\ny",1\n,,,\nC2,Stamford,z,2\n\n\nC3,Union,,3\n\n'
    (tmp_path / "blanks.csv").write_bytes(blanks.encode())
    _, result, rows = ingest(tmp_path, make_dataset, "blanks.csv")
    assert [(r[1], r[2], r[4]) for r in rows] == [(3, "C1", "x\ny"), (6, "C2", "z"), (9, "C3", None)]
    assert result.rows == 3


def test_ordinary_files_are_read_in_place_without_a_line_end_pass(tmp_path, make_dataset, monkeypatch):
    passes: list[str] = []
    real_normalise, real_check = delimited.normalised_blocks, delimited.file_line_ends
    monkeypatch.setattr(
        delimited, "normalised_blocks", lambda blocks: passes.append("copy") or real_normalise(blocks)
    )
    monkeypatch.setattr(delimited, "file_line_ends", lambda path: passes.append("check") or real_check(path))
    for terminator in ("\r\n", "\n"):
        text, spans = export([HEADER, *clients(1, 3_000, 50, "a\nb")], terminator)
        (tmp_path / "x.csv").write_bytes(text.encode())
        _, result, rows = ingest(tmp_path, make_dataset, "x.csv")
        assert result.rows == 3_000 and [r[1] for r in rows] == expected_lines(spans[1:], 2)
    assert passes == []
    # a mixed file takes the copy (the check pass runs only when DuckDB refused a file the sample passed)
    (tmp_path / "x.csv").write_bytes(b"Client ID,Town,Note,Visits\r\nC1,Hartford,ok,1\nC2,Union,ok,2\n")
    assert ingest(tmp_path, make_dataset, "x.csv")[1].rows == 2 and passes == ["copy"]


def test_the_byte_scan_counts_crlf_and_lf_outside_quotes_across_chunk_edges() -> None:
    counter = _Counter()
    for chunk in (b"a,b\r", b'\n1,"x\n', b'y\r\n",2\n', b"3,4\r\n"):
        counter.add(chunk)
    assert (counter.crlf, counter.bare_lf, counter.lines) == (2, 1, 5)


def read_by_hand(data: bytes) -> tuple[bytes, LineEnds]:
    """The LF copy and the line-end counts, byte by byte: what the vectorised code must agree with."""
    out, ends, inside, i = bytearray(), LineEnds(), False, 0
    while i < len(data):
        byte = data[i]
        if byte == ord('"'):
            inside = not inside
        elif byte == 13 and not inside:
            pair = data[i + 1 : i + 2] == b"\n"
            ends.crlf, ends.cr = ends.crlf + pair, ends.cr + (not pair)
            out.append(10)
            i += 1 + pair
            continue
        elif byte == 10 and not inside:
            ends.lf += 1
        out.append(byte)
        i += 1
    return bytes(out), ends


def test_the_lf_copy_is_the_same_however_the_file_is_cut_into_blocks(tmp_path):
    chooser = random.Random(17)
    for _ in range(1_000):
        data = bytes(chooser.choice(b'ab,"\r\n\r\n') for _ in range(chooser.randint(0, 60)))
        cuts = sorted(chooser.sample(range(len(data) + 1), min(len(data) + 1, chooser.randint(0, 5))))
        blocks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        copy, ends = read_by_hand(data)
        assert b"".join(normalised_blocks(blocks)) == copy, (data, blocks)
        (tmp_path / "x.csv").write_bytes(data)
        assert file_line_ends(tmp_path / "x.csv") == ends, data
