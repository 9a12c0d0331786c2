"""Files the project writes hold raw extracts (the warehouse), staff reports and run history (the Dagster
instance): they are made readable by their owner only, on a shared server as on a laptop."""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_UMASK = 0o077


def private_by_default() -> None:
    """From now on this process (and the processes it starts) creates files owner-only."""
    os.umask(PRIVATE_UMASK)


def restrict(*roots: Path) -> None:
    """Take group and other permissions off files and folders that already exist (made before the umask
    was set, or by an older version); a root that is a file is restricted alone, a folder with its tree."""
    for root in roots:
        if not root.exists():
            continue
        paths = [root, *root.rglob("*")] if root.is_dir() else [root]
        for path in paths:
            try:
                mode = path.lstat().st_mode
                if mode & 0o077 and not path.is_symlink():
                    path.chmod(mode & 0o700)
            except OSError:
                continue


def dagster_home() -> Path | None:
    """The Dagster instance folder in force (DAGSTER_HOME), if set."""
    value = os.environ.get("DAGSTER_HOME")
    return Path(value) if value else None


def instance_paths(home: Path) -> list[Path]:
    """What the instance writes under its home: dagster.yaml's .dagster/, and Dagster's default folders."""
    return [
        home / name
        for name in (
            ".dagster",
            "storage",
            "history",
            "schedules",
            "logs",
            ".logs_queue",
            ".nux",
            ".telemetry",
        )
    ]
