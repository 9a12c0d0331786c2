"""Keep ``ingest.path`` inside the landing folder.

A dataset file is written by an agency; the landing folder is the only place the pipeline should read
from. ``../..`` in a pattern, an absolute path elsewhere, or a symbolic link that points out of the
folder would let one YAML file publish any file the pipeline can read, so each is refused with a
message saying what to write instead. The same check runs at ingest time and in ``catalog validate``.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from ct_pipelines.ingest.errors import IngestError

FIX = "write ingest.path as a file name or glob relative to the landing folder, for example extract_*.csv"


def relative_pattern(pattern: str, landing_root: Path) -> str:
    """``ingest.path`` as a pattern relative to the landing root; IngestError when it points outside."""
    text = pattern.strip()
    if not text:
        raise IngestError(landing_root, "ingest.path is empty", FIX)
    root = landing_root.absolute()
    candidate = Path(text)
    if candidate.is_absolute():
        normal = Path(os.path.normpath(candidate))
        for base in (root, root.resolve()):
            if normal.is_relative_to(base):
                text = str(normal.relative_to(base))
                break
        else:
            raise IngestError(
                pattern,
                f"ingest.path is an absolute path outside the landing folder {root}",
                f"move the file into the landing folder and {FIX}",
            )
    normal_text = os.path.normpath(text.replace("\\", "/"))
    if normal_text == ".." or normal_text.startswith("../") or PurePosixPath(normal_text).is_absolute():
        raise IngestError(pattern, f"ingest.path climbs out of the landing folder {root} with '..'", FIX)
    if normal_text in (".", ""):
        raise IngestError(pattern, "ingest.path names the landing folder itself, not a file", FIX)
    return normal_text


def inside_landing(path: Path, landing_root: Path, pattern: str) -> Path:
    """``path`` unchanged when it resolves (symbolic links followed) inside the landing root."""
    root = landing_root.resolve()
    target = path.resolve()
    if not target.is_relative_to(root):
        raise IngestError(
            path,
            f"ingest.path '{pattern}' matches a symbolic link that leads outside the landing folder {root}",
            "copy the extract into the landing folder instead of linking to it",
        )
    return path


def matching_files(landing_root: Path, pattern: str) -> list[Path]:
    """Files in the landing root matching ``ingest.path``, each checked to stay inside the root."""
    relative = relative_pattern(pattern, landing_root)
    return [inside_landing(p, landing_root, pattern) for p in landing_root.glob(relative) if p.is_file()]
