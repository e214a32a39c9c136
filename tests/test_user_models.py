"""Searches of users' own models (build(hp)) on users' own arrays, end to end: real Ray, real Keras."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import user_models
import yaml
from conftest import run_cli

import harness
from harness._data import load_raw
from harness._spec.spec import DatasetSpec

pytestmark = pytest.mark.slow

SEARCH = {  # every trial runs to its end: the tests count completed rows
    "search": {"max_epochs": 2, "seed": 0, "probe": False, "scheduler": {"name": "none"}},
    "resources": {"cpus_per_trial": 1},
}


@pytest.fixture(scope="module")
def cifar_subset(data_dir):
    """CIFAR-10 as a user holds it: NumPy arrays of three classes (900 training images)."""
    raw = load_raw(DatasetSpec(name="cifar10"), data_dir=data_dir)  # every class: keep the first three
    rng = np.random.default_rng(0)
    train = rng.choice(np.flatnonzero(raw.y_train < 3), 900, replace=False)
    test = rng.choice(np.flatnonzero(raw.y_test < 3), 300, replace=False)
    return raw.x_train[train], raw.y_train[train], raw.x_test[test], raw.y_test[test], raw.class_names[:3]


def test_a_keras_tuner_style_model_on_numpy_cifar_is_searched_loaded_exported_and_predicts_alike(
    tmp_path, local_ray, cifar_subset
):
    x, y, x_test, y_test, names = cifar_subset
    data = harness.Data.from_arrays(x, y, x_test=x_test, y_test=y_test, class_names=names)
    study = harness.search({"study": "own-model", **SEARCH}, data=data, model=user_models.residual_cifar,
                           trials=3, results=tmp_path / "r")  # fmt: skip

    frame = study.to_pandas()
    assert len(frame) == 3 and frame["status"].eq("completed").all()
    assert set(frame["builder"]) == {"user_models:residual_cifar"}
    assert {"hp_width", "hp_blocks", "hp_learning_rate"} <= set(frame.columns)  # its own, typed columns
    assert frame["hp_blocks"].dtype.kind == "i" and frame["hp_learning_rate"].dtype.kind == "f"
    best = study.best_trial
    assert best.hyperparameters["blocks"] in (1, 2) and best.test_accuracy is not None

    model = study.load_model()
    card = study.export(tmp_path / "out")
    assert card["builder"] == "user_models:residual_cifar" and card["hyperparameters"] == best.hyperparameters
    import keras

    exported = keras.saving.load_model(tmp_path / "out" / "model.keras")  # safe mode stays on
    sample = x_test[:16]
    np.testing.assert_allclose(
        exported.predict(sample, verbose=0), model.predict(sample, verbose=0), atol=1e-6
    )

    from PIL import Image

    Image.fromarray(x_test[0]).save(tmp_path / "plane.png")
    tests = str(Path(user_models.__file__).parent)
    out = run_cli(
        "predict", str(tmp_path / "plane.png"), "--model", str(tmp_path / "out"), env={"PYTHONPATH": tests}
    )
    assert out.returncode == 0 and any(name in out.stdout for name in names), out.stderr[-2000:]


def test_a_build_that_fails_for_some_values_is_a_user_row_naming_its_line_and_the_search_goes_on(
    tmp_path, local_ray
):
    from sklearn.datasets import load_digits

    digits = load_digits()
    data = harness.Data.from_arrays(digits.images / 16.0, digits.target)
    spec = {"study": "fails", **SEARCH, "search": {**SEARCH["search"], "sampler": "random"}}
    study = harness.search(spec, data=data, model=user_models.wide_fails, trials=6, results=tmp_path / "r")

    rows = study.to_pandas()
    failed, completed = rows[rows["status"] == "failed"], rows[rows["status"] == "completed"]
    assert len(rows) == 6 and len(failed) and len(completed)
    assert failed["error_kind"].eq("user").all() and failed["hp_width"].eq(1024).all()
    assert (
        failed["error"]
        .str.contains(r"ValueError: 1024 units are too many.*user_models.py:\d+, in wide_fails")
        .all()
    )


def test_a_model_named_in_the_spec_runs_from_the_cli_on_two_nodes(tmp_path, cifar_subset):
    from ray.cluster_utils import Cluster

    x, y, x_test, y_test, names = cifar_subset
    np.savez(tmp_path / "cifar.npz", x_train=x, y_train=y, x_test=x_test, y_test=y_test, class_names=names)
    spec = {
        "study": "two-nodes", "model": "user_models:residual_cifar",
        "dataset": {"name": "arrays", "path": str(tmp_path / "cifar.npz")},
        "search": {"trials": 4, "max_epochs": 1, "seed": 0, "probe": False, "scheduler": {"name": "none"}},
        "resources": {"cpus_per_trial": 1},
    }  # fmt: skip
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(spec))
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    try:
        tests = str(Path(user_models.__file__).parent)  # where the model's module is importable
        out = run_cli("search", str(tmp_path / "space.yaml"), "--address", cluster.address,
                      "--results", str(tmp_path / "r"), env={"PYTHONPATH": tests})  # fmt: skip
        assert out.returncode == 0, out.stderr[-3000:]
    finally:
        cluster.shutdown()
    frame = harness.load_leaderboard(tmp_path / "r")
    assert len(frame) == 4 and frame["status"].eq("completed").all() and frame["node"].nunique() == 2
    assert frame["hp_blocks"].notna().all()
