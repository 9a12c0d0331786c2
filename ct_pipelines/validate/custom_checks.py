"""Named checks a dataset can list under a column's ``checks:`` (e.g. ``checks: [ct_town]``).

Each check is a DuckDB SQL condition over the column's trimmed text; the validate stage puts it in the
one scan that types the rows and flags every rule, so a check costs one expression per row, never a query.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ct_pipelines.core.sql import quote_literal
from ct_pipelines.validate.parsing import sql_member

# The 169 towns of Connecticut (Connecticut has no unincorporated land; cities and boroughs lie within them).
CT_TOWNS: tuple[str, ...] = (
    "Andover", "Ansonia", "Ashford", "Avon", "Barkhamsted", "Beacon Falls", "Berlin", "Bethany", "Bethel",
    "Bethlehem", "Bloomfield", "Bolton", "Bozrah", "Branford", "Bridgeport", "Bridgewater", "Bristol",
    "Brookfield", "Brooklyn", "Burlington", "Canaan", "Canterbury", "Canton", "Chaplin", "Cheshire",
    "Chester", "Clinton", "Colchester", "Colebrook", "Columbia", "Cornwall", "Coventry", "Cromwell",
    "Danbury", "Darien", "Deep River", "Derby", "Durham", "East Granby", "East Haddam", "East Hampton",
    "East Hartford", "East Haven", "East Lyme", "East Windsor", "Eastford", "Easton", "Ellington", "Enfield",
    "Essex", "Fairfield", "Farmington", "Franklin", "Glastonbury", "Goshen", "Granby", "Greenwich",
    "Griswold", "Groton", "Guilford", "Haddam", "Hamden", "Hampton", "Hartford", "Hartland", "Harwinton",
    "Hebron", "Kent", "Killingly", "Killingworth", "Lebanon", "Ledyard", "Lisbon", "Litchfield", "Lyme",
    "Madison", "Manchester", "Mansfield", "Marlborough", "Meriden", "Middlebury", "Middlefield",
    "Middletown", "Milford", "Monroe", "Montville", "Morris", "Naugatuck", "New Britain", "New Canaan",
    "New Fairfield", "New Hartford", "New Haven", "New London", "New Milford", "Newington", "Newtown",
    "Norfolk", "North Branford", "North Canaan", "North Haven", "North Stonington", "Norwalk", "Norwich",
    "Old Lyme", "Old Saybrook", "Orange", "Oxford", "Plainfield", "Plainville", "Plymouth", "Pomfret",
    "Portland", "Preston", "Prospect", "Putnam", "Redding", "Ridgefield", "Rocky Hill", "Roxbury", "Salem",
    "Salisbury", "Scotland", "Seymour", "Sharon", "Shelton", "Sherman", "Simsbury", "Somers",
    "South Windsor", "Southbury", "Southington", "Sprague", "Stafford", "Stamford", "Sterling",
    "Stonington", "Stratford", "Suffield", "Thomaston", "Thompson", "Tolland", "Torrington", "Trumbull",
    "Union", "Vernon", "Voluntown", "Wallingford", "Warren", "Washington", "Waterbury", "Waterford",
    "Watertown", "West Hartford", "West Haven", "Westbrook", "Weston", "Westport", "Wethersfield",
    "Willington", "Wilton", "Winchester", "Windham", "Windsor", "Windsor Locks", "Wolcott", "Woodbridge",
    "Woodbury", "Woodstock",
)  # fmt: skip

# County FIPS codes: the eight historical counties and the nine planning regions the Census Bureau
# adopted as county equivalents in 2022; extracts from either era are valid.
CT_COUNTY_FIPS: tuple[str, ...] = (
    "09001", "09003", "09005", "09007", "09009", "09011", "09013", "09015",
    "09110", "09120", "09130", "09140", "09150", "09160", "09170", "09180", "09190",
)  # fmt: skip


@dataclass(frozen=True)
class CustomCheck:
    """A reusable rule: ``passes`` gets SQL for the trimmed, non-empty text and returns SQL true for good values."""

    name: str
    failure_phrase: str  # completes "12 rows have a <column> that ..."
    passes: Callable[[str], str]


def _ct_town(value: str) -> str:
    return sql_member(f"lower({value})", [town.lower() for town in CT_TOWNS])


def _full_match(pattern: str) -> Callable[[str], str]:
    anchored = quote_literal(f"^(?:{pattern})$")
    return lambda value: f"regexp_matches({value}, {anchored})"


REGISTRY: dict[str, CustomCheck] = {
    check.name: check
    for check in (
        CustomCheck("ct_town", "is not one of Connecticut's 169 towns", _ct_town),
        CustomCheck(
            "zip_ct", "is not a Connecticut ZIP code (06xxx)", _full_match(r"06[0-9]{3}(-[0-9]{4})?")
        ),
        CustomCheck("email", "is not an e-mail address", _full_match(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")),
        CustomCheck(
            "fips_county_ct",
            "is not a Connecticut county or planning-region FIPS code",
            lambda value: sql_member(value, CT_COUNTY_FIPS),
        ),
        CustomCheck(
            "phone_us",
            "is not a 10-digit US phone number",
            _full_match(r"(\+?1[ .-]?)?\(?[0-9]{3}\)?[ .-]?[0-9]{3}[ .-]?[0-9]{4}"),
        ),
    )
}


def get_check(name: str) -> CustomCheck:
    """Look up a named check, with an error that lists the valid names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"unknown custom check '{name}'; available checks: {', '.join(sorted(REGISTRY))}"
        ) from None
