"""Landing folders on SFTP servers and object stores (S3, and az:// or gcs:// when their fsspec packages
are installed), read through fsspec.

Operators declare the remote folders the pipeline may read (a URL ``CT_PIPELINES_LANDING``, or
``CT_PIPELINES_REMOTE_LANDING``); a dataset's ``ingest.path`` URL must stay under one of them, as a local
path must stay under the landing folder. Credentials come only from environment variables, never from
YAML or the URL: ``CT_LANDING_SFTP_USERNAME``, ``CT_LANDING_SFTP_PASSWORD``, ``CT_LANDING_SFTP_KEY_FILE``
and the server's host key (``CT_LANDING_SFTP_HOST_KEY``, a ``SHA256:...`` fingerprint as ``ssh-keygen -l``
prints it, or a ``CT_LANDING_SFTP_KNOWN_HOSTS`` file); the standard ``AWS_*`` variables for S3 (plus
``CT_LANDING_S3_ENDPOINT_URL`` for an S3-compatible store). A file is streamed in chunks to a local
snapshot, hashed as it streams, and the snapshot is what gets loaded.
"""

from __future__ import annotations

import base64
import hashlib
import os
import posixpath
import re
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from ct_pipelines.ingest.errors import IngestError

CHUNK_BYTES = 1 << 20
#: SFTP read requests in flight (32 KiB each): fast over a WAN, and at most a few MiB held in memory.
PREFETCH_REQUESTS = 64
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
EXTRA = "install the remote extra: pip install 'ct-pipelines[remote]'"
F = TypeVar("F")


def failure_words(exc: BaseException) -> str:
    """What went wrong, in plain words taken from the failure's kind only: a client library's text may
    quote the user name or a path, and its class name means nothing to an agency."""
    name = type(exc).__name__
    kinds: tuple[tuple[bool, str], ...] = (
        (isinstance(exc, socket.gaierror), "the server's name is not known"),
        (isinstance(exc, ConnectionRefusedError), "the server refused the connection"),
        (isinstance(exc, TimeoutError), "the server did not answer in time"),
        (isinstance(exc, PermissionError), "permission denied"),
        (isinstance(exc, FileNotFoundError), "not found"),
        ("Authentication" in name, "the server refused the user name, password or key"),
        ("NoCredentials" in name, "no credentials were found in the environment"),
        (
            "SSH" in name or "HostKey" in name,
            "the SSH handshake failed, for example on a host key other than the configured one",
        ),
        (isinstance(exc, ConnectionError | OSError), "the connection failed"),
    )
    return next(
        (words for matched, words in kinds if matched), "the server or its client library reported a failure"
    )


def is_url(text: str) -> bool:
    return bool(SCHEME.match(text.strip()))


@dataclass(frozen=True)
class RemoteRoot:
    """A declared remote landing folder: scheme, host[:port] (or bucket) and folder path."""

    scheme: str
    netloc: str
    path: str
    username: str | None = None

    @classmethod
    def parse(cls, url: str) -> RemoteRoot:
        parts = urlsplit(url.strip())
        if parts.password:
            raise IngestError(
                _safe(url),
                "the URL carries a password",
                "remove it from the URL and set it in the environment (for example CT_LANDING_SFTP_PASSWORD)",
            )
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        path = posixpath.normpath("/" + parts.path.lstrip("/")) if parts.path else "/"
        return cls(parts.scheme.lower(), netloc, path, parts.username)

    def url(self, path: str | None = None) -> str:
        return f"{self.scheme}://{self.netloc}{self.path if path is None else path}"

    def contains(self, path: str) -> bool:
        return self.path == "/" or path == self.path or path.startswith(self.path.rstrip("/") + "/")

    def fs_path(self, path: str) -> str:
        """The path as the filesystem names it (object stores put the bucket in the path)."""
        return path if self.scheme in ("sftp", "ssh", "file") else f"{self.netloc}{path}"


def _safe(url: str) -> str:
    """The URL without any user information, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"


def remote_pattern(pattern: str, roots: tuple[str, ...], landing_url: str | None) -> tuple[RemoteRoot, str]:
    """The declared root and the absolute remote glob for ``ingest.path``; IngestError when it leaves
    every declared remote folder."""
    text = pattern.strip()
    if not is_url(text):
        if landing_url is None:
            raise IngestError(
                pattern, "ingest.path is not a URL", "write it as a URL, for example sftp://host/dir/x*.csv"
            )
        root = RemoteRoot.parse(landing_url)
        relative = posixpath.normpath(text.replace("\\", "/"))
        if relative in (".", "") or relative == ".." or relative.startswith(("../", "/")):
            raise IngestError(
                pattern,
                f"ingest.path leaves the remote landing folder {root.url()}",
                "write ingest.path as a file name or glob relative to the landing folder, for example extract_*.csv",
            )
        return root, posixpath.join(root.path, relative)
    wanted = RemoteRoot.parse(text)
    for declared in roots:
        root = RemoteRoot.parse(declared)
        same_place = (root.scheme, root.netloc) == (wanted.scheme, wanted.netloc)
        if same_place and root.contains(wanted.path) and root.path != wanted.path:
            return root, wanted.path
    raise IngestError(
        _safe(text),
        "ingest.path is a URL outside every declared remote landing folder"
        + (f" ({', '.join(_safe(r) for r in roots)})" if roots else " (none is declared)"),
        "point ingest.path at a file under a declared folder, or have the operator add the folder to "
        "CT_PIPELINES_REMOTE_LANDING",
    )


def _pinned_host_key(fingerprint: str | None, known_hosts: str | None) -> Any:
    """A paramiko policy accepting the server only if its key is the configured one (fingerprint or
    known_hosts entry); paramiko is imported here so the module loads without the remote extra."""
    import paramiko

    class PinnedHostKey(paramiko.MissingHostKeyPolicy):
        def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
            if fingerprint:
                digest = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
                if f"SHA256:{digest}" == fingerprint.strip().rstrip("="):
                    return
            if known_hosts and paramiko.HostKeys(known_hosts).check(hostname, key):
                return
            raise paramiko.SSHException(f"host key of {hostname} is not the configured one")

    return PinnedHostKey()


def _sftp(root: RemoteRoot) -> Any:
    try:
        import paramiko  # noqa: F401
        from fsspec.implementations.sftp import SFTPFileSystem
    except ImportError as exc:
        raise IngestError(root.url(), f"SFTP support is not installed ({exc.name})", EXTRA) from exc
    fingerprint = os.environ.get("CT_LANDING_SFTP_HOST_KEY")
    known_hosts = os.environ.get("CT_LANDING_SFTP_KNOWN_HOSTS")
    if not (fingerprint or known_hosts):
        raise IngestError(
            root.url(),
            "the SFTP server's host key is not configured, so the server cannot be told from an impostor",
            "set CT_LANDING_SFTP_HOST_KEY to its SHA256 fingerprint (ssh-keyscan HOST | ssh-keygen -lf -) "
            "or CT_LANDING_SFTP_KNOWN_HOSTS to a known_hosts file",
        )
    host, _, port = root.netloc.partition(":")
    options: dict[str, Any] = {
        "port": int(port or 22),
        "username": root.username or os.environ.get("CT_LANDING_SFTP_USERNAME"),
        "password": os.environ.get("CT_LANDING_SFTP_PASSWORD"),
        "key_filename": os.environ.get("CT_LANDING_SFTP_KEY_FILE"),
        "look_for_keys": False,
        "allow_agent": False,
        "timeout": 20,
        "banner_timeout": 20,
        "auth_timeout": 20,
    }
    return SFTPFileSystem(
        host,
        skip_instance_cache=True,
        host_key_policy=_pinned_host_key(fingerprint, known_hosts),
        **{k: v for k, v in options.items() if v is not None},
    )


def _filesystem(root: RemoteRoot) -> Any:
    if root.scheme in ("sftp", "ssh"):
        return _sftp(root)
    import fsspec

    options: dict[str, Any] = {"skip_instance_cache": True}
    if root.scheme in ("s3", "s3a") and os.environ.get("CT_LANDING_S3_ENDPOINT_URL"):
        options["client_kwargs"] = {"endpoint_url": os.environ["CT_LANDING_S3_ENDPOINT_URL"]}
    try:
        return fsspec.filesystem(root.scheme, **options)
    except (ImportError, ValueError) as exc:
        raise IngestError(
            root.url(), f"no installed fsspec filesystem reads {root.scheme}://", EXTRA
        ) from exc


@contextmanager
def connected(root: RemoteRoot) -> Iterator[Any]:
    """A filesystem for ``root``, closed afterwards; connection failures become one-line IngestErrors
    (in words from the failure's kind only: its text may quote the user name)."""
    try:
        fs = _filesystem(root)
    except IngestError:
        raise
    except Exception as exc:
        raise IngestError(
            root.url(),
            f"cannot connect to the remote landing folder ({failure_words(exc)})",
            "check the server address, that it is up, and the CT_LANDING_* / AWS_* credentials",
        ) from exc
    try:
        yield fs
    finally:
        client = getattr(fs, "client", None)
        if client is not None and hasattr(client, "close"):
            client.close()


def _mtime_ns(info: dict[str, Any]) -> int:
    value = info.get("mtime") or info.get("LastModified") or info.get("last_modified") or info.get("updated")
    if isinstance(value, datetime):
        return int(value.timestamp() * 1_000_000_000)
    if isinstance(value, int | float):
        return int(value * 1_000_000_000)
    if isinstance(value, str):
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1_000_000_000)
    return 0


def _relative(root: RemoteRoot, fs_name: str) -> str:
    path = "/" + fs_name.lstrip("/") if root.scheme in ("sftp", "ssh") else fs_name[len(root.netloc) :]
    return posixpath.relpath(posixpath.normpath(path), root.path)


def remote_files(root: RemoteRoot, pattern: str, marker: str | None, make: Callable[..., F]) -> list[F]:
    """Files matching the remote glob (markers excluded), each with its marker's mtime when declared."""
    with connected(root) as fs:
        try:
            found = fs.glob(root.fs_path(pattern), detail=True)
            markers = fs.glob(root.fs_path(pattern) + marker, detail=True) if marker else {}
        except Exception as exc:
            raise IngestError(
                root.url(pattern),
                f"cannot list the remote landing folder ({failure_words(exc)})",
                "check that the folder exists and that the CT_LANDING_* / AWS_* credentials may list it",
            ) from exc
    marker_times = {name[: -len(marker)]: _mtime_ns(info) for name, info in markers.items()} if marker else {}
    files = []
    for name, info in found.items():
        if info.get("type") not in ("file", None) or (marker and name.endswith(marker)):
            continue
        relative = _relative(root, name)
        if relative.startswith(".."):  # a glob cannot climb out, but a listing could name a link
            continue
        path = posixpath.join(root.path, relative)
        files.append(
            make(
                root.url(path),
                relative,
                int(info.get("size") or 0),
                _mtime_ns(info),
                marker_times.get(name),
                root,
            )
        )
    return files


def download(url: str, root: RemoteRoot, workdir: Path) -> tuple[Path, str, tuple[int, int], tuple[int, int]]:
    """Stream the remote file into a private folder under ``workdir`` (same name, so format detection
    sees the same extension), hashing as it streams: the local copy, its SHA-256, and the remote
    (size, mtime) before and after the transfer (they differ when the file changed meanwhile)."""
    path = urlsplit(url).path
    workdir.mkdir(parents=True, exist_ok=True)
    target = Path(tempfile.mkdtemp(prefix="remote.", dir=workdir)) / posixpath.basename(path)
    digest = hashlib.sha256()
    try:
        with connected(root) as fs:
            info = fs.info(root.fs_path(path))
            with fs.open(root.fs_path(path), "rb") as source, target.open("wb") as sink:
                if hasattr(source, "prefetch"):  # paramiko: pipeline reads instead of one round trip each
                    source.prefetch(
                        int(info.get("size") or 0) or None, max_concurrent_requests=PREFETCH_REQUESTS
                    )
                while chunk := source.read(CHUNK_BYTES):
                    digest.update(chunk)
                    sink.write(chunk)
            after = fs.info(root.fs_path(path))
    except BaseException as exc:
        shutil.rmtree(target.parent, ignore_errors=True)
        if isinstance(exc, IngestError | KeyboardInterrupt):
            raise
        raise IngestError(
            _safe(url),
            f"cannot read the remote file ({failure_words(exc)})",
            "check that the file is still there and that the CT_LANDING_* / AWS_* credentials may read it",
        ) from exc
    return target, digest.hexdigest(), _version(info), _version(after)


def _version(info: dict[str, Any]) -> tuple[int, int]:
    return int(info.get("size") or 0), _mtime_ns(info)


def discard(local_copy: Path) -> None:
    shutil.rmtree(local_copy.parent, ignore_errors=True)
