"""harness.Data and `dataset: arrays`: users' own arrays, in memory or in an .npz file."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from harness import ArgumentError, Data, DataError, ExportError, SpecError, load_leaderboard, load_spec
from harness._data import describe, for_data, load_dataset
from harness._spec.spec import DatasetSpec


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as a user holds them: float pixels 0-16 scaled to 0-1, (n, 8, 8)."""
    bunch = load_digits()
    return (bunch.images / 16.0).astype(np.float32), bunch.target


def test_float_pixels_in_0_1_become_the_same_uint8_images_with_a_channel_axis():
    x, y = digits_arrays()
    raw = Data.from_arrays(x, y).raw
    assert raw.x_train.shape == (len(x), 8, 8, 1) and raw.x_train.dtype == np.uint8
    assert np.array_equal(raw.x_train[..., 0], np.round(x * 255).astype(np.uint8))
    assert raw.class_names == [str(i) for i in range(10)] and np.array_equal(raw.y_train, y)
    assert not raw.has_test


def test_uint8_and_float_0_255_colour_images_are_kept_as_they_are():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (20, 5, 7, 3), dtype=np.uint8)
    y = np.arange(20) % 2
    assert np.array_equal(Data.from_arrays(x, y).raw.x_train, x)
    assert np.array_equal(Data.from_arrays(x.astype(np.float64), y).raw.x_train, x)


def test_string_labels_become_sorted_class_names_unless_class_names_orders_them():
    x = np.zeros((6, 4, 4), np.uint8)
    y = np.array(["dog", "cat", "dog", "cat", "bird", "bird"])
    raw = Data.from_arrays(x, y).raw
    assert raw.class_names == ["bird", "cat", "dog"] and raw.y_train.tolist() == [2, 1, 2, 1, 0, 0]
    ordered = Data.from_arrays(x, y, class_names=["dog", "cat", "bird"]).raw
    assert ordered.y_train.tolist() == [0, 1, 0, 1, 2, 2]


def test_integer_labels_that_skip_values_are_renumbered_and_named_by_their_values():
    x = np.zeros((6, 4, 4), np.uint8)
    raw = Data.from_arrays(x, np.array([7, 3, 5, 3, 7, 5]), x_test=x[:3], y_test=np.array([5, 7, 3])).raw
    assert raw.class_names == ["3", "5", "7"]
    assert raw.y_train.tolist() == [2, 0, 1, 0, 2, 1] and raw.y_test.tolist() == [1, 2, 0]


@pytest.mark.parametrize(
    ("kwargs", "argument", "says"),
    [
        ({"y": np.eye(2)[np.arange(6) % 2]}, "y", "one-hot? pass y.argmax(axis=1)"),
        ({"y": np.arange(5) % 2}, "y", "one label per image of x (6)"),
        ({"x": np.zeros((6, 4, 4, 2))}, "x", "(n, h, w, 1) or (n, h, w, 3)"),
        ({"x": np.full((6, 4, 4), -0.5)}, "x", "standardised data"),
        ({"x": np.full((6, 4, 4), np.nan)}, "x", "finite"),
        ({"y": np.zeros(6, int)}, "y", "at least two classes"),
        ({"x_test": np.zeros((2, 4, 4))}, "x_test", "give both x_test and y_test"),
        ({"x_test": np.zeros((2, 5, 4)), "y_test": np.array([0, 1])}, "x_test", "shape (4, 4, 1)"),
        ({"class_names": ["a"]}, "y", "class indices 0..0"),
        ({"y": np.array(list("ababab")), "class_names": ["a", "c"]}, "y", "missing from class_names"),
        ({"class_names": ["a", "a"]}, "class_names", "distinct"),
    ],
)
def test_mistakes_name_the_argument(kwargs, argument, says):
    given = {"x": np.zeros((6, 4, 4), np.uint8), "y": np.arange(6) % 2, **kwargs}
    x, y = given.pop("x"), given.pop("y")
    with pytest.raises(ArgumentError, match=re.escape(says)) as caught:
        Data.from_arrays(x, y, **given)
    assert caught.value.argument == argument


def test_a_test_set_is_carved_stratified_and_fixed_before_limit_train_and_the_seeded_validation_split():
    x, y = digits_arrays()
    data = Data.from_arrays(x, y)
    spec = for_data(load_spec_dict(), data).dataset
    first = load_dataset(spec, data=data, seed=0)
    other = load_dataset(spec.model_copy(update={"limit_train": 300}), data=data, seed=7)

    assert len(first.y_test) == math.ceil(0.2 * len(y)) and np.bincount(first.y_test).min() >= 35
    assert np.array_equal(first.x_test, other.x_test)  # the same test images whatever the seed or limit
    train = {img.tobytes() for img in np.concatenate([first.x_train, first.x_val])}
    assert not train & {img.tobytes() for img in first.x_test}
    assert len(other.y_train) + len(other.y_val) == 300
    assert first.name == "arrays (test: 20% of train, carved)"
    smaller = load_dataset(spec.model_copy(update={"test_split": 0.1}), data=data)
    assert len(smaller.y_test) == math.ceil(0.1 * len(y))


def test_a_given_test_set_is_kept_and_test_split_with_it_is_refused():
    x, y = digits_arrays()
    data = Data.from_arrays(x[:1500], y[:1500], x_test=x[1500:], y_test=y[1500:])
    spec = for_data(load_spec_dict(), data).dataset
    ds = load_dataset(spec, data=data)
    assert len(ds.y_test) == len(y) - 1500 and ds.name == "arrays"
    with pytest.raises(DataError, match="has its own test set.*remove test_split"):
        load_dataset(spec.model_copy(update={"test_split": 0.2}), data=data)


def test_the_digest_follows_the_content_and_a_study_refuses_other_arrays():
    x, y = digits_arrays()
    data = Data.from_arrays(x, y)
    assert Data.from_arrays(x.copy(), y.copy()).digest == data.digest
    changed = x.copy()
    changed[0, 0, 0] = 1.0
    other = Data.from_arrays(changed, y)
    assert other.digest != data.digest

    spec = for_data(load_spec_dict(), data)
    assert (
        spec.dataset.digest == data.digest
        and spec.spec_hash() != for_data(load_spec_dict(), other).spec_hash()
    )
    with pytest.raises(DataError, match=f"digest {other.digest}.*not the ones this study searched"):
        load_dataset(spec.dataset, data=other)
    with pytest.raises(DataError, match="pass the same arrays again"):
        load_dataset(spec.dataset)
    with pytest.raises(ArgumentError, match=f"the arrays this spec was made for \\(digest {data.digest}\\)"):
        for_data(spec, other)


def test_data_needs_a_spec_whose_dataset_is_arrays_without_a_path():
    x, y = digits_arrays()
    digits_spec = load_spec_dict(dataset={"name": "digits"})
    with pytest.raises(
        ArgumentError, match=r"dataset is `\{name: arrays\}` without a path; this spec's is \{name: digits"
    ):
        for_data(digits_spec, Data.from_arrays(x, y))
    with pytest.raises(ArgumentError, match="must be a harness.Data"):
        for_data(load_spec_dict(), (x, y))  # type: ignore[arg-type]


def test_dry_run_describes_arrays_from_python():
    from harness import dry_run

    x, y = digits_arrays()
    checked = dry_run(load_spec_dict(space={"conv_blocks": 1, "filters": 4}), data=Data.from_arrays(x, y))
    assert checked.data_location == "arrays from Python" and checked.input_shape == (8, 8, 1)
    assert checked.class_names == [str(i) for i in range(10)] and checked.params > 0


def test_npz_file_from_the_spec_loads_like_keras_datasets_arrays(tmp_path):
    x, y = digits_arrays()
    names = np.array([f"digit {i}" for i in range(10)])
    path = tmp_path / "digits.npz"
    np.savez(path, x_train=x[:1500], y_train=y[:1500], x_test=x[1500:], y_test=y[1500:], class_names=names)
    spec = DatasetSpec(name="arrays", path=str(path), validation_split=0.2)

    ds = load_dataset(spec)
    assert ds.class_names == names.tolist() and len(ds.y_test) == len(y) - 1500
    assert np.array_equal(ds.x_test[..., 0], np.round(x[1500:] * 255).astype(np.uint8))
    where, shape, classes = describe(spec)
    assert (where, shape, classes) == (str(path), (8, 8, 1), names.tolist())


def test_npz_mistakes_say_which_file_and_which_keys(tmp_path):
    x, y = digits_arrays()
    np.savez(tmp_path / "bad.npz", images=x, labels=y)
    with pytest.raises(
        DataError, match=r"bad.npz holds \['images', 'labels'\]; it needs x_train and y_train"
    ):
        load_dataset(DatasetSpec(name="arrays", path=str(tmp_path / "bad.npz")))
    np.savez(tmp_path / "objects.npz", x_train=x, y_train=np.array([{"label": 1}] * len(y), dtype=object))
    with pytest.raises(DataError, match="not a readable .npz file of plain arrays"):  # loading runs no pickle
        load_dataset(DatasetSpec(name="arrays", path=str(tmp_path / "objects.npz")))
    np.savez(tmp_path / "onehot.npz", x_train=x, y_train=np.eye(10)[y])
    with pytest.raises(DataError, match=r"onehot.npz: y must hold one label per image \(one-hot"):
        load_dataset(DatasetSpec(name="arrays", path=str(tmp_path / "onehot.npz")))
    with pytest.raises(DataError, match="arrays needs the path of an .npz file"):
        load_dataset(DatasetSpec(name="arrays"))


def test_spec_fields_of_own_data_are_checked():
    with pytest.raises(SpecError, match="dataset.path is only for image_folder and arrays"):
        load_spec_dict(dataset={"name": "mnist", "path": "x.npz"})
    with pytest.raises(SpecError, match="dataset.digest names arrays passed from Python"):
        load_spec_dict(dataset={"name": "arrays", "path": "x.npz", "digest": "0123456789ab"})
    plain = load_spec_dict(dataset={"name": "digits"})
    assert plain.spec_hash() == load_spec_dict(dataset={"name": "digits", "test_split": None}).spec_hash()


def load_spec_dict(**sections):
    """A validated spec built in Python, as a dict."""
    return load_spec({"study": "own", "dataset": {"name": "arrays", "validation_split": 0.2}, **sections})


@pytest.mark.slow
def test_a_search_from_python_on_arrays_without_a_test_set_is_a_study_to_load_export_and_report(
    tmp_path, local_ray
):
    import harness

    x, y = digits_arrays()
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    data = Data.from_arrays(x, names[y])  # string labels, no test set: one is carved
    lr = {"type": "float", "low": 3e-3, "high": 1e-2}
    space = {  # a dict, and no dataset section: the data says what it is
        "study": "own", "search": {"max_epochs": 2, "seed": 0, "probe": False, "scheduler": {"name": "none"}},
        "resources": {"cpus_per_trial": 1},
        "space": {"conv_blocks": 1, "filters": 8, "dense_units": 16, "learning_rate": lr},
    }  # fmt: skip
    study = harness.search(space, data=data, trials=2, results=tmp_path / "r")

    assert [t.status for t in study.trials] == ["completed", "completed"]
    assert {t.dataset for t in study.trials} == {"arrays (test: 20% of train, carved)"}
    best = study.best_trial
    assert best.val_accuracy == max(t.val_accuracy or 0 for t in study.trials)
    assert study.to_pandas()["trial_id"].iloc[0] == best.trial_id

    assert study.load_model().count_params() == best.params
    assert study.evaluate().accuracy == pytest.approx(best.test_accuracy, abs=1e-6)
    card = study.export(tmp_path / "out")
    assert card["dataset"]["class_names"] == sorted(names.tolist())
    assert card["verified_test_accuracy"] == pytest.approx(best.test_accuracy, abs=1e-3)
    assert Path(study.report(tmp_path / "reports")).read_text().count("Misclassified test images") == 1

    again = harness.load_study(tmp_path / "r")  # without the arrays: what needs them says so
    assert again.trials == study.trials
    with pytest.raises(ExportError, match="pass the same arrays again"):
        again.export(tmp_path / "out2")

    Image.fromarray(np.round(x[0] * 255).astype(np.uint8)).save(tmp_path / "zero.png")
    (prediction,) = harness.predict_images(tmp_path / "out", [tmp_path / "zero.png"], top=3)
    assert {name for name, _ in prediction.top} <= set(names)


@pytest.mark.slow
def test_cli_searches_an_npz_file_named_in_the_spec(tmp_path, write_spec, cli):
    x, y = digits_arrays()
    np.savez(tmp_path / "digits.npz", x_train=x, y_train=y)
    dataset = {"name": "arrays", "path": str(tmp_path / "digits.npz"), "validation_split": 0.2}
    path = write_spec(dataset=dataset, search={"trials": 2, "max_epochs": 1, "seed": 0})
    done = cli("search", str(path), "--results", str(tmp_path / "r"))
    assert done.returncode == 0, done.stderr[-3000:]
    frame = load_leaderboard(tmp_path / "r")
    assert len(frame) == 2 and frame["test_accuracy"].notna().all()
    assert set(frame["dataset"]) == {"arrays (test: 20% of train, carved)"}
