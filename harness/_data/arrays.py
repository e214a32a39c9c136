"""Users' own arrays: NumPy in memory (`harness.Data`) or an `.npz` file (`dataset: arrays`).

Whatever the user holds (grey or colour, uint8 or float pixels, integer or string labels)
becomes what every other dataset is: uint8 NHWC images and labels 0..k-1 in the order of
the class names. Data without a test set gets one carved from its training images.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from harness._data._registry import DatasetSource, Description, PathSource, register
from harness._data._split import Images, Labels, RawData, carve_test, select
from harness._errors import ArgumentError, DataError
from harness._spec.spec import DatasetSpec

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test", "class_names")
"""An `.npz` file's arrays, named as `keras.datasets` names them; the last three are optional."""


@dataclass(frozen=True, eq=False)
class Data:
    """Your own images and labels, for `run_search(spec, data=...)` with `dataset.name: arrays`.

    Build it with `Data.from_arrays` or `Data.from_npz`; both check and convert at once, so
    a mistake is reported where you made it, not inside a worker.
    """

    raw: RawData

    @classmethod
    def from_arrays(
        cls,
        x: Any,
        y: Any,
        *,
        x_test: Any = None,
        y_test: Any = None,
        class_names: list[str] | None = None,
    ) -> Data:
        """Images `(n, h, w)` or `(n, h, w, 1 | 3)`, uint8 (0-255) or float (0-1 or 0-255), and
        one label per image (class indices or names). Without `x_test`/`y_test`, a test set
        is carved from `x` (`dataset.test_split`, stratified, seed 0).
        """
        return cls(to_raw(x, y, x_test, y_test, class_names, "arrays from Python", ArgumentError))

    @classmethod
    def from_npz(cls, path: str | Path) -> Data:
        """An `.npz` file holding `x_train`, `y_train` and optionally `x_test`, `y_test`,
        `class_names` (the names `keras.datasets` uses)."""
        return cls(read_npz(Path(path).expanduser()))

    @property
    def digest(self) -> str:
        """Short hash of the arrays and class names: a resume with other arrays is refused."""
        h = hashlib.sha256()
        for part in (self.raw.x_train, self.raw.y_train, self.raw.x_test, self.raw.y_test):
            h.update(str(part.shape).encode())
            h.update(np.ascontiguousarray(part).data)
        h.update("\n".join(self.raw.class_names).encode())
        return h.hexdigest()[:12]

    def __repr__(self) -> str:
        r = self.raw
        return (
            f"Data(train={r.x_train.shape}, test={r.x_test.shape if r.has_test else None}, "
            f"classes={r.class_names})"
        )


def to_raw(
    x: Any, y: Any, x_test: Any, y_test: Any, class_names: list[str] | None, source: str,
    error: type[ArgumentError] | type[DataError] = DataError,
) -> RawData:  # fmt: skip
    """Checked, converted arrays; `error` names the arguments (Python) or the file's keys."""

    def fail(argument: str, problem: str, received: Any) -> Exception:
        if error is ArgumentError:
            return ArgumentError(argument, problem, received)
        return DataError(f"{source}: {argument} {problem}; got {received}.")

    if (x_test is None) != (y_test is None):
        given = "x_test" if x_test is not None else "y_test"
        raise fail(given, "needs its partner: give both x_test and y_test, or neither", "only one of them")
    images = _images(x, "x", fail)
    labels_in = _label_array(y, "y", len(images), fail)
    test_images = None if x_test is None else _images(x_test, "x_test", fail)
    test_in = None if test_images is None else _label_array(y_test, "y_test", len(test_images), fail)
    if test_images is not None and test_images.shape[1:] != images.shape[1:]:
        raise fail(
            "x_test", f"must have the training images' shape {images.shape[1:]}", test_images.shape[1:]
        )
    labels, test_labels, names = _labels(labels_in, test_in, class_names, fail)
    if test_images is None:
        empty = np.empty((0, *images.shape[1:]), np.uint8)
        return RawData(images, labels, empty, np.empty(0, np.int64), names, source)
    assert test_labels is not None  # given with x_test
    return RawData(images, labels, test_images, test_labels, names, source)


def read_npz(path: Path) -> RawData:
    """An `.npz` file's arrays (never pickled objects: loading one runs no code)."""
    if not path.is_file():
        raise DataError(
            f"dataset.path: {str(path)!r} is not a file; give an .npz file holding {', '.join(NPZ_KEYS)}."
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            found = {key: npz[key] for key in npz.files}
    except (OSError, ValueError) as exc:
        raise DataError(
            f"dataset.path: {path} is not a readable .npz file of plain arrays ({exc}); save it with "
            "numpy.savez(path, x_train=..., y_train=..., x_test=..., y_test=..., class_names=...)."
        ) from None
    missing = [k for k in NPZ_KEYS[:2] if k not in found]
    unknown = sorted(set(found) - set(NPZ_KEYS))
    if missing or unknown:
        raise DataError(
            f"dataset.path: {path} holds {sorted(found)}; it needs x_train and y_train, and may hold "
            f"x_test, y_test and class_names (missing: {missing or 'none'}; unknown: {unknown or 'none'})."
        )
    names = found.get("class_names")
    return to_raw(
        found["x_train"], found["y_train"], found.get("x_test"), found.get("y_test"),
        None if names is None else [str(n) for n in names.ravel()], str(path),
    )  # fmt: skip


class InMemory(DatasetSource):
    """The source of arrays passed from Python: not registered, since no name finds them."""

    name = "arrays"

    def __init__(self, data: Data) -> None:
        self.data = data

    def locate(self, roots: list[Path]) -> str:
        return "arrays from Python"

    def published(self, spec: DatasetSpec, roots: list[Path]) -> Description:
        r = self.data.raw
        return self.locate(roots), _shape(r.x_train), list(r.class_names)

    def load(self, spec: DatasetSpec, roots: list[Path], seed: int) -> RawData:
        return select(carve_test(self.data.raw, spec), spec, seed)


@register
class ArraysFile(PathSource):
    """`dataset: {name: arrays, path: data.npz}`."""

    name = "arrays"
    expects = (
        "an .npz file (x_train, y_train, and optionally x_test, y_test, class_names), or arrays "
        "passed from Python: run_search(spec, data=Data.from_arrays(x, y))"
    )

    def published(self, spec: DatasetSpec, roots: list[Path]) -> Description:
        where = self.path(spec, roots)
        return str(where), _shape(read_npz(where).x_train), read_npz(where).class_names

    def load(self, spec: DatasetSpec, roots: list[Path], seed: int) -> RawData:
        return select(carve_test(read_npz(self.path(spec, roots)), spec), spec, seed)


def _shape(x: Images) -> tuple[int, int, int]:
    return (int(x.shape[1]), int(x.shape[2]), int(x.shape[3]))


def _images(x: Any, argument: str, fail: Any) -> Images:
    """uint8 NHWC: grey images gain their channel axis; float pixels in 0-1 are scaled by 255."""
    arr = np.asarray(x)
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4 or arr.shape[-1] not in (1, 3) or len(arr) == 0:
        raise fail(
            argument, "must be images shaped (n, h, w), (n, h, w, 1) or (n, h, w, 3), n > 0", arr.shape
        )
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.number):
        raise fail(argument, "must hold numeric pixels (uint8 0-255, or float 0-1 or 0-255)", arr.dtype)
    if not np.isfinite(arr).all():
        raise fail(argument, "must hold finite pixels", "NaN or infinite values")
    low, high = float(arr.min()), float(arr.max())
    scale = 255.0 if np.issubdtype(arr.dtype, np.floating) and high <= 1.0 else 1.0
    if low < 0 or high * scale > 255.0:
        raise fail(
            argument,
            "must hold raw pixels, 0-255 or 0-1 (harness' models rescale them; standardised "
            "data cannot be stored as 8-bit images)",
            f"values from {low:g} to {high:g}",
        )
    return np.round(arr * scale).astype(np.uint8)


def _label_array(y: Any, argument: str, count: int, fail: Any) -> npt.NDArray[Any]:
    """One label per image: a column vector is raveled, one-hot rows are refused."""
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr.ravel()
    if arr.ndim != 1:
        hint = " (one-hot? pass y.argmax(axis=1))" if arr.ndim == 2 else ""
        raise fail(argument, f"must hold one label per image{hint}", f"shape {arr.shape}")
    if len(arr) != count:
        images = "x" if argument == "y" else "x_test"
        raise fail(argument, f"must have one label per image of {images} ({count})", f"{len(arr)} labels")
    return arr


def _labels(
    y: npt.NDArray[Any], y_test: npt.NDArray[Any] | None, class_names: list[str] | None, fail: Any
) -> tuple[Labels, Labels | None, list[str]]:
    """Labels 0..k-1 and their class names: names as given; else string labels, sorted; else
    the integer values, sorted (labels 3, 5, 7 become 0, 1, 2 named "3", "5", "7")."""
    both = y if y_test is None else np.concatenate([y, y_test])
    if class_names is not None and len(set(class_names)) != len(class_names):
        raise fail("class_names", "must be distinct", class_names)
    if both.dtype.kind in "USO":
        values = [str(v) for v in both]
        names = list(class_names) if class_names is not None else sorted(set(values))
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise fail("y", f"holds labels missing from class_names {names}", unknown[:10])
        index = {name: i for i, name in enumerate(names)}
        coded = np.asarray([index[v] for v in values], np.int64)
    elif both.dtype.kind in "iu" or (both.dtype.kind == "f" and bool(np.all(np.mod(both, 1) == 0))):
        ints = both.astype(np.int64)
        if class_names is not None:
            if ints.min() < 0 or ints.max() >= len(class_names):
                raise fail("y", f"must hold class indices 0..{len(class_names) - 1} (one per class name)",
                           f"values from {ints.min()} to {ints.max()}")  # fmt: skip
            names, coded = list(class_names), ints
        else:
            values_sorted = np.unique(ints)
            names, coded = (
                [str(v) for v in values_sorted],
                np.searchsorted(values_sorted, ints).astype(np.int64),
            )
    else:
        raise fail("y", "must hold class indices (integers) or class names (strings)", both.dtype)
    if len(names) < 2:
        raise fail("y", "must hold at least two classes", names)
    return coded[: len(y)], None if y_test is None else coded[len(y) :], names
