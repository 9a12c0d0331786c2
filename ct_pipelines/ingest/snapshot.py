"""Read a landing file so that the SHA-256 recorded is of exactly the bytes loaded.

Agencies upload into the landing folder while runs happen, sometimes rewriting a file in place. The
hash is computed on a thread while DuckDB reads the same file, so both must see one version:

- a file changed in the last few seconds (it may still be being written) is first copied into the
  work folder, and the copy is hashed and loaded; the copy is retried if the file changed meanwhile;
- an older file is read in place and its inode, size, mtime and ctime are compared before and after.
  Any write changes mtime and ctime, and the kernel's coarse clock has moved on since the last one,
  so equal stamps mean no byte changed; otherwise the read is repeated (from a copy);
- a file modified in the last few seconds whose size or mtime moves while it is copied is still being
  written (a half-copied extract): unless the dataset says it is complete (ready marker, atomic rename),
  it is refused with a message instead of read again;
- a remote file (``remote.py``) is streamed to a local copy, hashed as it streams, and loaded from that
  copy; its size and mtime are compared before and after the transfer in the same way.
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
from ct_pipelines.ingest.remote import RemoteRoot, discard, download
from ct_pipelines.ingest.scan import FileScan, scan_file

FRESH_SECONDS = 2.0
ATTEMPTS = 3
T = TypeVar("T")
Reader = Callable[[Path, Callable[[], FileScan]], T]


def version_key(stat: os.stat_result) -> tuple[int, int, int, int]:
    return stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns


def recently_changed(stat: os.stat_result, now: float | None = None) -> bool:
    return (now or time.time()) - max(stat.st_mtime, stat.st_ctime) < FRESH_SECONDS


def still_being_written(location: str, before: int, after: int) -> IngestError:
    """The refusal for a fresh file whose size or mtime moved while ingest copied it."""
    return IngestError(
        location,
        f"the file is still being written: it changed seconds ago and again while being read "
        f"({before:,} then {after:,} bytes)",
        "let the upload finish, then run again; agencies can write under a temporary name and rename the "
        "finished file into the folder (ingest.settle_seconds: 0) or write a marker (ingest.ready_marker)",
    )


def _growing(before: tuple[int, int], after: tuple[int, int], now: float | None = None) -> bool:
    """(size, mtime_ns) moved, and the first look was seconds after a write: an upload in progress."""
    return before != after and (now or time.time()) - before[1] / 1e9 < FRESH_SECONDS


def read_stable(
    path: Path, workdir: Path, read: Reader[T], *, complete: bool = False
) -> tuple[T, str, os.stat_result]:
    """``read(source, scan)`` on one unchanging version of ``path``: its result, the SHA-256 of the
    bytes it loaded, and the file's stat for that version. ``source`` may be a private copy.
    ``complete``: the dataset vouches the file is whole (marker, atomic rename), so a change is retried."""
    for _ in range(ATTEMPTS):
        before = path.stat()
        if recently_changed(before):
            copied = _copy(path, workdir)
            try:
                now = path.stat()
                if not complete and _growing(
                    (before.st_size, before.st_mtime_ns), (now.st_size, now.st_mtime_ns)
                ):
                    raise still_being_written(str(path), before.st_size, now.st_size)
                if version_key(now) != version_key(before):
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


def read_remote(
    url: str, root: RemoteRoot, workdir: Path, read: Reader[T], *, complete: bool = False
) -> tuple[T, str, tuple[int, int]]:
    """``read(local_copy, scan)`` on one unchanging version of the remote file: its result, the SHA-256
    of the streamed bytes (the ones loaded) and the remote (size, mtime_ns) of that version."""
    for _ in range(ATTEMPTS):
        copied, digest, before, after = download(url, root, workdir)
        try:
            if before != after:
                if not complete and _growing(before, after):
                    raise still_being_written(url, before[0], after[0])
                continue
            result, scan = _read_scanning(url, copied, read)
        finally:
            discard(copied)
        if scan.sha256 != digest:  # the local copy is private: only a disk fault gets here
            raise IngestError(url, "the local copy does not hash like the streamed bytes", "run again")
        return result, digest, before
    raise IngestError(
        url,
        f"the file changed while it was being read, {ATTEMPTS} times in a row",
        "wait until the agency's upload has finished, then run the dataset again",
    )


def _copy(path: Path, workdir: Path) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="snapshot.", dir=workdir))
    target = folder / path.name  # same name and extension, so format detection sees the same file
    shutil.copyfile(path, target)
    return target


def _read_scanning(original: Path | str, source: Path, read: Reader[T]) -> tuple[T, FileScan]:
    """Hash and count lines on a thread while ``read`` loads; messages name the landing file."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-scan") as pool:
        scanning = pool.submit(scan_file, source)
        try:
            result = read(source, scanning.result)
        except IngestError as exc:
            if str(source) != str(original):
                exc.path = str(original)
            raise
        return result, scanning.result()
