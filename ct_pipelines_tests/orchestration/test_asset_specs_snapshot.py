"""Snapshot of the asset graph built from the bundled sample catalog (the dagster-open-platform style).

A change to asset keys, dependencies, groups, kinds, check names, freshness windows, schedules or
sensors shows up as a reviewable diff of ``snapshots/asset_specs.json`` instead of slipping through.
Regenerate after an intended change with::

    CT_UPDATE_SNAPSHOTS=1 .venv/bin/pytest ct_pipelines_tests/test_asset_specs_snapshot.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from ct_pipelines.core.settings import SAMPLE_CATALOG_DIR
from ct_pipelines.orchestration.component import build_definitions

SNAPSHOT = Path(__file__).resolve().parent / "snapshots" / "asset_specs.json"
UPDATE_ENV = "CT_UPDATE_SNAPSHOTS"


def _key(key: dg.AssetKey) -> str:
    return key.to_user_string()


def describe_definitions(defs: dg.Definitions) -> dict[str, Any]:
    """What a reviewer should see change: sorted, JSON-ready, with no paths or times in it."""
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    assets = {}
    for spec in defs.resolve_all_asset_specs():
        node = graph.get(spec.key)
        policy = spec.freshness_policy
        assets[_key(spec.key)] = {
            "deps": sorted(_key(dep.asset_key) for dep in spec.deps),
            "group": spec.group_name,
            "kinds": sorted(spec.kinds),
            "checks": sorted(check.name for check in node.check_keys),
            "freshness_fail_window_hours": policy.fail_window.to_timedelta().total_seconds() / 3600
            if policy is not None
            else None,
        }
    return {
        "assets": dict(sorted(assets.items())),
        "schedules": {
            s.name: {"cron": s.cron_schedule, "timezone": s.execution_timezone, "job": s.job_name}
            for s in sorted(repo.schedule_defs, key=lambda s: s.name)
        },
        "sensors": sorted(s.name for s in repo.sensor_defs),
        "jobs": sorted(job.name for job in repo.get_all_jobs() if not job.name.startswith("__")),
    }


def test_sample_catalog_asset_specs_match_the_snapshot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for name in list(os.environ):
        if name.startswith(("CT_PIPELINES_", "CT_PORTAL_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CT_PIPELINES_HOME", str(tmp_path))
    current = describe_definitions(build_definitions(str(SAMPLE_CATALOG_DIR)))
    text = json.dumps(current, indent=2, sort_keys=True) + "\n"
    if os.environ.get(UPDATE_ENV) == "1":
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(text)
    if not SNAPSHOT.is_file():
        pytest.fail(
            f"{SNAPSHOT} is missing; create it with {UPDATE_ENV}=1 .venv/bin/pytest {Path(__file__).name}"
        )
    expected = json.loads(SNAPSHOT.read_text())
    assert current == expected, (
        f"The asset graph differs from {SNAPSHOT.name}. If the change is intended, regenerate it with "
        f"{UPDATE_ENV}=1 .venv/bin/pytest ct_pipelines_tests/orchestration/{Path(__file__).name} and review the diff."
    )
    # The snapshot is not vacuous: every sample dataset has its five stages and they chain in order.
    for dataset in ("deep_fishing_licenses", "dmv_ev_registrations", "dss_interpreter_requests"):
        assert expected["assets"][f"{dataset}/publish"]["deps"] == [f"{dataset}/protect"]
        assert expected["assets"][f"{dataset}/ingest"]["deps"] == []
