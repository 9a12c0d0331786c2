"""The ingest stage's checks, from the YAML alone. A file that cannot be read fails the stage with its
reason; a path pattern, which several deliveries can match at once, gets a check that none was passed
over."""

from __future__ import annotations

from ct_pipelines.catalog.models import Dataset
from ct_pipelines.core.outcomes import CheckSpec
from ct_pipelines.ingest.landing import names_several_files

UNREAD_ARRIVALS = "no_delivery_passed_over"


def ingest_check_specs(dataset: Dataset) -> list[CheckSpec]:
    if not names_several_files(dataset.ingest.path):
        return []
    complete = dataset.ingest.each_file_complete
    return [
        CheckSpec(
            name=UNREAD_ARRIVALS,
            description=(
                "No file matching ingest.path was passed over: a run reads only the newest, as the whole "
                "dataset, so an older file not yet read stops the run"
                + (" (a warning here: every file holds the whole dataset)" if complete else "")
            ),
            blocking=not complete,
        )
    ]
