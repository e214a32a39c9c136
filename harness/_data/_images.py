"""Image files in a folder or tarball: list them cheaply, decode the chosen ones, cache the arrays.

Listing reads names only, so callers choose files before paying for Pillow. Decoded
arrays are cached as .npz under `cache_dir()`, keyed by every source file's size and
mtime, so an added, removed or edited image is seen on the next load.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from harness._errors import DataError
from harness._storage import atomic_write

if TYPE_CHECKING:
    from PIL import Image

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
Source = bytes | Path  # a tarball member's bytes, or a file in a folder
Arrays = dict[str, npt.NDArray[Any]]


def list_images(path: Path) -> list[str]:
    """Sorted relative names of every image in a folder or tarball; no image is read."""
    if path.is_dir():
        names = [f.relative_to(path).as_posix() for f in path.rglob("*") if _is_image(f.name)]
    else:
        with _tarball(path) as tar:
            names = [m.name for m in tar if m.isfile() and _is_image(m.name)]
    return sorted(names)


def read_images(path: Path, names: Sequence[str]) -> list[Source]:
    """The named images' sources, in the order given.

    A tarball is read in one pass in archive order (a gzip stream cannot seek back
    cheaply), keeping only the named members.
    """
    if path.is_dir():
        return [path / name for name in names]
    wanted = set(names)
    found: dict[str, bytes] = {}
    with _tarball(path) as tar:
        for member in tar:
            if member.name in wanted:
                found[member.name] = tar.extractfile(member).read()  # type: ignore[union-attr]  # a file: not None
                if len(found) == len(wanted):
                    break
    return [found[name] for name in names]


def image_size(source: Source) -> tuple[int, int]:
    """(height, width) from the image header, without decoding pixels."""
    with _open(source) as img:
        return img.height, img.width


def decode(source: Source, size: tuple[int, int]) -> npt.NDArray[np.uint8]:
    """One image as uint8 RGB of `size` (h, w), resized bicubic if needed."""
    from PIL import Image

    with _open(source) as img:
        rgb = img.convert("RGB")
        if (rgb.height, rgb.width) != tuple(size):
            rgb = rgb.resize((size[1], size[0]), resample=Image.Resampling.BICUBIC)
        return np.asarray(rgb, np.uint8)


def decode_all(sources: Sequence[Source], size: tuple[int, int]) -> npt.NDArray[np.uint8]:
    """Decode in threads (Pillow releases the GIL) into one (n, h, w, 3) array."""
    if not sources:
        return np.empty((0, *size, 3), np.uint8)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return np.stack(list(pool.map(lambda source: decode(source, size), sources)))


def cache_dir() -> Path:
    """Where decoded image folders are cached (`HARNESS_CACHE_DIR`)."""
    default = Path.home() / ".cache" / "harness"
    return Path(os.environ.get("HARNESS_CACHE_DIR", default)).expanduser()


def cache_file(path: Path, selection: str) -> Path:
    """The cache entry for `selection` of `path`, keyed by every file's size and mtime."""
    key = hashlib.sha256(f"{path.resolve()}|{selection}".encode())
    files = sorted(path.rglob("*")) if path.is_dir() else [path]
    for file in files:
        stat = file.stat()
        key.update(f"{file}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return cache_dir() / f"images-{key.hexdigest()[:16]}.npz"


def read_cache(file: Path) -> Arrays | None:
    """The cached arrays, or None on a miss."""
    if not file.is_file():
        return None
    with np.load(file, allow_pickle=False) as f:
        return {name: f[name] for name in f.files}


def write_cache(file: Path, arrays: Arrays) -> None:
    """Store arrays whole or not at all: a concurrent reader never sees half a file."""

    def write(stream: IO[bytes]) -> None:
        np.savez(stream, **arrays)  # type: ignore[arg-type]  # stubs: a key could be allow_pickle

    atomic_write(file, write)


def _is_image(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_SUFFIXES


@contextmanager
def _tarball(path: Path) -> Iterator[tarfile.TarFile]:
    try:
        with tarfile.open(path) as tar:
            yield tar
    except tarfile.TarError as exc:
        raise DataError(f"dataset.path: {path} is neither a folder nor a readable tarball ({exc}).") from None


def _open(source: Source) -> Image.Image:
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
    except (UnidentifiedImageError, OSError) as exc:
        where = "a member of the dataset.path tarball" if isinstance(source, bytes) else str(source)
        raise DataError(
            f"dataset.path: {where} is not a readable image ({exc}); remove it, or convert it to "
            "PNG or JPEG."
        ) from None
