"""Permitted values from the CT Open Data Handbook's metadata standard (data.ct.gov).

Kept as enums so a YAML typo is caught with the list of allowed values, and so the JSON Schema
exported for editors offers them as completions.
"""

from __future__ import annotations

from enum import StrEnum


class Category(StrEnum):
    """The handbook's ten portal categories."""

    BUSINESS = "Business"
    EDUCATION = "Education"
    ENVIRONMENT = "Environment and Natural Resources"
    GOVERNMENT = "Government"
    HEALTH = "Health and Human Services"
    HOUSING = "Housing and Development"
    LOCAL_GOVERNMENT = "Local Government"
    PUBLIC_SAFETY = "Public Safety"
    TAX = "Tax and Revenue"
    TRANSPORTATION = "Transportation"


class UpdateFrequency(StrEnum):
    """The handbook's twelve Update Frequency values."""

    HISTORICAL = "Not updated (historical only)"
    AS_NEEDED = "As needed"
    ANNUALLY = "Annually"
    BI_ANNUALLY = "Bi-annually"
    QUARTERLY = "Quarterly"
    BI_MONTHLY = "Bi-monthly"
    MONTHLY = "Monthly"
    BI_WEEKLY = "Bi-weekly"
    WEEKLY = "Weekly"
    EVERY_WEEKDAY = "Every weekday"
    DAILY = "Daily"
    OTHER = "Other"


class GeographicUnit(StrEnum):
    """The handbook's Geographic Unit values."""

    LAT_LON = "Latitude/longitude"
    STREET_ADDRESS = "Street address"
    PARCEL = "Parcel"
    CENSUS_BLOCK = "Census block"
    BLOCK_GROUP = "Census block group"
    TRACT = "Census tract"
    PLANNING_DISTRICT = "Planning District"
    ZIP = "Zip code"
    MUNICIPALITY = "Municipality"
    COUNTY = "County"
    STATE = "State"
    OTHER = "Other"
    NOT_APPLICABLE = "Not applicable"
