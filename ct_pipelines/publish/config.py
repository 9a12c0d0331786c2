"""YAML options for sending a dataset to the portal (the ``portal:`` block)."""

from __future__ import annotations

import re

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

FOUR_BY_FOUR = re.compile(r"^[a-z0-9]{4}-[a-z0-9]{4}$")


class PublishConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(None, description="Socrata 4x4 of the target dataset; empty until it is created")
    create_if_missing: bool = Field(True, description="Create the dataset on the portal on first publish")
    full_replace: bool = Field(False, description="Replace the whole dataset instead of sending changes")
    max_shrink_share: float = Field(
        0.10,
        ge=0,
        le=1,
        # ``max_shrink`` is the key's earlier name; files that use it keep working
        validation_alias=AliasChoices("max_shrink_share", "max_shrink"),
        description="Refuse to publish when the row count fell by more than this share since the last "
        "publish (override for one run: ct-pipelines run --allow-shrink)",
    )
    max_delete_share: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Refuse an incremental publish that deletes more than this share of the portal's rows "
        "(override for one run: ct-pipelines run --allow-deletes)",
    )
    allow_empty: bool = False
    chunk_rows: int = Field(10_000, ge=1)
    chunk_bytes: int = Field(8_000_000, ge=1024)
    max_in_flight: int = Field(
        2,
        ge=1,
        le=8,
        description="Upsert chunks sent at once, so the portal applies one while the next travels "
        "(1 sends them one by one; a full replace is always one request)",
    )

    @field_validator("id")
    @classmethod
    def _four_by_four(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not FOUR_BY_FOUR.match(value):
            raise ValueError("must be a Socrata 4x4 id like 'abcd-1234' (lowercase letters and digits)")
        return value
