"""`ct-pipelines rel ...`: try the REL standardizer on raw labels from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import BinaryIO

import click

from ct_pipelines.catalog.blocks.standardize import RelField
from ct_pipelines.standardize.normalize import classify
from ct_pipelines.standardize.reference import code_map_for, load_code_map_file, named_code_maps

MAP_FIELDS = ("race", "ethnicity", "race_ethnicity", "language", "english_proficiency", "interpreter_needed")


def _read_lines(stream: BinaryIO) -> list[str]:
    """Lines exactly as read, minus the line ending; a trailing newline adds no empty line."""
    text = stream.read().decode("utf-8-sig", errors="replace")
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


@click.group("rel")
def rel() -> None:
    """Race, ethnicity and language (REL) standardization."""


@rel.command("map")
@click.option(
    "--field", "field_name", type=click.Choice(MAP_FIELDS), required=True, help="What the values are"
)
@click.option("--source", help=f"Named source code map: {', '.join(named_code_maps())}")
@click.option(
    "--code-map",
    "code_map_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML of codes to labels, flat (W: White) or per field (race: {W: White})",
)
@click.option(
    "--input",
    "input_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File with one raw value per line (standard input by default)",
)
def map_values(
    field_name: str, source: str | None, code_map_file: Path | None, input_file: Path | None
) -> None:
    """Standardize one raw value per line; print one JSON object per line, in order.

    An empty line is the empty value. Keys: raw, status, hispanic, omb1997, spd15, two_or_more,
    detailed, candidates, language (plus other_race, language_collective, value, code_mapped_to).
    Status is one of reported, declined, unknown, not_collected, ambiguous, unmapped, or (for
    languages) multiple: a label naming several languages, each one in candidates.
    """
    if source and source not in named_code_maps():
        raise click.BadParameter(
            f"unknown source '{source}'; known sources: {', '.join(named_code_maps())}. "
            "Use --code-map FILE.yaml for another system.",
            param_hint="--source",
        )
    code_map = code_map_for(field_name, source, None)
    if code_map_file:
        try:
            code_map.update(load_code_map_file(code_map_file, field_name))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--code-map") from exc
    field = RelField(field_name)
    if input_file:
        with input_file.open("rb") as handle:
            lines = _read_lines(handle)
    else:
        lines = _read_lines(click.get_binary_stream("stdin"))
    cache: dict[str, str] = {}
    for raw in lines:
        if raw not in cache:
            result = classify(raw, field, code_map)
            cache[raw] = json.dumps(result.as_json(raw), ensure_ascii=False)
        click.echo(cache[raw])
