"""What a spec selects from a dataset (size, classes, limit_train) and the validation split.

Images stay uint8 (NHWC) end to end; the model rescales them. That keeps a
128x128 dataset at a quarter of its float32 size in Ray's object store.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from harness._errors import DataError
from harness._spec.spec import DatasetSpec

Images = npt.NDArray[np.uint8]
Labels = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Dataset:
    """Train/validation/test arrays with class names in label order."""

    name: str
    class_names: list[str]
    x_train: Images
    y_train: Labels
    x_val: Images
    y_val: Labels
    x_test: Images
    y_test: Labels
    source: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


TEST_SPLIT = 0.2
"""The share of training images carved as the test set of data without one (`dataset.test_split`)."""
CARVE_SEED = 0
"""Fixed, so every search and seed over the same data tests on the same images."""


@dataclass(frozen=True)
class RawData:
    """Train and test sets before the validation split, with class names in label order.

    Data without a test set has an empty one until `carve_test` carves it.
    """

    x_train: Images
    y_train: Labels
    x_test: Images
    y_test: Labels
    class_names: list[str]
    source: str
    carved_test: float | None = None  # the share of the training images carved as the test set

    @property
    def has_test(self) -> bool:
        return len(self.y_test) > 0


def select(raw: RawData, spec: DatasetSpec, seed: int) -> RawData:
    """The spec's `image_size`, `classes` and `limit_train` applied to arrays, in that order."""
    if spec.image_size is not None:
        raw = _resized(raw, spec.image_size)
    if spec.classes:
        raw = _subset(raw, spec.classes, spec.name)
    keep = training_subset(raw.y_train, spec.limit_train, seed)
    if keep is None:
        return raw
    return replace(raw, x_train=raw.x_train[keep], y_train=raw.y_train[keep])


def select_classes(available: list[str], wanted: list[str], name: str) -> list[str]:
    """The `wanted` classes in the dataset's own order (their new labels 0..k-1)."""
    unknown = [c for c in wanted if c not in available]
    if unknown:
        raise DataError(f"dataset.classes: {unknown} not in {name}; allowed: {available}.")
    return [c for c in available if c in wanted]


def carve_test(raw: RawData, spec: DatasetSpec) -> RawData:
    """A test set for data without one: a stratified `dataset.test_split` of the training images."""
    if raw.has_test:
        if spec.test_split is not None:
            raise DataError(
                f"dataset.test_split: {raw.source} has its own test set, and test_split only carves one "
                "from data without it; remove test_split."
            )
        return raw
    fraction = spec.test_split or TEST_SPLIT
    train, test = test_indices(raw.y_train, fraction)
    return RawData(
        raw.x_train[train], raw.y_train[train], raw.x_train[test], raw.y_train[test],
        raw.class_names, raw.source, carved_test=fraction,
    )  # fmt: skip


def test_indices(y: Labels, fraction: float) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """(train, test) indices of a stratified split with the fixed `CARVE_SEED`."""
    from sklearn.model_selection import train_test_split

    try:
        train, test = train_test_split(
            np.arange(len(y)), test_size=fraction, stratify=y, random_state=CARVE_SEED
        )
    except ValueError as exc:
        raise DataError(
            f"dataset.test_split={fraction:g} cannot carve a stratified test set from {len(y)} training "
            f"images ({exc}); give a test set, or more images of each class."
        ) from None
    return np.asarray(train), np.asarray(test)


def training_subset(y: Labels, limit: int | None, seed: int) -> npt.NDArray[np.intp] | None:
    """Indices of a seeded, stratified draw of `limit` training examples; None keeps them all.

    Drawing indices (not arrays) lets an image tree pick its files before decoding them:
    `train_test_split` shuffles by the labels alone, so `x[indices]` equals the arrays it
    would return for `x`.
    """
    if limit is None or limit >= len(y):
        return None
    from sklearn.model_selection import train_test_split

    try:
        keep, _ = train_test_split(np.arange(len(y)), train_size=limit, stratify=y, random_state=seed)
    except ValueError as exc:
        raise DataError(
            f"dataset.limit_train={limit} cannot be drawn stratified from {len(y)} training images "
            f"({exc}); use a smaller limit_train, or leave it out to use them all."
        ) from None
    return np.asarray(keep)


def split_validation(raw: RawData, spec: DatasetSpec, seed: int) -> Dataset:
    """Hold out a seeded, stratified validation set; the test set is never resampled."""
    from sklearn.model_selection import train_test_split

    try:
        x_tr, x_val, y_tr, y_val = train_test_split(
            raw.x_train, raw.y_train, test_size=spec.validation_split, stratify=raw.y_train, random_state=seed
        )
    except ValueError as exc:
        raise DataError(
            f"dataset.validation_split={spec.validation_split} cannot split {len(raw.y_train)} "
            f"training images over {len(raw.class_names)} classes ({exc}); raise "
            "limit_train or validation_split."
        ) from None
    carved = f" (test: {raw.carved_test:.0%} of train, carved)" if raw.carved_test else ""
    return Dataset(
        name=spec.label + carved,
        class_names=raw.class_names,
        x_train=x_tr,
        y_train=y_tr,
        x_val=x_val,
        y_val=y_val,
        x_test=raw.x_test,
        y_test=raw.y_test,
        source=raw.source,
    )


def _resized(raw: RawData, size: tuple[int, int]) -> RawData:
    """Resize array datasets (e.g. MNIST to 32x32) with Pillow, bicubic as image trees are."""
    from PIL import Image

    if raw.x_train.shape[1:3] == tuple(size):
        return raw

    def resize(x: Images) -> Images:
        grey, bicubic = x.shape[-1] == 1, Image.Resampling.BICUBIC
        arr = np.stack(
            [
                np.asarray(Image.fromarray(img[..., 0] if grey else img).resize((size[1], size[0]), bicubic))
                for img in x
            ]
        )
        return arr[..., None] if arr.ndim == 3 else arr

    return replace(raw, x_train=resize(raw.x_train), x_test=resize(raw.x_test))


def _subset(raw: RawData, classes: list[str], name: str) -> RawData:
    """Keep the named classes, relabelled 0..k-1 in the dataset's own label order."""
    kept = select_classes(raw.class_names, classes, name)
    mapping = np.full(len(raw.class_names), -1, np.int64)
    mapping[[raw.class_names.index(c) for c in kept]] = np.arange(len(kept))

    def pick(x: Images, y: Labels) -> tuple[Images, Labels]:
        mask = mapping[y] >= 0
        return x[mask], mapping[y[mask]]

    (x_train, y_train), (x_test, y_test) = pick(raw.x_train, raw.y_train), pick(raw.x_test, raw.y_test)
    return replace(raw, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, class_names=kept)
