"""The tutorial baselines: exact architectures, and a short real run of one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from harness._spec.space import first_config  # noqa: E402
from harness._spec.spec import load_spec  # noqa: E402
from harness._trial.model import build_model  # noqa: E402

BASELINES = Path(__file__).parent.parent / "search_spaces" / "baselines"
TUTORIALS = {  # file: (input shape, classes, the tutorial's parameter count)
    "fashion_mnist": ((28, 28, 1), 10, 804_554),
    "mnist": ((28, 28, 1), 10, 93_322),
    "cifar10_3class": ((32, 32, 3), 3, 289_443),
    "cifar10": ((32, 32, 3), 10, 403_414),
    "image_folder": ((128, 128, 3), 10, 10_588_458),
}


@pytest.mark.parametrize("name", sorted(TUTORIALS))
def test_baseline_is_fixed_and_has_the_tutorials_parameter_count(name):
    spec = load_spec(BASELINES / f"{name}.yaml")
    shape, classes, params = TUTORIALS[name]
    assert spec.search.trials == 1
    assert not any(isinstance(v, dict) or hasattr(v, "type") for v in spec.space.values())  # all fixed
    assert build_model(first_config(spec.space), shape, classes).count_params() == params


def test_every_baseline_has_a_search_space_on_the_same_dataset():
    for name in TUTORIALS:
        search = load_spec(BASELINES.parent / f"{name}.yaml")
        assert (
            search.search.trials > 1
            and search.dataset.name == load_spec(BASELINES / f"{name}.yaml").dataset.name
        )


def test_cifar10_3class_layers_follow_the_tutorial():
    model = build_model(first_config(load_spec(BASELINES / "cifar10_3class.yaml").space), (32, 32, 3), 3)
    kinds = [type(layer).__name__ for layer in model.layers if "block1" in layer.name]
    assert kinds == ["Conv2D", "BatchNormalization", "Conv2D", "MaxPooling2D", "Dropout"]
    assert model.get_layer("block1_conv2").padding == "valid"


@pytest.mark.slow
def test_one_epoch_of_the_fashion_mnist_baseline_on_a_subset(tmp_path, data_dir, local_ray):
    from harness import run_search

    spec = load_spec(BASELINES / "fashion_mnist.yaml").with_overrides(
        **{"dataset.limit_train": 2000, "search.max_epochs": 1}
    )
    frame = run_search(spec, results_dir=tmp_path, data_dir=data_dir)
    row = frame.iloc[0]
    assert len(frame) == 1 and row["status"] == "completed", row["error"]
    assert row["params"] == 804_554 and row["epochs_run"] == 1
    assert row["dataset"] == "fashion_mnist" and 0.5 < row["test_accuracy"] <= 1.0
