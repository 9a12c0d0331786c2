"""PII guard: keep `pii: true` columns out by construction, and scan what is about to be published.

The scan runs inside DuckDB (regexp_matches, one aggregate query per table) so it scales to millions
of rows; only counts and one masked example per column and pattern come back to Python.
Patterns aim for few false positives: dashed SSNs only, dates of birth only next to a birth keyword
or in columns named like a birth date, street addresses only with a capitalised street name and a
street suffix, record numbers only after a record keyword (MRN, patient id, ...).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import duckdb

from ct_pipelines.catalog.blocks.protect import PiiExemption
from ct_pipelines.core.outcomes import CheckOutcome, Severity
from ct_pipelines.core.sql import quote_ident, quote_literal
from ct_pipelines.protect.specs import PII_SCAN_CHECK

_DATE = r"(\d{1,2}[/-]\d{1,2}[/-](\d{4}|\d{2})|\d{4}-\d{2}-\d{2})"
_BIRTH_NAME = re.compile(r"(^|_)(dob|birth|birthdate|birthday|born)(_|$)|date_of_birth|birth_?date")
_RECORD_NAME = re.compile(
    r"(^|_)(ssn|social_security|mrn|medical_record|patient_id|client_id|member_id|medicaid_id|inmate_number"
    r"|inmate_id|offender_id|employee_id|employee_number|student_id|sasid|person_id|case_number|case_no"
    r"|case_id)(_|$)"
)
#: A column named for a person's name: no value pattern tells "Maria Lopez" from a town, so the name
#: of the column is what is tested (a facility or town name is not matched).
_PERSON_NAME = re.compile(
    r"(^|_)(first|last|middle|full|given|family|maiden|legal|patient|client|person|decedent|child|student|"
    r"inmate|offender|employee|member|victim|parent|guardian|mother|father|applicant|contact|owner|"
    r"licensee|permittee|inspector|caseworker|worker|officer|recipient|resident|tenant|spouse)_?names?(_|$)"
    r"|^(names?|surname|lastname|firstname|fname|lname)$|(^|_)contact_person(_|$)"
)


def named_as_personal(field_name: str) -> bool:
    """Whether a column's name says it holds a person's name, birth date or record number."""
    lowered = field_name.lower()
    return any(p.search(lowered) for p in (_PERSON_NAME, _BIRTH_NAME, _RECORD_NAME))


@dataclass(frozen=True)
class PiiPattern:
    """A kind of identifier, the RE2 regex DuckDB runs, and how an example is masked for reports."""

    name: str
    label: str
    regex: str
    mask: Callable[[str], str]


def _shape(text: str) -> str:
    """Only the shape of an identifier: every digit becomes '#', so no digit of it reaches a report."""
    return re.sub(r"[0-9]", "#", text.strip(" \t\r\n,;:.()[]"))


def _mask_email(text: str) -> str:
    local, _, domain = text.partition("@")
    suffix = domain.rsplit(".", 1)[-1] if "." in domain else "***"
    return f"{local[:1]}***@***.{suffix}"


def _mask_record(text: str) -> str:
    token = re.split(r"[\s:#]+", text.strip())[-1]
    return re.sub(r"[A-Za-z]", "*", _shape(token))


PATTERNS: tuple[PiiPattern, ...] = (
    PiiPattern(
        "ssn",
        "Social Security number",
        r"(^|[^0-9-])[0-8][0-9]{2}-[0-9]{2}-[0-9]{4}([^0-9-]|$)|(?i)\bssn\W{0,3}[0-9]{9}\b",
        lambda text: "###-##-####",  # never any digit, not even the last four
    ),
    PiiPattern(
        "email",
        "e-mail address",
        r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
        _mask_email,
    ),
    PiiPattern(
        "phone",
        "phone number",
        r"(^|[^0-9-])(\+?1[ .-]?)?(\([0-9]{3}\) ?|[0-9]{3}[.-])[0-9]{3}[.-][0-9]{4}([^0-9-]|$)",
        lambda text: "(###) ###-####",
    ),
    PiiPattern(
        "date_of_birth",
        "date of birth",
        r"(?i)\b(dob|d\.o\.b\.?|born|birth ?date|date of birth|birthday)\W{0,12}" + _DATE,
        lambda text: "**/**/****",
    ),
    PiiPattern(
        "street_address",
        "street address",
        r"\b[0-9]{1,6}[A-Za-z]? +([A-Z][A-Za-z'.-]* +){1,4}"
        r"(St|Street|Ave|Avenue|Rd|Road|Blvd|Boulevard|Dr|Drive|Ln|Lane|Ct|Court|Way|Pl|Place|Ter|Terrace"
        r"|Hwy|Highway|Tpke|Turnpike|Pkwy|Parkway|Cir|Circle)\b",
        lambda text: (
            "*** "
            + re.sub(r"[A-Za-z]", "*", text.split(" ", 1)[-1].rsplit(" ", 1)[0])
            + " "
            + text.rsplit(" ", 1)[-1]
        ),
    ),
    PiiPattern(
        "record_id",
        "medical or case record number",
        r"(?i)\b(mrn|medical record( number| no\.?| #)?|patient (id|number|no\.?|#)|client (id|number|#)"
        r"|member (id|number|#)|medicaid (id|number|#)|case (number|no\.?|#))\W{0,4}[A-Za-z]{0,3}[0-9][0-9-]{4,}",
        _mask_record,
    ),
)
#: Tested on columns named for a person's name only (see _PERSON_NAME), so not among PATTERNS.
PERSON_NAME = PiiPattern("person_name", "person's name", r".+", lambda text: "*****")
PATTERN_BY_NAME = {p.name: p for p in (*PATTERNS, PERSON_NAME)}
#: Every pattern in one regular expression (each in its own group, so an inline (?i) stays inside it):
#: a value matches it exactly when it matches some pattern, in one pass instead of one per pattern.
ANY_PATTERN = "|".join(f"(?:{pattern.regex})" for pattern in PATTERNS)


class PiiLeakError(ValueError):
    """A published table would contain a column declared as personally identifiable."""


def derived_from_pii(column: str, pii_fields: Iterable[str]) -> str | None:
    """The PII field a column name equals or is derived from (``ssn_last4``, ``masked_dob``), if any."""
    lowered = column.lower()
    for name in pii_fields:
        name = name.lower()
        if lowered == name or lowered.startswith(f"{name}_") or lowered.endswith(f"_{name}"):
            return name
    return None


def assert_no_pii_columns(columns: Sequence[str], pii_fields: Sequence[str], table: str) -> None:
    """The last gate before a table is published: refuse any column that is or derives from a PII field."""
    leaks = [(c, derived_from_pii(c, pii_fields)) for c in columns if derived_from_pii(c, pii_fields)]
    if leaks:
        described = "; ".join(
            f"'{column}'" + ("" if column == source else f" (looks derived from '{source}')")
            for column, source in leaks
        )
        raise PiiLeakError(
            f"table {table} would publish personally identifiable column(s) {described}. Remove them from "
            "the published table, or rename the column if it holds no personal data."
        )


def _table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    rows = con.execute(f"DESCRIBE {quote_ident(table)}").fetchall()
    return [(row[0], str(row[1]).upper()) for row in rows]


class _Probe(NamedTuple):
    """One test of the scan: a pattern on a column's content (``predicate`` None: _long_counts runs every
    content pattern at once), or a rule on what the column is called, with its SQL predicate."""

    column: str
    pattern: PiiPattern
    predicate: str | None


def _scan_plan(columns: list[tuple[str, str]]) -> list[_Probe]:
    """Each pattern on each text column's content, plus the name-based birth-date, record-id and
    person's-name rules."""
    plan = []
    for name, column_type in columns:
        quoted = quote_ident(name)
        lowered = name.lower()
        is_text = column_type.startswith("VARCHAR")
        if is_text:
            plan += [_Probe(name, pattern, None) for pattern in PATTERNS]
        if _BIRTH_NAME.search(lowered) and (column_type in ("DATE", "TIMESTAMP") or is_text):
            date_test = f"regexp_matches(CAST({quoted} AS VARCHAR), '{_DATE}')"
            plan.append(_Probe(name, PATTERN_BY_NAME["date_of_birth"], date_test))
        if _RECORD_NAME.search(lowered):
            plan.append(_Probe(name, PATTERN_BY_NAME["record_id"], f"{quoted} IS NOT NULL"))
        if is_text and _PERSON_NAME.search(lowered):
            plan.append(_Probe(name, PERSON_NAME, f"trim({quoted}) <> ''"))
    return plan


SCAN_BATCH = 200  # predicates per query: one query over a 2,000-column table never finished planning


def _wide_counts(con: duckdb.DuckDBPyConnection, table: str, plan: list[_Probe]) -> list:
    """[row count, then (hits, example) per name-based probe], in queries of at most SCAN_BATCH predicates."""
    out: list = []
    for start in range(0, len(plan), SCAN_BATCH):
        selects = ["count(*)"]
        for probe in plan[start : start + SCAN_BATCH]:
            selects.append(f"count(*) FILTER (WHERE {probe.predicate})")
            selects.append(
                f"min(CAST({quote_ident(probe.column)} AS VARCHAR)) FILTER (WHERE {probe.predicate})"
            )
        row = con.execute(f"SELECT {', '.join(selects)} FROM {quote_ident(table)}").fetchone()
        out = list(row) if not out else [*out, *row[1:]]
    return out


def _long_counts(con: duckdb.DuckDBPyConnection, table: str, text_columns: list[str]) -> dict:
    """{(column, pattern name): (hits, example)} for every text column, from one UNPIVOT of the cells.

    Only the cells matching ANY_PATTERN reach the per-pattern aggregates, so each cell meets one regular
    expression, and planning does not grow with the width: 4.6M rows x 15 text columns took 49 s with a
    predicate per column and pattern, 3.5 s this way; 3,000 columns took ~70 s that way."""
    selects = []
    for pattern in PATTERNS:
        predicate = f"regexp_matches(cell, {quote_literal(pattern.regex)})"
        selects.append(f"count(*) FILTER (WHERE {predicate}), min(cell) FILTER (WHERE {predicate})")
    on = ", ".join(quote_ident(c) for c in text_columns)
    rows = con.execute(  # a column without a matching cell has no row: (0, None) for each pattern
        f"SELECT column_name, {', '.join(selects)} FROM (UNPIVOT {quote_ident(table)} ON {on} "
        f"INTO NAME column_name VALUE cell) WHERE regexp_matches(cell, {quote_literal(ANY_PATTERN)}) "
        "GROUP BY column_name"
    ).fetchall()
    return {
        (row[0], pattern.name): (row[1 + 2 * i], row[2 + 2 * i])
        for row in rows
        for i, pattern in enumerate(PATTERNS)
    }


def _scan_counts(con: duckdb.DuckDBPyConnection, table: str, plan: list[_Probe]) -> list:
    """[row count, then (hits, example) per probe]: the content patterns from the cells in long form, the
    name-based rules (a few columns at most) column by column."""
    text = list(dict.fromkeys(probe.column for probe in plan if probe.predicate is None))
    content_hits = _long_counts(con, table, text) if text else {}
    by_name = [probe for probe in plan if probe.predicate is not None]
    by_name_counts = iter(_wide_counts(con, table, by_name)[1:]) if by_name else iter(())
    out = [con.execute(f"SELECT count(*) FROM {quote_ident(table)}").fetchone()[0]]
    for probe in plan:
        if probe.predicate is None:
            out.extend(content_hits.get((probe.column, probe.pattern.name), (0, None)))
        else:
            out.extend((next(by_name_counts), next(by_name_counts)))
    return out


def scan_for_pii(con: duckdb.DuckDBPyConnection, table: str) -> list[dict]:
    """Hits per column and pattern: count, share of rows and a masked example (never a raw value)."""
    columns = _table_columns(con, table)
    plan = _scan_plan(columns)
    if not plan:
        return []
    row = _scan_counts(con, table, plan)
    total = row[0]
    hits: dict[tuple[str, str], dict] = {}
    for index, (name, pattern, _) in enumerate(plan):
        count, example = row[1 + 2 * index], row[2 + 2 * index]
        if not count:
            continue
        key = (name, pattern.name)
        if key in hits and hits[key]["rows"] >= count:
            continue
        matched = re.search(_python_regex(pattern.regex), example or "")
        hits[key] = {
            "column": name,
            "pattern": pattern.name,
            "what": pattern.label,
            "rows": int(count),
            "share": round(count / total, 6) if total else 0.0,
            "example": pattern.mask(matched.group(0) if matched else (example or "")),
        }
    return list(hits.values())


def _python_regex(regex: str) -> str:
    """RE2 allows an inline (?i) mid-pattern; Python needs it at the start."""
    return "(?i)" + regex.replace("(?i)", "") if "(?i)" in regex else regex


def _article(noun: str) -> str:
    """'an' before a vowel (an e-mail address), else 'a' (a phone number)."""
    return "an" if noun[:1].lower() in "aeio" else "a"


def pii_scan_outcome(
    con: duckdb.DuckDBPyConnection, table: str, exemptions: Sequence[PiiExemption] = ()
) -> CheckOutcome:
    """Blocking ERROR when a column about to be published holds values that look like PII."""
    findings = scan_for_pii(con, table)
    blocking, exempted = [], []
    for finding in findings:
        exemption = next(
            (
                e
                for e in exemptions
                if e.column == finding["column"] and (not e.patterns or finding["pattern"] in e.patterns)
            ),
            None,
        )
        if exemption:
            exempted.append({**finding, "reason": exemption.reason})
        else:
            blocking.append(finding)
    if blocking:
        first = blocking[0]
        summary = (
            f"{first['rows']} row{'s' if first['rows'] != 1 else ''} of column '{first['column']}' "
            f"look{'' if first['rows'] != 1 else 's'} like {_article(first['what'])} {first['what']} "
            f"(e.g. {first['example']}); publishing is stopped"
            + (
                "; also "
                + ", ".join(f"'{f['column']}' ({f['pattern']}, {f['rows']:,} rows)" for f in blocking[1:6])
                + (f" and {len(blocking) - 6} more" if len(blocking) > 6 else "")
                if len(blocking) > 1
                else ""
            )
            + ". Remove the values, mark the column pii, or add a protect.pii_exemptions entry with a reason"
            f" (e.g. {{column: {first['column']}, patterns: [{first['pattern']}], reason: ...}})."
        )
    else:
        summary = "No values that look like personal information were found in the table to publish" + (
            f" ({len(exempted)} exempted match(es) with a written reason)." if exempted else "."
        )
    return CheckOutcome(
        name=PII_SCAN_CHECK,
        passed=not blocking,
        severity=Severity.ERROR,
        summary=summary,
        metadata={
            "table": table,
            "hits": blocking,
            "exempted": exempted,
            "patterns": list(PATTERN_BY_NAME),
            "report": _markdown(blocking + exempted),
        },
    )


def _markdown(findings: list[dict]) -> str:
    if not findings:
        return "No PII-like values found."
    lines = ["| column | looks like | rows | masked example | exempted because |", "|---|---|---|---|---|"]
    for f in findings:
        lines.append(
            f"| {f['column']} | {f['what']} | {f['rows']} | `{f['example']}` | {f.get('reason', '')} |"
        )
    return "\n".join(lines)
