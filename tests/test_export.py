"""Export round trip (reload + accuracy check), export errors, and predict on real images."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from harness import ArgumentError
from harness._data import load_dataset
from harness._reports.export import ExportError, export_trial, predict_images, select_trial
from harness._results.query import load_leaderboard
from harness._search.search import run_search
from harness._spec.spec import load_spec

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def results(tmp_path_factory, local_ray) -> Path:
    """A finished digits study: completed trials (2 models kept) and failed ones (kernel 11)."""
    root = tmp_path_factory.mktemp("export")
    spec = {
        "study": "exp",
        "dataset": {"name": "digits"},
        "search": {"trials": 6, "max_epochs": 3, "sampler": "random", "seed": 0, "probe": False,
                   "scheduler": {"name": "none"}, "keep_models": 2},
        "space": {"conv_blocks": 1, "dense_units": 16, "padding": "valid",
                  "filters": {"type": "categorical", "choices": [4, 8, 16]},
                  "kernel_size": {"type": "categorical", "choices": [3, 5, 11]}},
    }  # fmt: skip
    (root / "space.yaml").write_text(yaml.safe_dump(spec))
    run_search(load_spec(root / "space.yaml"), results_dir=root / "results")
    return root / "results"


def test_export_best_writes_verified_model_and_card(results, tmp_path):
    row = select_trial(results, study="exp", rank=1)
    card = export_trial(row, tmp_path / "best", results_dir=results)
    assert sorted(p.name for p in (tmp_path / "best").iterdir()) == ["model.keras", "model_card.json"]
    saved = json.loads((tmp_path / "best" / "model_card.json").read_text())
    assert saved["trial_id"] == row["trial_id"] == card["trial_id"]
    assert saved["input"] == {
        **saved["input"],
        "shape": [8, 8, 1],
        "dtype": "uint8",
        "color_mode": "grayscale",
    }
    assert saved["dataset"]["class_names"] == [str(i) for i in range(10)]
    assert abs(saved["verified_test_accuracy"] - row["test_accuracy"]) <= 0.001
    assert saved["hyperparameters"]["kernel_size"] == row["hp_kernel_size"] != 11  # 11 always fails
    assert saved["versions"]["keras_version"]


def test_export_savedmodel_under_tensorflow(results, tmp_path):
    card = export_trial(select_trial(results, study="exp"), tmp_path / "sm", results_dir=results,
                        formats=("keras", "savedmodel"))  # fmt: skip
    assert "saved_model" in card["files"]
    assert (tmp_path / "sm" / "saved_model" / "saved_model.pb").is_file()


def test_export_refuses_a_model_that_does_not_match_its_row(results, tmp_path):
    tampered = select_trial(results, study="exp", rank=1).copy()
    tampered["test_accuracy"] -= 0.05
    with pytest.raises(ExportError, match="does not match its row"):
        export_trial(tampered, tmp_path / "bad", results_dir=results)
    assert not (tmp_path / "bad").exists()  # nothing half-written


def test_export_errors_name_the_fix(results, tmp_path):
    frame = load_leaderboard(results, "exp")
    assert frame["model_path"].notna().sum() == 2  # keep_models
    failed = frame[frame.status == "failed"]
    dropped = frame[(frame.status == "completed") & frame.model_path.isna()]
    assert len(failed) >= 1 and len(dropped) >= 1
    with pytest.raises(ExportError, match="failed"):
        export_trial(failed.iloc[0], tmp_path / "f", results_dir=results)
    with pytest.raises(ExportError, match="keep_models"):
        export_trial(dropped.iloc[0], tmp_path / "d", results_dir=results)
    with pytest.raises(ArgumentError, match="`rank` must be between 1 and 6. Received: rank=9"):
        select_trial(results, study="exp", rank=9)
    with pytest.raises(ArgumentError, match="Received: trial='nope'"):
        select_trial(results, study="exp", trial="nope")
    out = subprocess.run(
        [sys.executable, "-m", "harness", "export", "--results", str(results), "--study", "exp",
         "--rank", "6", "--out", str(tmp_path / "cli")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 2 and "has no model" in out.stderr


def test_predict_classifies_real_test_images_like_the_model(results, tmp_path):
    export_trial(select_trial(results, study="exp"), tmp_path / "m", results_dir=results)
    data = load_dataset(load_spec_from(results).dataset)
    paths = []
    for i in range(6):
        path = tmp_path / f"digit{i}.png"
        Image.fromarray(data.x_test[i, :, :, 0]).save(path)
        paths.append(path)
    predictions = predict_images(tmp_path / "m", paths, top=2)
    import keras

    expected = keras.saving.load_model(tmp_path / "m" / "model.keras").predict(data.x_test[:6], verbose=0)
    for result, probs in zip(predictions, expected, strict=True):
        assert result.top[0][0] == str(int(np.argmax(probs)))
        assert result.top[0][1] == pytest.approx(float(probs.max()), abs=1e-5)
        assert len(result.top) == 2
    out = subprocess.run(
        [sys.executable, "-m", "harness", "predict", "--model", str(tmp_path / "m"), *map(str, paths[:2])],
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("%") == 6 and "digit0.png" in out.stdout
    (tmp_path / "notes.png").write_text("not an image")
    out = subprocess.run(
        [sys.executable, "-m", "harness", "predict", "--model", str(tmp_path / "m"), tmp_path / "notes.png"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 2 and "notes.png: not a readable image" in out.stderr
    assert "Traceback" not in out.stderr


def load_spec_from(results: Path):
    from harness._spec.spec import load_saved_spec

    return load_saved_spec(results, select_trial(results, study="exp")["spec_hash"])


def test_predict_rejects_a_folder_without_card(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ExportError, match="model_card.json"):
        predict_images(tmp_path / "empty", [tmp_path / "x.png"])


def test_export_without_the_dataset_names_it_and_no_verify_still_exports(tmp_path, local_ray):
    """A machine that did not run the search: the image folder the trial trained on is not here."""
    rng = np.random.default_rng(0)
    for split, name in itertools.product(("train", "test"), ("cats", "dogs")):
        (tmp_path / "pets" / split / name).mkdir(parents=True)
        for i in range(15):
            pixels = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "pets" / split / name / f"{i}.png")
    spec = {"study": "pets", "dataset": {"name": "image_folder", "path": str(tmp_path / "pets")},
            "search": {"trials": 1, "max_epochs": 1, "scheduler": {"name": "none"}},
            "space": {"conv_blocks": 1, "filters": 4, "dense_units": 8}}  # fmt: skip
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(spec))
    run_search(load_spec(tmp_path / "space.yaml"), results_dir=tmp_path / "r")
    row = select_trial(tmp_path / "r", study="pets")
    (tmp_path / "pets").rename(tmp_path / "elsewhere")

    with pytest.raises(ExportError, match=r"not found.*test set of image_folder.*--no-verify"):
        export_trial(row, tmp_path / "out", results_dir=tmp_path / "r")
    assert not (tmp_path / "out").exists()
    card = export_trial(row, tmp_path / "out", results_dir=tmp_path / "r", verify=False)
    assert card["verified"] is False and card["verified_test_accuracy"] is None
    assert card["input"]["shape"] == [8, 8, 3] and len(card["dataset"]["class_names"]) == 2
    assert json.loads((tmp_path / "out" / "model_card.json").read_text())["verified"] is False
