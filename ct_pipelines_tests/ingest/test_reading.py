"""Ingest reading: mixed encodings, repeated header names, Excel codes, and the messages for bad files.

Each file is built the way agency systems make them: UTF-8 exports with one row appended by an older
Windows tool, headers with a trailing space, ZIP codes typed as numbers in a workbook.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from ct_pipelines.ingest import delimited
from ct_pipelines.ingest.decode import LineDecoder
from ct_pipelines.ingest.errors import IngestError
from ct_pipelines.ingest.ingest import ingest_dataset

NAMES = ["Zoë Müller", "José Núñez", "Ana Lee", "Renée O’Brien"]


def ingest(tmp_path: Path, make_dataset, name: str, **fields):
    con = duckdb.connect()
    dataset = make_dataset(name, **fields)
    result = ingest_dataset(con, dataset, tmp_path, run_id="test", workdir=tmp_path / "work")
    return con, result


def mixed_extract(path: Path, rows: int = 4_000, bad_at: int = 3_500) -> bytes:
    """A UTF-8 export over 256 KB with one row written in cp1252 late in the file."""
    lines = [b"Client ID,Name,Town,Note"]
    for n in range(1, rows + 1):
        text = f"C{n:06d},{NAMES[n % 4]},Hartford,{'x' * 60}"
        lines.append(text.encode("cp1252") if n == bad_at else text.encode("utf-8"))
    data = b"\r\n".join(lines) + b"\r\n"
    path.write_bytes(data)
    return data


def test_one_cp1252_row_after_256_kb_of_utf8_does_not_garble_the_rest(tmp_path, make_dataset):
    data = mixed_extract(tmp_path / "clients.csv")
    assert len(data) > 256 * 1024
    con, result = ingest(tmp_path, make_dataset, "clients.csv")
    assert result.rows == 4_000
    assert result.encoding == "utf-8+cp1252"
    assert (result.fallback_lines, result.first_fallback_line) == (1, 3_501)
    counts = dict(con.execute("SELECT name, count(*) FROM ingest__sample GROUP BY name").fetchall())
    assert counts == {"Zoë Müller": 1_000, "José Núñez": 1_000, "Ana Lee": 1_000, "Renée O’Brien": 1_000}
    assert con.execute("SELECT _line, name FROM ingest__sample WHERE client_id = 'C003500'").fetchall() == [
        (3_501, "Zoë Müller")  # the row written in cp1252
    ]
    logged = con.execute("SELECT encoding, fallback_lines FROM meta.ingest_log").fetchall()
    assert logged == [("utf-8+cp1252", 1)]


def test_cp1252_rows_first_then_utf8_rows_are_each_read_right(tmp_path, make_dataset):
    head = "id,name\r\n1,Renée\r\n".encode("cp1252")
    tail = "2,Zoë\r\n3,“quoted”\r\n".encode()
    (tmp_path / "x.csv").write_bytes(head + tail)
    con, result = ingest(tmp_path, make_dataset, "x.csv")
    assert result.encoding == "utf-8+cp1252" and result.fallback_lines == 1
    assert con.execute("SELECT name FROM ingest__sample ORDER BY _row").fetchall() == [
        ("Renée",),
        ("Zoë",),
        ("“quoted”",),
    ]


def test_a_whole_cp1252_file_larger_than_the_sample_stays_cp1252(tmp_path, make_dataset):
    rows = "".join(f"{n},Café “{n}”\r\n" for n in range(20_000))
    (tmp_path / "x.csv").write_bytes(("id,label\r\n" + rows).encode("cp1252"))
    con, result = ingest(tmp_path, make_dataset, "x.csv")
    assert (result.rows, result.encoding) == (20_000, "cp1252")
    assert con.execute("SELECT label FROM ingest__sample WHERE id = '19999'").fetchall() == [
        ("Café “19999”",)
    ]


def windows_export(rows: int) -> bytes:
    """A cp1252 export as a Windows tool writes it: CRLF, a title line, accents, a code typed as an Excel
    formula, and a note running over two lines."""
    lines = ["Client report, all offices", "Client ID,Name,Town,Code,Note"]
    for n in range(1, rows + 1):
        note = '"called back\r\nsecond visit"' if n % 1_000 == 0 else "ok"
        name = NAMES[n % 3]  # Zoë, José, Ana: latin-1's letters; the fourth holds a cp1252 quote
        lines.append(f'C{n:06d},{name},Hartford,="{n % 100:05d}",{note}')
    return ("\r\n".join(lines) + "\r\n").encode("cp1252")


def test_a_cp1252_file_duckdb_can_decode_is_read_in_place_as_the_copy_would_be(
    tmp_path, make_dataset, monkeypatch
):
    """No copy of the file is written when DuckDB's latin-1 reader gives the same text (5 s of a 500 MB
    file's 14 s ingest); the table, its source lines and the lineage are those of the copy."""
    (tmp_path / "x.csv").write_bytes(windows_export(30_000))

    def read(copy: bool):
        if copy:
            monkeypatch.setattr(LineDecoder, "read_in_place", lambda self: False)
        else:
            monkeypatch.setattr(delimited, "transcode_lines", None)  # calling it would fail the test
        con, result = ingest(tmp_path, make_dataset, "x.csv")
        monkeypatch.undo()
        table = con.execute("SELECT * FROM ingest__sample ORDER BY _row").fetchall()
        return table, (result.rows, result.encoding, result.fallback_lines, result.first_fallback_line)

    in_place, copied = read(copy=False), read(copy=True)
    assert in_place == copied
    table, lineage = in_place
    assert lineage == (30_000, "cp1252", 20_000, 3)  # every line naming Zoë or José; the first is line 3
    assert len(table) == 30_000
    assert table[0][2:] == ("C000001", "José Núñez", "Hartford", "00001", "ok")
    assert table[999][1:] == (
        1_002,
        "C001000",
        "José Núñez",
        "Hartford",
        "00000",
        "called back\r\nsecond visit",
    )
    assert table[-1][:3] == (30_000, 30_031, "C030000")  # 30 notes ran over two lines


def test_a_cp1252_file_with_curly_quotes_is_copied_and_a_bad_line_is_named_in_place(tmp_path, make_dataset):
    """DuckDB's latin-1 reader refuses bytes 0x80-0x9F, which cp1252 reads as quotes and dashes."""
    body = windows_export(2_000)
    (tmp_path / "quotes.csv").write_bytes(body + "C002001,Renée O’Brien,Hartford,1,ok\r\n".encode("cp1252"))
    con, result = ingest(tmp_path, make_dataset, "quotes.csv")
    assert (result.rows, result.encoding) == (2_001, "cp1252")
    assert con.execute("SELECT name FROM ingest__sample WHERE _row = 2001").fetchall() == [("Renée O’Brien",)]
    (tmp_path / "bad.csv").write_bytes(body + "C002001,Renée,Hartford,1,ok,extra\r\n".encode("cp1252"))
    with pytest.raises(IngestError) as info:
        ingest(tmp_path, make_dataset, "bad.csv")
    assert info.value.line == 2_005 and "expected 5 fields as in the header, found 6" in str(info.value)


def test_declared_utf8_refuses_naming_the_first_line_that_breaks(tmp_path, make_dataset):
    mixed_extract(tmp_path / "clients.csv")
    with pytest.raises(IngestError) as info:
        ingest(tmp_path, make_dataset, "clients.csv", source={"encoding": "utf-8"})
    message = str(info.value)
    assert info.value.line == 3_501
    assert "not valid UTF-8" in message and "quoted field" not in message
    assert "Renée" not in message and "Ren" not in message


def test_invalid_bytes_inside_a_quoted_field_are_not_called_an_unclosed_quote(tmp_path, make_dataset):
    body = b'id,note\n1,"first\nsecond"\n' + b"".join(b'%d,"ok"\n' % n for n in range(2, 30_000))
    (tmp_path / "x.csv").write_bytes(body + b'30000,"caf\xe9\nend"\n')
    with pytest.raises(IngestError) as info:
        ingest(tmp_path, make_dataset, "x.csv", source={"encoding": "utf-8"})
    assert "quoted field" not in str(info.value) and info.value.line == 30_002
    con, result = ingest(tmp_path, make_dataset, "x.csv")
    assert result.rows == 30_000 and result.encoding == "cp1252"  # nothing else in the file is non-ASCII
    assert con.execute("SELECT _line, note FROM ingest__sample WHERE id = '30000'").fetchall() == [
        (30_002, "café\nend")
    ]


@pytest.mark.parametrize(
    ("body", "line"),
    [
        (b'id,note\n1,"x\ny"\n2,ok\n3,4,5\n', 5),  # a note over two lines above the bad row
        (b'id,note\n1,"x\ny"\n\n3,4,5\n', 5),  # and a blank line
        (b'id,note\n1,"x\r\ny\r\nz"\r\n3,"4\r\n5\r\n', 5),  # an unclosed quote after a three-line note
    ],
)
def test_a_bad_row_after_notes_running_over_lines_is_named_by_its_own_line(
    tmp_path, make_dataset, body, line
):
    """DuckDB's reader counts records, not lines; the agency opens the file at the line the message names."""
    (tmp_path / "x.csv").write_bytes(body)
    with pytest.raises(IngestError) as info:
        ingest(tmp_path, make_dataset, "x.csv")
    assert info.value.line == line


def test_declared_cp1252_with_utf8_rows_reads_both_and_refuses_bytes_neither_fits(tmp_path, make_dataset):
    (tmp_path / "x.csv").write_bytes("id,name\n1,Zoë\n".encode() + "2,Renée\n".encode("cp1252"))
    con, result = ingest(tmp_path, make_dataset, "x.csv", source={"encoding": "cp1252"})
    assert result.encoding == "utf-8+cp1252"
    assert [r[0] for r in con.execute("SELECT name FROM ingest__sample ORDER BY _row").fetchall()] == [
        "Zoë",
        "Renée",
    ]
    (tmp_path / "y.csv").write_bytes(b"id,name\n1,ok\n2,\x81bad\n")
    with pytest.raises(IngestError) as info:
        ingest(tmp_path, make_dataset, "y.csv", source={"encoding": "cp1252"})
    assert info.value.line == 3 and "cp1252" in str(info.value)


def test_header_with_near_duplicate_names_is_found_and_each_can_be_declared(tmp_path, make_dataset):
    text = "Report: language requests\r\nTown,Spanish,Other ,Other,Total\r\nHartford,3,1,2,6\r\nBristol,0,0,1,1\r\n"
    (tmp_path / "x.csv").write_text(text, encoding="utf-8")
    con, result = ingest(tmp_path, make_dataset, "x.csv")
    assert result.header_line == 2 and result.rows == 2
    assert list(result.field_map.values()) == ["town", "spanish", "other", "other_2", "total"]
    columns = [
        {"source": "Other", "field_name": "other_language"},
        {"source": "Other ", "field_name": "other_unspecified"},
        {"source": "TOWN"},
    ]
    con, result = ingest(tmp_path, make_dataset, "x.csv", columns=columns)
    got = con.execute(
        "SELECT town, other_unspecified, other_language FROM ingest__sample ORDER BY _row"
    ).fetchall()
    assert got == [("Hartford", "1", "2"), ("Bristol", "0", "1")]


def test_exact_duplicate_headers_are_declared_in_file_order(tmp_path, make_dataset):
    (tmp_path / "x.csv").write_text("Town,Total,Total\nHartford,5,7\n", encoding="utf-8")
    columns = [
        {"source": "Total", "field_name": "total_2019"},
        {"source": "Total", "field_name": "total_2020"},
    ]
    con, result = ingest(tmp_path, make_dataset, "x.csv", columns=columns)
    assert result.field_map == {
        "Town": "town",
        "Total (column 2)": "total_2019",
        "Total (column 3)": "total_2020",
    }
    assert con.execute("SELECT total_2019, total_2020 FROM ingest__sample").fetchall() == [("5", "7")]


def test_a_data_row_taken_for_the_header_is_described_without_its_values(tmp_path, make_dataset):
    rows = "Maria Lopez,Maria Lopez,860-555-0143,maria@example.com\nJohn Roe,John Roe,860-555-0199,j@example.com\n"
    (tmp_path / "x.csv").write_text("Client,Caregiver,Phone,Email\n" + rows, encoding="utf-8")
    with pytest.raises(IngestError) as info:
        ingest(tmp_path, make_dataset, "x.csv", source={"header_row": 2}, columns=[{"source": "Client"}])
    message = str(info.value)
    assert info.value.column == "Client"
    assert "Maria" not in message and "555" not in message and "example" not in message
    assert "1 Aa_Aa, 2 Aa_Aa, 3 9-9-9, 4 a@a.a" in message


def test_no_header_found_error_shows_shapes_not_values(tmp_path, make_dataset):
    rows = "".join(f"{n},{n * 7},{n * 3}\n" for n in range(60))
    (tmp_path / "x.csv").write_text(rows, encoding="utf-8")
    with pytest.raises(IngestError) as info:
        ingest(tmp_path, make_dataset, "x.csv")
    assert "shapes only: 3 fields: 1 9, 2 9, 3 9" in str(info.value) and info.value.line == 1


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "the file is empty (0 bytes)"),
        (b"\r\n\r\n\r\n", "the file holds no values (6 bytes of blank lines)"),
    ],
)
def test_empty_files_get_their_own_message(tmp_path, make_dataset, content, expected):
    (tmp_path / "x.csv").write_bytes(content)
    with pytest.raises(IngestError) as info:
        ingest(tmp_path, make_dataset, "x.csv")
    assert str(info.value) == (
        f"{tmp_path / 'x.csv'}: {expected}; check that the agency's export finished and ask for the file again."
    )


def test_a_header_only_file_names_its_header_line(tmp_path, make_dataset):
    (tmp_path / "x.csv").write_text("Agency report\n\nTown,Count,Rate\n", encoding="utf-8")
    with pytest.raises(IngestError) as info:
        ingest(tmp_path, make_dataset, "x.csv")
    assert info.value.line == 3 and "only the header line and no data rows" in str(info.value)


def test_excel_codes_keep_padding_and_integers_lose_dot_zero(tmp_path, make_dataset):
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Town", "ZIP", "ZIP+4", "Town code", "Count", "Rate"])
    sheet.append(["Andover", 6232, 62321234, 1, 12.0, 0.25])
    sheet.append(["Bristol", 6010, 60101000, 17, 6010.000000000001, 0.1 + 0.2])
    for row in (2, 3):
        sheet[f"B{row}"].number_format = "00000"
        sheet[f"C{row}"].number_format = "00000-0000"
        sheet[f"D{row}"].number_format = "000"
    workbook.save(tmp_path / "towns.xlsx")
    con, result = ingest(tmp_path, make_dataset, "towns.xlsx")
    assert result.rows == 2
    assert con.execute(
        "SELECT zip, zip_4, town_code, count, rate FROM ingest__sample ORDER BY _row"
    ).fetchall() == [
        ("06232", "06232-1234", "001", "12", "0.25"),
        ("06010", "06010-1000", "017", "6010", "0.3"),
    ]


def test_excel_year_headers_are_cells_not_positions(tmp_path, make_dataset):
    """A report's columns headed 1974, 1975 are the fields _1974, _1975; a leading underscore made them
    integer positions, and profile and ingest stopped on "Could not convert string 'Male' to INT64"."""
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Age Group", 1974, 1975])
    sheet.append(["0-17", "Male", "Female"])
    sheet.append(["18-24", 120, 98])
    workbook.save(tmp_path / "discharges.xlsx")
    con, result = ingest(tmp_path, make_dataset, "discharges.xlsx", source={"header_row": 1})
    assert result.rows == 2
    assert con.execute('SELECT age_group, "_1974", "_1975" FROM ingest__sample ORDER BY _row').fetchall() == [
        ("0-17", "Male", "Female"),
        ("18-24", "120", "98"),
    ]


def test_excel_header_only_sheet_and_empty_sheet(tmp_path, make_dataset):
    from openpyxl import Workbook

    workbook = Workbook()
    workbook.active.title = "Visits"
    workbook.active.append(["Visits by town"])
    workbook.active.append(["Town", "Count"])
    workbook.save(tmp_path / "header.xlsx")
    with pytest.raises(IngestError) as info:
        ingest(tmp_path, make_dataset, "header.xlsx")
    assert str(info.value) == (
        f"{tmp_path / 'header.xlsx'}, sheet 'Visits', row 2: the sheet holds only the header row and no data "
        "rows; check that the export finished and re-send it with its rows."
    )
    Workbook().save(tmp_path / "empty.xlsx")
    with pytest.raises(IngestError, match=r"empty.xlsx, sheet 'Sheet': the sheet is empty"):
        ingest(tmp_path, make_dataset, "empty.xlsx")


def test_out_of_memory_on_a_wide_file_does_not_blame_a_line(tmp_path, make_dataset):
    width = 1_000
    header = ",".join(f"c{i}" for i in range(width))
    row = ",".join("value" * 8 for _ in range(width))
    (tmp_path / "wide.csv").write_text(header + "\n" + (row + "\n") * 100, encoding="utf-8")
    con = duckdb.connect(config={"memory_limit": "16MB", "threads": 1})
    with pytest.raises(IngestError) as info:
        ingest_dataset(con, make_dataset("wide.csv"), tmp_path, run_id="t", workdir=tmp_path / "w")
    message = str(info.value)
    assert "ran out of memory" in message and "1,000-column" in message and "check the line" not in message


def test_a_line_is_decoded_whole_even_when_it_starts_like_utf8(tmp_path, make_dataset):
    # cp1252 "Ã©" is also valid UTF-8 ("é"); the line's later "é" (0xE9) is not, so the whole line is cp1252.
    # A byte cp1252 leaves undefined (0x81) makes that one line latin-1.
    data = (
        "id,a,b\n1,Zoë,x\n".encode()
        + "2,Ã©,café\n".encode("cp1252")
        + "3,naïve,y\n".encode()
        + b"4,\x81x,\xe9\n"
    )
    (tmp_path / "x.csv").write_bytes(data)
    con, result = ingest(tmp_path, make_dataset, "x.csv")
    assert con.execute("SELECT a, b FROM ingest__sample ORDER BY _row").fetchall() == [
        ("Zoë", "x"),
        ("Ã©", "café"),
        ("naïve", "y"),
        ("\x81x", "é"),
    ]
    assert (result.encoding, result.fallback_lines, result.first_fallback_line) == (
        "utf-8+cp1252+latin-1",
        2,
        3,
    )


@pytest.mark.parametrize("name", ["x.csv", "x.xlsx", "x.json", "x.parquet"])
def test_a_zero_byte_file_of_any_format_is_called_empty(tmp_path, make_dataset, name):
    (tmp_path / name).write_bytes(b"")
    with pytest.raises(IngestError, match=r"x\.\w+: the file is empty \(0 bytes\); check that"):
        ingest(tmp_path, make_dataset, name)


def test_a_parquet_file_of_many_row_groups_keeps_every_rows_number_and_value(tmp_path, make_dataset):
    """Rows are numbered from the file (file_row_number), not by a sort: row 61,234 is the file's row 61,234."""
    duckdb.execute(
        "COPY (SELECT 'P' || lpad(i::VARCHAR, 6, '0') AS \"Permit ID\", i * 0.5 AS Fee, DATE '2020-01-01' + "
        f"(i % 900)::INTEGER AS Issued FROM range(1, 120001) t(i)) TO '{tmp_path / 'permits.parquet'}' "
        "(FORMAT parquet, ROW_GROUP_SIZE 7000)"
    )
    con, result = ingest(tmp_path, make_dataset, "permits.parquet")
    assert result.rows == 120_000
    wrong = con.execute(
        "SELECT count(*) FROM ingest__sample WHERE permit_id <> 'P' || lpad(_row::VARCHAR, 6, '0') "
        "OR fee <> (_row * 0.5)::VARCHAR OR issued <> (DATE '2020-01-01' + (_row % 900)::INTEGER)::VARCHAR"
    ).fetchone()[0]
    assert wrong == 0
    assert con.execute(
        "SELECT min(_row), max(_row), count(DISTINCT _row) FROM ingest__sample"
    ).fetchone() == (
        1,
        120_000,
        120_000,
    )


def test_a_notes_rule_after_a_total_rule_still_leaves_out_notes_whose_town_is_empty(tmp_path, make_dataset):
    """The README's order (a footer total by Town, then notes by their first cell): the notes have no
    Town, the total rule's test was NULL on them, NOT (NULL) dropped them from the notes rule too, and a
    helper's "Source: DSS ImpaCT" line was published as a row with the run saying "notes 0"."""
    lines = ["County,Town,Households", "Hartford County,Hartford,10724", "Tolland County,Andover,312"]
    lines += [",Total,11036", "Source: DSS ImpaCT,,", "Data as of 6/30/2024,,"]
    (tmp_path / "snap.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    rules = [
        {"name": "footer total", "column": "Town", "equals": "Total"},
        {"name": "notes", "matches": "^(Data|Source:)"},
    ]
    con, result = ingest(tmp_path, make_dataset, "snap.csv", source={"leave_out": rules})
    assert con.execute("SELECT county FROM ingest__sample ORDER BY _row").fetchall() == [
        ("Hartford County",),
        ("Tolland County",),
    ]
    assert result.rows_left_out == {"footer total": 1, "notes": 2}


def test_a_town_merged_down_over_its_rows_is_read_on_every_row_and_other_sheets_are_named(
    tmp_path, make_dataset
):
    """Excel shows Bridgeport merged down over its four race rows; the file holds it in the first row
    only, and a helper's aggregate put three quarters of the deaths under 'Not reported'. A title merged
    across columns stays a title. The sheets not read are named, since a sheet per year went unnoticed."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "By Town"
    sheet.append(["Overdose deaths by town and race", None, None])
    sheet.merge_cells("A1:C1")
    sheet.append(["Town", "Race/Ethnicity", "Deaths"])
    races = ["Hispanic", "NH White", "NH Black", "NH Other"]
    for town, deaths in [("Bridgeport", [79, 10, 60, 67]), ("Hartford", [79, 7, 32, 65])]:
        first = sheet.max_row + 1
        for k, (race, n) in enumerate(zip(races, deaths, strict=True)):
            sheet.append([town if k == 0 else None, race, n])
        sheet.merge_cells(f"A{first}:A{first + 3}")
    book.create_sheet("2023").append(["Town", "Race/Ethnicity", "Deaths"])
    book.create_sheet("2022").append(["Town", "Race/Ethnicity", "Deaths"])
    book.save(tmp_path / "deaths.xlsx")
    con, result = ingest(tmp_path, make_dataset, "deaths.xlsx")
    towns = con.execute(
        "SELECT town, count(*), sum(deaths::INTEGER) FROM ingest__sample GROUP BY 1 ORDER BY 1"
    )
    assert towns.fetchall() == [("Bridgeport", 4, 216), ("Hartford", 4, 183)]
    assert result.notes[0].startswith("filled 6 cells of sheet 'By Town' from merged ranges")
    assert "read sheet 'By Town' only; the workbook also has '2023', '2022', not read" in result.notes[1]


def test_parquet_instants_read_as_connecticut_wall_time_whatever_the_machines_zone(tmp_path, make_dataset):
    """A helper's Parquet timestamps with a zone were read as text in the machine's zone: re-run on a
    server in New York, all 30 rows were rewritten on the portal. pandas' nanosecond timestamps were set
    aside by the datetime type. Both now read the same everywhere."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    stamps = [1710053999123456, 1735707599000000]  # 2024-03-10 06:59:59.123456Z, 2025-01-01 04:59:59Z
    pq.write_table(
        pa.table(
            {
                "Event ID": ["E1", "E2"],
                "Reported At": pa.array(stamps, type=pa.timestamp("us", tz="UTC")),
                "Logged At": pa.array([s * 1000 + 789 for s in stamps], type=pa.timestamp("ns")),
            }
        ),
        tmp_path / "events.parquet",
    )
    read = {}
    for zone in ("UTC", "Asia/Tokyo", "America/New_York"):
        con = duckdb.connect()
        con.execute(f"SET TimeZone = '{zone}'")
        ingest_dataset(con, make_dataset("events.parquet"), tmp_path, run_id=zone, workdir=tmp_path / zone)
        read[zone] = con.execute("SELECT reported_at, logged_at FROM ingest__sample ORDER BY _row").fetchall()
    assert (
        read["UTC"]
        == read["Asia/Tokyo"]
        == read["America/New_York"]
        == [
            ("2024-03-10 01:59:59.123456", "2024-03-10 06:59:59.123456"),
            ("2024-12-31 23:59:59", "2025-01-01 04:59:59.000000"),
        ]
    )


def test_json_without_records_is_refused(tmp_path, make_dataset):
    (tmp_path / "x.json").write_text("[]", encoding="utf-8")
    with pytest.raises(IngestError, match="x.json: the json file holds no records"):
        ingest(tmp_path, make_dataset, "x.json")
    # with declared columns too: `[]` has no columns, which is not the problem to report
    with pytest.raises(IngestError, match="x.json: the json file holds no records"):
        ingest(tmp_path, make_dataset, "x.json", columns=[{"source": "Town"}, {"source": "Count"}])


def test_real_dcf_extract_with_a_row_appended_by_a_cp1252_tool(shared_ct, tmp_path, make_dataset):
    real = (shared_ct / "ct_dcf_children_in_placement_by_race_ethnicity_tnyk-6fv7.csv").read_bytes()
    appended = "06/26/2014,Région Sud,Bureau d’accueil,WHITE,N,07/01/2004,1,1,0,0,0,0,0,0,0,0,0,0,0,0\n"
    (tmp_path / "dcf.csv").write_bytes(real.rstrip(b"\r\n") + b"\n" + appended.encode("cp1252"))
    con, result = ingest(tmp_path, make_dataset, "dcf.csv")
    assert result.rows == 1_759 and result.fallback_lines == 1
    assert con.execute("SELECT dcf_region, dcf_office FROM ingest__sample WHERE _row = 1759").fetchall() == [
        ("Région Sud", "Bureau d’accueil")
    ]
    assert con.execute("SELECT count(*) FROM ingest__sample WHERE dcf_office LIKE '%Ã%'").fetchone() == (0,)
