"""Where results live, and the one way harness writes a file there: whole or not at all.

Every writer (leaderboard rows, compaction, saved specs, models, bench tables, the data
cache, exports) goes through `atomic_write` or `staged_dir`, written against pyarrow's
`FileSystem` interface so that shared and object storage change this module only.
On a local or NFS path a file is written under a dot-prefixed temporary name (invisible
to readers, which skip dot files) in the target's folder, flushed, and renamed over the
target. Object stores have no rename, but an object becomes visible only once written
whole, so there the target is written directly.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from pyarrow import fs as pafs

Writer = Callable[[IO[bytes]], None]


def filesystem(location: str | Path) -> tuple[pafs.FileSystem, str]:
    """The filesystem holding `location` and the path on it (local paths made absolute)."""
    text = str(location)
    if "://" in text:
        return pafs.FileSystem.from_uri(text)  # type: ignore[no-any-return]
    return pafs.LocalFileSystem(), str(Path(text).expanduser().resolve())


def _renames(fs: pafs.FileSystem) -> bool:
    return bool(fs.type_name == "local")


def atomic_write(target: str | Path, write: Writer, *, fs: pafs.FileSystem | None = None) -> str:
    """Write a file with `write(stream)` so that readers see all of it or none of it.

    Returns the path written. A failure removes the temporary file and leaves any
    previous version of the target in place.
    """
    if fs is None:
        fs, path = filesystem(target)
    else:
        path = str(target)
    parent, name = path.rsplit("/", 1)
    fs.create_dir(parent, recursive=True)
    if not _renames(fs):
        with fs.open_output_stream(path) as stream:
            write(stream)
        return path
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
    return path


def write_bytes(target: str | Path, data: bytes) -> str:
    def write(stream: IO[bytes]) -> None:
        stream.write(data)

    return atomic_write(target, write)


def write_text(target: str | Path, text: str) -> str:
    return write_bytes(target, text.encode("utf-8"))


def copy_file(source: str | Path, target: str | Path) -> str:
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
def staged_dir(target: str | Path) -> Iterator[Path]:
    """Fill a new folder that appears at `target` only when the block succeeds.

    `target` must be absent or an empty folder; on failure nothing is left behind.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield staging
        if target.exists():
            target.rmdir()  # empty by contract: refuses otherwise
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def remove(path: str | Path) -> None:
    """Delete a file if it exists (models dropped by keep-top-k)."""
    fs, where = filesystem(path)
    with suppress(FileNotFoundError):
        fs.delete_file(where)
