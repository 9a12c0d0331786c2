"""Where catalog fields live in Socrata's metadata, shared by the publisher, the local portal and the audit.

The exact custom fieldset names on data.ct.gov are not published (see the reference notes, 4.2), so
they are defined once here and can be overridden with ``CT_PIPELINES_FIELDSETS`` (JSON of the same
shape) once an agency reads them from ``GET /api/views/metadata/v1/<4x4>``.
"""

from __future__ import annotations

import json
import os

#: Tags starting with this mark a portal dataset as created by the pipeline (``ct-pipelines:<dataset id>``),
#: so a rerun after a lost create answer finds it; they are bookkeeping, not a description of the data.
MARKER_PREFIX = "ct-pipelines:"

# customFields: {fieldset: {field: catalog attribute}}
DEFAULT_CUSTOM_FIELDS: dict[str, dict[str, str]] = {
    "Dataset Information": {
        "Agency": "agency",
        "Row Label": "row_label",
        "Geographic Unit": "geographic_unit",
        "Temporal Coverage": "temporal_coverage",
        "Source Link": "source_link",
    },
    "Publishing Details": {
        "Update Frequency": "update_frequency",
        "Contact Email": "contact",
    },
}


def custom_fields() -> dict[str, dict[str, str]]:
    """The fieldset layout in force (environment override or the default)."""
    override = os.environ.get("CT_PIPELINES_FIELDSETS")
    return json.loads(override) if override else DEFAULT_CUSTOM_FIELDS


def domain_metadata_key(fieldset: str, field: str) -> str:
    """Key under which the Discovery API (``/api/catalog/v1``) lists a custom field in
    ``classification.domain_metadata``: spaces become dashes, fieldset and field joined by ``_``."""
    return f"{fieldset.replace(' ', '-')}_{field.replace(' ', '-')}"


def custom_field_location(attribute: str) -> tuple[str, str] | None:
    """(fieldset, field) holding a catalog attribute, e.g. ``update_frequency``."""
    for fieldset, fields in custom_fields().items():
        for field, attr in fields.items():
            if attr == attribute:
                return fieldset, field
    return None
