"""The import contract in pyproject.toml holds for the tree, and it bites: a stage that imports another
stage, or the catalog reaching up into a stage, makes `lint-imports` fail."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _copy_tree(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    shutil.copytree(
        REPO / "ct_pipelines",
        root / "ct_pipelines",
        ignore=shutil.ignore_patterns("__pycache__", "*.json", "*.csv", "*.xlsx", "data"),
    )
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


@pytest.fixture(scope="module")
def lint_available() -> None:
    if not LINT.exists():
        pytest.skip("lint-imports is not installed in this environment (pip install -e '.[dev]')")


def test_the_tree_keeps_its_layers(lint_available: None) -> None:
    result = _lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "KEPT" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        (
            "validate/__init__.py",
            "import ct_pipelines.publish.guards",
            "ct_pipelines.validate is not allowed to import ct_pipelines.publish",
        ),
        (
            "catalog/__init__.py",
            "import ct_pipelines.ingest.ingest",
            "ct_pipelines.catalog is not allowed to import ct_pipelines.ingest",
        ),
        (
            "core/__init__.py",
            "import ct_pipelines.catalog.models",
            "ct_pipelines.core is not allowed to import ct_pipelines.catalog",
        ),
    ],
)
def test_a_forbidden_import_fails_the_contract(
    tmp_path: Path, lint_available: None, module: str, line: str, broken: str
) -> None:
    root = _copy_tree(tmp_path)
    target = root / "ct_pipelines" / module
    target.write_text(
        target.read_text(encoding="utf-8") + f"\n{line}  # planted by the test\n", encoding="utf-8"
    )
    result = _lint(root)
    assert result.returncode != 0
    assert broken in result.stdout, result.stdout
