"""Socrata's Metadata API v1 (``/api/views/metadata/v1/{id}``) over our stored view JSON.

Pure functions: the store owns persistence, these own the shape and the merge rules, so
``validateOnly`` can compute exactly what a real PATCH would write without writing it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from ct_pipelines.catalog.handbook import Category
from ct_pipelines.catalog.portal_fields import custom_fields
from ct_pipelines.portal.errors import PortalError

# Socrata license ids and the names the Metadata API shows for them.
LICENSES: dict[str, str] = {
    "CC0_10": "Creative Commons 1.0 Universal (Public Domain Dedication)",
    "PUBLIC_DOMAIN": "Public Domain",
    "CC_30_BY": "Creative Commons Attribution 3.0 Unported",
    "CC_40_BY": "Creative Commons Attribution 4.0 International",
    "CC_30_BY_SA": "Creative Commons Attribution | Share Alike 3.0 Unported",
    "ODC_BY": "Open Data Commons Attribution License",
    "ODC_ODBL": "Open Data Commons Open Database License",
    "ODC_PDDL": "Open Data Commons Public Domain Dedication and License",
    "USGOV_WORKS": "Public Domain U.S. Government",
}
_SIMPLE_FIELDS = ("name", "description", "category", "tags", "attribution", "attributionLink", "externalId")
_READ_ONLY = {
    "id",
    "domain",
    "dataUri",
    "webUri",
    "createdAt",
    "updatedAt",
    "dataUpdatedAt",
    "metadataUpdatedAt",
    "provenance",
    "hideFromCatalog",
    "hideFromDataJson",
}


def iso_timestamp(epoch_seconds: int | float | None) -> str | None:
    if epoch_seconds is None:
        return None
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def license_name(view: dict[str, Any]) -> str | None:
    license_obj = view.get("license") or {}
    return license_obj.get("name") or LICENSES.get(view.get("licenseId") or "") or view.get("licenseId")


def category_problem(category: Any) -> str | None:
    """The domain's categories are the CT handbook's ten; anything else is refused like on data.ct.gov."""
    if category in (None, ""):
        return None
    allowed = [c.value for c in Category]
    if category not in allowed:
        return f"Category {category!r} is not one of this domain's categories: {', '.join(allowed)}"
    return None


def metadata_v1(view: dict[str, Any], base_url: str, domain: str) -> dict[str, Any]:
    """The Metadata API's view of an asset: ISO timestamps, blank fields as null."""
    data_updated = view.get("rowsUpdatedAt")
    metadata_updated = view.get("viewLastModified")
    updated = max(t for t in (data_updated, metadata_updated, view.get("createdAt")) if t is not None)
    return {
        "id": view["id"],
        "name": view.get("name"),
        "attribution": view.get("attribution"),
        "attributionLink": view.get("attributionLink"),
        "category": view.get("category"),
        "createdAt": iso_timestamp(view.get("createdAt")),
        "dataUpdatedAt": iso_timestamp(data_updated),
        "description": view.get("description") or None,
        "domain": domain,
        "externalId": view.get("externalId"),
        "hideFromCatalog": view.get("hideFromCatalog", False),
        "hideFromDataJson": view.get("hideFromDataJson", False),
        "license": license_name(view),
        "metadataUpdatedAt": iso_timestamp(metadata_updated),
        "provenance": view.get("provenance", "OFFICIAL"),
        "tags": view.get("tags") or None,
        "updatedAt": iso_timestamp(updated),
        "customFields": copy.deepcopy((view.get("metadata") or {}).get("custom_fields")) or None,
        "dataUri": f"{base_url}/resource/{view['id']}",
        "webUri": f"{base_url}/d/{view['id']}",
    }


def _unknown_name_warning(field: str, problem: str, known: Iterable[str]) -> dict[str, str]:
    """A warning for a name the domain does not define; listing the names it does makes the fix plain."""
    return {"field": field, "message": f"{problem} (known: {', '.join(known)})"}


def _merge_custom_fields(
    current: dict[str, dict[str, Any]] | None,
    patch: Any,
    warnings: list[dict[str, str]],
    errors: list[dict[str, str]],
) -> dict[str, dict[str, Any]]:
    """null wipes everything, ``{fieldset: null}`` wipes a fieldset, ``{fieldset: {field: null}}`` clears one."""
    if patch is None:
        return {}
    if not isinstance(patch, dict):
        errors.append({"field": "customFields", "message": "customFields must be an object of fieldsets"})
        return copy.deepcopy(current or {})
    merged = copy.deepcopy(current or {})
    domain_fieldsets = custom_fields()
    for fieldset, fields in patch.items():
        if fieldset not in domain_fieldsets:
            warnings.append(
                _unknown_name_warning(
                    f"customFields.{fieldset}",
                    f"Fieldset {fieldset!r} does not exist on this domain",
                    domain_fieldsets,
                )
            )
        if fields is None:
            merged.pop(fieldset, None)
            continue
        if not isinstance(fields, dict):
            errors.append(
                {"field": f"customFields.{fieldset}", "message": "a fieldset must be an object of fields"}
            )
            continue
        target = merged.setdefault(fieldset, {})
        for field, value in fields.items():
            if fieldset in domain_fieldsets and field not in domain_fieldsets[fieldset]:
                warnings.append(
                    _unknown_name_warning(
                        f"customFields.{fieldset}.{field}",
                        f"Field {field!r} does not exist in fieldset {fieldset!r}",
                        domain_fieldsets[fieldset],
                    )
                )
            if value is None:
                target.pop(field, None)
            elif isinstance(value, str | int | float | bool):
                target[field] = str(value) if not isinstance(value, str) else value
            else:
                errors.append(
                    {"field": f"customFields.{fieldset}.{field}", "message": "a field value must be text"}
                )
        if not target:
            merged.pop(fieldset, None)
    return merged


def apply_patch(
    view: dict[str, Any], patch: Any, strict: bool
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Return (the patched view copy, warnings); raise 400 with every problem when it cannot apply."""
    if not isinstance(patch, dict):
        raise PortalError(400, "invalid_request", "The PATCH body must be a JSON object of metadata fields")
    warnings: list[dict[str, str]] = []
    errors: list[dict[str, str]] = []
    updated = copy.deepcopy(view)
    for key, value in patch.items():
        if key in _READ_ONLY:
            warnings.append({"field": key, "message": f"{key} is read-only and was ignored"})
        elif key in _SIMPLE_FIELDS:
            updated[key] = value
        elif key == "license":
            _set_license(updated, value)
        elif key == "customFields":
            metadata = updated.setdefault("metadata", {})
            metadata["custom_fields"] = _merge_custom_fields(
                metadata.get("custom_fields"), value, warnings, errors
            )
        else:
            warnings.append({"field": key, "message": f"{key} is not a Metadata API field and was ignored"})
    if problem := category_problem(updated.get("category")):
        errors.append({"field": "category", "message": problem})
    tags = updated.get("tags")
    if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        errors.append({"field": "tags", "message": "tags must be a list of text values"})
    if not updated.get("name"):
        errors.append({"field": "name", "message": "name cannot be blank"})
    if strict and warnings:
        errors.extend(warnings)
        warnings = []
    if errors:
        summary = "; ".join(e["message"] for e in errors)
        raise PortalError(
            400,
            "validation_failed",
            f"Metadata is not valid: {summary}",
            {"errors": errors, "warnings": warnings},
        )
    return updated, warnings


def _set_license(view: dict[str, Any], value: Any) -> None:
    if value in (None, ""):
        view.pop("license", None)
        view.pop("licenseId", None)
        return
    license_id = value if value in LICENSES else next((k for k, v in LICENSES.items() if v == value), None)
    view["license"] = {"name": LICENSES.get(license_id or "", str(value))}
    if license_id:
        view["licenseId"] = license_id
    else:
        view.pop("licenseId", None)
