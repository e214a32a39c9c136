"""Datasets: find the files, read them into uint8 arrays once, split for selection.

Images stay uint8 (NHWC) end to end; the model rescales them. That keeps a
128x128 dataset at a quarter of its float32 size in Ray's object store.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import struct
import tarfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.errors import DataError
from harness.spec import DatasetSpec

CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
DIGIT_CLASSES = [str(i) for i in range(10)]
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
IDX_FOLDERS = {"mnist": ("mnist",), "fashion_mnist": ("fashion-mnist", "fashion_mnist")}
CIFAR_CANDIDATES = (
    "cifar10/cifar10-jpg.tar.gz", "cifar10-jpg.tar.gz", "cifar10/cifar10-jpg",
    "cifar10-jpg", "cifar-10-batches-py",
)  # fmt: skip


@dataclass(frozen=True)
class Dataset:
    """Train/validation/test arrays with class names in label order."""

    name: str
    class_names: list[str]
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@dataclass(frozen=True)
class RawData:
    """A dataset as published: full train and test sets."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    source: str


def search_roots(data_dir: str | Path | None = None) -> list[Path]:
    """Where datasets are looked for, in order (see DESIGN.md, Defaults)."""
    roots = [data_dir or os.environ.get("HARNESS_DATA_DIR")]
    roots += [Path.home() / ".keras" / "datasets", "/usr/share/datasets"]
    return [Path(r).expanduser() for r in roots if r]


def cache_dir() -> Path:
    """Where decoded image folders are cached (`HARNESS_CACHE_DIR`)."""
    default = Path.home() / ".cache" / "harness"
    return Path(os.environ.get("HARNESS_CACHE_DIR", default)).expanduser()


def load_dataset(spec: DatasetSpec, *, data_dir: str | Path | None = None, seed: int = 0) -> Dataset:
    """Load, subset and split a dataset; the validation split is stratified and seeded."""
    raw = load_raw(spec, data_dir=data_dir)
    if spec.image_size is not None:
        raw = _resized(raw, spec.image_size)
    if spec.classes:
        raw = _subset(raw, spec.classes, spec.name)
    x, y = raw.x_train, raw.y_train
    if spec.limit_train is not None and spec.limit_train < len(y):
        x, y = _stratified_take(x, y, spec.limit_train, seed)
    from sklearn.model_selection import train_test_split

    try:
        x_tr, x_val, y_tr, y_val = train_test_split(
            x, y, test_size=spec.validation_split, stratify=y, random_state=seed
        )
    except ValueError as exc:
        raise DataError(
            f"dataset.validation_split={spec.validation_split} cannot split {len(y)} "
            f"training images over {len(raw.class_names)} classes ({exc}); raise "
            "limit_train or validation_split."
        ) from None
    return Dataset(
        name=spec.label,
        class_names=raw.class_names,
        x_train=x_tr,
        y_train=y_tr,
        x_val=x_val,
        y_val=y_val,
        x_test=raw.x_test,
        y_test=raw.y_test,
        source=raw.source,
    )


def load_raw(spec: DatasetSpec, *, data_dir: str | Path | None = None) -> RawData:
    """The dataset as published, from the first place it is found."""
    roots = search_roots(data_dir)
    if spec.name == "digits":
        return _digits()
    if spec.name in IDX_FOLDERS:
        return _idx_or_keras(spec.name, roots)
    if spec.name == "cifar10":
        return _cifar10(roots)
    if not spec.path:
        raise DataError("dataset.path: image_folder needs a path to a folder with train/ and test/.")
    return read_image_tree(locate_path(spec.path, roots), spec.image_size)


def describe(spec: DatasetSpec, *, data_dir: str | Path | None = None) -> tuple[str, tuple, list[str]]:
    """(where it is found, input shape, class names) without decoding any image (--dry-run)."""
    roots = search_roots(data_dir)
    shapes = {"digits": (8, 8, 1), "mnist": (28, 28, 1), "fashion_mnist": (28, 28, 1), "cifar10": (32, 32, 3)}
    if spec.name == "image_folder":
        if not spec.path:
            raise DataError("dataset.path: image_folder needs a path to a folder with train/ and test/.")
        path = locate_path(spec.path, roots)
        names = [n for n, _ in _list_images(path, read=False)]
        classes = sorted({n.split("/")[-2] for n in names if "/train/" in f"/{n}"})
        if not classes:
            raise DataError(f"dataset.path: {path} has no train/<class>/<image> files.")
        first = min(names)
        source = path / first if path.is_dir() else _member_bytes(path, first)
        shape = (*_first_size(source), 3)
        where = str(path)
    else:
        where = locate(spec.name, data_dir) or "not found here: a Keras download will be tried"
        shape = shapes[spec.name]
        classes = {"digits": DIGIT_CLASSES, "cifar10": CIFAR10_CLASSES}.get(spec.name) or _classes_for(
            spec.name
        )
    if spec.image_size:
        shape = (*spec.image_size, shape[2])
    if spec.classes:
        unknown = [c for c in spec.classes if c not in classes]
        if unknown:
            raise DataError(f"dataset.classes: {unknown} not in {spec.name}; allowed: {classes}.")
        classes = [c for c in classes if c in spec.classes]
    return where, shape, classes


def _member_bytes(path: Path, name: str) -> bytes:
    with tarfile.open(path) as tar:
        return tar.extractfile(name).read()  # type: ignore[union-attr]


def locate(name: str, data_dir: str | Path | None = None) -> str | None:
    """Where a known dataset's files are found, or None (used by `harness datasets`)."""
    roots = search_roots(data_dir)
    if name == "digits":
        return "bundled with scikit-learn"
    if name in IDX_FOLDERS:
        found = _find_idx(name, roots) or _find_keras_npz(name, roots)
        return str(found) if found else None
    if name == "cifar10":
        found = _find_first(roots, CIFAR_CANDIDATES)
        return str(found) if found else None
    return None


def locate_path(path: str, roots: list[Path]) -> Path:
    """An image-folder path: absolute, relative to the working dir, or to a data dir."""
    candidates = [Path(path).expanduser()] + [root / path for root in roots]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise DataError(
        f"dataset.path: {path!r} was not found (looked in: the working directory, "
        f"{', '.join(map(str, roots))}). Pass an existing folder with train/<class>/ and "
        "test/<class>/, or set --data-dir."
    )


def _digits() -> RawData:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    x_tr, x_te, y_tr, y_te = train_test_split(
        images, bunch.target.astype(np.int64), test_size=0.2, stratify=bunch.target, random_state=0
    )
    return RawData(x_tr, y_tr, x_te, y_te, DIGIT_CLASSES, "scikit-learn load_digits (fixed 80/20)")


def _classes_for(name: str) -> list[str]:
    return FASHION_MNIST_CLASSES if name == "fashion_mnist" else DIGIT_CLASSES


def _find_first(roots: list[Path], relatives: tuple[str, ...]) -> Path | None:
    for root in roots:
        for rel in relatives:
            if (root / rel).exists():
                return root / rel
    return None


def _find_idx(name: str, roots: list[Path]) -> Path | None:
    for root in roots:
        for folder in IDX_FOLDERS[name]:
            if all(_idx_file(root / folder, stem) for stem in IDX_FILES.values()):
                return root / folder
    return None


def _find_keras_npz(name: str, roots: list[Path]) -> Path | None:
    return _find_first(roots, (f"{name}.npz",)) if name == "mnist" else None


def _idx_file(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (gzipped or not): big-endian header, then uint8 data."""
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


def _idx_or_keras(name: str, roots: list[Path]) -> RawData:
    classes = _classes_for(name)
    folder = _find_idx(name, roots)
    if folder is not None:
        arrays = {k: read_idx(_idx_file(folder, stem)) for k, stem in IDX_FILES.items()}  # type: ignore[arg-type]
        return RawData(
            arrays["x_train"][..., None], arrays["y_train"],
            arrays["x_test"][..., None], arrays["y_test"], classes, str(folder),
        )  # fmt: skip
    npz = _find_keras_npz(name, roots)
    if npz is not None:
        with np.load(npz) as f:
            return RawData(
                f["x_train"][..., None], f["y_train"].astype(np.int64),
                f["x_test"][..., None], f["y_test"].astype(np.int64), classes, str(npz),
            )  # fmt: skip
    (x_tr, y_tr), (x_te, y_te) = _keras_download(name, roots)
    return RawData(
        x_tr[..., None], y_tr.astype(np.int64), x_te[..., None], y_te.astype(np.int64),
        classes, f"keras.datasets.{name}",
    )  # fmt: skip


def _keras_download(name: str, roots: list[Path]) -> tuple:
    """Last resort: Keras' own download; a clear DataError when offline."""
    try:
        import keras

        return getattr(keras.datasets, name).load_data()
    except Exception as exc:
        raise DataError(
            f"dataset.name: {name} was not found in {', '.join(map(str, roots))} and the Keras "
            f"download failed ({type(exc).__name__}: {str(exc)[:200]}). Point --data-dir or "
            "HARNESS_DATA_DIR at a folder holding it (see `harness datasets`)."
        ) from None


def _cifar10(roots: list[Path]) -> RawData:
    found = _find_first(roots, CIFAR_CANDIDATES)
    if found is None:
        (x_tr, y_tr), (x_te, y_te) = _keras_download("cifar10", roots)
        return RawData(
            x_tr, y_tr.ravel().astype(np.int64), x_te, y_te.ravel().astype(np.int64),
            CIFAR10_CLASSES, "keras.datasets.cifar10",
        )  # fmt: skip
    if found.name == "cifar-10-batches-py":
        return _cifar_batches(found)
    raw = read_image_tree(found, None)
    if raw.class_names != CIFAR10_CLASSES:
        raise DataError(f"{found}: expected CIFAR-10 class folders {CIFAR10_CLASSES}.")
    return raw


def _cifar_batches(folder: Path) -> RawData:
    """Keras' cached python-pickle batches."""

    def read(name: str) -> tuple[np.ndarray, np.ndarray]:
        with open(folder / name, "rb") as f:
            d = pickle.load(f, encoding="bytes")
        x = d[b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return x, np.asarray(d[b"labels"], np.int64)

    parts = [read(f"data_batch_{i}") for i in range(1, 6)]
    x_te, y_te = read("test_batch")
    x_tr = np.concatenate([p[0] for p in parts])
    y_tr = np.concatenate([p[1] for p in parts])
    return RawData(x_tr, y_tr, x_te, y_te, CIFAR10_CLASSES, str(folder))


def read_image_tree(path: Path, image_size: tuple[int, int] | None) -> RawData:
    """Read `train/<class>/*` and `test/<class>/*` from a folder or a tarball, cached.

    The first read decodes every image with Pillow (no TensorFlow needed); later reads
    load an .npz from `cache_dir()` keyed by the source, every file's size and mtime, and
    the image size.
    """
    key = hashlib.sha256(f"{path.resolve()}|{image_size}".encode())
    files = sorted(path.rglob("*")) if path.is_dir() else [path]
    for file in files:  # any added, removed or edited image invalidates the cache
        stat = file.stat()
        key.update(f"{file}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    cached = cache_dir() / f"images-{key.hexdigest()[:16]}.npz"
    if cached.is_file():
        with np.load(cached, allow_pickle=False) as f:
            return RawData(
                f["x_train"], f["y_train"], f["x_test"], f["y_test"],
                [str(c) for c in f["class_names"]], str(path),
            )  # fmt: skip
    raw = _decode_tree(path, image_size)
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp.npz")
    np.savez(
        tmp, x_train=raw.x_train, y_train=raw.y_train, x_test=raw.x_test,
        y_test=raw.y_test, class_names=np.array(raw.class_names),
    )  # fmt: skip
    tmp.replace(cached)
    return raw


def _decode_tree(path: Path, image_size: tuple[int, int] | None) -> RawData:
    files = dict(_list_images(path))
    splits: dict[str, dict[str, list[str]]] = {"train": {}, "test": {}}
    for name in files:
        parts = name.split("/")
        if len(parts) >= 3 and parts[-3] in splits:
            splits[parts[-3]].setdefault(parts[-2], []).append(name)
    if not splits["train"] or not splits["test"]:
        raise DataError(
            f"dataset.path: {path} has no train/<class>/<image> and test/<class>/<image> files "
            f"(image suffixes: {sorted(IMAGE_SUFFIXES)})."
        )
    classes = sorted(splits["train"])
    unknown = sorted(set(splits["test"]) - set(classes))
    if unknown:
        raise DataError(f"dataset.path: {path}/test has classes missing from train: {unknown}.")
    size = image_size or _first_size(files[min(files)])  # sorted: same on every machine
    arrays = {}
    for split, by_class in splits.items():
        names = [n for c in classes for n in sorted(by_class.get(c, []))]
        labels = [i for i, c in enumerate(classes) for _ in by_class.get(c, [])]
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            images = list(pool.map(lambda n: _decode(files[n], size), names, chunksize=256))
        arrays[split] = (np.stack(images), np.asarray(labels, np.int64))
    return RawData(*arrays["train"], *arrays["test"], classes, str(path))


def _list_images(path: Path, read: bool = True) -> Iterator[tuple[str, bytes | Path | None]]:
    """(relative name, bytes or file path) for every image in a folder or tarball.

    With `read=False` a tarball's members are listed, not read (the source is None).
    """
    if path.is_dir():
        for file in path.rglob("*"):
            if file.suffix.lower() in IMAGE_SUFFIXES:
                yield file.relative_to(path).as_posix(), file
        return
    try:
        with tarfile.open(path) as tar:
            for member in tar:
                if member.isfile() and Path(member.name).suffix.lower() in IMAGE_SUFFIXES:
                    data = tar.extractfile(member).read() if read else None  # type: ignore[union-attr]
                    yield member.name, data
    except tarfile.TarError as exc:
        raise DataError(f"dataset.path: {path} is neither a folder nor a readable tarball ({exc}).") from None


def _open(source: bytes | Path):  # noqa: ANN202 - a PIL image
    from PIL import Image

    return Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)


def _first_size(source: bytes | Path) -> tuple[int, int]:
    with _open(source) as img:
        return img.height, img.width


def _decode(source: bytes | Path, size: tuple[int, int]) -> np.ndarray:
    with _open(source) as img:
        img = img.convert("RGB")
        if (img.height, img.width) != tuple(size):
            img = img.resize((size[1], size[0]), resample=3)  # 3 = bicubic
        return np.asarray(img, np.uint8)


def _resized(raw: RawData, size: tuple[int, int]) -> RawData:
    """Resize array datasets (e.g. MNIST to 32x32) with Pillow."""
    from PIL import Image

    if raw.x_train.shape[1:3] == tuple(size):
        return raw

    def resize(x: np.ndarray) -> np.ndarray:
        out = [np.asarray(Image.fromarray(img.squeeze(-1) if img.shape[-1] == 1 else img)
                          .resize((size[1], size[0]), resample=3)) for img in x]  # fmt: skip
        arr = np.stack(out)
        return arr[..., None] if arr.ndim == 3 else arr

    return RawData(
        resize(raw.x_train), raw.y_train, resize(raw.x_test), raw.y_test,
        raw.class_names, raw.source,
    )  # fmt: skip


def _subset(raw: RawData, classes: list[str], name: str) -> RawData:
    """Keep the named classes, relabelled 0..k-1 in the dataset's own label order."""
    unknown = [c for c in classes if c not in raw.class_names]
    if unknown:
        raise DataError(f"dataset.classes: {unknown} not in {name}; allowed: {raw.class_names}.")
    keep = [raw.class_names.index(c) for c in raw.class_names if c in classes]
    mapping = np.full(len(raw.class_names), -1, np.int64)
    mapping[keep] = np.arange(len(keep))

    def pick(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mask = mapping[y] >= 0
        return x[mask], mapping[y[mask]]

    return RawData(
        *pick(raw.x_train, raw.y_train), *pick(raw.x_test, raw.y_test),
        [raw.class_names[i] for i in keep], raw.source,
    )  # fmt: skip


def _stratified_take(x: np.ndarray, y: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, ...]:
    from sklearn.model_selection import train_test_split

    try:
        x_keep, _, y_keep, _ = train_test_split(x, y, train_size=n, stratify=y, random_state=seed)
    except ValueError as exc:
        raise DataError(
            f"dataset.limit_train={n} cannot be drawn stratified from {len(y)} training images "
            f"({exc}); use a smaller limit_train, or leave it out to use them all."
        ) from None
    return x_keep, y_keep
