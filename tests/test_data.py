"""harness._data: real datasets (scikit-learn digits, the shared IDX/JPG files, PNG trees)."""

from __future__ import annotations

import gzip
import math
import re
import struct
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness._data import (
    CIFAR10_CLASSES,
    FASHION_MNIST_CLASSES,
    SOURCES,
    DatasetSource,
    _images,
    describe,
    load_dataset,
    load_raw,
    locate,
    read_idx,
    search_roots,
)
from harness._errors import DataError
from harness._spec.spec import DATASETS, DatasetSpec

DIGITS = [str(i) for i in range(10)]
DIGITS_TOTAL = 1797  # scikit-learn's load_digits


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch) -> Path:
    """Every test decodes into its own, initially empty, cache."""
    path = tmp_path / "cache"
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(path))
    return path


@pytest.fixture
def decoded(monkeypatch) -> list:
    """The source of every image decoded from here on (a spy calling the real decoder)."""
    calls = []
    real = _images.decode

    def spy(source, size):
        calls.append(source)
        return real(source, size)

    monkeypatch.setattr(_images, "decode", spy)
    return calls


# --------------------------------------------------------------------------- registry


def test_registry_has_one_source_per_spec_dataset_name():
    assert sorted(SOURCES) == sorted(DATASETS)
    for name, source in SOURCES.items():
        assert isinstance(source, DatasetSource) and source.name == name


def test_unknown_dataset_name_is_a_data_error():
    with pytest.raises(DataError, match="'imagenet' is not a known dataset"):
        locate("imagenet")


def test_import_loads_no_framework():
    code = "import sys, harness._data; print([m for m in ('keras', 'tensorflow') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_describe_array_dataset_applies_size_and_classes():
    spec = DatasetSpec(name="digits", image_size=(16, 12), classes=["7", "2"])
    assert describe(spec) == ("bundled with scikit-learn", (16, 12, 1), ["2", "7"])
    with pytest.raises(DataError, match=r"dataset.classes: \['ten'\] not in digits"):
        describe(DatasetSpec(name="digits", classes=["1", "ten"]))


# --------------------------------------------------------------------------- digits


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DatasetSpec(name="digits"), seed=0)


def test_digits_loads_without_data_dir(digits, tmp_path):
    assert digits.name == "digits"
    assert digits.class_names == DIGITS
    assert digits.num_classes == 10
    assert digits.input_shape == (8, 8, 1)
    for x in (digits.x_train, digits.x_val, digits.x_test):
        assert x.dtype == np.uint8 and x.ndim == 4 and x.shape[1:] == (8, 8, 1)
    assert digits.x_train.max() == 255 and digits.x_train.min() == 0
    for x, y in ((digits.x_train, digits.y_train), (digits.x_val, digits.y_val),
                 (digits.x_test, digits.y_test)):  # fmt: skip
        assert len(x) == len(y)
        assert np.issubdtype(y.dtype, np.integer) and set(np.unique(y)) == set(range(10))
    assert len(digits.x_train) + len(digits.x_val) + len(digits.x_test) == DIGITS_TOTAL


def test_digits_are_the_scikit_learn_images(digits):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    expected = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    ours = np.concatenate([digits.x_train, digits.x_val, digits.x_test])[..., 0]
    labels = np.concatenate([digits.y_train, digits.y_val, digits.y_test])

    def rows(images, ys):
        return sorted(img.tobytes() + bytes([y]) for img, y in zip(images, ys, strict=True))

    assert rows(ours, labels) == rows(expected, bunch.target)


def test_digits_validation_split_is_stratified_and_sized(digits):
    pool_y = np.concatenate([digits.y_train, digits.y_val])
    assert len(digits.y_val) == math.ceil(0.1 * len(pool_y))
    pool = np.bincount(pool_y, minlength=10)
    val = np.bincount(digits.y_val, minlength=10)
    assert np.all(np.abs(val - 0.1 * pool) <= 1), (val, pool)


@pytest.mark.parametrize("split", [0.25, 0.5])
def test_validation_split_size_follows_spec(split):
    ds = load_dataset(DatasetSpec(name="digits", validation_split=split), seed=0)
    n = len(ds.y_train) + len(ds.y_val)
    assert len(ds.y_val) == math.ceil(split * n)
    pool = np.bincount(np.concatenate([ds.y_train, ds.y_val]), minlength=10)
    assert np.all(np.abs(np.bincount(ds.y_val, minlength=10) - split * pool) <= 1)


def test_same_seed_same_split_other_seed_other_split(digits):
    again = load_dataset(DatasetSpec(name="digits"), seed=0)
    other = load_dataset(DatasetSpec(name="digits"), seed=1)

    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert np.array_equal(getattr(digits, name), getattr(again, name)), name
    assert not np.array_equal(digits.x_val, other.x_val)
    assert np.array_equal(digits.x_test, other.x_test)  # the test set is never resampled
    assert len(other.y_val) == len(digits.y_val)


def test_class_subset_relabels_in_dataset_order():
    full = load_raw(DatasetSpec(name="digits"))
    ds = load_dataset(DatasetSpec(name="digits", classes=["7", "2"]), seed=0)

    assert ds.class_names == ["2", "7"]  # the dataset's order, not the spec's
    assert ds.name == "digits[7,2]"
    assert ds.num_classes == 2
    mask = np.isin(full.y_test, [2, 7])
    assert np.array_equal(ds.x_test, full.x_test[mask])
    assert np.array_equal(ds.y_test, (full.y_test[mask] == 7).astype(ds.y_test.dtype))
    assert len(ds.y_train) + len(ds.y_val) == int(np.isin(full.y_train, [2, 7]).sum())
    for y in (ds.y_train, ds.y_val, ds.y_test):
        assert set(np.unique(y)) == {0, 1}
    # The relabelled images are the right ones: each train image labelled k is a digit
    # of class_names[k] in the full training set.
    full_by_class = {c: {img.tobytes() for img in full.x_train[full.y_train == c]} for c in (2, 7)}
    for img, y in zip(ds.x_train, ds.y_train, strict=True):
        assert img.tobytes() in full_by_class[int(ds.class_names[y])]


def test_unknown_class_raises_listing_allowed_names():
    with pytest.raises(DataError) as info:
        load_dataset(DatasetSpec(name="digits", classes=["1", "eleven"]))
    message = str(info.value)
    assert "dataset.classes" in message and "eleven" in message
    assert all(f"'{c}'" in message for c in DIGITS), message


@pytest.mark.parametrize("limit", [100, 500])
def test_limit_train_caps_train_plus_val(limit):
    ds = load_dataset(DatasetSpec(name="digits", limit_train=limit), seed=0)
    assert len(ds.y_train) + len(ds.y_val) == limit
    assert len(ds.y_val) == math.ceil(0.1 * limit)
    assert set(np.unique(ds.y_train)) == set(range(10))  # stratified subsample
    assert len(ds.y_test) == 360  # the test set is not subsampled


def test_limit_train_above_size_is_a_no_op(digits):
    ds = load_dataset(DatasetSpec(name="digits", limit_train=100_000), seed=0)
    assert len(ds.y_train) + len(ds.y_val) == len(digits.y_train) + len(digits.y_val)


def test_limit_train_that_leaves_too_few_per_class_is_a_data_error():
    with pytest.raises(DataError, match="dataset.limit_train=1435"):
        load_dataset(DatasetSpec(name="digits", limit_train=1435))  # 1437 images, 10 classes


def test_split_too_small_for_classes_raises():
    with pytest.raises(DataError, match="validation_split"):
        load_dataset(DatasetSpec(name="digits", limit_train=20, validation_split=0.2))


def test_image_size_resizes_array_datasets():
    ds = load_dataset(DatasetSpec(name="digits", image_size=(16, 12), limit_train=100))
    for x in (ds.x_train, ds.x_val, ds.x_test):
        assert x.shape[1:] == (16, 12, 1) and x.dtype == np.uint8
    assert ds.x_train.max() > 200  # still 0..255 pixels, not rescaled


# --------------------------------------------------------------------------- IDX files


def test_read_idx_rejects_other_files(tmp_path):
    path = tmp_path / "bad-idx1-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">II", 1234, 1) + b"\x00")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(path)


def test_read_idx_reads_uncompressed(tmp_path):
    path = tmp_path / "images-idx3-ubyte"
    pixels = np.arange(2 * 3 * 4, dtype=np.uint8)
    path.write_bytes(struct.pack(">IIII", 2051, 2, 3, 4) + pixels.tobytes())
    assert np.array_equal(read_idx(path), pixels.reshape(2, 3, 4))
    labels = tmp_path / "labels-idx1-ubyte"
    labels.write_bytes(struct.pack(">II", 2049, 3) + bytes([5, 0, 4]))
    assert read_idx(labels).tolist() == [5, 0, 4]


# --------------------------------------------------------------------------- real files


def test_mnist_from_data_dir(data_dir):
    raw = load_raw(DatasetSpec(name="mnist"), data_dir=data_dir)

    assert raw.x_train.shape == (60000, 28, 28, 1) and raw.x_train.dtype == np.uint8
    assert raw.x_test.shape == (10000, 28, 28, 1) and raw.x_test.dtype == np.uint8
    assert raw.y_train.shape == (60000,) and raw.y_test.shape == (10000,)
    assert raw.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert raw.y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert raw.x_train.mean() == pytest.approx(33.318, abs=1e-3)
    assert raw.class_names == DIGITS
    assert raw.source == str(data_dir / "mnist")


def test_fashion_mnist_from_data_dir(data_dir):
    raw = load_raw(DatasetSpec(name="fashion_mnist"), data_dir=data_dir)

    assert raw.x_train.shape == (60000, 28, 28, 1) and raw.x_train.dtype == np.uint8
    assert raw.x_test.shape == (10000, 28, 28, 1)
    assert raw.class_names == FASHION_MNIST_CLASSES
    assert raw.class_names[0] == "T-shirt/top" and raw.class_names[9] == "Ankle boot"
    assert raw.y_train[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert raw.y_test[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    assert np.bincount(raw.y_train).tolist() == [6000] * 10
    assert np.bincount(raw.y_test).tolist() == [1000] * 10


def test_data_dir_from_environment(data_dir, monkeypatch):
    monkeypatch.setenv("HARNESS_DATA_DIR", str(data_dir))
    ds = load_dataset(DatasetSpec(name="mnist", limit_train=1000, classes=["0", "1"]), seed=0)
    assert ds.source == str(data_dir / "mnist")
    assert ds.class_names == ["0", "1"]
    assert len(ds.y_train) + len(ds.y_val) == 1000
    assert len(ds.y_test) == 980 + 1135  # every test 0 and 1 of MNIST


def test_locate_finds_the_shared_files(data_dir):
    assert locate("mnist", data_dir) == str(data_dir / "mnist")
    assert locate("fashion_mnist", data_dir) == str(data_dir / "fashion-mnist")
    assert locate("cifar10", data_dir) == str(data_dir / "cifar10" / "cifar10-jpg.tar.gz")
    assert "scikit-learn" in locate("digits", data_dir)


def test_locate_returns_none_when_absent(tmp_path, monkeypatch):
    if Path("/usr/share/datasets").exists():
        pytest.skip("/usr/share/datasets exists on this machine; it is always searched")
    monkeypatch.delenv("HARNESS_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.keras/datasets
    (tmp_path / "mnist").mkdir()  # a folder without the IDX files does not count
    assert locate("mnist", tmp_path) is None
    assert locate("cifar10", tmp_path) is None


@pytest.mark.slow
def test_cifar10_from_jpg_tarball(data_dir, cache_dir, decoded):
    raw = load_raw(DatasetSpec(name="cifar10"), data_dir=data_dir)

    assert raw.x_train.shape == (50000, 32, 32, 3) and raw.x_train.dtype == np.uint8
    assert raw.x_test.shape == (10000, 32, 32, 3) and raw.x_test.dtype == np.uint8
    assert raw.class_names == CIFAR10_CLASSES
    assert raw.class_names[0] == "airplane" and raw.class_names[-1] == "truck"
    assert np.bincount(raw.y_train).tolist() == [5000] * 10
    assert np.bincount(raw.y_test).tolist() == [1000] * 10
    # JPEG is lossy, but channel means stay close to the original's (125.3, 123.0, 113.9).
    means = raw.x_train.reshape(-1, 3).mean(axis=0)
    assert np.allclose(means, [125.3, 123.0, 113.9], atol=2.0), means
    count = len(decoded)
    assert count == 60000  # every image decoded once
    files = list(cache_dir.glob("*.npz"))
    assert len(files) == 1, files
    cached, written = files[0], files[0].stat().st_mtime_ns

    again = load_raw(DatasetSpec(name="cifar10"), data_dir=data_dir)
    count = len(decoded)
    assert count == 60000  # the second load decoded nothing: it read the cache
    assert list(cache_dir.glob("*.npz")) == [cached] and cached.stat().st_mtime_ns == written  # not rewritten
    assert np.array_equal(again.x_train, raw.x_train)
    assert np.array_equal(again.y_test, raw.y_test)
    assert again.class_names == CIFAR10_CLASSES

    # The tree lists files class by class; the split must still be stratified.
    ds = load_dataset(
        DatasetSpec(name="cifar10", classes=["cat", "dog"], limit_train=1000), data_dir=data_dir
    )
    assert ds.class_names == ["cat", "dog"]
    assert np.bincount(ds.y_val).tolist() == [50, 50]
    assert len(ds.y_test) == 2000


# --------------------------------------------------------------------------- image folders

RED, BLUE = (255, 0, 0), (0, 0, 255)
SIZES = [(10, 12), (20, 16), (7, 9), (33, 21)]  # (w, h), deliberately different


def make_tree(root: Path, splits=("train", "test"), per_class=(4, 2)) -> Path:
    """PNGs: cats are red, dogs blue (one dog per split an RGBA image)."""
    for split, count in zip(splits, per_class, strict=True):
        for cls, color in (("dog", BLUE), ("cat", RED)):  # created out of order
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(count):
                size = SIZES[i % len(SIZES)]
                if cls == "dog" and i == 0:
                    img = Image.new("RGBA", size, (*color, 255))
                else:
                    img = Image.new("RGB", size, color)
                img.save(folder / f"{i:03d}.png")
    (root / "train" / "notes.txt").write_text("not an image")
    return root


def assert_labels_match_colors(x: np.ndarray, y: np.ndarray) -> None:
    # class 0 = cat = red, class 1 = dog = blue
    red = x[..., 0].mean(axis=(1, 2)) > 200
    blue = x[..., 2].mean(axis=(1, 2)) > 200
    assert np.array_equal(red, y == 0) and np.array_equal(blue, y == 1), (y, red, blue)


def folder_spec(path, **kw) -> DatasetSpec:
    return DatasetSpec(name="image_folder", path=str(path), **kw)


def test_image_folder_loads_resized_with_sorted_classes(tmp_path):
    root = make_tree(tmp_path / "pets")
    raw = load_raw(folder_spec(root, image_size=(12, 10)), data_dir=tmp_path)

    assert raw.class_names == ["cat", "dog"]
    assert raw.x_train.shape == (8, 12, 10, 3) and raw.x_train.dtype == np.uint8
    assert raw.x_test.shape == (4, 12, 10, 3)
    assert np.bincount(raw.y_train).tolist() == [4, 4]
    assert np.bincount(raw.y_test).tolist() == [2, 2]
    assert_labels_match_colors(raw.x_train, raw.y_train)
    assert_labels_match_colors(raw.x_test, raw.y_test)
    assert raw.source == str(root)


def test_image_folder_through_load_dataset(tmp_path):
    root = make_tree(tmp_path / "pets")
    ds = load_dataset(folder_spec(root, image_size=(16, 16), validation_split=0.5), seed=3)
    assert ds.input_shape == (16, 16, 3)
    assert ds.class_names == ["cat", "dog"]
    assert len(ds.y_train) == len(ds.y_val) == 4
    assert np.bincount(ds.y_val).tolist() == [2, 2]
    assert_labels_match_colors(ds.x_val, ds.y_val)


def test_image_folder_same_sizes_need_no_image_size(tmp_path):
    root = tmp_path / "flat"
    for split in ("train", "test"):
        for cls, color in (("cat", RED), ("dog", BLUE)):
            (root / split / cls).mkdir(parents=True)
            for i in range(2):
                Image.new("RGB", (6, 5), color).save(root / split / cls / f"{i}.png")
    raw = load_raw(folder_spec(root), data_dir=tmp_path)
    assert raw.x_train.shape == (4, 5, 6, 3)  # (h, w) of the files
    assert_labels_match_colors(raw.x_train, raw.y_train)


def test_image_folder_second_load_hits_the_cache(tmp_path, cache_dir):
    root = make_tree(tmp_path / "pets")
    spec = folder_spec(root, image_size=(12, 10))
    assert not cache_dir.exists() or not any(cache_dir.iterdir())

    first = load_raw(spec, data_dir=tmp_path)
    files = list(cache_dir.iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz", files  # no temp file left

    # Rewrite the cached images (inverted): a load that reads the cache returns them.
    with np.load(files[0]) as f:
        arrays = {k: f[k] for k in f.files}
    for key, value in arrays.items():
        if value.dtype == np.uint8 and value.ndim == 4:
            arrays[key] = 255 - value
    np.savez(files[0], **arrays)

    second = load_raw(spec, data_dir=tmp_path)
    assert np.array_equal(second.x_train, 255 - first.x_train)
    assert np.array_equal(second.y_train, first.y_train)
    assert second.class_names == ["cat", "dog"]

    # Another image size is another cache entry.
    other = load_raw(folder_spec(root, image_size=(6, 6)), data_dir=tmp_path)
    assert other.x_train.shape == (8, 6, 6, 3)
    assert len(list(cache_dir.glob("*.npz"))) == 2


def test_image_folder_cache_sees_added_images(tmp_path):
    root = make_tree(tmp_path / "pets")
    spec = folder_spec(root, image_size=(12, 10))
    assert len(load_raw(spec, data_dir=tmp_path).y_train) == 8
    Image.new("RGB", (10, 12), RED).save(root / "train" / "cat" / "new.png")
    assert len(load_raw(spec, data_dir=tmp_path).y_train) == 9


def test_image_folder_path_relative_to_data_dir(tmp_path, monkeypatch):
    data_root = tmp_path / "data"
    make_tree(data_root / "pets")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # "pets" is not in the working directory

    raw = load_raw(folder_spec("pets", image_size=(8, 8)), data_dir=data_root)
    assert raw.source == str(data_root / "pets")
    assert raw.class_names == ["cat", "dog"] and len(raw.y_train) == 8


def test_image_folder_missing_path_raises(tmp_path):
    with pytest.raises(DataError, match=re.escape("'no-such-folder' was not found")):
        load_raw(folder_spec("no-such-folder"), data_dir=tmp_path)


def test_image_folder_without_path_raises(tmp_path):
    with pytest.raises(DataError, match="dataset.path"):
        load_raw(DatasetSpec(name="image_folder"), data_dir=tmp_path)


def flat_tree(root: Path, per_class: int = 10) -> Path:
    """Class folders alone (<class>/<image>), each image distinct (its class colour, its index)."""
    for cls, color in (("cat", RED), ("dog", BLUE)):
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (8, 8), tuple(min(255, c + i) for c in color)).save(root / cls / f"{i:02d}.png")
    return root


def test_class_folders_alone_get_a_stratified_test_set_carved_before_limit_train(tmp_path):
    root = flat_tree(tmp_path / "pets")
    whole = load_raw(folder_spec(root), data_dir=tmp_path)
    assert whole.class_names == ["cat", "dog"] and whole.carved_test == 0.2
    assert np.bincount(whole.y_train).tolist() == [8, 8] and np.bincount(whole.y_test).tolist() == [2, 2]
    assert_labels_match_colors(whole.x_test, whole.y_test)
    assert not {i.tobytes() for i in whole.x_train} & {i.tobytes() for i in whole.x_test}

    limited = load_dataset(folder_spec(root, limit_train=10, validation_split=0.2), seed=5)
    assert np.array_equal(limited.x_test, whole.x_test)  # the same test images whatever trains
    assert len(limited.y_train) + len(limited.y_val) == 10
    assert limited.name == "image_folder (test: 20% of train, carved)"
    assert len(load_raw(folder_spec(root, test_split=0.5), data_dir=tmp_path).y_test) == 10


def test_a_train_folder_without_test_is_carved_like_class_folders(tmp_path):
    flat = load_raw(folder_spec(flat_tree(tmp_path / "flat")), data_dir=tmp_path)
    nested = flat_tree(tmp_path / "nested" / "train").parent
    raw = load_raw(folder_spec(nested), data_dir=tmp_path)
    assert np.array_equal(raw.x_test, flat.x_test) and np.array_equal(raw.y_train, flat.y_train)


def test_test_split_with_a_test_folder_is_refused(tmp_path):
    root = make_tree(tmp_path / "pets")
    with pytest.raises(DataError, match=r"has its own test/ folder.*remove test_split"):
        load_raw(folder_spec(root, test_split=0.2, image_size=(8, 8)), data_dir=tmp_path)


def test_image_folder_with_only_test_or_no_class_folders_raises(tmp_path):
    root = flat_tree(tmp_path / "half" / "test").parent
    with pytest.raises(DataError, match=r"has only test/<class>/<image> files; give class folders"):
        load_raw(folder_spec(root), data_dir=tmp_path)
    loose = tmp_path / "loose"
    loose.mkdir()
    Image.new("RGB", (8, 8), RED).save(loose / "0.png")
    with pytest.raises(DataError, match=r"has no <class>/<image> files"):
        load_raw(folder_spec(loose), data_dir=tmp_path)


def test_image_folder_test_class_missing_from_train_raises(tmp_path):
    root = make_tree(tmp_path / "pets")
    (root / "test" / "bird").mkdir()
    Image.new("RGB", (8, 8), (0, 255, 0)).save(root / "test" / "bird" / "0.png")
    with pytest.raises(DataError, match="bird"):
        load_raw(folder_spec(root, image_size=(8, 8)), data_dir=tmp_path)


def test_image_folder_describe_decodes_nothing(tmp_path, decoded):
    root = make_tree(tmp_path / "pets")
    # The first image by name is test/cat/000.png, 10 wide and 12 high.
    assert describe(folder_spec(root)) == (str(root), (12, 10, 3), ["cat", "dog"])
    spec = folder_spec(root, image_size=(16, 16), classes=["dog", "cat"])
    assert describe(spec) == (str(root), (16, 16, 3), ["cat", "dog"])
    with pytest.raises(DataError, match=r"dataset.classes: \['cow'\] not in image_folder"):
        describe(folder_spec(root, classes=["cat", "cow"]))
    assert decoded == []


# --------------------------------------------------------------------------- choosing files before decoding

COLORS = {"bird": 1, "cat": 0, "dog": 2}  # the channel at 255; the others grow with the index


def make_distinct_tree(root: Path, per_class=(12, 3)) -> Path:
    """Three classes of images that all differ, so each selected image can be told apart."""
    for split, count in zip(("train", "test"), per_class, strict=True):
        for cls, channel in COLORS.items():
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(count):
                color = [10 * i + 5] * 3
                color[channel] = 255
                Image.new("RGB", SIZES[i % len(SIZES)], tuple(color)).save(folder / f"{i:03d}.png")
    return root


def tarred(root: Path) -> Path:
    path = root.with_suffix(".tar.gz")
    with tarfile.open(path, "w:gz") as tar:
        tar.add(root, arcname=root.name)
    return path


def select_as_before(spec: DatasetSpec, seed: int, data_dir: Path):
    """Decode the whole tree, then subset and limit the arrays: the path this package replaced."""
    from sklearn.model_selection import train_test_split

    full = load_raw(folder_spec(spec.path, image_size=spec.image_size), data_dir=data_dir)
    keep = [full.class_names.index(c) for c in sorted(spec.classes)]

    def subset(x, y):
        mask = np.isin(y, keep)
        return x[mask], np.searchsorted(keep, y[mask])

    x_train, y_train = subset(full.x_train, full.y_train)
    x_train, _, y_train, _ = train_test_split(
        x_train, y_train, train_size=spec.limit_train, stratify=y_train, random_state=seed
    )
    return x_train, y_train, *subset(full.x_test, full.y_test)


@pytest.mark.parametrize("packed", [False, True], ids=["folder", "tarball"])
@pytest.mark.parametrize("seed", [0, 7])
def test_classes_and_limit_choose_files_before_decoding(tmp_path, decoded, packed, seed):
    root = make_distinct_tree(tmp_path / "zoo")
    path = tarred(root) if packed else root
    spec = folder_spec(path, classes=["dog", "cat"], image_size=(8, 8), limit_train=16, validation_split=0.25)
    x_train, y_train, x_test, y_test = select_as_before(spec, seed, tmp_path)
    assert len(decoded) == 3 * (12 + 3)
    decoded.clear()

    raw = SOURCES["image_folder"].load(spec, search_roots(tmp_path), seed)

    assert len(decoded) == 16 + 2 * 3  # the drawn training images and the two classes' test images
    if not packed:
        assert all(p.parent.name in ("cat", "dog") for p in decoded)
    assert raw.class_names == ["cat", "dog"]
    assert np.array_equal(raw.x_train, x_train) and np.array_equal(raw.y_train, y_train)
    assert np.array_equal(raw.x_test, x_test) and np.array_equal(raw.y_test, y_test)

    # load_dataset splits exactly that selection, without selecting again.
    from sklearn.model_selection import train_test_split

    ds = load_dataset(spec, seed=seed)
    x_tr, x_val, y_tr, y_val = train_test_split(
        x_train, y_train, test_size=0.25, stratify=y_train, random_state=seed
    )
    assert np.array_equal(ds.x_train, x_tr) and np.array_equal(ds.y_val, y_val)
    assert np.array_equal(ds.x_val, x_val) and np.array_equal(ds.x_test, x_test)
    assert ds.name == "image_folder[dog,cat]"
    assert len(decoded) == 16 + 2 * 3  # the second load came from the cache


def test_image_folder_cache_key_holds_the_selection(tmp_path, decoded, cache_dir):
    root = make_distinct_tree(tmp_path / "zoo")
    roots = search_roots(tmp_path)

    def pick(classes, seed):
        spec = folder_spec(root, classes=classes, image_size=(8, 8), limit_train=10)
        return SOURCES["image_folder"].load(spec, roots, seed)

    first = load_raw(folder_spec(root, classes=["cat", "dog"], image_size=(8, 8)), data_dir=tmp_path)
    picked, other_seed = pick(["cat", "dog"], 0), pick(["cat", "dog"], 1)
    same_classes = pick(["dog", "cat"], 0)

    assert len(first.y_train) == 36 and len(picked.y_train) == len(other_seed.y_train) == 10
    assert not np.array_equal(picked.x_train, other_seed.x_train)
    assert np.array_equal(same_classes.x_train, picked.x_train)  # the order of `classes` does not matter
    assert len(list(cache_dir.glob("*.npz"))) == 3
    assert len(decoded) == 3 * 15 + 2 * (10 + 6)


def test_image_folder_unknown_class_decodes_nothing(tmp_path, decoded):
    root = make_distinct_tree(tmp_path / "zoo")
    with pytest.raises(DataError, match=r"dataset.classes: \['cow'\] not in image_folder; allowed: \['bird'"):
        load_dataset(folder_spec(root, classes=["cat", "cow"]), data_dir=tmp_path)
    assert decoded == []
