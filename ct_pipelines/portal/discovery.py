"""The Discovery (catalog) API ``/api/catalog/v1``: records shaped like Socrata's, filtering, ordering
and paging over the in-memory views, so auditing a 10,000-dataset catalog stays fast."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ct_pipelines.catalog.portal_fields import custom_field_location, domain_metadata_key
from ct_pipelines.portal.errors import PortalError
from ct_pipelines.portal.metadata_api import iso_timestamp, license_name

MAX_LIMIT = 10_000
DEFAULT_LIMIT = 100

# dataTypeName -> the label the Discovery API lists in columns_datatype
DATATYPE_LABELS = {
    "text": "Text",
    "number": "Number",
    "double": "Number",
    "money": "Money",
    "percent": "Percent",
    "calendar_date": "Calendar date",
    "date": "Date & Time",
    "checkbox": "Checkbox",
    "url": "URL",
    "email": "Email",
    "phone": "Phone",
    "point": "Point",
    "location": "Location",
    "multipoint": "MultiPoint",
    "line": "Line",
    "multiline": "MultiLine",
    "polygon": "Polygon",
    "multipolygon": "MultiPolygon",
}
_ORDER_KEYS = {
    "name": lambda v: (v.get("name") or "").lower(),
    "createdat": lambda v: v.get("createdAt") or 0,
    "updatedat": lambda v: max(v.get("rowsUpdatedAt") or 0, v.get("viewLastModified") or 0),
    "data_updated_at": lambda v: v.get("rowsUpdatedAt") or 0,
    "metadata_updated_at": lambda v: v.get("viewLastModified") or 0,
    "page_views_total": lambda v: v.get("viewCount") or 0,
    "download_count": lambda v: v.get("downloadCount") or 0,
    "relevance": lambda v: v["id"],
    "id": lambda v: v["id"],
}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-") or "dataset"


def catalog_record(view: dict[str, Any], base_url: str, domain: str) -> dict[str, Any]:
    # one literal in the shape of a Discovery API record (its length is that shape, not logic)
    columns = view.get("columns") or []
    metadata = view.get("metadata") or {}
    custom = metadata.get("custom_fields") or {}
    contact_location = custom_field_location("contact")
    contact_email = view.get("contactEmail") or (
        custom.get(contact_location[0], {}).get(contact_location[1]) if contact_location else None
    )
    owner = view.get("owner") or {}
    person = {"id": owner.get("id"), "user_type": "interactive", "display_name": owner.get("displayName")}
    updated = max(
        t for t in (view.get("rowsUpdatedAt"), view.get("viewLastModified"), view.get("createdAt")) if t
    )
    category = view.get("category")
    return {
        "resource": {
            "name": view.get("name"),
            "id": view["id"],
            "parent_fxf": [],
            "description": view.get("description") or "",
            "attribution": view.get("attribution"),
            "attribution_link": view.get("attributionLink"),
            "contact_email": contact_email,
            "type": "dataset",
            "updatedAt": iso_timestamp(updated),
            "createdAt": iso_timestamp(view.get("createdAt")),
            "metadata_updated_at": iso_timestamp(view.get("viewLastModified")),
            "data_updated_at": iso_timestamp(view.get("rowsUpdatedAt")),
            "publication_date": iso_timestamp(view.get("publicationDate")),
            "page_views": {
                "page_views_last_week": 0,
                "page_views_last_month": 0,
                "page_views_total": view.get("viewCount") or 0,
                "page_views_last_week_log": 0.0,
                "page_views_last_month_log": 0.0,
                "page_views_total_log": 0.0,
            },
            "columns_name": [c.get("name") for c in columns],
            "columns_field_name": [c.get("fieldName") for c in columns],
            "columns_datatype": [
                DATATYPE_LABELS.get(c.get("dataTypeName"), c.get("dataTypeName")) for c in columns
            ],
            "columns_description": [c.get("description") or "" for c in columns],
            "columns_format": [c.get("format") or {} for c in columns],
            "download_count": view.get("downloadCount") or 0,
            "provenance": (view.get("provenance") or "official").lower(),
            "lens_status": "published" if view.get("publicationStage") == "published" else "unpublished",
            "lens_display_type": "table",
            "lens_view_type": "tabular",
            "locked": False,
            "hide_from_catalog": view.get("hideFromCatalog", False),
            "hide_from_data_json": view.get("hideFromDataJson", False),
        },
        "classification": {
            "categories": [],
            "tags": [],
            "domain_category": category,
            "domain_tags": list(view.get("tags") or []),
            "domain_metadata": [
                {"key": domain_metadata_key(fieldset, field), "value": value}
                for fieldset, fields in custom.items()
                for field, value in (fields or {}).items()
            ],
        },
        "metadata": {
            "domain": domain,
            "license": license_name(view),
            "is_public": view.get("isPublic", True),
        },
        "permalink": f"{base_url}/d/{view['id']}",
        "link": f"{base_url}/{_slug(category or 'dataset')}/{_slug(view.get('name') or '')}/{view['id']}",
        "owner": person,
        "creator": person,
    }


def _int_param(params: Sequence[tuple[str, str]], name: str, default: int) -> int:
    values = [v for k, v in params if k == name]
    if not values:
        return default
    try:
        number = int(values[-1])
    except ValueError as exc:
        raise PortalError(
            400, "invalid_request", f"{name} must be a whole number, got {values[-1]!r}"
        ) from exc
    if number < 0:
        raise PortalError(400, "invalid_request", f"{name} cannot be negative")
    return number


def _truthy(text: str) -> bool:
    return text.strip().lower() in ("true", "1", "yes")


def search_catalog(
    views: list[dict[str, Any]],
    params: Sequence[tuple[str, str]],
    base_url: str,
    domains: set[str],
    domain: str,
) -> dict[str, Any]:
    """Filter, order and page like the Discovery API; ``resultSetSize`` is the count before paging."""
    limit = _int_param(params, "limit", DEFAULT_LIMIT)
    if limit > MAX_LIMIT:
        raise PortalError(400, "invalid_request", f"limit must be at most {MAX_LIMIT}")
    offset = _int_param(params, "offset", 0)

    def multi(name: str) -> list[str]:
        return [v for k, v in params if k == name]

    asked_domains = multi("domains") + multi("search_context")
    if asked_domains and not domains.intersection(d.lower() for d in asked_domains):
        selected: list[dict[str, Any]] = []
    else:
        selected = views
    ids = set(multi("ids"))
    if ids:
        selected = [v for v in selected if v["id"] in ids]
    if categories := {c.lower() for c in multi("categories")}:
        selected = [v for v in selected if (v.get("category") or "").lower() in categories]
    if tags := {t.lower() for t in multi("tags")}:
        selected = [v for v in selected if tags & {t.lower() for t in v.get("tags") or []}]
    only = {o.lower() for o in multi("only")}
    if only and not only & {"dataset", "datasets"}:
        selected = []
    single = {k: v for k, v in params}
    if "q" in single:
        words = single["q"].lower().split()
        selected = [v for v in selected if all(w in _search_text(v) for w in words)]
    if "attribution" in single:
        selected = [v for v in selected if (v.get("attribution") or "") == single["attribution"]]
    if "published" in single:
        want = _truthy(single["published"])
        selected = [v for v in selected if (v.get("publicationStage") == "published") == want]
    if "public" in single:
        want = _truthy(single["public"])
        selected = [v for v in selected if bool(v.get("isPublic", True)) == want]
    selected = _ordered(selected, single.get("order", "relevance"))
    page = selected[offset : offset + limit]
    return {
        "results": [catalog_record(v, base_url, domain) for v in page],
        "resultSetSize": len(selected),
        "timings": {"serviceMillis": 0, "searchMillis": [0, 0]},
    }


def _search_text(view: dict[str, Any]) -> str:
    return " ".join(
        [view.get("name") or "", view.get("description") or "", *(view.get("tags") or [])]
    ).lower()


def _ordered(views: list[dict[str, Any]], order: str) -> list[dict[str, Any]]:
    parts = order.strip().split()
    key_name = parts[0].lower() if parts else "relevance"
    descending = len(parts) > 1 and parts[1].upper() == "DESC"
    if key_name not in _ORDER_KEYS:
        raise PortalError(
            400,
            "invalid_request",
            f"Cannot order by {parts[0]!r}; use one of {', '.join(sorted(_ORDER_KEYS))}",
        )
    key = _ORDER_KEYS[key_name]
    # id as tie-breaker keeps paging stable when many datasets share a timestamp
    ordered = sorted(views, key=lambda v: v["id"])
    return sorted(ordered, key=key, reverse=descending)
