"""The one Dagster entry point: loads the component instances under ``ct_pipelines/defs``.

Nothing is read at import time; Dagster calls :func:`defs` when it loads the code location.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

import ct_pipelines.defs as defs_package


@dg.definitions
def defs() -> dg.Definitions:
    return dg.components.load_defs(defs_package, project_root=Path(__file__).resolve().parent.parent)
