"""Which landing file a dataset reads, and whether it has finished arriving.

Ingest and the landing sensor share these functions, so both pick the same "newest matching file" on
local disk or on a remote folder (``remote.py``) and agree on when it is ready:

- **settled**: its size and modification time were the same at two checks at least
  ``ingest.settle_seconds`` apart (the sensor keeps its first sighting of each version in its cursor);
- **marker**: ``ingest.ready_marker`` is set (e.g. ``.done``) and ``<file name>.done`` is there, written
  no earlier than the file itself;
- **atomic rename**: ``ingest.settle_seconds: 0`` declares that the agency writes under a name the
  ``path`` glob does not match (``extract.csv.part``, or another folder on the same disk) and renames the
  finished file into place, so any file that matches is complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ct_pipelines.catalog.models import Source
from ct_pipelines.core.settings import Settings
from ct_pipelines.ingest.errors import IngestError
from ct_pipelines.ingest.paths import matching_files, relative_pattern
from ct_pipelines.ingest.remote import RemoteRoot, is_url, remote_files, remote_pattern


@dataclass(frozen=True)
class Landing:
    """Where landing files may be read from: the local folder and the declared remote folders."""

    local: Path
    remote_roots: tuple[str, ...] = ()
    url: str | None = None  # a remote landing root that relative ``ingest.path`` values are under

    @classmethod
    def of(cls, landing: Landing | Path | Settings) -> Landing:
        if isinstance(landing, Landing):
            return landing
        if isinstance(landing, Settings):
            return cls(landing.landing_dir, landing.remote_roots, landing.landing_url)
        return cls(Path(landing))


@dataclass(frozen=True)
class LandingFile:
    """One landing file version: where it is (a local path or a URL), its size and mtime."""

    location: str
    relative: str  # path under the landing root, for run keys and messages
    size: int
    mtime_ns: int
    marker_mtime_ns: int | None = None  # its ready marker's mtime, when there is one
    root: RemoteRoot | None = None  # the remote folder it is in; None on local disk

    @property
    def name(self) -> str:
        return self.relative.rsplit("/", 1)[-1]

    @property
    def st_size(self) -> int:  # the ingest log reads versions as stat results
        return self.size

    @property
    def st_mtime_ns(self) -> int:
        return self.mtime_ns

    @property
    def version(self) -> str:
        """Path, size and mtime: one run per version, and a re-upload is a new version."""
        return f"{self.relative}:{self.size}:{self.mtime_ns}"

    @classmethod
    def local(cls, path: Path, root: Path, marker: str | None = None) -> LandingFile:
        stat = path.stat()
        try:
            relative = path.absolute().relative_to(root.absolute()).as_posix()
        except ValueError:
            relative = path.name
        marker_mtime = None
        if marker:
            marker_path = path.with_name(path.name + marker)
            marker_mtime = marker_path.stat().st_mtime_ns if marker_path.is_file() else None
        return cls(str(path), relative, stat.st_size, stat.st_mtime_ns, marker_mtime)


def landing_files(landing: Landing | Path | Settings, source: Source) -> list[LandingFile]:
    """Every file matching ``ingest.path`` (markers excluded), each confined to its landing root."""
    landing = Landing.of(landing)
    if is_url(source.path) or landing.url:
        root, pattern = remote_pattern(source.path, landing.remote_roots, landing.url)
        return remote_files(root, pattern, source.ready_marker, LandingFile)
    marker = source.ready_marker
    paths = [
        p for p in matching_files(landing.local, source.path) if not (marker and p.name.endswith(marker))
    ]
    return [LandingFile.local(p, landing.local, marker) for p in paths]


def source_path_problem(landing: Landing | Path | Settings, source: Source) -> str | None:
    """For ``catalog validate``: why ``ingest.path`` cannot be read from its landing root, or None.

    Nothing is listed or fetched: a file that is not there yet is not a problem here (the agency may not
    have sent one), a pattern or URL that escapes its folder is, and so is a present local file that
    links outside it."""
    landing = Landing.of(landing)
    try:
        if is_url(source.path) or landing.url:
            remote_pattern(source.path, landing.remote_roots, landing.url)
        elif landing.local.is_dir():
            matching_files(landing.local, source.path)
        else:
            relative_pattern(source.path, landing.local)
    except IngestError as exc:
        return f"ingest.path: {exc.problem}; {exc.fix}."
    return None


def names_several_files(path: str) -> bool:
    """``ingest.path`` is a pattern (``extract_*.csv``): several deliveries can match it at once."""
    return any(ch in path for ch in "*?[")


def unread_arrivals(
    landing: Landing | Path | Settings, source: Source, read: LandingFile, since_mtime_ns: int | None
) -> list[LandingFile]:
    """Matching files that arrived after the file read before (``since_mtime_ns``; None before any file
    was read: every other match) and that this run does not read: a run reads only the newest, so a
    delivery in between is passed over. Oldest first."""
    others = [
        f
        for f in landing_files(landing, source)
        if f.location != read.location and (since_mtime_ns is None or f.mtime_ns > since_mtime_ns)
    ]
    return sorted(others, key=lambda f: (f.mtime_ns, f.name))


def find_newest(landing: Landing | Path | Settings, source: Source) -> LandingFile | None:
    """The most recently modified matching file (ties broken by name), or None."""
    files = landing_files(landing, source)
    return max(files, key=lambda f: (f.mtime_ns, f.name)) if files else None


def newest_landing_file(landing: Landing | Path | Settings, source: Source) -> LandingFile:
    """Like :func:`find_newest`, but an IngestError saying where to put the file when none matches."""
    landing = Landing.of(landing)
    found = find_newest(landing, source)
    if found is None:
        where = source.path if (is_url(source.path) or landing.url) else str(landing.local)
        shown = (
            where
            if where == source.path
            else str(landing.local / relative_pattern(source.path, landing.local))
        )
        raise IngestError(
            shown,
            "no file in the landing folder matches ingest.path",
            f"drop the extract into {landing.url or landing.local} or correct ingest.path in the dataset YAML",
        )
    return found


def marker_missing(found: LandingFile, source: Source) -> bool:
    """A ready marker is declared and absent, or older than the file (written for an earlier upload)."""
    return bool(source.ready_marker) and (
        found.marker_mtime_ns is None or found.marker_mtime_ns < found.mtime_ns
    )


def ready_on_sight(found: LandingFile, source: Source) -> bool:
    """Complete without watching it: its marker is there, or files arrive by atomic rename."""
    if source.ready_marker:
        return not marker_missing(found, source)
    return source.settle_seconds == 0


def settle(
    found: LandingFile, source: Source, seen: dict[str, object] | None, now: float
) -> tuple[bool, dict[str, object]]:
    """Whether ``found`` is ready now, and the sighting to keep for the next check.

    ``seen`` is the previous sighting of this dataset's newest file (``{"version", "since"}``); the file
    is settled when the same version was first seen at least ``settle_seconds`` ago."""
    if seen is None or seen.get("version") != found.version:
        seen = {"version": found.version, "since": now}
    if source.ready_marker:
        return not marker_missing(found, source), seen
    settled = source.settle_seconds == 0 or now - float(seen["since"]) >= source.settle_seconds  # type: ignore[arg-type]
    return settled, seen


def refuse_unfinished(found: LandingFile, source: Source) -> None:
    """Ingest's own guard: refuse a file whose declared marker is missing."""
    if marker_missing(found, source):
        raise IngestError(
            found.location,
            f"the file is not marked ready: {found.name}{source.ready_marker} is missing or older than the file",
            f"wait for the agency to write {found.name}{source.ready_marker} after the upload finishes",
        )
