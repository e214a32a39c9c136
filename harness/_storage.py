"""Where results live, and the one way harness writes a file there: whole or not at all.

A results folder is a `Location`: a local (or NFS) path or an object-store URI
(`s3://bucket/prefix`, `gs://...`), reached through pyarrow's `FileSystem` interface with
the usual credentials; `AWS_ENDPOINT_URL` points S3 at a compatible store (MinIO, moto).
Every writer (leaderboard rows, compaction, saved specs, models, bench tables) goes
through `atomic_write`. On a local or NFS path a file is written under a dot-prefixed
temporary name (invisible to readers, which skip dot files) in the target's folder,
flushed, and renamed over the target. Object stores have no rename, but an object
becomes visible only once written whole, so there the target is written directly.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa
from pyarrow import fs as pafs

from harness._errors import ArgumentError, StorageFull

Writer = Callable[[IO[bytes]], None]


def filesystem(location: str | Path) -> tuple[pafs.FileSystem, str]:
    """The filesystem holding `location` and the path on it (local paths made absolute)."""
    text = str(location)
    if "://" not in text:
        return pafs.LocalFileSystem(), str(Path(text).expanduser().resolve())
    refuse_credentials("results", text)
    try:
        fs, path = pafs.FileSystem.from_uri(text)
    except (pa.ArrowException, OSError) as exc:
        raise ArgumentError(
            "results", "must be a local folder or a filesystem URI pyarrow can open (s3://bucket/prefix, "
            f"gs://bucket/prefix, hdfs://...); opening it failed with {exc}", text,
        ) from None  # fmt: skip
    return fs, str(path).rstrip("/")


@dataclass(frozen=True)
class Location:
    """A file or folder in results storage: a local path or a URI, with one API for both.

    `uri` is what users, Ray and leaderboard rows see (an absolute local path, or
    `s3://bucket/key`); joining with `/` never goes through `pathlib`, which would turn
    `s3://bucket` into a local folder named `s3:`.
    """

    uri: str
    fs: pafs.FileSystem = field(repr=False, compare=False)
    path: str = field(repr=False)

    @classmethod
    def of(cls, where: str | Path | Location) -> Location:
        if isinstance(where, Location):
            return where
        fs, path = filesystem(where)
        scheme = str(where).split("://", 1)[0] if "://" in str(where) else ""
        return cls(f"{scheme}://{path}" if scheme else path, fs, path)

    def __truediv__(self, part: str) -> Location:
        """A path inside this folder; an absolute one or one with a `..` part is refused, whoever
        asks (a study name from the command line, a path stored in a row)."""
        part = part.rstrip("/")
        if part.startswith("/") or not part or any(p in ("", ".", "..") for p in part.split("/")):
            raise ArgumentError("path", "must be a relative path inside its folder, without '..'", part)
        return Location(f"{self.uri}/{part}", self.fs, f"{self.path}/{part}")

    def __str__(self) -> str:
        return self.uri

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def parent(self) -> Location:
        return Location(self.uri.rsplit("/", 1)[0], self.fs, self.path.rsplit("/", 1)[0])

    @property
    def local(self) -> bool:
        """A path on this machine's filesystem (local disk or a mounted share): files rename."""
        return bool(self.fs.type_name == "local")

    def _info(self) -> pafs.FileInfo:
        return self.fs.get_file_info(self.path)

    def is_dir(self) -> bool:
        return bool(self._info().type == pafs.FileType.Directory)

    def is_file(self) -> bool:
        return bool(self._info().type == pafs.FileType.File)

    def _entries(self, kind: pafs.FileType) -> list[Location]:
        """The folder's entries of one kind, one level, sorted, without hidden (dot) ones: temporary files."""
        selector = pafs.FileSelector(self.path, allow_not_found=True)
        infos = self.fs.get_file_info(selector) if self.is_dir() else []
        names = sorted(i.base_name for i in infos if i.type == kind and not i.base_name.startswith("."))
        return [self / name for name in names]

    def files(self, suffix: str = "") -> list[Location]:
        return [f for f in self._entries(pafs.FileType.File) if f.name.endswith(suffix)]

    def folders(self) -> list[Location]:
        return self._entries(pafs.FileType.Directory)

    def read_bytes(self) -> bytes:
        with self.fs.open_input_stream(self.path) as stream:
            return bytes(stream.read())

    def read_text(self) -> str:
        return self.read_bytes().decode("utf-8")

    def stamp(self) -> tuple[int, ...] | None:
        """What changes when the file is rewritten: inode, mtime and size locally; mtime and
        size on object stores (no inodes). None when it is gone."""
        if self.local:
            try:
                st = os.stat(self.path)
            except FileNotFoundError:
                return None
            return st.st_ino, st.st_mtime_ns, st.st_size
        info = self._info()
        if info.type != pafs.FileType.File:
            return None
        return int(info.mtime_ns or 0), int(info.size or 0)

    def delete(self) -> None:
        """Delete a file if it exists."""
        with suppress(FileNotFoundError):
            self.fs.delete_file(self.path)

    def delete_tree(self) -> None:
        """Delete a folder and everything under it, if it exists."""
        if self.is_dir():
            self.fs.delete_dir(self.path)

    @contextmanager
    def as_local_file(self) -> Iterator[Path]:
        """A local path holding this file's bytes (Keras loads models from real paths only)."""
        if self.local:
            yield Path(self.path)
            return
        with local_scratch(Path(self.name).suffix) as scratch:
            with self.fs.open_input_stream(self.path) as src, open(scratch, "wb") as dst:
                shutil.copyfileobj(src, dst, length=1 << 20)
            yield scratch


_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_FULL_TEXTS = ("No space left on device", "Disk quota exceeded", "database or disk is full")


def storage_full(exc: BaseException, where: str) -> StorageFull | None:
    """`exc` as the out-of-space error it is, wherever it sits in the chain (Ray wraps errors,
    workers send them as text, SQLite has its own words); its path, else `where`."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, StorageFull):
            return seen
        if isinstance(seen, OSError) and seen.errno in _FULL_ERRNOS:
            return StorageFull(str(seen.filename or where))
        if any(text in str(seen) for text in _FULL_TEXTS):
            return StorageFull(where)
        seen = seen.__cause__ or seen.__context__
    return None


Results = str | Path | Location
"""A results folder as callers give it: a local path, a filesystem URI, or a Location."""


def atomic_write(target: str | Path | Location, write: Writer) -> str:
    """Write a file with `write(stream)` so that readers see all of it or none of it.

    Returns the location written (a path, or a URI on an object store). A failure removes
    the temporary file and leaves any previous version of the target in place.
    """
    loc = Location.of(target)
    fs, path = loc.fs, loc.path
    if not loc.local:  # no folder objects: zero-byte markers break pandas' dataset discovery
        with fs.open_output_stream(path) as stream:
            write(stream)
        return loc.uri
    parent, name = path.rsplit("/", 1)
    Path(parent).mkdir(parents=True, exist_ok=True)
    tmp = f"{parent}/.{name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with open(tmp, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(parent)
    return path


def fsync_dir(folder: str | Path) -> None:
    """Make a rename in `folder` durable: without it a power cut can undo a row already counted."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes(target: str | Path | Location, data: bytes) -> str:
    def write(stream: IO[bytes]) -> None:
        stream.write(data)

    return atomic_write(target, write)


def write_text(target: str | Path | Location, text: str) -> str:
    return write_bytes(target, text.encode("utf-8"))


def copy_file(source: str | Path, target: str | Path | Location) -> str:
    """Copy a local file (e.g. a saved model) into results, atomically."""

    def write(stream: IO[bytes]) -> None:
        with open(source, "rb") as src:
            shutil.copyfileobj(src, stream, length=1 << 20)

    return atomic_write(target, write)


@contextmanager
def local_scratch(suffix: str = "") -> Iterator[Path]:
    """A local temporary file path for writers that need a real path (Keras' save)."""
    with tempfile.TemporaryDirectory(prefix="harness-") as folder:
        yield Path(folder) / f"file{suffix}"


@contextmanager
def staged_dir(target: str | Path | Location, *, last: str | None = None) -> Iterator[Path]:
    """Fill a new folder that appears at `target` only when the block succeeds.

    `target` must be absent or an empty folder; on failure nothing is left behind. On an
    object store (no folder rename) the files are uploaded once the block succeeds, each
    object whole, `last` after all others: a reader that sees it sees everything.
    """
    loc = Location.of(target)
    if not loc.local:
        with tempfile.TemporaryDirectory(prefix="harness-") as scratch:
            yield Path(scratch)
            files = sorted(p for p in Path(scratch).rglob("*") if p.is_file())
            for file in sorted(files, key=lambda p: p.name == last):
                copy_file(file, loc / file.relative_to(scratch).as_posix())
        return
    local = Path(loc.path)
    local.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{local.name}.", dir=local.parent))
    try:
        yield staging
        if local.exists():
            local.rmdir()  # empty by contract: refuses otherwise
        os.replace(staging, local)
        fsync_dir(local.parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


STORAGE_ENV = ("AWS_", "GOOGLE_", "GCS_", "AZURE_")
"""Prefixes of the variables object-store clients read (region, endpoint, credentials)."""
SECRET_WORDS = ("KEY", "SECRET", "TOKEN", "PASSWORD", "CREDENTIAL", "SAS", "CONNECTION_STRING")
"""Parts of a variable's name that mark it secret: never forwarded (Ray logs its runtime env)."""


def storage_env(results: Location) -> dict[str, str]:
    """For results in an object store, the driver's non-secret settings for it (endpoint, region,
    profile name), so that workers on a cluster's other nodes reach the same store. Secrets stay
    out: Ray writes a runtime environment verbatim into logs every user of the cluster can read;
    nodes hold their own credentials (a credentials file, an instance role). A local Ray's
    workers inherit the driver's whole environment."""
    if results.local:
        return {}
    settings = (name for name in os.environ if name.startswith(STORAGE_ENV) and not secret(name))
    return {name: os.environ[name] for name in settings}


def secret(name: str) -> bool:
    """Whether an environment variable's name marks it as a credential."""
    return any(word in name.upper() for word in SECRET_WORDS)


def refuse_credentials(argument: str, uri: str) -> None:
    """A URI with a user or password (`s3://KEY:SECRET@bucket`) would be pickled into Ray's run
    state and shown in rows and logs; credentials belong in the environment or a credentials file."""
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return
    shown = urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[-1]))
    raise ArgumentError(
        argument, "must not carry credentials (harness would write them into the run's state and "
        "logs); give them the store's usual way instead: for S3 AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY or ~/.aws/credentials, for MLflow MLFLOW_TRACKING_USERNAME and "
        "MLFLOW_TRACKING_PASSWORD", shown,
    )  # fmt: skip
