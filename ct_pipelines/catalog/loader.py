"""Load the dataset catalog: every YAML file in a folder, each one parsed on its own.

A broken file yields a :class:`CatalogError` naming the file, the line, the field and what is allowed,
while every other dataset still loads; one agency's typo must not stop the state's pipeline.
"""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from ct_pipelines.catalog.models import Dataset, upgrade_legacy_blocks
from ct_pipelines.catalog.naming import closest

YAML_SUFFIXES = {".yaml", ".yml"}
# The starter file (``ct-pipelines dataset new``) writes every value a person must decide as
# ``<<TODO: what to write>>``; a file still holding one is refused, so no placeholder reaches the portal.
PLACEHOLDER_START, PLACEHOLDER_END = "<<TODO:", ">>"
PLACEHOLDER = re.compile(r"<<TODO:\s*(.*?)\s*>>", re.DOTALL)
# Placeholders written by starter files of earlier versions, matched exactly.
LEGACY_PLACEHOLDERS = {
    "agency": re.compile(r"^TODO: agency name$"),
    "contact": re.compile(r"^TODO\.data\.officer@ct\.gov$"),
    "description": re.compile(r"^TODO: describe what each row of .* represents"),
}


@dataclass
class CatalogError:
    path: Path
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


@dataclass
class Catalog:
    datasets: list[Dataset] = field(default_factory=list)
    errors: list[CatalogError] = field(default_factory=list)
    sources: dict[str, Path] = field(default_factory=dict)  # dataset id -> YAML file

    def get(self, dataset_id: str) -> Dataset:
        for dataset in self.datasets:
            if dataset.id == dataset_id:
                return dataset
        raise KeyError(f"no dataset '{dataset_id}' in the catalog (known: {', '.join(self.ids)})")

    @property
    def ids(self) -> list[str]:
        return [d.id for d in self.datasets]


class _LineLoader(yaml.SafeLoader):
    """A safe loader that remembers the line of every mapping key and sequence item."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    lines = {}
    for key_node, value_node in node.value:
        lines[loader.construct_object(key_node)] = (
            key_node.start_mark.line + 1,
            value_node.start_mark.line + 1,
        )
    return _Located(mapping, lines, node.start_mark.line + 1)


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> list[Any]:
    return _LocatedList(
        loader.construct_sequence(node, deep=True),
        [n.start_mark.line + 1 for n in node.value],
        node.start_mark.line + 1,
    )


class _Located(dict):
    def __init__(self, data: dict[str, Any], lines: dict[Any, tuple[int, int]], line: int) -> None:
        super().__init__(data)
        self.lines = lines
        self.line = line


class _LocatedList(list):
    def __init__(self, data: list[Any], lines: list[int], line: int) -> None:
        super().__init__(data)
        self.lines = lines
        self.line = line


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def _line_of(document: Any, loc: tuple[Any, ...]) -> int | None:
    """Line of the deepest part of ``loc`` present in the parsed document."""
    node, line = document, getattr(document, "line", None)
    for part in loc:
        if isinstance(node, _Located) and part in node:
            line = node.lines[part][1]
            node = node[part]
        elif isinstance(node, _LocatedList) and isinstance(part, int) and part < len(node):
            line = node.lines[part]
            node = node[part]
        elif isinstance(node, _Located) and part in node.lines:
            line = node.lines[part][0]
            break
        else:
            break
    return line


def _named_field(message: str, document: Any) -> tuple[str, ...]:
    """A check across fields has no location of its own; its message starts with the field it is about
    ("row_identifier 'id' is ...", "columns X are listed in ..."), so the error points at that field's
    line rather than the file's first."""
    first = message.removeprefix("Value error, ").split(" ", 1)[0]
    path = tuple(first.split("."))
    return path if isinstance(document, _Located) and path[0] in document else ()


def _models_in(annotation: Any) -> list[Any]:
    """The models, lists and dicts an annotation may hold (``X | None``, ``list[X]``, ``str | Dimension``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) in (list, dict):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _entries(annotation: Any) -> list[Any]:
    """What each entry of a ``list[...]`` or value of a ``dict[str, ...]`` may hold."""
    return _models_in(typing.get_args(annotation)[-1])


def _fields_at(loc: tuple[Any, ...]) -> dict[str, Any] | None:
    """The fields of the block at ``loc`` (a field's path without the field), following pydantic's loc:
    field names, list positions, dict keys and the model names it adds inside a union; None if lost."""
    holders: list[Any] = [Dataset]
    for part in loc:
        nxt: list[Any] = []
        for holder in holders:
            origin = typing.get_origin(holder)
            if origin in (list, dict):
                nxt += _entries(holder)
            elif isinstance(part, str) and part in holder.model_fields:
                nxt += _models_in(holder.model_fields[part].annotation)
            elif holder.__name__ == part:
                nxt.append(holder)
        holders = nxt
    models = [h for h in holders if isinstance(h, type) and issubclass(h, BaseModel)]
    return models[0].model_fields if models else None


def _where_field_is(name: str) -> list[str]:
    """Every block path (``protect``, ``columns[]``) whose model has a field called ``name``."""
    found: list[str] = []
    queue: list[tuple[str, Any]] = [("", Dataset)]
    seen: set[Any] = set()
    while queue:
        path, model = queue.pop(0)
        if model in seen:
            continue
        seen.add(model)
        for field_name, info in model.model_fields.items():
            here = f"{path}.{field_name}" if path else field_name
            if field_name == name:
                found.append(_block_words(path))
            for held in _models_in(info.annotation):
                origin = typing.get_origin(held)
                inner = _entries(held) if origin in (list, dict) else [held]
                suffix = "[]" if origin is list else ".<name>" if origin is dict else ""
                queue += [(here + suffix, m) for m in inner if isinstance(m, type)]
    return found


def _block_words(path: str) -> str:
    """Where a block is, in words: ``at the top level of the file``, ``in each entry of columns``."""
    if not path:
        return "at the top level of the file"
    return f"in each entry of {path[:-2]}" if path.endswith("[]") else f"under {path}"


def _unknown_field(loc: tuple[Any, ...]) -> str:
    """What to write instead of a field the block does not have: a near spelling, the block the field
    belongs in, or the fields this block allows."""
    name = str(loc[-1]) if loc else ""
    fields = _fields_at(loc[:-1])
    if fields is None:
        return "unknown field; check the spelling against the catalog's JSON Schema"
    close = closest(name, fields)
    if close:
        return f"unknown field; did you mean '{close}'?"
    elsewhere = _where_field_is(name)
    if elsewhere:
        return f"unknown field here; '{name}' belongs {' or '.join(elsewhere)}"
    return f"unknown field; the fields allowed here are {', '.join(fields)}"


def _describe(error: dict[str, Any]) -> str:
    message = error["msg"]
    ctx = error.get("ctx") or {}
    if error["type"] in ("enum", "literal_error") and "expected" in ctx:
        return f"{error.get('input')!r} is not allowed; allowed values: {ctx['expected']}"
    if error["type"] == "extra_forbidden":
        return _unknown_field(tuple(error["loc"]))
    if error["type"] == "missing":
        return "required field is missing"
    return message.removeprefix("Value error, ")


FastLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_dataset_file(path: Path) -> tuple[Dataset | None, list[CatalogError]]:
    """Parse one YAML file into a Dataset, or the list of what is wrong with it (with lines).

    Valid files take the fast C loader; only a file with errors is parsed again with line tracking, so
    a thousand-dataset catalog loads quickly and a broken one still gets exact line numbers.
    """
    try:
        text = path.read_text(encoding="utf-8")
        document = yaml.load(text, Loader=FastLoader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return None, [CatalogError(path, mark.line + 1 if mark else None, "", f"not valid YAML: {exc}")]
    except (OSError, UnicodeDecodeError) as exc:
        return None, [CatalogError(path, None, "", f"cannot read the file: {exc}")]
    if not isinstance(document, dict):
        return None, [
            CatalogError(path, 1, "", "the file must be a mapping of dataset fields (id, title, ...)")
        ]
    todo = placeholder_errors(path, text) if _may_hold_placeholders(text) else []
    try:
        dataset = Dataset.model_validate(document)
    except ValidationError as exc:
        located = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - safe loader subclass
        try:  # errors name the block as the file spells it, old layout or new
            as_written = {new: old for old, new in upgrade_legacy_blocks(document)[1].items()}
        except ValueError:
            as_written = {}
        errors = []
        for error in exc.errors():
            loc = tuple(error["loc"]) or _named_field(error["msg"], located)
            message = _describe(error)
            if loc and not error["loc"]:  # the message began with the field, which now leads the line
                message = message.split(" ", 1)[1]
            if loc and loc[0] in as_written:
                loc = (as_written[loc[0]], *loc[1:])
            dotted = ".".join(str(p) for p in loc)
            if not any(dotted == t.field or dotted.startswith(t.field + ".") for t in todo):
                errors.append(CatalogError(path, _line_of(located, loc), dotted, message))
        return None, sorted(todo + errors, key=lambda e: e.line or 0)
    return (None, todo) if todo else (dataset, [])


def _may_hold_placeholders(text: str) -> bool:
    """A cheap test first, so a thousand finished files pay no second parse."""
    return PLACEHOLDER_START in text or "TODO" in text


def placeholder_errors(path: Path, text: str) -> list[CatalogError]:
    """One error per value still holding a starter placeholder, with its line and what to write there."""
    located = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - safe loader subclass
    errors: list[CatalogError] = []
    for loc, line, value in _strings(located, (), getattr(located, "line", None)):
        dotted = ".".join(str(p) for p in loc)
        found = PLACEHOLDER.search(value)
        if found:
            errors.append(
                CatalogError(
                    path,
                    line,
                    dotted,
                    "still holds the starter's <<TODO: ...>> placeholder; "
                    f"replace the whole marker with {found[1]}",
                )
            )
        elif dotted in LEGACY_PLACEHOLDERS and LEGACY_PLACEHOLDERS[dotted].search(value):
            errors.append(
                CatalogError(
                    path,
                    line,
                    dotted,
                    f"still holds the starter's placeholder {value!r}; "
                    f"write the real {dotted.replace('_', ' ')}",
                )
            )
    return errors


def _strings(
    node: Any, loc: tuple[Any, ...], line: int | None
) -> list[tuple[tuple[Any, ...], int | None, str]]:
    """Every string value in a parsed document with its location and line."""
    if isinstance(node, str):
        return [(loc, line, node)]
    found: list[tuple[tuple[Any, ...], int | None, str]] = []
    if isinstance(node, dict):
        lines = getattr(node, "lines", {})
        for key, value in node.items():
            found += _strings(value, (*loc, key), lines.get(key, (line, line))[1])
    elif isinstance(node, list):
        lines = getattr(node, "lines", [])
        for i, value in enumerate(node):
            found += _strings(value, (*loc, i), lines[i] if i < len(lines) else line)
    return found


def load_catalog(folder: Path) -> Catalog:
    """Every ``*.yaml`` / ``*.yml`` below ``folder`` (sorted), skipping files whose name starts with '_'."""
    catalog = Catalog()
    if not folder.exists():
        catalog.errors.append(CatalogError(folder, None, "", "catalog folder does not exist"))
        return catalog
    files = (
        [folder]
        if folder.is_file()
        else sorted(p for p in folder.rglob("*") if p.suffix in YAML_SUFFIXES and not p.name.startswith("_"))
    )
    for path in files:
        dataset, errors = parse_dataset_file(path)
        if dataset is None:
            catalog.errors.extend(errors)
            continue
        if dataset.id in catalog.sources:
            catalog.errors.append(
                CatalogError(
                    path,
                    1,
                    "id",
                    f"'{dataset.id}' is already used by "
                    f"{catalog.sources[dataset.id]}; dataset ids must be unique",
                )
            )
            continue
        dataset.definition_file = path
        catalog.datasets.append(dataset)
        catalog.sources[dataset.id] = path
    return catalog
