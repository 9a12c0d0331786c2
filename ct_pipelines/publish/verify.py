"""Step 5 of a publish: check that the portal holds exactly what was sent.

Kept apart so both the sender (a chunk whose answer lists row errors) and the final count check
raise the same error type, which callers treat as "the portal does not hold what we sent".
"""

from __future__ import annotations

import requests

from ct_pipelines.core.outcomes import CheckOutcome, Severity
from ct_pipelines.publish.connection import PortalConnection, PublishError
from ct_pipelines.publish.specs import VERIFY_CHECK


class PublishVerificationError(PublishError):
    """The portal does not hold what we sent (row count differs or an answer reported errors)."""


def portal_count(portal: PortalConnection, four_by_four: str) -> int:
    """Rows the portal holds for ``four_by_four`` (a SoQL ``count(*)``)."""
    try:
        answer = portal.client.get(four_by_four, select="count(*)")
    except requests.exceptions.RequestException as exc:
        raise portal.describe_failure(f"Counting the rows of {four_by_four}", exc) from None
    if not answer or not isinstance(answer, list) or not isinstance(answer[0], dict) or not answer[0]:
        raise PublishError(f"The portal gave no row count for {four_by_four}.")
    return int(float(next(iter(answer[0].values()))))


def verify_outcome(portal_rows: int, expected: int, counters: dict[str, int], described: str) -> CheckOutcome:
    """ERROR unless the portal's row count is the table's and no chunk reported row errors."""
    verified = portal_rows == expected and counters["errors"] == 0
    summary = (
        f"The portal now holds {portal_rows:,} rows, as expected ({described})."
        if verified
        else f"The portal holds {portal_rows:,} rows but {expected:,} were expected ({described})."
    )
    return CheckOutcome(
        VERIFY_CHECK,
        verified,
        Severity.ERROR,
        summary,
        {
            "portal_row_count": portal_rows,
            "expected_row_count": expected,
            "rows_created": counters["created"],
            "rows_updated": counters["updated"],
            "rows_deleted": counters["deleted"],
            "errors": counters["errors"],
        },
    )
