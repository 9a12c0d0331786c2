"""A hostile-input corpus: extracts made the way agencies make them, each with planted personal values.

Every case is one dataset (a YAML file) and one or more landing files. Each data row carries made-up
personal values (name, SSN, phone, e-mail, birth date, address) in columns marked ``pii: true``; some cases
also put them in a row that the reader ends up taking for the header. The bad-input test runs the whole
corpus through one ``ct-pipelines run`` and then searches every output for every planted value.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HEADER = ["Record ID", "Client Name", "SSN", "Phone", "Email", "Birth Date", "Address", "Town", "Visits"]
PII_COLUMNS = {"Client Name", "SSN", "Phone", "Email", "Birth Date", "Address"}
TOWNS = ["Hartford", "New Haven", "Stamford", "Waterbury", "Norwalk", "Danbury"]
# 3,000 columns (issue 17's wide extract): validation and protect's PII scan both grow linearly in columns
WIDE_EXTRA = 2991
FIRST = ["Zenobia", "Ignatius", "Philomena", "Thaddeus", "Eulalia", "Barnaby", "Octavia", "Cornelius"]
SURNAME_LETTERS = "bcdfghjklmnprstvwz"

# what a case must end as: published, or stopped (failed at a stage or blocked by a check) with nothing sent
OK, STOPPED, EITHER = "ok", "stopped", "either"


def _surname(case_no: int, row: int) -> str:
    a, b = divmod(case_no * 37 + row, len(SURNAME_LETTERS))
    c = (case_no + row * 7) % len(SURNAME_LETTERS)
    return f"Quill{SURNAME_LETTERS[a % len(SURNAME_LETTERS)]}{SURNAME_LETTERS[b]}{SURNAME_LETTERS[c]}wether"


def person(case_no: int, row: int) -> dict[str, str]:
    """Made-up personal values, distinct per case and row (so a leak points at its case)."""
    n = case_no * 100 + row
    return {
        "Client Name": f"{FIRST[row % len(FIRST)]} {_surname(case_no, row)}",
        "SSN": f"9{case_no % 90 + 10:02d}-{row % 90 + 10:02d}-{4000 + n % 6000:04d}",
        "Phone": f"(203) 4{case_no % 90 + 10:02d}-{7000 + row:04d}",
        "Email": f"zq{case_no}x{row}.resident@mailbox-example.org",
        "Birth Date": f"19{40 + case_no % 50:02d}-{row % 12 + 1:02d}-{(case_no + row) % 27 + 1:02d}",
        "Address": f"{1000 + n} Quillfeather Ln Apt {row + 2}",
    }


def record(case_no: int, row: int) -> dict[str, str]:
    return {
        "Record ID": f"R{case_no:02d}-{row:04d}",
        **person(case_no, row),
        "Town": TOWNS[row % len(TOWNS)],
        "Visits": str(row % 9 + 1),
    }


@dataclass
class Case:
    """One dataset of the corpus: its YAML source options, its landing files (written in order), and what
    the run must do with it."""

    dataset_id: str
    number: int
    files: list[tuple[str, bytes]]
    expect: str
    pattern: str = ""
    source: dict[str, Any] = field(default_factory=dict)
    header: list[str] = field(default_factory=lambda: list(HEADER))
    column_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    planted: list[str] = field(default_factory=list)
    reason: str = ""

    def yaml_text(self) -> str:
        columns = []
        for name in self.header:
            column: dict[str, Any] = {"source": name}
            if name == "Record ID":
                column.update(required=True, unique=True)
            if name in PII_COLUMNS:
                column["pii"] = True
            if name == "Visits":
                column.update(type="integer", min=0)
            column.update(self.column_overrides.get(name, {}))
            columns.append(column)
        body = {
            "id": self.dataset_id,
            "title": f"Hostile input case {self.number}",
            "description": f"Corpus case {self.dataset_id}: {self.reason or 'an agency extract'}.",
            "agency": "Department of Testing",
            "category": "Government",
            "update_frequency": "Weekly",
            "contact": "data.officer@ct.gov",
            "ingest": {"path": self.pattern or self.files[-1][0], **self.source},
            "row_identifier": "record_id",
            "validate": {"max_quarantine_share": 0.5},
            "columns": columns,
        }
        return yaml.safe_dump(body, sort_keys=False, allow_unicode=True)


# ---------------------------------------------------------------- file makers


def rows_for(case_no: int, count: int) -> list[dict[str, str]]:
    return [record(case_no, r) for r in range(1, count + 1)]


def csv_text(header: list[str], rows: list[list[str]], *, newline: str = "\r\n", delimiter: str = ",") -> str:
    def cell(value: str) -> str:
        needs = any(ch in value for ch in (delimiter, '"', "\n", "\r"))
        return '"' + value.replace('"', '""') + '"' if needs else value

    return "".join(delimiter.join(cell(v) for v in line) + newline for line in [header, *rows])


def table(case_no: int, count: int, header: list[str] | None = None) -> tuple[list[str], list[list[str]]]:
    header = header or HEADER
    rows = rows_for(case_no, count)
    return header, [[row.get(h, "") for h in header] for row in rows]


def planted(case_no: int, count: int) -> list[str]:
    return [value for r in range(1, count + 1) for value in person(case_no, r).values()]


def xlsx(sheets: dict[str, list[list[Any]]], merge_title: bool = False, formulas: bool = False) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for line in rows:
            sheet.append(line)
        if merge_title and rows:
            sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(HEADER))
        if formulas and len(rows) > 3:
            sheet.cell(row=len(rows) + 1, column=len(HEADER), value=f"=SUM(I4:I{len(rows)})")
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def parquet(rows: list[dict[str, Any]]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer)
    return buffer.getvalue()


# ---------------------------------------------------------------- the corpus


def build_cases() -> list[Case]:  # noqa: PLR0915 - one list of cases reads best as one function
    cases: list[Case] = []

    def add(
        name: str, expect: str, files: Callable[[int], list[tuple[str, bytes]]], count: int = 12, **kw: Any
    ) -> None:
        number = len(cases) + 1
        case = Case(f"c{number:02d}_{name}", number, files(number), expect, **kw)
        case.planted = case.planted or planted(number, count)
        cases.append(case)

    def plain(encoding: str = "utf-8", newline: str = "\r\n", count: int = 12, **opts: Any) -> Callable:
        def make(n: int) -> list[tuple[str, bytes]]:
            header, rows = table(n, count)
            return [(f"c{n:02d}.csv", csv_text(header, rows, newline=newline, **opts).encode(encoding))]

        return make

    def text_case(name: str, expect: str, make_text: Callable[[int], bytes], **kw: Any) -> None:
        add(name, expect, lambda n: [(f"c{n:02d}.csv", make_text(n))], **kw)

    # encodings
    add("utf8_clean", OK, plain())
    add("cp1252", OK, lambda n: _accented(n, "cp1252"), reason="cp1252 with accented names")
    add("latin1", OK, lambda n: _accented(n, "latin-1"), source={"encoding": "latin-1"})
    add("utf16_bom", OK, plain("utf-16"))
    add("utf16le_no_bom", OK, plain("utf-16-le"), source={"encoding": "utf-16-le"})
    add("utf8_bom", OK, plain("utf-8-sig"))
    add("mixed_utf8_cp1252", OK, _mixed)
    add("invalid_bytes_strict", STOPPED, _invalid_bytes, source={"encoding": "utf-8"})
    # line endings
    add("lf", OK, plain(newline="\n"))
    add("cr_only", OK, plain(newline="\r"))
    add("mixed_line_endings", OK, _mixed_newlines)
    # shapes
    text_case("ragged_long_row", STOPPED, lambda n: _ragged(n, extra=True))
    text_case("ragged_short_row", EITHER, lambda n: _ragged(n, extra=False))
    add("empty_file", STOPPED, lambda n: [(f"c{n:02d}.csv", b"")], planted=[])
    text_case("header_only", STOPPED, lambda n: csv_text(HEADER, []).encode(), planted=[])
    text_case("blank_lines_only", STOPPED, lambda n: b"\r\n\r\n\r\n", planted=[])
    text_case("duplicate_headers", EITHER, _duplicate_header)
    text_case("huge_cell", EITHER, _huge_cell)
    text_case("nul_bytes", EITHER, _nul_bytes)
    text_case("unterminated_quote", STOPPED, _unterminated)
    text_case("title_rows", OK, _title_rows)
    text_case("semicolon", OK, lambda n: csv_text(*table(n, 12), delimiter=";").encode())
    text_case("tab_delimited", OK, lambda n: csv_text(*table(n, 12), delimiter="\t").encode())
    # PII in a row that is taken for the header
    text_case("headerless_data_first", STOPPED, _headerless, count=13)
    text_case("pii_header_row_set", STOPPED, _pii_header, source={"header_row": 2}, count=13)
    # schema drift
    drift = [h for h in HEADER if h != "Town"]
    text_case("missing_column", STOPPED, lambda n: csv_text(*table(n, 12, drift)).encode())
    text_case("extra_column", OK, _extra_column)
    text_case("renamed_column", STOPPED, _renamed_column)
    # Excel
    add("excel_clean", OK, lambda n: [(f"c{n:02d}.xlsx", _xlsx_rows(n))])
    add("excel_merged_title", OK, lambda n: [(f"c{n:02d}.xlsx", _xlsx_rows(n, title=True))])
    add("excel_numeric_codes", OK, lambda n: [(f"c{n:02d}.xlsx", _xlsx_rows(n, numeric=True))])
    add("excel_formulas", EITHER, lambda n: [(f"c{n:02d}.xlsx", _xlsx_rows(n, formulas=True))])
    add("excel_empty_sheet", STOPPED, lambda n: [(f"c{n:02d}.xlsx", xlsx({"Sheet1": []}))], planted=[])
    add("excel_truncated", STOPPED, lambda n: [(f"c{n:02d}.xlsx", _xlsx_rows(n)[:700])])
    add("pdf_renamed_csv", STOPPED, lambda n: [(f"c{n:02d}.csv", _pdf())], planted=[])
    add("zip_renamed_csv", STOPPED, lambda n: [(f"c{n:02d}.csv", _xlsx_rows(n))])
    # JSON and Parquet
    add("json_array", OK, lambda n: [(f"c{n:02d}.json", json.dumps(rows_for(n, 12)).encode())])
    add("json_empty_array", STOPPED, lambda n: [(f"c{n:02d}.json", b"[]")], planted=[])
    add("json_nested", EITHER, _json_nested)
    add("ndjson_bad_line", STOPPED, _ndjson_bad)
    add("parquet_clean", OK, lambda n: [(f"c{n:02d}.parquet", parquet(rows_for(n, 12)))])
    add("parquet_empty", STOPPED, lambda n: [(f"c{n:02d}.parquet", _parquet_empty())], planted=[])
    add("parquet_truncated", STOPPED, lambda n: [(f"c{n:02d}.parquet", parquet(rows_for(n, 12))[:300])])
    # wide
    add(
        "wide_3000_columns",
        OK,
        _wide,
        count=5,
        header=[*HEADER, *[f"Measure {i}" for i in range(1, WIDE_EXTRA + 1)]],
    )
    # re-sends and overwrites (written in order; the newest file is read; each file holds every row)
    source = {"each_file_complete": True}
    add("resend_a_b_a", OK, _resend, pattern="c*_batch_*.csv", count=12, source=source)
    # more line endings (after the re-send case, whose file names the tests spell out)
    text_case("double_cr_blank_rows", OK, _double_cr_blank_rows)
    return cases


def _accented(n: int, encoding: str) -> list[tuple[str, bytes]]:
    header, rows = table(n, 12)
    for row in rows:
        row[1] = row[1].replace("Quill", "Quéll")
    return [(f"c{n:02d}.csv", csv_text(header, rows).encode(encoding))]


def _mixed(n: int) -> list[tuple[str, bytes]]:
    header, rows = table(n, 12)
    lines = [csv_text(header, []).encode()]
    for i, row in enumerate(rows):
        row[7] = "Café " + row[7]
        lines.append(csv_text(row, []).encode("cp1252" if i % 3 == 0 else "utf-8"))
    return [(f"c{n:02d}.csv", b"".join(lines))]


def _invalid_bytes(n: int) -> list[tuple[str, bytes]]:
    text = csv_text(*table(n, 12)).encode()
    at = text.index(b"Hartford")
    return [(f"c{n:02d}.csv", text[:at] + b"\xff\xfe\x81" + text[at:])]


def _mixed_newlines(n: int) -> list[tuple[str, bytes]]:
    header, rows = table(n, 12)
    ends = ["\r\n", "\n", "\r\n", "\n"]
    text = "".join(",".join(line) + ends[i % 4] for i, line in enumerate([header, *rows]))
    return [(f"c{n:02d}.csv", text.encode())]


def _double_cr_blank_rows(n: int) -> bytes:
    """A Windows script writing CRLF through a text-mode file (CR CR LF: a blank line after each row in
    Excel), with a row of delimiters only where the agency deleted a row's values."""
    header, rows = table(n, 12)
    rows.insert(6, [""] * len(header))
    return csv_text(header, rows, newline="\r\r\n").encode()


def _ragged(n: int, *, extra: bool) -> bytes:
    header, rows = table(n, 12)
    rows[5] = [*rows[5], "spill", "over"] if extra else rows[5][:5]
    return csv_text(header, rows).encode()


def _duplicate_header(n: int) -> bytes:
    header, rows = table(n, 12)
    return csv_text([*header, "Town"], [[*r, r[7]] for r in rows]).encode()


def _huge_cell(n: int) -> bytes:
    header, rows = table(n, 12)
    rows[2][7] = "Hartford " + "x" * 2_000_000
    return csv_text(header, rows).encode()


def _nul_bytes(n: int) -> bytes:
    text = csv_text(*table(n, 12)).encode()
    at = text.index(b"New Haven")
    return text[:at] + b"New\x00Haven" + text[at + len(b"New Haven") :]


def _unterminated(n: int) -> bytes:
    header, rows = table(n, 12)
    text = csv_text(header, rows)
    lines = text.split("\r\n")
    lines[4] = lines[4].replace("Hartford", '"Hartford', 1) if "Hartford" in lines[4] else '"' + lines[4]
    return "\r\n".join(lines).encode()


def _title_rows(n: int) -> bytes:
    title = "Department of Testing - Client Visits Report\r\nRun date: 01/15/2026\r\n\r\n"
    return title.encode() + csv_text(*table(n, 12)).encode()


def _headerless(n: int) -> bytes:
    header, rows = table(n, 13)
    return csv_text(rows[0], rows[1:]).encode()  # the agency forgot the header line


def _pii_header(n: int) -> bytes:
    header, rows = table(n, 13)
    return csv_text(["Client Visits"], [rows[0], header, *rows[1:]]).encode()


def _extra_column(n: int) -> bytes:
    header, rows = table(n, 12)
    return csv_text([*header, "Case Worker"], [[*r, "Worker A"] for r in rows]).encode()


def _renamed_column(n: int) -> bytes:
    header, rows = table(n, 12)
    return csv_text(["Record Number" if h == "Record ID" else h for h in header], rows).encode()


def _xlsx_rows(n: int, *, title: bool = False, numeric: bool = False, formulas: bool = False) -> bytes:
    header, rows = table(n, 12)
    values: list[list[Any]] = [[int(c) if numeric and i == 8 else c for i, c in enumerate(r)] for r in rows]
    if numeric:
        for r in values:
            r[0] = int(r[0][4:])  # record numbers typed as numbers by the agency's spreadsheet
    lead = [["Client Visits by Town"], []] if title else []
    return xlsx({"Data": [*lead, header, *values]}, merge_title=title, formulas=formulas)


def _pdf() -> bytes:
    return b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def _json_nested(n: int) -> list[tuple[str, bytes]]:
    rows = []
    for row in rows_for(n, 12):
        pii = {k: row[k] for k in PII_COLUMNS}
        rows.append(
            {"Record ID": row["Record ID"], "client": pii, "Town": row["Town"], "Visits": row["Visits"]}
        )
    return [(f"c{n:02d}.json", json.dumps(rows).encode())]


def _ndjson_bad(n: int) -> list[tuple[str, bytes]]:
    lines = [json.dumps(r) for r in rows_for(n, 12)]
    lines[6] = lines[6][:-15]  # cut off mid-object
    return [(f"c{n:02d}.jsonl", ("\n".join(lines) + "\n").encode())]


def _parquet_empty() -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.table({h: pa.array([], pa.string()) for h in HEADER}), buffer)
    return buffer.getvalue()


def _wide(n: int) -> list[tuple[str, bytes]]:
    extra = [f"Measure {i}" for i in range(1, WIDE_EXTRA + 1)]
    header, rows = table(n, 5)
    return [
        (
            f"c{n:02d}.csv",
            csv_text([*header, *extra], [[*r, *(str(i) for i in range(WIDE_EXTRA))] for r in rows]).encode(),
        )
    ]


def _resend(n: int) -> list[tuple[str, bytes]]:
    a = csv_text(*table(n, 12)).encode()
    header, rows = table(n, 12)
    b = csv_text(header, rows[:10]).encode()
    return [(f"c{n:02d}_batch_1.csv", a), (f"c{n:02d}_batch_2.csv", b), (f"c{n:02d}_batch_3.csv", a)]


def write_corpus(cases: list[Case], catalog: Path, landing: Path) -> None:
    """Write each case's YAML and landing files; files of one case get increasing mtimes in list order."""
    catalog.mkdir(parents=True, exist_ok=True)
    landing.mkdir(parents=True, exist_ok=True)
    stamp = 1_767_225_600  # 2026-01-01
    for case in cases:
        (catalog / f"{case.dataset_id}.yaml").write_text(case.yaml_text(), encoding="utf-8")
        for offset, (name, data) in enumerate(case.files):
            path = landing / name
            path.write_bytes(data)
            os.utime(path, (stamp + offset * 60, stamp + offset * 60))


def zipped_texts(path: Path) -> list[str]:
    """The text members of an .xlsx/.zip file, so searches see inside workbooks the reports write."""
    try:
        with zipfile.ZipFile(path) as archive:
            return [archive.read(name).decode("utf-8", "replace") for name in archive.namelist()]
    except zipfile.BadZipFile:
        return []
