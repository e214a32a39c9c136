"""One `DatasetSource` per dataset name, registered in `SOURCES`: the only dispatch on the name.

Adding a dataset is adding one registered class (and its name to `harness._spec.spec.DatasetName`).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar, TypeVar

import numpy as np

from harness._data._split import Images, RawData, select_classes
from harness._errors import DataError
from harness._spec.spec import DatasetSpec

Shape = tuple[int, int, int]
Description = tuple[str, Shape, list[str]]  # where, input shape, class names


class DatasetSource(ABC):
    """Finds, describes and loads one dataset."""

    name: ClassVar[str]

    @abstractmethod
    def locate(self, roots: list[Path]) -> str | None:
        """Where its files are found under `roots`, or None (for `harness datasets`)."""

    @abstractmethod
    def published(self, spec: DatasetSpec, roots: list[Path]) -> Description:
        """(where, input shape, class names) as published, without decoding any image."""

    @abstractmethod
    def load(self, spec: DatasetSpec, roots: list[Path], seed: int) -> RawData:
        """The spec's selection (`image_size`, `classes`, seeded `limit_train`) of the dataset."""

    def describe(self, spec: DatasetSpec, roots: list[Path]) -> Description:
        """What `load` would give, without decoding any image (--dry-run)."""
        where, shape, classes = self.published(spec, roots)
        if spec.image_size:
            shape = (*spec.image_size, shape[2])
        if spec.classes:
            classes = select_classes(classes, spec.classes, spec.name)
        return where, shape, classes


class PathSource(DatasetSource):
    """A dataset of the user's that the spec names by `dataset.path`: absolute, relative to the
    working directory, or to a root."""

    expects: ClassVar[str]  # what the path must be, for the errors

    def locate(self, roots: list[Path]) -> None:
        return None  # no fixed place: each spec names its own

    def path(self, spec: DatasetSpec, roots: list[Path]) -> Path:
        if not spec.path:
            raise DataError(f"dataset.path: {self.name} needs the path of {self.expects}.")
        candidates = [Path(spec.path).expanduser()] + [root / spec.path for root in roots]
        for candidate in candidates:
            if candidate.exists():
                return candidate
        raise DataError(
            f"dataset.path: {spec.path!r} was not found (looked in: the working directory, "
            f"{', '.join(map(str, roots))}). Give {self.expects}, or set --data-dir."
        )


class ArraySource(DatasetSource):
    """A dataset read whole as arrays of a known shape, then selected in memory."""

    shape: ClassVar[Shape]
    class_names: ClassVar[list[str]]

    def published(self, spec: DatasetSpec, roots: list[Path]) -> Description:
        where = self.locate(roots) or "not found here: a Keras download will be tried"
        return where, self.shape, list(self.class_names)

    def keras_download(self, roots: list[Path]) -> RawData:
        """Last resort: Keras' own download; a clear DataError when offline."""
        try:
            import keras

            (x_tr, y_tr), (x_te, y_te) = getattr(keras.datasets, self.name).load_data()
        except Exception as exc:
            raise DataError(
                f"dataset.name: {self.name} was not found in {', '.join(map(str, roots))} and the Keras "
                f"download failed ({type(exc).__name__}: {str(exc)[:200]}). Point --data-dir or "
                "HARNESS_DATA_DIR at a folder holding it (see `harness datasets`)."
            ) from None
        return RawData(
            _nhwc(x_tr), y_tr.ravel().astype(np.int64), _nhwc(x_te), y_te.ravel().astype(np.int64),
            list(self.class_names), f"keras.datasets.{self.name}",
        )  # fmt: skip


SOURCES: dict[str, DatasetSource] = {}
S = TypeVar("S", bound=type[DatasetSource])


def register(cls: S) -> S:
    """Class decorator: make `cls` the source of datasets named `cls.name`."""
    if cls.name in SOURCES:
        raise RuntimeError(f"two dataset sources are named {cls.name!r}")
    SOURCES[cls.name] = cls()
    return cls


def source(name: str) -> DatasetSource:
    """The registered source of `name`."""
    try:
        return SOURCES[name]
    except KeyError:
        raise DataError(f"dataset.name: {name!r} is not a known dataset; known: {sorted(SOURCES)}.") from None


def search_roots(data_dir: str | Path | None = None) -> list[Path]:
    """Where datasets are looked for, in order (docs/guides/own-data.md)."""
    roots = [data_dir or os.environ.get("HARNESS_DATA_DIR")]
    roots += [Path.home() / ".keras" / "datasets", "/usr/share/datasets"]
    return [Path(r).expanduser() for r in roots if r]


def find_first(roots: list[Path], relatives: tuple[str, ...]) -> Path | None:
    """The first `root / relative` that exists, roots first."""
    for root in roots:
        for rel in relatives:
            if (root / rel).exists():
                return root / rel
    return None


def _nhwc(x: Images) -> Images:
    """Keras gives grey images as (n, h, w); harness keeps NHWC throughout."""
    return x if x.ndim == 4 else x[..., None]
