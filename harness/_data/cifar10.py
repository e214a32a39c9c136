"""CIFAR-10: the JPG tree (tarball or folder), Keras' python-pickle batches, else a Keras download."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from harness._data._registry import ArraySource, find_first, register
from harness._data._split import Images, Labels, RawData, select
from harness._data.image_folder import read_tree
from harness._errors import DataError
from harness._spec.spec import DatasetSpec

CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip
BATCHES = "cifar-10-batches-py"  # Keras' cache
CANDIDATES = (
    "cifar10/cifar10-jpg.tar.gz", "cifar10-jpg.tar.gz", "cifar10/cifar10-jpg", "cifar10-jpg", BATCHES,
)  # fmt: skip


@register
class Cifar10(ArraySource):
    """32x32 RGB, 10 classes; the JPG tree is read like an image folder (selected before decoding)."""

    name = "cifar10"
    shape = (32, 32, 3)
    class_names = CIFAR10_CLASSES

    def locate(self, roots: list[Path]) -> str | None:
        found = find_first(roots, CANDIDATES)
        return str(found) if found else None

    def load(self, spec: DatasetSpec, roots: list[Path], seed: int) -> RawData:
        found = find_first(roots, CANDIDATES)
        if found is None:
            raw = self.keras_download(roots)
        elif found.name == BATCHES:
            raw = _read_batches(found)
        else:
            return read_tree(found, spec, seed, check=_check_classes)
        return select(raw, spec, seed)


def _check_classes(path: Path, classes: list[str]) -> None:
    if classes != CIFAR10_CLASSES:
        raise DataError(f"{path}: expected CIFAR-10 class folders {CIFAR10_CLASSES}.")


def _read_batches(folder: Path) -> RawData:
    """Keras' cached python-pickle batches."""

    def read(name: str) -> tuple[Images, Labels]:
        with open(folder / name, "rb") as f:
            d = pickle.load(f, encoding="bytes")
        x = d[b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return x, np.asarray(d[b"labels"], np.int64)

    parts = [read(f"data_batch_{i}") for i in range(1, 6)]
    x_te, y_te = read("test_batch")
    x_tr = np.concatenate([p[0] for p in parts])
    y_tr = np.concatenate([p[1] for p in parts])
    return RawData(x_tr, y_tr, x_te, y_te, list(CIFAR10_CLASSES), str(folder))
