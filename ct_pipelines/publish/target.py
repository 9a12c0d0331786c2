"""Which portal dataset a publish writes to, created at most once.

Creating a dataset is the one write that is not idempotent: when the answer to the create call is
lost (the connection dropped after the portal made the view) or the publication call fails, a naive
rerun makes a second dataset and leaves the first one orphaned. So:

- every dataset we create carries a marker tag naming the pipeline's dataset id
  (``ct-pipelines:<dataset id>``), set in the create call itself;
- the new 4x4 is saved in the warehouse (``portal_targets``) as soon as the create answers, before
  the publication call, so a failed publication is retried on the same dataset next run;
- before creating, the catalog (``/api/catalog/v1?tags=<marker>``, which both Socrata's Discovery
  API and the local portal filter by tag) is searched for a view carrying the marker, published or
  not; one found is adopted instead of creating another, and more than one is refused.

The marker lives in the tags, and every metadata sync keeps it (``metadata.keeps_marker``): the YAML's
tags are written with the marker added, and the marker is not a difference to write. So a dataset stays
findable for the life of the dataset, also when the warehouse that recorded its 4x4 is lost or rebuilt:
the next run adopts it instead of creating a second one. Socrata's catalog is indexed asynchronously
(unverified how fast), so a rerun within seconds of a lost answer may not see the marker yet; it is
meant for the next scheduled run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests

from ct_pipelines.catalog.models import Dataset
from ct_pipelines.publish.connection import PortalConnection, PublishError
from ct_pipelines.publish.metadata import column_specs, desired_metadata, marker_tag
from ct_pipelines.publish.serialize import TableColumn


def find_marked_views(portal: PortalConnection, dataset: Dataset) -> list[str]:
    """4x4s of the portal datasets carrying ``dataset``'s marker, published or not."""
    marker = marker_tag(dataset.id)
    found: list[str] = []
    # Socrata's catalog may leave unpublished working copies out unless asked for them (unverified),
    # so both are asked for; the local portal answers the first with both
    for filters in ({}, {"published": "false"}):
        try:
            records = portal.client.datasets(tags=[marker], **filters)
        except requests.exceptions.RequestException as exc:
            raise portal.describe_failure(
                f"Searching {portal.domain} for a dataset already created for '{dataset.id}'", exc
            ) from None
        for record in records:
            tags = {str(t).lower() for t in (record.get("classification") or {}).get("domain_tags") or []}
            view_id = (record.get("resource") or {}).get("id")
            if marker in tags and view_id and view_id not in found:
                found.append(view_id)
    if len(found) > 1:
        raise PublishError(
            f"{len(found)} datasets on {portal.domain} carry the marker tag '{marker}' ({', '.join(found)}); "
            f"delete the extra ones on the portal, or set publish.id in the dataset YAML of '{dataset.id}' "
            "to the one to keep."
        )
    return found


def create_dataset(
    portal: PortalConnection,
    dataset: Dataset,
    columns: list[TableColumn],
    record: Callable[[str], None],
) -> str:
    """Create the dataset with the marker tag, ``record`` its 4x4 at once, then publish it; returns
    the 4x4. The create is not retried blindly: a lost answer is found by the marker next run."""
    body = desired_metadata(dataset, marked=True)
    try:
        with portal.without_write_retries() as client:
            created = client.create(
                body["name"],
                description=body["description"],
                columns=column_specs(dataset, columns),
                category=body["category"],
                tags=body["tags"],
                row_identifier=dataset.row_identifier,
            )
    except requests.exceptions.RequestException as exc:
        failure = portal.describe_failure(f"Creating dataset '{dataset.title}' on {portal.domain}", exc)
        raise PublishError(
            f"{failure}. Run the publish again: a dataset the portal made without answering is found "
            f"by its marker tag '{marker_tag(dataset.id)}' and used, not created twice."
        ) from None
    four_by_four = str(created["id"])
    record(four_by_four)
    return publish_view(portal, four_by_four, record)


def publish_view(portal: PortalConnection, four_by_four: str, record: Callable[[str], None]) -> str:
    """Take a new dataset out of draft; the portal may answer with the published 4x4."""
    try:
        published = portal.client.publish(four_by_four)
    except requests.exceptions.RequestException as exc:
        failure = portal.describe_failure(f"Publishing the new dataset {four_by_four}", exc)
        raise PublishError(f"{failure}. Run the publish again; it finishes {four_by_four}.") from None
    if isinstance(published, dict) and published.get("id") and published["id"] != four_by_four:
        four_by_four = str(published["id"])
        record(four_by_four)
    return four_by_four


def ensure_published(
    portal: PortalConnection,
    dataset: Dataset,
    view: dict[str, Any],
    record: Callable[[str], None],
) -> str:
    """Publish a dataset this pipeline created whose publication call failed last run (it is still a
    draft and carries our marker); anyone else's draft is left alone."""
    four_by_four = str(view.get("id"))
    tags = {str(t).lower() for t in view.get("tags") or []}
    if view.get("publicationStage") == "unpublished" and marker_tag(dataset.id) in tags:
        return publish_view(portal, four_by_four, record)
    return four_by_four
