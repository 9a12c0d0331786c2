"""The dataset catalog format: one YAML file per dataset, parsed into these pydantic models.

Agencies join the pipeline by writing one of these files; every field has a description so the
exported JSON Schema gives editors autocompletion and hover help.
"""

from __future__ import annotations

import re
import warnings
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from ct_pipelines.catalog.blocks.protect import ProtectConfig, ProtectMode
from ct_pipelines.catalog.blocks.publish import PublishConfig
from ct_pipelines.catalog.blocks.standardize import (
    REPORTING_GROUP_COLUMN,
    ReportingRule,
    StandardizeConfig,
    standardized_columns,
)
from ct_pipelines.catalog.blocks.validate import ValidateConfig, ValueFormat
from ct_pipelines.catalog.handbook import Category, GeographicUnit, UpdateFrequency
from ct_pipelines.core.outcomes import Severity

SLUG = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
FIELD_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
#: Names the pipeline gives its own columns: ``_row``/``_line`` (source positions) and anything with a double
#: underscore (validation's helper columns such as ``__m0`` and ``age__text``). Names made from a header never
#: take these forms; a field_name that did would overwrite one of them.
RESERVED_FIELD = re.compile(r"^_(row|line)$|__")


def _check_field_name(value: str) -> str:
    if not FIELD_NAME.match(value):
        raise ValueError(
            "must be lowercase letters, digits and underscores, start with a letter or _, "
            "and be at most 63 characters"
        )
    if RESERVED_FIELD.search(value):
        raise ValueError(
            "must not be _row or _line or contain two underscores in a row: the pipeline names its own "
            "columns that way"
        )
    return value


class ColumnType(StrEnum):
    TEXT = "text"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    CODE = "code"  # text that keeps leading zeros (ZIP, FIPS, town codes)

    @property
    def duckdb_type(self) -> str:
        return {
            "text": "VARCHAR",
            "integer": "BIGINT",
            "number": "DOUBLE",
            "boolean": "BOOLEAN",
            "date": "DATE",
            "datetime": "TIMESTAMP",
            "code": "VARCHAR",
        }[self.value]

    @property
    def socrata_type(self) -> str:
        return {
            "text": "text",
            "integer": "number",
            "number": "number",
            "boolean": "checkbox",
            "date": "calendar_date",
            "datetime": "calendar_date",
            "code": "text",
        }[self.value]


class SourceFormat(StrEnum):
    AUTO = "auto"
    CSV = "csv"
    EXCEL = "excel"
    JSON = "json"
    PARQUET = "parquet"


class LeaveOutRule(BaseModel):
    """Rows that are not data (a footer ``Total`` row, a notes line), left out at ingest and counted by name."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1, description="Named in lineage: rows left out by this rule are counted under it"
    )
    column: str | None = Field(
        None,
        description="Source column whose trimmed value is tested; the row's first non-empty cell when empty",
    )
    equals: str | None = Field(None, description="Leave the row out when the value is exactly this text")
    matches: str | None = Field(
        None, description="Leave the row out when the value matches this regular expression"
    )
    max_rows: int | None = Field(
        None, ge=1, description="Refuse the file when the rule would leave out more rows than this"
    )

    @model_validator(mode="after")
    def _one_test(self) -> LeaveOutRule:
        if (self.equals is None) == (self.matches is None):
            raise ValueError("give exactly one of `equals` or `matches`")
        if self.matches is not None:
            try:
                re.compile(self.matches)
            except re.error as exc:
                raise ValueError(f"`matches` is not a valid regular expression: {exc}") from exc
        return self


class Unpivot(BaseModel):
    """A wide table whose columns are values of one dimension (one count column per race group), made long."""

    model_config = ConfigDict(extra="forbid")

    columns: list[str] = Field(min_length=2, description="Source column names that become values of `name`")
    name: str = Field(description="Field name of the new column holding the former column names")
    value: str = Field(description="Field name of the new column holding the cells")

    @field_validator("name", "value")
    @classmethod
    def _field_name(cls, value: str) -> str:
        return _check_field_name(value)


class Source(BaseModel):
    """Where the agency drops its extract and how to read it."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(
        description="File name or glob in the landing folder, or an sftp:// or s3:// URL under a declared "
        "remote landing folder; the newest match is read"
    )
    format: SourceFormat = Field(SourceFormat.AUTO, description="auto picks by file extension")
    encoding: str = Field("auto", description="auto, or a Python codec name such as utf-8, cp1252, utf-16")
    sheet: str | int | None = Field(
        None, description="Excel sheet name or 0-based index; first sheet by default"
    )
    header_row: int | None = Field(
        None, ge=1, description="1-based line of the header; detected when empty (title rows are skipped)"
    )
    delimiter: Literal[",", "\t", "|", ";"] | None = Field(None, description="Detected when empty")
    leave_out: list[LeaveOutRule] = Field(
        default_factory=list, description="Rows that are not data, left out at ingest and counted per rule"
    )
    unpivot: Unpivot | None = Field(None, description="Turn one-column-per-category into rows (wide to long)")
    settle_seconds: int = Field(
        60,
        ge=0,
        description="The landing sensor starts a run only after the file's size and modification time stay "
        "unchanged across two checks this many seconds apart; 0 when the agency writes under a name "
        "outside `path` and renames the finished file into place (atomic rename)",
    )
    ready_marker: str | None = Field(
        None,
        pattern=r"^\.[A-Za-z0-9_-]+$",
        description="Suffix of an empty file the agency writes after the extract (e.g. .done for "
        "extract.csv.done); when set, a file is read only once its marker is there",
    )
    each_file_complete: bool = Field(
        False,
        description="With a path pattern: every delivery holds the whole dataset, so a newer file makes "
        "any older one not yet read out of date (the ingest check then warns instead of stopping the run)",
    )

    @field_validator("leave_out")
    @classmethod
    def _unique_rule_names(cls, rules: list[LeaveOutRule]) -> list[LeaveOutRule]:
        names = [r.name for r in rules]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"rule names must be unique; repeated: {', '.join(repeated)}")
        return rules


class Column(BaseModel):
    """One column of the extract, its rules and its portal description."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(description="Column name as it appears in the extract")
    field_name: str | None = Field(
        None, description="Portal API field name; derived from the source name when empty"
    )
    type: ColumnType = ColumnType.TEXT
    description: str = Field("", description="Plain-language description shown on the portal")
    required: bool = Field(False, description="Rows with an empty value are quarantined")
    unique: bool = Field(False, description="Rows repeating a value are quarantined")
    allowed_values: list[str] | None = Field(None, description="Values outside the list are quarantined")
    min: float | None = Field(None, description="Smallest allowed value (numbers, or a date as YYYY-MM-DD)")
    max: float | None = Field(None, description="Largest allowed value")
    pattern: str | None = Field(None, description="Regular expression the whole value must match")
    not_in_future: bool = Field(False, description="Dates after today are quarantined")
    checks: list[str] = Field(default_factory=list, description="Named custom checks from the registry")
    severity: Severity = Field(Severity.ERROR, description="Severity of this column's rule failures")
    pii: bool = Field(False, description="Personally identifiable: never published, masked in samples")
    width: int | None = Field(
        None, ge=1, le=64, description="type code: numeric cells are left-padded with zeros to this width"
    )
    format: ValueFormat | None = Field(None, description="How numbers or dates are written in this column")
    null_values: list[str] | None = Field(
        None, description="Cells meaning 'no value' in this column; replaces quality.null_values"
    )
    suppressed_values: list[str] | None = Field(
        None, description="Markers of values suppressed at the source; replaces quality.suppressed_values"
    )

    @field_validator("field_name")
    @classmethod
    def _field_name(cls, value: str | None) -> str | None:
        return value if value is None else _check_field_name(value)

    @field_validator("format", mode="before")
    @classmethod
    def _date_format_as_text(cls, value: Any) -> Any:
        """``format: '%m/%d/%Y'``, as people write it, is the date format ``{date: ['%m/%d/%Y']}``."""
        if isinstance(value, str) and "%" in value:
            return {"date": [value]}
        if isinstance(value, str):
            raise ValueError(
                f"'{value}' is not a date format (no % directive); write dates like '%m/%d/%Y', or numbers as "
                "{decimal: ',', thousands: '.'}"
            )
        return value

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"is not a valid regular expression: {exc}") from exc
        return value

    @property
    def suppressed_flag(self) -> str:
        """The boolean column validation adds beside a column with suppressed_values: true where the
        source suppressed the value (which is then empty)."""
        return f"{self.field_name}_suppressed"


# Old block names (before each block took the name of the stage that reads it) and their new names.
# ``publish:`` once configured the protect stage; a file is in the old layout when it uses any old name.
LEGACY_BLOCKS = {"source": "ingest", "quality": "validate", "rel": "standardize", "portal": "publish"}
_PROTECT_ONLY_KEYS = set(ProtectConfig.model_fields) - set(PublishConfig.model_fields)


def upgrade_legacy_blocks(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The document with old block names renamed, and ``{old: new}`` for each rename made."""
    publish = data.get("publish")
    old_publish = isinstance(publish, dict) and bool(publish) and set(publish) <= _PROTECT_ONLY_KEYS
    if not (old_publish or any(key in data for key in LEGACY_BLOCKS)):
        return data, {}
    renamed: dict[str, str] = {}
    out = {k: v for k, v in data.items() if k not in LEGACY_BLOCKS and k != "publish"}
    if "publish" in data:
        out["protect" if (old_publish or "portal" in data) else "publish"] = data["publish"]
        if old_publish or "portal" in data:
            renamed["publish"] = "protect"
    for old, new in LEGACY_BLOCKS.items():
        if old in data:
            if new in out and new != "publish":
                raise ValueError(f"both '{old}:' and '{new}:' are given; keep only '{new}:'")
            out[new] = data[old]
            renamed[old] = new
    return out, renamed


# The block is named after its stage; it shadows pydantic's deprecated ``BaseModel.validate``, unused here.
warnings.filterwarnings("ignore", message='Field name "validate" in "Dataset" shadows', category=UserWarning)


class Dataset(BaseModel):
    """One dataset: what it is, where it comes from, how it is checked and where it is published."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Slug: lowercase letters, digits and underscores; names the Dagster assets")
    title: str = Field(min_length=3, description="Plain-language title, no acronyms")
    description: str = Field(min_length=10)
    agency: str = Field(min_length=2, description="Publishing agency, e.g. Department of Public Health")
    category: Category
    tags: list[str] = Field(default_factory=list)
    update_frequency: UpdateFrequency
    license: str = Field("Public Domain", description="Public license type")
    contact: str = Field(
        description="Contact e-mail for the dataset owner, shown publicly (portal metadata, data.json contactPoint): use a team mailbox, not a person"
    )
    attribution: str | None = Field(None, description="Data provided by; defaults to the agency")
    source_link: str | None = None
    row_label: str | None = Field(None, description="What each row represents")
    geographic_unit: GeographicUnit | None = None
    temporal_coverage: str | None = None
    columns: list[Column] = Field(default_factory=list)
    row_identifier: str | None = Field(
        None, description="API field name that identifies a row; needed for incremental publishing"
    )
    # One block per stage, named after it, in the order the stages run.
    ingest: Source = Field(description="ingest: where the extract lands and how to read it")
    validate: ValidateConfig = Field(
        default_factory=ValidateConfig, description="validate: data-quality gates"
    )
    standardize: StandardizeConfig | None = Field(
        None, description="standardize: race, ethnicity and language"
    )
    protect: ProtectConfig = Field(
        default_factory=ProtectConfig, description="protect: the table the portal gets"
    )
    publish: PublishConfig = Field(
        default_factory=PublishConfig, description="publish: sending it to the portal"
    )
    # Set by the loader, not written in YAML: notes on old block names, and the file the dataset came from.
    deprecations: SkipJsonSchema[list[str]] = Field(default_factory=list, exclude=True)
    definition_file: SkipJsonSchema[Path | None] = Field(None, exclude=True)

    def sql_folder(self, default: Path) -> Path:
        """Where the protect stage's SQL file is: beside this dataset's YAML when it is there (a catalog
        brings its own SQL), else the project's default folder."""
        sql_file = self.protect.sql_file
        if sql_file and self.definition_file and (self.definition_file.parent / sql_file).is_file():
            return self.definition_file.parent
        return default

    @model_validator(mode="before")
    @classmethod
    def _legacy_layout(cls, data: Any) -> Any:
        """Files written before the blocks took their stages' names still load, with a note."""
        if isinstance(data, dict):
            upgraded, renamed = upgrade_legacy_blocks(data)
            if renamed:
                upgraded = dict(upgraded)
                upgraded["deprecations"] = [
                    f"the '{old}:' block is now called '{new}:'" for old, new in renamed.items()
                ]
            return upgraded
        return data

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SLUG.match(value):
            raise ValueError(
                "must start with a letter and use only lowercase letters, digits and underscores"
            )
        return value

    @field_validator("contact")
    @classmethod
    def _email(cls, value: str) -> str:
        if not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", value):
            raise ValueError("must be an e-mail address such as data.officer@ct.gov")
        return value

    @model_validator(mode="after")
    def _cross_field_rules(self) -> Dataset:
        from ct_pipelines.catalog.naming import field_names_for

        names = field_names_for([c.source for c in self.columns], [c.field_name for c in self.columns])
        for column, name in zip(self.columns, names, strict=True):
            column.field_name = name
        if self.ingest.unpivot:  # the wide columns are gone after ingest; declare `value` instead
            wide = {" ".join(c.split()).casefold() for c in self.ingest.unpivot.columns}
            clash = [c.source for c in self.columns if " ".join(c.source.split()).casefold() in wide]
            if clash:
                raise ValueError(
                    f"columns {', '.join(clash)} are listed in ingest.unpivot.columns, so they do not "
                    f"exist after ingest; remove them from columns: and declare "
                    f"'{self.ingest.unpivot.value}' (and '{self.ingest.unpivot.name}') instead"
                )
            repeated = [c.source for c in self.columns if c.unique and c.source != self.ingest.unpivot.value]
            if repeated and len(wide) > 1:
                raise ValueError(
                    f"columns {', '.join(repeated)} are marked unique, but ingest.unpivot repeats each row once "
                    f"per listed column ({len(wide)} times), so every value would be set aside as a duplicate; "
                    "remove unique from them"
                )
        if self.row_identifier:
            self._check_row_identifier(names)
        self._check_header_names(names)
        if self.attribution is None:
            self.attribution = self.agency
        return self

    def _check_header_names(self, names: list[str]) -> None:
        """Columns named by the extract's header ('Race', 'TOTAL_CIP') instead of their field names ('race',
        'total_cip') in standardize or an aggregate: validate passed them and the run then failed."""
        by_source = {c.source.casefold(): c.field_name for c in self.columns}

        def refuse(block: str, written: str | None) -> None:
            field = by_source.get(written.casefold()) if written else None
            if written and written not in names and field:
                raise ValueError(
                    f"{block} column '{written}' is the extract's header, not a field name; write the field "
                    f"name, '{field}'"
                )

        for rel_column in self.standardize.columns if self.standardize else []:
            refuse("standardize", rel_column.column)
        aggregate = self.protect.aggregate if self.protect.mode == ProtectMode.AGGREGATE else None
        if aggregate is not None:
            for dimension in aggregate.dimension_specs:
                refuse("protect", dimension.name)
            for measure in aggregate.measures:
                refuse("protect", measure.column)

    def _check_row_identifier(self, names: list[str]) -> None:
        """The row identifier must be a published column that tells rows apart: a personal column is
        never published, and an aggregate has one row per combination of its dimensions."""
        key = self.row_identifier
        if key in self.pii_fields:
            raise ValueError(
                f"row_identifier '{key}' is marked pii: true, and personal columns are never published; name "
                "a published column that is unique per row, or remove row_identifier to replace the whole "
                "dataset at each publish"
            )
        if self.protect.mode == ProtectMode.AGGREGATE and self.protect.aggregate is not None:
            dimensions = [d.name for d in self.protect.aggregate.dimension_specs]
            if dimensions != [key]:
                raise ValueError(
                    f"row_identifier '{key}' does not identify a row of the aggregate, which has one row per "
                    f"combination of {', '.join(dimensions)}; remove row_identifier (an aggregate is "
                    "replaced whole at each publish)"
                )
        elif self.protect.mode == ProtectMode.ROWS and self.columns and key not in names:
            from ct_pipelines.catalog.naming import closest

            meant = closest(key, names)
            hint = f"; did you mean '{meant}'?" if meant else f" ({', '.join(names)})"
            raise ValueError(f"row_identifier '{key}' is not one of the columns' field names{hint}")

    def column(self, field_name: str) -> Column | None:
        return next((c for c in self.columns if c.field_name == field_name), None)

    @property
    def pii_fields(self) -> list[str]:
        return [c.field_name for c in self.columns if c.pii and c.field_name]


def published_column_description(dataset: Dataset, field_name: str) -> str:
    """The portal description of a published column: declared in protect:, else the source column's.

    Aggregate columns (measures, SQL result columns, the suppression flag) are not source columns, so
    without this the portal's metadata would have them undescribed.
    """
    protect = dataset.protect
    if field_name in protect.column_descriptions:
        return protect.column_descriptions[field_name]
    measures = protect.aggregate.measures if protect.aggregate else []
    for declared in [*measures, *protect.dimension_specs]:
        if declared.name == field_name and declared.description:
            return declared.description
    column = dataset.column(field_name)
    if column is not None and column.description:
        return column.description
    made = _made_column_description(dataset, field_name)
    if made:
        return made
    if protect.suppression is not None and field_name == protect.suppression.flag_column:
        return (
            f"True where a count on this row is hidden: it is 1 to {protect.suppression.threshold}"
            f"{' or 0' if protect.suppression.protect_zeros else ''}, or would let such a count be worked out"
        )
    return ""


#: What each reporting rule publishes, for the reporting group's portal description: a helper's portal
#: readers could not tell that Middle Eastern or North African answers were counted within White.
_RULE_WORDS = {
    ReportingRule.CT_DPH: "Hispanic of any race, then non-Hispanic races as OMB 1997 defines them (Middle "
    "Eastern or North African answers within White) and Two or More Races",
    ReportingRule.OMB1997: "races as OMB 1997 defines them (Middle Eastern or North African answers within "
    "White), Hispanic origin tabulated apart",
    ReportingRule.SPD15_ALONE: "each SPD 15 (2024) category alone, including Middle Eastern or North African, "
    "or Multiracial and/or Multiethnic",
}


def _made_column_description(dataset: Dataset, field_name: str) -> str:
    """Columns the pipeline adds get a description of their own when the YAML gives none: a new-user pass
    found the suppression flags, the standardized columns and the reporting group published undescribed."""
    for column in dataset.columns:
        if field_name == column.suppressed_flag:
            return f"True where the source suppressed the value of '{column.field_name}', which is then empty"
    rel = dataset.standardize
    if rel is not None:
        if field_name == REPORTING_GROUP_COLUMN:
            return (
                f"The row's race and ethnicity reporting group ({rel.reporting_rule.value} rule), built only "
                f"from what the source collected; {_RULE_WORDS[rel.reporting_rule]}"
            )
        for rel_column in rel.columns:
            made = standardized_columns(rel_column).get(field_name)
            if made:
                return made[1]
    measures = dataset.protect.aggregate.measures if dataset.protect.aggregate else []
    for measure in measures:
        if measure.name == field_name:
            if measure.column is None:
                return f"Number of {dataset.row_label or 'rows'} in this group"
            return f"The {measure.agg} of '{measure.column}' over this group's rows where it is given"
    return ""
