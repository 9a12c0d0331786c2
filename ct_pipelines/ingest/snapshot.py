"""Read a landing file so that the SHA-256 recorded is of exactly the bytes loaded.

Agencies upload into the landing folder while runs happen, sometimes rewriting a file in place. The
hash is computed on a thread while DuckDB reads the same file, so both must see one version:

- a file changed in the last few seconds (it may still be being written) is first copied into the
  work folder, and the copy is hashed and loaded; the copy is retried if the file changed meanwhile;
- an older file is read in place and its inode, size, mtime and ctime are compared before and after.
  Any write changes mtime and ctime, and the kernel's coarse clock has moved on since the last one,
  so equal stamps mean no byte changed; otherwise the read is repeated (from a copy).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from ct_pipelines.ingest.errors import IngestError
from ct_pipelines.ingest.readers import FileScan, scan_file

FRESH_SECONDS = 2.0
ATTEMPTS = 3
T = TypeVar("T")
Reader = Callable[[Path, Callable[[], FileScan]], T]


def version_key(stat: os.stat_result) -> tuple[int, int, int, int]:
    return stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns


def recently_changed(stat: os.stat_result, now: float | None = None) -> bool:
    return (now or time.time()) - max(stat.st_mtime, stat.st_ctime) < FRESH_SECONDS


def read_stable(path: Path, workdir: Path, read: Reader[T]) -> tuple[T, str, os.stat_result]:
    """``read(source, scan)`` on one unchanging version of ``path``: its result, the SHA-256 of the
    bytes it loaded, and the file's stat for that version. ``source`` may be a private copy."""
    for _ in range(ATTEMPTS):
        before = path.stat()
        if recently_changed(before):
            copied = _copy(path, workdir)
            try:
                if version_key(path.stat()) != version_key(before):
                    continue
                result, scan = _read_scanning(path, copied, read)
            finally:
                shutil.rmtree(copied.parent, ignore_errors=True)
            return result, scan.sha256, before
        result, scan = _read_scanning(path, path, read)
        if version_key(path.stat()) == version_key(before):
            return result, scan.sha256, before
    raise IngestError(
        path,
        f"the file changed while it was being read, {ATTEMPTS} times in a row",
        "wait until the agency's upload has finished, then run the dataset again",
    )


def _copy(path: Path, workdir: Path) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="snapshot.", dir=workdir))
    target = folder / path.name  # same name and extension, so format detection sees the same file
    shutil.copyfile(path, target)
    return target


def _read_scanning(original: Path, source: Path, read: Reader[T]) -> tuple[T, FileScan]:
    """Hash and count lines on a thread while ``read`` loads; messages name the landing file."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-scan") as pool:
        scanning = pool.submit(scan_file, source)
        try:
            result = read(source, scanning.result)
        except IngestError as exc:
            if source != original:
                exc.path = str(original)
            raise
        return result, scanning.result()
