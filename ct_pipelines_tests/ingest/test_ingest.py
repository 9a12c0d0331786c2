"""Ingest: every format, encoding and layout quirk named in the Foundation issue, on files made here."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ct_pipelines.catalog.naming import field_names_for
from ct_pipelines.ingest.errors import IngestError
from ct_pipelines.ingest.ingest import ingest_dataset

TEXT_ROWS = [
    ["Name", "Town", "Note"],
    ["José Núñez", "Hartford", "“quoted” café"],
    ["Zoë", "Bristol", "naïve—dash"],
]


def csv_text(rows: list[list[str]], delimiter: str = ",", newline: str = "\r\n") -> str:
    return newline.join(delimiter.join(cells) for cells in rows) + newline


def ingest(tmp_path: Path, make_dataset, name: str, **dataset_fields):
    con = duckdb.connect()
    dataset = make_dataset(name, **dataset_fields)
    result = ingest_dataset(con, dataset, tmp_path, run_id="test", workdir=tmp_path / "work")
    rows = con.execute(f"SELECT * FROM ingest__{dataset.id} ORDER BY _row").fetchall()
    return con, result, rows


@pytest.mark.parametrize(
    ("encoding", "bom", "expected"),
    [
        ("utf-8", b"", "utf-8"),
        ("utf-8", b"\xef\xbb\xbf", "utf-8-sig"),
        ("cp1252", b"", "cp1252"),
        ("utf-16-le", b"\xff\xfe", "utf-16"),
    ],
)
def test_encodings_come_out_as_the_same_unicode_text(tmp_path, make_dataset, encoding, bom, expected):
    (tmp_path / "x.csv").write_bytes(bom + csv_text(TEXT_ROWS).encode(encoding))
    _, result, rows = ingest(tmp_path, make_dataset, "x.csv")
    assert result.encoding == expected
    assert result.bom == bool(bom)
    assert [r[2:] for r in rows] == [tuple(r) for r in TEXT_ROWS[1:]]


def test_latin1_bytes_that_cp1252_leaves_undefined_fall_back_to_latin1(tmp_path, make_dataset):
    (tmp_path / "x.csv").write_bytes(b"a,b\n\x81x,\xe9\n")
    _, result, rows = ingest(tmp_path, make_dataset, "x.csv")
    assert result.encoding == "latin-1"
    assert rows[0][2:] == ("\x81x", "é")


@pytest.mark.parametrize("delimiter", [",", "\t", "|"])
def test_delimiters_are_detected(tmp_path, make_dataset, delimiter):
    rows = [
        ["id", "town", "count"],
        ["1", "Hartford, CT" if delimiter != "," else "Hartford", "3"],
        ["2", "Union", "4"],
    ]
    (tmp_path / "x.txt").write_text(csv_text(rows, delimiter), encoding="utf-8")
    _, result, got = ingest(tmp_path, make_dataset, "x.txt")
    assert result.delimiter == delimiter
    assert [r[2:] for r in got] == [tuple(r) for r in rows[1:]]


def test_embedded_newlines_keep_the_source_line_of_each_record(tmp_path, make_dataset):
    text = 'id,note,n\n1,"first\nsecond\nthird",5\n2,plain,6\n3,"a\r\nb",7\n'
    (tmp_path / "x.csv").write_text(text, encoding="utf-8", newline="")
    _, result, rows = ingest(tmp_path, make_dataset, "x.csv")
    assert result.rows == 3
    assert [(r[0], r[1]) for r in rows] == [(1, 2), (2, 5), (3, 6)]
    assert rows[0][3] == "first\nsecond\nthird"


def test_a_stray_quote_inside_a_field_still_gets_exact_lines(tmp_path, make_dataset):
    # The fast quote-parity scan cannot follow an unbalanced quote; the slower count inside DuckDB takes over.
    (tmp_path / "x.csv").write_bytes(b'id,note,n\n1,5" pipe,5\n2,"x\ny",6\n3,z,7\n')
    _, _, rows = ingest(tmp_path, make_dataset, "x.csv")
    assert [(r[0], r[1], r[3]) for r in rows] == [(1, 2, '5" pipe'), (2, 3, "x\ny"), (3, 5, "z")]


def test_title_lines_are_skipped_and_the_header_found(tmp_path, make_dataset):
    text = '"Student Counts"\n"All Districts"\n\n"",,"Race",\nDistrict,Code,Asian,Total\nAndover,="0010011",*,225\n'
    (tmp_path / "x.csv").write_text(text + "\n\n\n", encoding="utf-8")
    _, result, rows = ingest(tmp_path, make_dataset, "x.csv")
    assert result.header_line == 5
    assert result.rows == 1
    assert rows == [(1, 6, "Andover", "0010011", "*", "225")]


def test_configured_header_row_wins_over_detection(tmp_path, make_dataset):
    (tmp_path / "x.csv").write_text("a,b\n1,2\nc,d\n3,4\n", encoding="utf-8")
    _, result, rows = ingest(tmp_path, make_dataset, "x.csv", source={"header_row": 3})
    assert result.field_map == {"c": "c", "d": "d"}
    assert rows == [(1, 4, "3", "4")]


def test_formula_quoted_codes_are_unwrapped(tmp_path, make_dataset):
    (tmp_path / "x.csv").write_text('code,other\n="2850013",x\n"=""0010011""",y\n="",z\n', encoding="utf-8")
    _, _, rows = ingest(tmp_path, make_dataset, "x.csv")
    assert [r[2] for r in rows] == ["2850013", "0010011", None]


def test_a_formula_value_only_at_the_end_of_a_large_file_is_still_unwrapped(tmp_path, make_dataset):
    rows = "".join(f"{n},x{n}\n" for n in range(200_000))
    (tmp_path / "x.csv").write_text("code,other\n" + rows + '="0010011",last\n', encoding="utf-8")
    con, result, _ = ingest(tmp_path, make_dataset, "x.csv")
    assert result.rows == 200_001
    assert con.execute("SELECT code FROM ingest__sample WHERE other = 'last'").fetchall() == [("0010011",)]
    assert con.execute("SELECT count(*) FROM ingest__sample WHERE code LIKE '=%'").fetchall() == [(0,)]


def test_short_rows_are_padded_but_long_rows_name_their_line(tmp_path, make_dataset):
    (tmp_path / "short.csv").write_text("a,b,c\n1,2,3\n4,5\n", encoding="utf-8")
    _, _, rows = ingest(tmp_path, make_dataset, "short.csv")
    assert rows[1][2:] == ("4", "5", None)
    (tmp_path / "long.csv").write_text("a,b,c\n1,2,3\n4,5,6,7\n", encoding="utf-8")
    with pytest.raises(IngestError) as info:
        ingest(tmp_path, make_dataset, "long.csv")
    assert info.value.line == 3
    assert str(info.value) == (
        f"{tmp_path / 'long.csv'}, line 3: expected 3 fields as in the header, found 4; quote fields that "
        "contain the delimiter, or remove the extra delimiter on that line."
    )


def test_unclosed_quote_is_reported_with_the_file(tmp_path, make_dataset):
    (tmp_path / "x.csv").write_text('a,b\n1,"open\n2,3\n', encoding="utf-8")
    with pytest.raises(IngestError) as info:
        ingest(tmp_path, make_dataset, "x.csv")
    assert str(info.value) == (
        f"{tmp_path / 'x.csv'}, line 2: a quoted field that starts on this line is never closed; close the "
        "quote, or double any quote character inside a quoted field."
    )


def test_declared_encoding_that_does_not_fit_names_the_byte(tmp_path, make_dataset):
    (tmp_path / "x.csv").write_bytes(b"a,b\n1,\xff\xfe\xfa\n")
    with pytest.raises(IngestError) as info:
        ingest(tmp_path, make_dataset, "x.csv", source={"encoding": "utf-8"})
    assert info.value.byte is not None or info.value.line is not None


def test_excel_first_and_named_sheet_with_formula_text(tmp_path, make_dataset):
    from openpyxl import Workbook

    workbook = Workbook()
    first = workbook.active
    first.title = "Notes"
    first.append(["Read me first"])
    data = workbook.create_sheet("Data")
    data.append(["Report title"])
    data.append(["Town", "Code", "Count", "Month"])
    data.append(["Hartford", '="064"', 12, None])
    data.append(["Union", '="146"', 3.0, None])
    workbook.save(tmp_path / "x.xlsx")
    _, result, rows = ingest(tmp_path, make_dataset, "x.xlsx", source={"sheet": "Data"})
    assert result.sheet == "Data" and result.header_line == 2
    assert rows == [(1, 3, "Hartford", "064", "12", None), (2, 4, "Union", "146", "3", None)]
    with pytest.raises(IngestError, match="no sheet named 'Missing'"):
        ingest(tmp_path, make_dataset, "x.xlsx", source={"sheet": "Missing"})


def test_json_array_and_json_lines(tmp_path, make_dataset):
    records = [
        {"Town Name": "Hartford", "n": 1, "tags": ["a"]},
        {"Town Name": "Union", "n": None, "tags": []},
    ]
    (tmp_path / "a.json").write_text(json.dumps(records), encoding="utf-8")
    (tmp_path / "b.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    _, result, rows = ingest(tmp_path, make_dataset, "a.json")
    assert result.field_map == {"Town Name": "town_name", "n": "n", "tags": "tags"}
    assert [r[2:4] for r in rows] == [("Hartford", "1"), ("Union", None)]
    _, _, lines = ingest(tmp_path, make_dataset, "b.jsonl")
    assert [r[1] for r in lines] == [1, 2]


def test_json_values_of_mixed_types_keep_their_text(tmp_path, make_dataset):
    """An export whose race column holds strings and two legacy numeric codes, and whose counts are
    sometimes quoted: each cell is the text written, with no JSON quote marks."""
    records = [
        {"Race": "Black or African American", "Admissions": "59", "Detail": {"site": "Hartford"}},
        {"Race": 9, "Admissions": 12, "Detail": None},
        {"Race": None, "Admissions": True, "Detail": {"site": "Union"}},
    ]
    (tmp_path / "mixed.json").write_text(json.dumps(records), encoding="utf-8")
    _, result, rows = ingest(tmp_path, make_dataset, "mixed.json")
    assert result.rows == 3
    assert [r[2:] for r in rows] == [
        ("Black or African American", "59", '{"site":"Hartford"}'),
        ("9", "12", None),
        (None, "true", '{"site":"Union"}'),
    ]


def test_parquet(tmp_path, make_dataset):
    pq.write_table(pa.table({"Town": ["Hartford", "Union"], "Count": [1, 2]}), tmp_path / "x.parquet")
    _, result, rows = ingest(tmp_path, make_dataset, "x.parquet")
    assert result.rows == 2 and rows == [(1, None, "Hartford", "1"), (2, None, "Union", "2")]


def test_field_names_are_socrata_style_unique_and_short():
    names = field_names_for(
        ["Date of Death", "date-of death", "2020 Count", "x" * 80, "x" * 80, "Revenue ($)", ""]
    )
    assert names[:3] == ["date_of_death", "date_of_death_2", "_2020_count"]
    assert len(set(names)) == len(names)
    assert all(len(n) <= 63 and n == n.lower() for n in names)
    assert names[5] == "revenue"


def test_same_file_twice_is_not_ingested_twice(tmp_path, make_dataset):
    (tmp_path / "x.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    con = duckdb.connect()
    dataset = make_dataset("x.csv")
    first = ingest_dataset(con, dataset, tmp_path, run_id="r1", workdir=tmp_path / "w")
    second = ingest_dataset(con, dataset, tmp_path, run_id="r2", workdir=tmp_path / "w")
    assert not first.skipped and second.skipped and second.rows == 1
    assert con.execute("SELECT count(*) FROM meta.ingest_log").fetchone()[0] == 1


def test_newest_matching_file_is_read_and_missing_files_explain_the_fix(tmp_path, make_dataset):
    import os

    (tmp_path / "extract_1.csv").write_text("a\nold\n", encoding="utf-8")
    (tmp_path / "extract_2.csv").write_text("a\nnew\n", encoding="utf-8")
    os.utime(tmp_path / "extract_1.csv", (1_000_000, 1_000_000))
    _, result, rows = ingest(tmp_path, make_dataset, "extract_*.csv")
    assert result.path.endswith("extract_2.csv") and rows[0][2] == "new"
    with pytest.raises(IngestError, match="no file in the landing folder matches"):
        ingest(tmp_path, make_dataset, "nothing_*.csv")


def test_declared_column_missing_from_the_file_is_named(tmp_path, make_dataset):
    (tmp_path / "x.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(IngestError) as info:
        ingest(tmp_path, make_dataset, "x.csv", columns=[{"source": "a"}, {"source": "Missing One"}])
    assert info.value.column == "Missing One"


def ingest_shared(shared_ct: Path, make_dataset, name: str):
    """Ingest a real extract in place (it is read-only, never copied); scratch goes to /tmp."""
    con = duckdb.connect()
    return con, ingest_dataset(con, make_dataset(name), shared_ct, run_id="t", workdir=Path("/tmp"))


def test_real_ocme_extract(shared_ct, make_dataset):
    _, result = ingest_shared(shared_ct, make_dataset, "ct_ocme_accidental_drug_deaths_2012_2018.csv")
    assert (result.rows, result.columns, result.bom, result.encoding) == (5105, 42, True, "utf-8-sig")


def test_real_edsight_extract(shared_ct, make_dataset):
    con, result = ingest_shared(
        shared_ct, make_dataset, "ct_sde_edsight_enrollment_by_district_race_2016-17.csv"
    )
    assert (result.header_line, result.rows) == (6, 204)
    codes = [
        r[0]
        for r in con.execute(
            "SELECT district_code FROM ingest__sample WHERE district_code IS NOT NULL"
        ).fetchall()
    ]
    assert "2880013" in codes and not any("=" in c or '"' in c for c in codes)
