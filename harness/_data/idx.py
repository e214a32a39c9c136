"""MNIST and Fashion-MNIST: the IDX files (gzipped or not), Keras' mnist.npz, else a Keras download."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from harness._data._registry import ArraySource, find_first, register
from harness._data._split import RawData, select
from harness._data.digits import DIGIT_CLASSES
from harness._errors import DataError
from harness._spec.spec import DatasetSpec

FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def read_idx(path: Path) -> npt.NDArray[Any]:
    """Read an IDX file (gzipped or not): big-endian header, then uint8 data.

    Gives (n, rows, cols) uint8 images or (n,) int64 labels, as the file's magic says.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, count = struct.unpack(">II", data[:8])
    if magic == 2049:
        return np.frombuffer(data, np.uint8, count, offset=8).astype(np.int64)
    if magic != 2051:
        raise DataError(f"{path}: not an IDX file (magic {magic}, expected 2049 or 2051).")
    rows, cols = struct.unpack(">II", data[8:16])
    return np.frombuffer(data, np.uint8, count * rows * cols, offset=16).reshape(count, rows, cols)


class IdxSource(ArraySource):
    """28x28 grey images in the four MNIST-layout IDX files, in one of `folders` under a root."""

    shape = (28, 28, 1)
    folders: ClassVar[tuple[str, ...]]
    keras_npz: ClassVar[str | None] = None  # Keras' own cache, where it keeps one file

    def locate(self, roots: list[Path]) -> str | None:
        found = self._find_idx(roots)
        if found is not None:
            return str(found[0])
        npz = self._find_npz(roots)
        return str(npz) if npz else None

    def load(self, spec: DatasetSpec, roots: list[Path], seed: int) -> RawData:
        return select(self._read(roots), spec, seed)

    def _read(self, roots: list[Path]) -> RawData:
        classes = list(self.class_names)
        found = self._find_idx(roots)
        if found is not None:
            folder, files = found
            arrays = {key: read_idx(file) for key, file in files.items()}
            return RawData(
                arrays["x_train"][..., None], arrays["y_train"],
                arrays["x_test"][..., None], arrays["y_test"], classes, str(folder),
            )  # fmt: skip
        npz = self._find_npz(roots)
        if npz is not None:
            with np.load(npz) as f:
                return RawData(
                    f["x_train"][..., None], f["y_train"].astype(np.int64),
                    f["x_test"][..., None], f["y_test"].astype(np.int64), classes, str(npz),
                )  # fmt: skip
        return self.keras_download(roots)

    def _find_idx(self, roots: list[Path]) -> tuple[Path, dict[str, Path]] | None:
        for root in roots:
            for folder in self.folders:
                files = _idx_files(root / folder)
                if files is not None:
                    return root / folder, files
        return None

    def _find_npz(self, roots: list[Path]) -> Path | None:
        return find_first(roots, (self.keras_npz,)) if self.keras_npz else None


def _idx_files(folder: Path) -> dict[str, Path] | None:
    """The four IDX files in `folder`, each gzipped or not; None unless all are there."""
    files: dict[str, Path] = {}
    for key, stem in IDX_FILES.items():
        found = next((p for p in (folder / f"{stem}.gz", folder / stem) if p.is_file()), None)
        if found is None:
            return None
        files[key] = found
    return files


@register
class Mnist(IdxSource):
    name = "mnist"
    class_names = DIGIT_CLASSES
    folders = ("mnist",)
    keras_npz = "mnist.npz"


@register
class FashionMnist(IdxSource):
    name = "fashion_mnist"
    class_names = FASHION_MNIST_CLASSES
    folders = ("fashion-mnist", "fashion_mnist")
