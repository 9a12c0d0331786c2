"""Dataset metadata on the portal: create the dataset, check its columns, sync catalog fields.

The Metadata API (PATCH with ``validateOnly=true&strict=true``) gives a real dry run, so the catalog
YAML is validated by the portal itself before anything changes. Column descriptions are not covered
by that API and go through sodapy ``update_metadata`` with only the ``columns`` key.

The tags sent are the YAML's plus, on a dataset this pipeline made, its marker tag (``target``): the
marker is how a rerun that lost the warehouse's record of the 4x4 finds the dataset again, so no sync
removes it, and it never counts as a difference between the YAML and the portal.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

import requests

from ct_pipelines.catalog.handbook import Category, GeographicUnit, UpdateFrequency
from ct_pipelines.catalog.models import Dataset, published_column_description
from ct_pipelines.catalog.portal_fields import MARKER_PREFIX, custom_fields
from ct_pipelines.core.outcomes import CheckOutcome, Severity
from ct_pipelines.publish.connection import PortalConnection, PublishError
from ct_pipelines.publish.serialize import TableColumn
from ct_pipelines.publish.specs import DRIFT_CHECK, METADATA_CHECK

METADATA_API = "/api/views/metadata/v1/"
_PERMITTED: dict[str, type[Enum]] = {
    "category": Category,
    "update_frequency": UpdateFrequency,
    "geographic_unit": GeographicUnit,
}


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def _described(dataset: Dataset) -> str:
    """The YAML description, plus what the source did not collect when race/ethnicity is published."""
    note = dataset.standardize.collection_note() if dataset.standardize else ""
    return f"{dataset.description.rstrip()} {note}" if note else dataset.description


def marker_tag(dataset_id: str) -> str:
    """The tag that marks a portal dataset as created by this pipeline for ``dataset_id``."""
    return f"{MARKER_PREFIX}{dataset_id}".lower()


def carries_marker(dataset: Dataset, tags: Any) -> bool:
    """Whether the portal's ``tags`` include ``dataset``'s marker (the portal may show no tags as null)."""
    return marker_tag(dataset.id) in {str(t).lower() for t in tags or []}


def keeps_marker(dataset: Dataset, portal_tags: Any = None) -> bool:
    """Whether the tags sent for ``dataset`` carry its marker: always when the pipeline chose the target
    (no ``publish.id``: it created the dataset, or adopted one carrying the marker), and on a dataset the
    YAML names when the marker is there already (it never marks someone else's dataset)."""
    return dataset.publish.id is None or carries_marker(dataset, portal_tags)


def desired_metadata(dataset: Dataset, *, marked: bool = False) -> dict[str, Any]:
    """The Metadata API body the catalog YAML asks for (empty fields are left out, not cleared), with
    the marker tag among the tags when ``marked``."""
    tags = list(dataset.tags)
    if marked and not carries_marker(dataset, tags):
        tags.append(marker_tag(dataset.id))
    body: dict[str, Any] = {
        "name": dataset.title,
        "description": _described(dataset),
        "category": _plain(dataset.category),
        "tags": tags,
        "license": dataset.license,
        "attribution": dataset.attribution,
    }
    if dataset.source_link:
        body["attributionLink"] = dataset.source_link
    fieldsets: dict[str, dict[str, Any]] = {}
    for fieldset, fields in custom_fields().items():
        for field, attribute in fields.items():
            value = _plain(getattr(dataset, attribute, None))
            if value not in (None, ""):
                fieldsets.setdefault(fieldset, {})[field] = value
    if fieldsets:
        body["customFields"] = fieldsets
    return body


def handbook_problems(dataset: Dataset) -> list[str]:
    """Values outside the CT Open Data Handbook lists (the YAML model normally catches these first,
    but a dataset built in code can bypass it)."""
    problems = []
    for attribute, permitted in _PERMITTED.items():
        value = _plain(getattr(dataset, attribute, None))
        allowed = [member.value for member in permitted]  # type: ignore[attr-defined]
        if value is not None and value not in allowed:
            problems.append(f"{attribute} '{value}' is not one of: {', '.join(allowed)}")
    return problems


def column_specs(dataset: Dataset, columns: list[TableColumn]) -> list[dict[str, str]]:
    """Socrata column definitions for creating the dataset, with YAML descriptions where known."""
    specs = []
    for column in columns:
        yaml_column = dataset.column(column.name)
        spec = {
            "fieldName": column.name,
            "name": yaml_column.source if yaml_column else column.name,
            "dataTypeName": column.socrata_type,
        }
        description = published_column_description(dataset, column.name)
        if description:
            spec["description"] = description
        specs.append(spec)
    return specs


class PortalDatasetMissing(PublishError):
    """The portal answered 404 for a dataset the pipeline published to (deleted on the portal)."""


def read_view(portal: PortalConnection, four_by_four: str) -> dict[str, Any]:
    """The view JSON of ``four_by_four`` (columns, tags, publication stage)."""
    try:
        view = portal.client.get_metadata(four_by_four)
    except requests.exceptions.RequestException as exc:
        response = getattr(exc, "response", None)
        failure = portal.describe_failure(f"Reading the columns of {four_by_four}", exc)
        if response is not None and response.status_code == 404:
            raise PortalDatasetMissing(str(failure)) from None
        raise failure from None
    return view if isinstance(view, dict) else {}


def drift_outcome(
    portal: PortalConnection,
    four_by_four: str,
    columns: list[TableColumn],
    view: dict[str, Any] | None = None,
    new_dataset_command: str | None = None,
) -> CheckOutcome:
    """ERROR when the portal's columns differ from the table's (names or types): upserting into a
    different schema either fails per row or silently drops values. ``view`` saves a request when
    the caller already read it."""
    if view is None:
        view = read_view(portal, four_by_four)
    portal_types = {
        c["fieldName"]: c.get("dataTypeName")
        for c in view.get("columns", [])
        if not str(c.get("fieldName", "")).startswith(":")
    }
    table_types = {c.name: c.socrata_type for c in columns}
    missing = sorted(set(table_types) - set(portal_types))
    extra = sorted(set(portal_types) - set(table_types))
    mismatched = [
        {"field": name, "table": table_types[name], "portal": portal_types[name]}
        for name in sorted(set(table_types) & set(portal_types))
        if portal_types[name] != table_types[name]
    ]
    passed = not (missing or extra or mismatched)
    if passed:
        summary = f"The portal dataset {four_by_four} has the same {len(table_types)} columns as the table."
    else:
        parts = []
        if missing:
            parts.append(f"in the table but not on the portal: {', '.join(missing)}")
        if extra:
            parts.append(f"on the portal but not in the table: {', '.join(extra)}")
        if mismatched:
            parts.append(
                "of another type: "
                + ", ".join(
                    f"{m['field']} ({m['table']} in the table, {m['portal']} on the portal)"
                    for m in mismatched
                )
            )
        summary = (
            f"The portal dataset {four_by_four} does not match the table to publish ({'; '.join(parts)}), "
            "so nothing was published; a replace of the rows (--full-replace) does not change the portal's "
            "columns. Change the portal dataset's columns to the table's (on Socrata, in the dataset's "
            "schema editor), or change the dataset YAML back to what the portal has"
            + (
                f", or publish to a new portal dataset: {new_dataset_command} (the old one keeps its columns "
                "and rows)."
                if new_dataset_command
                else "."
            )
        )
    return CheckOutcome(
        name=DRIFT_CHECK,
        passed=passed,
        severity=Severity.ERROR,
        summary=summary,
        metadata={"missing_on_portal": missing, "extra_on_portal": extra, "type_mismatches": mismatched},
    )


def _server_problems(answer: Any) -> list[str]:
    """Errors (and, under strict, warnings) listed in a Metadata API answer."""
    if not isinstance(answer, dict):
        return []
    problems = []
    for key in ("errors", "warnings"):
        for item in answer.get(key) or []:
            if isinstance(item, dict):
                field = item.get("field") or item.get("fieldName") or ""
                message = item.get("message") or item.get("error") or str(item)
                problems.append(f"{field}: {message}" if field else str(message))
            else:
                problems.append(str(item))
    return problems


def _error_detail(exc: requests.exceptions.RequestException) -> list[str]:
    response = getattr(exc, "response", None)
    if response is not None:
        try:
            body = response.json()
        except ValueError:
            body = None
        listed = _server_problems(body) or _server_problems(
            body.get("data") if isinstance(body, dict) else None
        )
        if listed:
            return listed
        if isinstance(body, dict) and body.get("message"):
            return [str(body["message"])]
    return [str(exc)]


def _column_description_updates(
    portal: PortalConnection, dataset: Dataset, four_by_four: str
) -> list[dict[str, Any]] | None:
    """The ``columns`` list to PUT when a YAML description differs from the portal, else None.
    Every column is sent (PUT replaces the key) with only its identity, type and description."""
    view = portal.client.get_metadata(four_by_four)
    portal_columns = [c for c in view.get("columns", []) if not str(c.get("fieldName", "")).startswith(":")]
    changed = False
    update = []
    for column in portal_columns:
        description = column.get("description") or ""
        wanted = published_column_description(dataset, column["fieldName"])
        if wanted and wanted != description:
            description, changed = wanted, True
        entry = {k: column[k] for k in ("id", "fieldName", "name", "dataTypeName") if k in column}
        entry["description"] = description
        update.append(entry)
    return update if changed else None


def _already_on_portal(current: Any, desired: dict[str, Any]) -> bool:
    """Whether every field we would PATCH already has that value (a PATCH merges, so fields we leave
    out do not matter); a publish then skips the write instead of rewriting identical metadata."""
    if not isinstance(current, dict):
        return False
    for key, value in desired.items():
        if key == "tags":  # a set: the portal may store them in another order or case
            if {str(t).lower() for t in current.get(key) or []} != {str(t).lower() for t in value}:
                return False
            continue
        if key != "customFields":
            if (current.get(key) or None) != (value or None):
                return False
            continue
        portal_fieldsets = current.get("customFields") or {}
        for fieldset, fields in value.items():
            on_portal = portal_fieldsets.get(fieldset) or {}
            if any(on_portal.get(field) != wanted for field, wanted in fields.items()):
                return False
    return True


def _validation_problems(portal: PortalConnection, four_by_four: str, body: dict[str, Any]) -> list[str]:
    """What the portal says is wrong with ``body`` (a validateOnly + strict PATCH, which writes nothing)."""
    try:
        answer = portal.patch_json(
            METADATA_API + four_by_four, body, params={"validateOnly": "true", "strict": "true"}
        )
        return _server_problems(answer)
    except requests.exceptions.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status in (401, 403):  # not a metadata problem: the YAML is not what needs fixing
            raise portal.describe_failure(
                f"The portal refused the credentials (HTTP {status}) while validating the metadata of "
                f"{four_by_four}; check CT_PORTAL_USERNAME and CT_PORTAL_PASSWORD (or the API key pair)",
                exc,
            ) from None
        return _error_detail(exc)
    except requests.exceptions.RequestException as exc:
        raise portal.describe_failure(f"Validating the metadata of {four_by_four}", exc) from None


def sync_metadata(
    portal: PortalConnection, dataset: Dataset, four_by_four: str, *, apply: bool, validate: bool = True
) -> CheckOutcome:
    """Validate the catalog fields with the portal (validateOnly + strict), then apply them when
    ``apply`` and the portal does not already hold them; failures come back as an ERROR outcome with
    the portal's own words. ``validate=False`` skips the validateOnly request when this publish
    already made it before sending rows. The marker tag is kept where :func:`keeps_marker` says so."""
    body = desired_metadata(dataset, marked=keeps_marker(dataset))
    problems = handbook_problems(dataset)
    fields_sent = sorted(body) + [
        f"{fs}/{f}" for fs, fields in body.get("customFields", {}).items() for f in fields
    ]
    if not problems and validate:
        problems = _validation_problems(portal, four_by_four, body)
    if problems:
        return CheckOutcome(
            name=METADATA_CHECK,
            passed=False,
            severity=Severity.ERROR,
            summary=portal.scrub(
                f"The portal rejected the catalog metadata for '{dataset.title}': {'; '.join(problems)}. "
                "Fix the dataset YAML; nothing was changed on the portal."
            ),
            metadata={"problems": [portal.scrub(p) for p in problems], "fields": fields_sent},
        )
    columns_updated = 0
    metadata_written = False
    if apply:
        try:
            current = portal.get_json(METADATA_API + four_by_four)
            if isinstance(current, dict) and keeps_marker(dataset, current.get("tags")):
                body = desired_metadata(dataset, marked=True)
            metadata_written = not _already_on_portal(current, body)
            if metadata_written:
                portal.patch_json(METADATA_API + four_by_four, body)
            columns = _column_description_updates(portal, dataset, four_by_four)
            if columns:
                portal.client.update_metadata(four_by_four, {"columns": columns})
                columns_updated = len(columns)
        except requests.exceptions.RequestException as exc:
            raise portal.describe_failure(f"Updating the metadata of {four_by_four}", exc) from None
    verb = "was applied" if apply else "is valid (dry run: not applied)"
    return CheckOutcome(
        name=METADATA_CHECK,
        passed=True,
        severity=Severity.ERROR,
        summary=f"The catalog metadata for '{dataset.title}' {verb}.",
        metadata={
            "fields": fields_sent,
            "column_descriptions_sent": columns_updated,
            "applied": apply,
            "metadata_written": metadata_written,
        },
    )
