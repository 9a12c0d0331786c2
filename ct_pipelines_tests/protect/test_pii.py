"""The PII scanner: real identifiers are found and masked; ordinary public data is left alone."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from ct_pipelines.catalog.blocks.protect import PiiExemption
from ct_pipelines.protect.pii import PiiLeakError, assert_no_pii_columns, pii_scan_outcome, scan_for_pii

CT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "ct"


def table_with(con: duckdb.DuckDBPyConnection, name: str, **columns: list) -> str:
    """A one-table fixture whose columns are given as lists; types are inferred by DuckDB."""
    frame = pd.DataFrame(columns)
    con.register("_frame", frame)
    con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM _frame')
    con.unregister("_frame")
    return name


def hits_by(findings: list[dict]) -> dict[tuple[str, str], dict]:
    return {(f["column"], f["pattern"]): f for f in findings}


def test_planted_ssn_in_free_text_is_reported_masked() -> None:
    con = duckdb.connect()
    notes = ["Client seen at clinic"] * 50 + ["Follow-up for SSN 078-05-1120 requested"]
    table_with(con, "published", town=["Hartford"] * 51, notes=notes)
    outcome = pii_scan_outcome(con, "published")
    assert not outcome.passed and outcome.blocks
    assert "notes" in outcome.summary and "Social Security number" in outcome.summary
    assert "078-05-1120" not in str(outcome.metadata) and "078-05-1120" not in outcome.summary
    hit = hits_by(outcome.metadata["hits"])[("notes", "ssn")]
    assert hit["rows"] == 1 and hit["example"] == "###-##-####"


def test_the_refusal_reads_as_english_for_one_row_and_for_several() -> None:
    con = duckdb.connect()
    table_with(con, "emails", email=["ana.lopez@gmail.com", "bsmith@yahoo.com", "cjones@aol.com"])
    table_with(con, "phones", phone=["none", "none", "860-555-0101"])
    assert "3 rows of column 'email' look like an e-mail address" in pii_scan_outcome(con, "emails").summary
    assert "1 row of column 'phone' looks like a phone number" in pii_scan_outcome(con, "phones").summary


@pytest.mark.parametrize(
    ("value", "pattern", "masked"),
    [
        ("contact jane.doe@health.ct.gov today", "email", "j***@***.gov"),
        ("call (860) 555-0147", "phone", "(###) ###-####"),
        ("DOB: 04/17/1968, admitted", "date_of_birth", "**/**/****"),
        ("found at 123 Main Street", "street_address", "*** **** Street"),
        ("MRN 00482913 transferred", "record_id", "########"),
    ],
)
def test_each_pattern_is_found_and_masked(value: str, pattern: str, masked: str) -> None:
    con = duckdb.connect()
    table_with(con, "t", text=["nothing here", value])
    hit = hits_by(scan_for_pii(con, "t"))[("text", pattern)]
    assert hit["example"] == masked


def test_ordinary_public_values_are_not_pii() -> None:
    con = duckdb.connect()
    values = [
        "2019-2020 school year",
        "Rate 12.5 per 100,000",
        "12 people drive to 3 sites",
        "District code 2850013",
        "Fiscal year 2021-22 ends 06/30/2022",
        "Case 14-0273",
        "Route 6 and I-84",
    ]
    table_with(
        con,
        "t",
        description=values,
        event_date=[datetime.date(2020, 1, 1)] * len(values),
        count=list(range(len(values))),
    )
    assert scan_for_pii(con, "t") == []


def test_columns_named_like_a_birth_date_or_record_number_are_hits() -> None:
    con = duckdb.connect()
    table_with(
        con,
        "t",
        date_of_birth=[datetime.date(1970, 5, 1)],
        patient_id=["A1"],
        report_date=[datetime.date(2020, 1, 1)],
    )
    found = hits_by(scan_for_pii(con, "t"))
    assert ("date_of_birth", "date_of_birth") in found and ("patient_id", "record_id") in found
    assert not any(column == "report_date" for column, _ in found)


def test_exemption_with_reason_resolves_a_false_positive() -> None:
    con = duckdb.connect()
    table_with(con, "t", office_phone=["Main office: 860-509-8000"], town=["Hartford"])
    exemption = PiiExemption(
        column="office_phone", patterns=["phone"], reason="Public agency switchboard numbers"
    )
    outcome = pii_scan_outcome(con, "t", [exemption])
    assert outcome.passed
    assert outcome.metadata["exempted"][0]["reason"] == "Public agency switchboard numbers"
    other_pattern = PiiExemption(column="office_phone", patterns=["email"], reason="Wrong pattern exempted")
    assert not pii_scan_outcome(con, "t", [other_pattern]).passed


def test_final_assertion_refuses_pii_and_derived_names() -> None:
    assert_no_pii_columns(["town", "count"], ["ssn", "dob"], "t")
    with pytest.raises(PiiLeakError, match="dob_year"):
        assert_no_pii_columns(["town", "dob_year"], ["ssn", "dob"], "t")


def test_real_ocme_extract_scan_finds_no_ssn_or_email() -> None:
    """A real public extract (death records) holds no SSNs or e-mails; the scanner must stay quiet on them."""
    path = CT_DATA / "ct_ocme_accidental_drug_deaths_2012_2018.csv"
    if not path.exists():
        pytest.skip("shared CT extracts not available")
    con = duckdb.connect()
    con.execute(f"CREATE TABLE ocme AS SELECT * FROM read_csv('{path}', all_varchar = true)")
    patterns = {f["pattern"] for f in scan_for_pii(con, "ocme")}
    assert "ssn" not in patterns and "email" not in patterns and "phone" not in patterns


def test_scan_reports_show_no_digit_of_an_ssn_or_phone() -> None:
    """Summaries, metadata and the markdown report keep only the shape of the match."""
    con = duckdb.connect()
    notes = ["no identifiers"] * 8 + ["SSN 078-05-1120 on file", "reach her at 860.555.0147 after 5"]
    table_with(con, "published", notes=notes)
    outcome = pii_scan_outcome(con, "published")
    text = outcome.summary + str(outcome.metadata)
    for digits in ("078", "1120", "860", "555", "0147"):
        assert digits not in text
    shapes = {hit["pattern"]: hit["example"] for hit in outcome.metadata["hits"]}
    assert shapes == {"ssn": "###-##-####", "phone": "(###) ###-####"}


def test_the_scan_counts_what_each_pattern_matches_cell_by_cell():
    """Content patterns run on the cells in long form, and only on cells matching any pattern at all:
    each count must equal Python's own count of the cells each pattern matches, for cells matching one
    pattern, two at once, or none; the name-based rules still count by column name."""
    from ct_pipelines.protect import pii

    planted = {
        "c7": "call 860-555-0123 after 5",
        "c42": "write to jane.doe@example.org",
        "c99": "SSN 123-45-6789 on file",
        "c100": "SSN 123-45-6789, cell (203) 555-0199",
        "c101": "12 Elm Street",
        "date_of_birth": "03/14/1961",
        "medicaid_id": "R1",
    }
    columns = [f"c{n}" for n in range(140)] + ["date_of_birth", "medicaid_id"]
    selects = ", ".join(
        f"CASE WHEN i % 3 = 0 THEN '{planted[c]}' ELSE 'row ' || i END AS {c}"
        if c in planted
        else f"'v' || i AS {c}"
        for c in columns
    )
    con = duckdb.connect()
    con.execute(f"CREATE TABLE wide AS SELECT {selects} FROM range(30) r(i)")
    found = {(f["column"], f["pattern"]): f["rows"] for f in scan_for_pii(con, "wide")}

    expected = {}
    for column in columns:
        values = [row[0] for row in con.execute(f"SELECT {column} FROM wide").fetchall()]
        for pattern in pii.PATTERNS:
            hits = sum(bool(re.search(pii._python_regex(pattern.regex), v)) for v in values)
            if hits:
                expected[(column, pattern.name)] = hits
    expected[("date_of_birth", "date_of_birth")] = 10  # its name and a date: the name-based rule
    expected[("medicaid_id", "record_id")] = 30  # a record-number name: every non-empty value
    assert found == expected
    assert found[("c100", "ssn")] == found[("c100", "phone")] == found[("c101", "street_address")] == 10
    assert all("123-45" not in f["example"] and "jane" not in f["example"] for f in scan_for_pii(con, "wide"))


def test_a_column_named_for_a_persons_name_is_found_by_its_name_and_never_shown() -> None:
    """No value pattern tells a person's name from a town's: a clinic extract's Patient Name, left
    unmarked, would have been published. Columns named for a person's name are found; a facility's or a
    town's name is not."""
    con = duckdb.connect()
    table_with(
        con,
        "published",
        patient_name=["María Núñez", "Li Wei", "  "],
        lastname=["Núñez", "Li", "Smith"],
        facility_name=["YORK CI", "GARNER CI", "YORK CI"],
        town_name=["Hartford", "Mystic", "Union"],
    )
    outcome = pii_scan_outcome(con, "published")
    assert not outcome.passed and outcome.blocks
    hits = hits_by(outcome.metadata["hits"])
    assert set(hits) == {("patient_name", "person_name"), ("lastname", "person_name")}
    assert hits[("patient_name", "person_name")]["rows"] == 2  # a blank cell names no one
    assert all(h["example"] == "*****" for h in hits.values())
    assert "Núñez" not in str(outcome.metadata) + outcome.summary
    # every column is named, with the exemption to write (a helper saw "1 other column/pattern pair")
    assert (
        "; also 'lastname' (person_name, 3 rows)" in outcome.summary
        or "; also 'patient_name'" in outcome.summary
    )
    assert "patterns: [person_name], reason: ...}" in outcome.summary
    exempted = pii_scan_outcome(
        con,
        "published",
        [PiiExemption(column="lastname", patterns=["person_name"], reason="a fictional roster")],
    )
    assert set(hits_by(exempted.metadata["hits"])) == {("patient_name", "person_name")}


def test_columns_named_for_a_contact_owner_or_inspector_are_read_as_names() -> None:
    """A later permits delivery added "Contact Person" and "Owner Name": people's names the scan did not
    know by their column names. A license type or a facility contact number is not a name."""
    con = duckdb.connect()
    table_with(
        con,
        "published",
        contact_person=["Maria Lopez", "Li Wei", "Ann Roe"],
        owner_name=["J. Smith", "K. Jones", "L. Brown"],
        inspector_name=["R. Diaz", "R. Diaz", "P. Wu"],
        license_type=["Liquor", "Pharmacy", "Liquor"],
    )
    hits = hits_by(pii_scan_outcome(con, "published").metadata["hits"])
    assert set(hits) == {
        ("contact_person", "person_name"),
        ("owner_name", "person_name"),
        ("inspector_name", "person_name"),
    }
