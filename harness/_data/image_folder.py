"""Image trees in a folder or tarball: `train/<class>/*` and `test/<class>/*`, or class folders
alone (`<class>/*` or `train/<class>/*`), whose test set is carved from them (`dataset.test_split`).

The spec's classes and limit_train choose files by name before any image is decoded,
so a two-class, 1,000-image search over a large tree decodes about 1,000 images.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness._data._images import (
    IMAGE_SUFFIXES,
    cache_file,
    decode_all,
    image_size,
    list_images,
    read_cache,
    read_images,
    write_cache,
)
from harness._data._registry import Description, PathSource, register
from harness._data._split import TEST_SPLIT, Labels, RawData, select_classes, test_indices, training_subset
from harness._errors import DataError
from harness._spec.spec import DatasetSpec

ClassCheck = Callable[[Path, list[str]], None]  # raises DataError for unexpected class folders


@dataclass(frozen=True)
class ImageTree:
    """The image names of a tree by split and class, listed without reading any image."""

    path: Path
    names: list[str]  # every image, sorted: the same order on every machine
    splits: dict[str, dict[str, list[str]]]  # split -> class -> sorted names

    @classmethod
    def scan(cls, path: Path) -> ImageTree:
        """List and check the tree; DataError unless it has training class folders."""
        names = list_images(path)
        splits: dict[str, dict[str, list[str]]] = {"train": {}, "test": {}}
        flat: dict[str, list[str]] = {}  # <class>/<image>, for a tree without train/ and test/
        for name in names:
            parts = name.split("/")
            if len(parts) >= 3 and parts[-3] in splits:
                splits[parts[-3]].setdefault(parts[-2], []).append(name)
            elif len(parts) >= 2:
                flat.setdefault(parts[-2], []).append(name)
        if not splits["train"] and not splits["test"]:
            splits["train"] = flat
        if not splits["train"]:
            found = "only test/<class>/<image> files" if splits["test"] else "no <class>/<image> files"
            raise DataError(
                f"dataset.path: {path} has {found}; give class folders (<class>/<image>), or train/<class>/ "
                f"and test/<class>/ (image suffixes: {sorted(IMAGE_SUFFIXES)})."
            )
        unknown = sorted(set(splits["test"]) - set(splits["train"]))
        if unknown:
            raise DataError(f"dataset.path: {path}/test has classes missing from train: {unknown}.")
        return cls(path, names, splits)

    @property
    def has_test(self) -> bool:
        return bool(self.splits["test"])

    @property
    def classes(self) -> list[str]:
        """The train/ class folders, sorted: label i is classes[i]."""
        return sorted(self.splits["train"])

    def first_size(self) -> tuple[int, int]:
        """(h, w) of the first image by name: the size of all when no image_size is given."""
        return image_size(read_images(self.path, self.names[:1])[0])

    def files(self, split: str, classes: list[str]) -> tuple[list[str], Labels]:
        """Names and labels (index in `classes`) of a split's images, class by class."""
        by_class = self.splits[split]
        names = [n for c in classes for n in by_class.get(c, [])]
        labels = [i for i, c in enumerate(classes) for _ in by_class.get(c, [])]
        return names, np.asarray(labels, np.int64)


def read_tree(path: Path, spec: DatasetSpec, seed: int, check: ClassCheck | None = None) -> RawData:
    """The spec's selection of a tree, decoding only the chosen images; cached.

    Classes are relabelled 0..k-1 in sorted order and `limit_train` is the same seeded,
    stratified draw as on arrays, so the images equal decoding all, then selecting.
    The cache key holds the selection and every file's size and mtime.
    """
    limit = spec.limit_train
    selection = (spec.image_size, sorted(spec.classes or []), limit, seed if limit is not None else None,
                 spec.test_split)  # fmt: skip
    cached_at = cache_file(path, repr(selection))
    cached = read_cache(cached_at)
    if cached is not None:
        return RawData(
            cached["x_train"], cached["y_train"], cached["x_test"], cached["y_test"],
            [str(c) for c in cached["class_names"]], str(path), float(cached["carved_test"]) or None,
        )  # fmt: skip
    tree = ImageTree.scan(path)
    if check is not None:
        check(path, tree.classes)
    classes = select_classes(tree.classes, spec.classes, spec.name) if spec.classes else tree.classes
    if tree.has_test and spec.test_split is not None:
        raise DataError(
            f"dataset.test_split: {path} has its own test/ folder, and test_split only carves a test "
            "set from data without one; remove test_split."
        )
    train, y_train = tree.files("train", classes)
    carved = None
    if tree.has_test:
        test, y_test = tree.files("test", classes)
    else:  # carved before limit_train: the same test images whatever subset trains
        train_at, test_at = test_indices(y_train, spec.test_split or TEST_SPLIT)
        test, y_test = [train[i] for i in test_at], y_train[test_at]
        train, y_train, carved = (
            [train[i] for i in train_at],
            y_train[train_at],
            spec.test_split or TEST_SPLIT,
        )
    keep = training_subset(y_train, limit, seed)
    if keep is not None:
        train, y_train = [train[i] for i in keep], y_train[keep]
    size = spec.image_size or tree.first_size()
    x = decode_all(read_images(path, train + test), size)
    raw = RawData(x[: len(train)], y_train, x[len(train) :], y_test, classes, str(path), carved_test=carved)
    write_cache(
        cached_at,
        {"x_train": raw.x_train, "y_train": raw.y_train, "x_test": raw.x_test, "y_test": raw.y_test,
         "class_names": np.array(raw.class_names), "carved_test": np.array(carved or 0.0)},
    )  # fmt: skip
    return raw


@register
class ImageFolder(PathSource):
    """Any tree of images named by `dataset.path`."""

    name = "image_folder"
    expects = "a folder (or tarball) of <class>/<image> files, or of train/<class>/ and test/<class>/"

    def published(self, spec: DatasetSpec, roots: list[Path]) -> Description:
        tree = ImageTree.scan(self.path(spec, roots))
        return str(tree.path), (*tree.first_size(), 3), tree.classes

    def load(self, spec: DatasetSpec, roots: list[Path], seed: int) -> RawData:
        return read_tree(self.path(spec, roots), spec, seed)
