"""The JSON Schema of dataset files, exported so editors (VS Code's YAML extension) can autocomplete."""

from __future__ import annotations

import json
from pathlib import Path

from ct_pipelines.catalog.models import Dataset

SCHEMA_PATH = Path(__file__).resolve().parent / "dataset.schema.json"


def schema_text() -> str:
    schema = Dataset.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "ct-pipelines dataset"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
