"""Words of the REL gate: which labels were not standardized and the YAML that would map them.

The message names the most frequent problem labels with their row counts and prints a
``code_map:`` snippet to paste into the dataset file, with a TODO where the right target is
not known (nothing is guessed: an ambiguous label lists its candidates in a comment). Labels of
a column marked PII are never shown; the message says how to see them where that is allowed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ct_pipelines.catalog.blocks.standardize import RelColumn, RelField
from ct_pipelines.catalog.naming import is_total_label
from ct_pipelines.standardize.groups import SPD15_NAMES
from ct_pipelines.standardize.iso639_tables import from_part3
from ct_pipelines.standardize.reference import Status

TOP_LABELS = 5


@dataclass(frozen=True)
class ProblemLabel:
    raw: str | None
    status: str
    candidates: tuple[str, ...]
    count: int


def _candidate_name(code: str, field: RelField) -> str:
    """A label the reference tables read back: a category name, or a language code (name)."""
    if field != RelField.LANGUAGE:
        return json.dumps(SPD15_NAMES.get(code, code.title()))
    found = from_part3(code)
    return f'"{code}" ({found.name})' if found is not None else json.dumps(code)


def field_words(field: RelField) -> str:
    """How a field is named in a sentence."""
    return "race/ethnicity" if field == RelField.RACE_ETHNICITY else field.value.replace("_", " ")


def _why(label: ProblemLabel, field: RelField) -> str:
    names = ", ".join(_candidate_name(c, field) for c in label.candidates)
    if label.status == Status.MULTIPLE.value:
        return f"more than one language: {names}" if names else "more than one language"
    if label.status == Status.AMBIGUOUS.value:
        if len(label.candidates) == 1:  # "Sign Language": likely ASL, but the label does not say which
            return f"ambiguous: perhaps {names}, which the label does not say"
        return f"ambiguous: one of {names}" if names else "ambiguous"
    return "unrecognized"


def _shown(raw: str | None) -> str:
    return "(blank)" if raw is None else json.dumps(raw, ensure_ascii=False)


def code_map_snippet(labels: list[ProblemLabel], field: RelField) -> str:
    """The `standardize: code_map:` YAML that would map these labels; TODO marks each target to choose."""
    lines = ["standardize:", "  code_map:", f"    {field.value}:"]
    for label in labels:
        if label.raw is None:
            continue
        key = json.dumps(label.raw, ensure_ascii=False)  # a JSON string is a valid YAML scalar
        lines.append(f'      {key}: "TODO"  # {label.count:,} rows; {_why(label, field)}')
    return "\n".join(lines)


def problem_summary(
    column: RelColumn, labels: list[ProblemLabel], bad_rows: int, total: int, distinct: int, *, pii: bool
) -> str:
    """One paragraph: how many rows, the top labels (unless PII), and the snippet that fixes them."""
    field = column.field
    share = bad_rows / total if total else 0.0
    head = (
        f"{bad_rows:,} of {total:,} rows ({share:.1%}) in '{column.column}' have {distinct:,} "
        f"{field_words(field)} label{'s' if distinct != 1 else ''} that could not be standardized"
    )
    if pii:
        return (
            f"{head}. '{column.column}' is marked pii, so its labels are not shown here: run "
            f"`ct-pipelines rel map --field {field.value}` on its distinct values where the data may be "
            f"viewed, then map them under standardize.code_map.{field.value} in the dataset's YAML."
        )
    top = labels[:TOP_LABELS]
    listed = "; ".join(f"{_shown(t.raw)} ({t.count:,} rows, {_why(t, field)})" for t in top)
    more = f"; and {distinct - len(top):,} more" if distinct > len(top) else ""
    return (
        f"{head}. Most frequent: {listed}{more}. To map them, add to the dataset's YAML and replace "
        f"each TODO with the standard label or code it stands for:\n{code_map_snippet(top, field)}"
        + _totals_advice(column, top)
    )


def _totals_advice(column: RelColumn, labels: list[ProblemLabel]) -> str:
    """A total row is not an answer any standard label stands for: mapped to a group it would count the
    state twice. It is left out at ingest (an aggregate publishes the total as its margin)."""
    totals = [t.raw for t in labels if t.raw is not None and is_total_label(t.raw)]
    if not totals:
        return ""
    rules = "".join(
        f"\n  - {{name: {json.dumps(f'total {raw}'.lower())}, column: {column.column}, equals: {json.dumps(raw)}}}"
        for raw in totals
    )
    return (
        f"\n{', '.join(_shown(r) for r in totals)} reads as a total of the other rows, not an answer: no label "
        "stands for it. Leave those rows out at ingest (an aggregate publishes the total as its margin):"
        f"\ningest:\n  leave_out:{rules}"
    )
