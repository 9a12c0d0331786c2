"""Generate the bundled sample extracts: made up by this project, shaped like real agency exports.

Run ``python -m ct_pipelines.samples.generate`` to rewrite them. They are small enough to commit and
deterministic (fixed seeds), so tests can rely on their exact contents.
"""

from __future__ import annotations

import csv
import io
import random
from datetime import date, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
LANDING = HERE / "landing"
DEFECTS = HERE / "defects"

TOWNS = [
    ("Hartford", "064"),
    ("New Haven", "093"),
    ("Bridgeport", "015"),
    ("Stamford", "135"),
    ("Waterbury", "151"),
    ("Norwalk", "103"),
    ("Danbury", "034"),
    ("New Britain", "089"),
    ("Meriden", "080"),
    ("Bristol", "017"),
    ("West Hartford", "155"),
    ("Greenwich", "057"),
    ("Manchester", "077"),
    ("Hamden", "062"),
    ("Milford", "084"),
    ("East Hartford", "043"),
    ("Middletown", "083"),
    ("Enfield", "047"),
    ("Norwich", "104"),
    ("New London", "095"),
    ("Torrington", "143"),
    ("Windham", "163"),
    ("Groton", "059"),
    ("Andover", "001"),
    ("Union", "146"),
]

RACE_LABELS = [
    "White",
    "WHITE",
    "White, not of Hispanic origin",
    "Non-Hispanic White",
    "W",
    "Black or African American",
    "BLACK_AFRICAN_AMERICAN",
    "Black/African American",
    "Non-Hispanic Black",
    "Hispanic, White",
    "Hispanic/Latino of any race",
    "HISPANIC",
    "Hispanic, Black",
    "Puerto Rican",
    "Asian",
    "Asian Indian",
    "Chinese",
    "Vietnamese",
    "Asian/Pacific Islander",
    "American Indian or Alaska Native",
    "Native Hawaiian or Other Pacific Islander",
    "Middle Eastern or North African",
    "Lebanese",
    "Two or More Races",
    "Multiracial",
    "Other",
    "Non-Hispanic Other",
    "Unknown",
    "Declined to answer",
    "",
    "Brazilian",
    "Portuguese",
    "Cape Verdean",
]
RACE_WEIGHTS = [
    20,
    8,
    3,
    4,
    2,
    8,
    3,
    2,
    3,
    6,
    5,
    3,
    1,
    3,
    3,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    2,
    1,
    2,
    1,
    2,
    1,
    2,
    1,
    1,
    1,
]
LANGUAGES = [
    "English",
    "ENGLISH",
    "Spanish",
    "Spanish or Spanish Creole",
    "español",
    "Portuguese",
    "Brazilian Portuguese",
    "Haitian Creole",
    "Polish",
    "Italian",
    "Mandarin",
    "Cantonese",
    "Arabic",
    "Vietnamese",
    "Albanian",
    "American Sign Language",
    "Creole",
    "Unknown",
    "Declined",
    "",
]
LANGUAGE_WEIGHTS = [40, 5, 15, 4, 2, 4, 2, 4, 2, 2, 1, 1, 2, 1, 1, 1, 1, 3, 1, 3]
FIRST = [
    "Maria",
    "James",
    "Ana",
    "Luis",
    "Wei",
    "Fatima",
    "John",
    "Keisha",
    "Oksana",
    "Pedro",
    "Nguyen",
    "Rosa",
]
LAST = [
    "Rivera",
    "Smith",
    "Santos",
    "Chen",
    "Haddad",
    "Johnson",
    "Kowalski",
    "Pierre",
    "Silva",
    "Tran",
    "Lopez",
]


def _csv_text(rows: list[list[object]], delimiter: str = ",") -> str:
    buffer = io.StringIO(newline="")
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


def fishing_licenses() -> None:
    """DEEP-style export: cp1252, three title lines, codes as Excel formulas, smart quotes and accents."""
    rng = random.Random(2024)
    lines = [["Fishing Licenses Sold by Town"], ["Calendar Year 2024"], ["Source: DEEP licensing system"], []]
    lines.append(["Record ID", "Town", "Town Code", "License Type", "Licenses Sold", "Revenue ($)", "Notes"])
    types = ["Resident Inland", "Resident Marine", "Senior (65+)", "Non-Resident All Waters"]
    notes = [
        "",
        "",
        "",
        "Includes “free fishing day” permits",
        "Café-area outlet reopened",
        "Agent’s report late",
    ]
    for town, code in TOWNS:
        for license_type in types:
            sold = rng.randint(0, 900)
            fee = {"Resident Inland": 28, "Resident Marine": 10, "Senior (65+)": 0}.get(license_type, 55)
            slug = {"Resident Inland": "ri", "Resident Marine": "rm", "Senior (65+)": "sr"}.get(
                license_type, "nr"
            )
            lines.append(
                [
                    f"{code}-{slug}",
                    town,
                    f'="{code}"',
                    license_type,
                    sold,
                    f"{sold * fee:.2f}",
                    rng.choice(notes),
                ]
            )
    text = _csv_text(lines[:4]).replace('""', "") + _csv_text(lines[4:])
    (LANDING / "deep_fishing_licenses_2024.csv").write_bytes(text.encode("cp1252") + b"\r\n\r\n")


def ev_registrations() -> None:
    """DMV-style Excel workbook: a title row, then the table, on a named sheet after a notes sheet."""
    from openpyxl import Workbook

    rng = random.Random(7)
    workbook = Workbook()
    notes = workbook.active
    notes.title = "Read me"
    notes.append(["Electric vehicle registrations by town and month, generated sample"])
    sheet = workbook.create_sheet("Registrations")
    sheet.append(["Electric Vehicle Registrations by Town"])
    sheet.append(["Record ID", "Town", "Month", "Vehicle Type", "Registrations"])
    for town, code in TOWNS:
        for month in range(1, 7):
            for kind in ("Battery Electric", "Plug-in Hybrid"):
                record = f"{code}-2024{month:02d}-{'bev' if kind.startswith('B') else 'phev'}"
                sheet.append([record, town, date(2024, month, 1), kind, rng.randint(0, 250)])
    workbook.save(LANDING / "dmv_ev_registrations.xlsx")


def interpreter_requests(path: Path, rows: int = 1500, seed: int = 19) -> list[list[str]]:
    """DSS-style client records with messy race/ethnicity/language labels and PII columns."""
    rng = random.Random(seed)
    header = [
        "Request ID",
        "Client Name",
        "Date of Birth",
        "Medicaid ID",
        "Town",
        "Age",
        "Sex",
        "Race/Ethnicity",
        "Primary Language",
        "Interpreter Needed",
        "Request Date",
        "Case Notes",
    ]
    out = [header]
    start = date(2024, 1, 1)
    for n in range(1, rows + 1):
        age = rng.randint(0, 95)
        born = start - timedelta(days=age * 365 + rng.randint(0, 364))
        out.append(
            [
                f"IR-{n:06d}",
                f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                born.strftime("%m/%d/%Y"),
                f"{rng.randint(10**8, 10**9 - 1)}",
                rng.choice(TOWNS[:12])[0],
                str(age),
                rng.choice(["F", "M", "F", "M", "X"]),
                rng.choices(RACE_LABELS, RACE_WEIGHTS)[0],
                rng.choices(LANGUAGES, LANGUAGE_WEIGHTS)[0],
                rng.choice(["Y", "N", "N"]),
                (start + timedelta(days=rng.randint(0, 300))).strftime("%Y-%m-%d"),
                rng.choice(
                    [
                        "",
                        "",
                        "Follow-up scheduled",
                        "Requested a female interpreter",
                        "Needs ASL at clinic visit",
                    ]
                ),
            ]
        )
    path.write_text(_csv_text(out), encoding="utf-8")
    return out


def clinic_visits(path: Path, *, with_defects: bool) -> None:
    """DPH-style clinic visits with defects planted at known rows (see ct_pipelines_tests)."""
    rng = random.Random(11)
    header = ["Visit ID", "Visit Date", "Town", "Age", "Sex", "Vaccine", "Doses"]
    rows = [header]
    for n in range(1, 201):
        rows.append(
            [
                f"V{n:05d}",
                (date(2025, 1, 1) + timedelta(days=n % 300)).isoformat(),
                rng.choice(TOWNS)[0],
                str(rng.randint(1, 90)),
                rng.choice(["F", "M"]),
                rng.choice(["Influenza", "COVID-19", "Tdap"]),
                str(rng.randint(1, 2)),
            ]
        )
    if with_defects:
        rows[5][0] = ""  # missing required id
        rows[9][0] = ""
        rows[12][0] = rows[11][0]  # duplicate id
        rows[20][3] = "134"  # ages over 120
        rows[21][3] = "150"
        rows[22][3] = "121"
        rows[30][1] = "2025-13-45"  # not a date
        rows[31][1] = "2099-06-01"  # in the future
        rows[40][5] = "Smallpox"  # not an allowed vaccine
        rows[41][5] = "MMR"
    path.write_text(_csv_text(rows), encoding="utf-8")


def main() -> None:
    LANDING.mkdir(exist_ok=True)
    (DEFECTS / "landing").mkdir(parents=True, exist_ok=True)
    fishing_licenses()
    ev_registrations()
    interpreter_requests(LANDING / "dss_interpreter_requests.csv")
    clinic_visits(DEFECTS / "landing" / "dph_clinic_visits.csv", with_defects=True)
    (DEFECTS / "fixed").mkdir(exist_ok=True)
    clinic_visits(DEFECTS / "fixed" / "dph_clinic_visits.csv", with_defects=False)


if __name__ == "__main__":
    main()
