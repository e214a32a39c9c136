"""Export a trial's model with a model card, verified by reloading; classify image files."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness._data import Data, Dataset, describe, load_dataset
from harness._errors import ArgumentError, DataError, HarnessError
from harness._names import check_name
from harness._results.query import load_leaderboard, within_params
from harness._spec.spec import SearchSpec, load_saved_spec
from harness._storage import Location, Results, staged_dir

FORMATS = ("keras", "savedmodel", "onnx")
TOLERANCE = 0.001  # 0.1 percentage point


class ExportError(HarnessError):
    """The trial cannot be exported, or its reloaded model does not match the leaderboard."""


def select_trial(
    results_dir: Results = "results",
    *,
    study: str | None = None,
    trial: str | None = None,
    rank: int | None = None,
    max_params: int | None = None,
) -> pd.Series:
    """One leaderboard row: by trial id, or by 1-based rank in its study (default: the best).

    Args:
        results_dir: The results folder or URI.
        study: The study; may be left out when the folder holds one.
        trial: A trial id.
        rank: A 1-based rank within the study.
        max_params: "The best model under N parameters": ranks count only such rows.

    Returns:
        The row, as `load_leaderboard` gives it.

    Raises:
        ArgumentError: No such study, trial or rank, or both `trial` and `rank`.
    """
    if trial is not None and rank is not None:
        raise ArgumentError("rank", "cannot be given with `trial`; specify only one", rank)
    if trial is not None:
        check_name("trial", trial)
    frame = within_params(load_leaderboard(results_dir, study), max_params)
    if frame.empty:
        where = f" for study {study!r}" if study else ""
        limit = f" with at most {max_params:,} parameters" if max_params is not None else ""
        raise ExportError(
            f"No leaderboard rows{limit} under {results_dir}{where}; run `harness search` first."
        )
    if trial is not None:
        rows = frame[frame["trial_id"] == trial]
        if rows.empty:
            raise ArgumentError("trial", f"must be a trial id in the leaderboard under {results_dir}", trial)
        return rows.iloc[0]
    studies = frame["study"].unique().tolist()
    if len(studies) > 1:
        raise ArgumentError("study", f"is needed to pick by rank; studies here: {studies}", study)
    rank = 1 if rank is None else rank
    if not 1 <= rank <= len(frame):
        raise ArgumentError("rank", f"must be between 1 and {len(frame)}", rank)
    return frame.iloc[rank - 1]


def export_trial(
    row: pd.Series,
    out: str | Path | Location,
    *,
    results_dir: Results = "results",
    formats: tuple[str, ...] = ("keras",),
    data_dir: str | Path | None = None,
    verify: bool = True,
    data: Data | None = None,
) -> dict[str, Any]:
    """Write a trial's `model.keras` (and other formats) and `model_card.json` to `out`.

    The model is reloaded from the written file and re-evaluated on the test set: a test
    accuracy more than 0.1 point away from the leaderboard's aborts the export, and nothing
    is written. The model may live in object storage, and `out` may be a URI.

    Args:
        row: The trial's leaderboard row (`select_trial`).
        out: The folder (or URI) to write.
        results_dir: The results folder the row came from.
        formats: `keras`, and `savedmodel` (TensorFlow backend) or `onnx` (needs `onnx` and
            `tf2onnx`).
        data_dir: Where the built-in datasets are, for the re-evaluation.
        verify: False skips the re-evaluation (a machine without the dataset); the card
            says so.
        data: The arrays the search was given from Python, which no file holds.

    Returns:
        The model card: dataset and preprocessing, class names, hyperparameters, metrics,
        versions, and whether it was verified.

    Raises:
        ExportError: The trial failed, was pruned, or its model was not kept; the reloaded
            model does not match the leaderboard; or a format cannot be written.
    """
    check_exportable(row)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ArgumentError("formats", f"must be among {list(FORMATS)}", list(formats))
    target = Location.of(out)
    if target.is_file() or target.files() or target.folders():
        raise ArgumentError("out", "must be a new or empty folder", str(out))
    spec = load_saved_spec(results_dir, row["spec_hash"])
    dataset = _test_data(spec, data_dir, data) if verify else None
    keras = _import_keras(row["backend"])
    import_builder(row.get("builder"))
    with staged_dir(target, last="model_card.json") as staging:
        with Location.of(row["model_path"]).as_local_file() as source:
            shutil.copyfile(source, staging / "model.keras")
        model = keras.saving.load_model(staging / "model.keras")
        accuracy = None
        if dataset is not None:
            _, accuracy = model.evaluate(dataset.x_test, dataset.y_test, verbose=0, batch_size=256)
            if not abs(accuracy - row["test_accuracy"]) <= TOLERANCE:  # NaN fails too
                raise ExportError(
                    f"reloaded model scores {accuracy:.4%} on the test set but the leaderboard says "
                    f"{row['test_accuracy']:.4%}; the saved model does not match its row."
                )
        written = ["model.keras"] + [_export_format(model, staging, f) for f in formats if f != "keras"]
        shape, classes = (
            (dataset.input_shape, dataset.class_names) if dataset else _described(spec, model, data_dir, data)
        )
        card = model_card(row, spec, shape, classes, None if accuracy is None else float(accuracy), written)
        (staging / "model_card.json").write_text(json.dumps(card, indent=2, default=str))
    return card


def _test_data(spec: SearchSpec, data_dir: str | Path | None, data: Data | None) -> Dataset:
    """The trial's dataset, split as during the search: what a verified export re-evaluates on."""
    try:
        return load_dataset(spec.dataset, data_dir=data_dir, seed=spec.search.seed, data=data)
    except DataError as exc:
        raise ExportError(
            f"{exc} Export re-evaluates the model on the test set of {spec.dataset.label}; give "
            "--data-dir where it is, or --no-verify to export without re-evaluating (the model card "
            "then says it was not re-evaluated)."
        ) from None


def _described(
    spec: SearchSpec, model: Any, data_dir: str | Path | None, data: Data | None
) -> tuple[tuple[int, ...], list[str]]:
    """Input shape and class names without the data: the dataset's published ones, else the model's."""
    try:
        _, shape, classes = describe(spec.dataset, data_dir=data_dir, data=data)
        return tuple(shape), list(classes)
    except DataError:  # an image folder that is not on this machine
        return tuple(model.input_shape[1:]), [str(i) for i in range(int(model.output_shape[-1]))]


def trial_data(
    row: pd.Series, results_dir: Results, data_dir: str | Path | None, data: Data | None = None
) -> tuple[Any, Any]:
    """The trial's validated spec and its dataset, split exactly as during the search."""
    spec = load_saved_spec(results_dir, row["spec_hash"])
    return spec, load_dataset(spec.dataset, data_dir=data_dir, seed=spec.search.seed, data=data)


def load_trial_model(row: pd.Series) -> Any:
    """The trial's kept Keras model (clear errors for failed, pruned or dropped ones)."""
    check_exportable(row)
    keras = _import_keras(row["backend"])
    import_builder(row.get("builder"))
    with Location.of(row["model_path"]).as_local_file() as path:
        return keras.saving.load_model(path)


def check_exportable(row: pd.Series) -> None:
    if row["status"] == "failed":
        raise ExportError(f"trial {row['trial_id']} failed ({row['error']}); it has no model.")
    path = row["model_path"]
    if pd.isna(path) or not Location.of(path).is_file():
        raise ExportError(
            f"trial {row['trial_id']} ({row['status']}) has no kept model: pruned trials are "
            "not saved and only the best `search.keep_models` per study are kept. Export a "
            "better-ranked trial, or raise keep_models and search again."
        )


def _import_keras(backend: str | None) -> Any:
    """Keras on the trial's backend when none is chosen yet (models load on any backend)."""
    if backend and "keras" not in sys.modules:
        os.environ.setdefault("KERAS_BACKEND", backend)
    import keras

    import harness._trial.model  # noqa: F401 - registers harness' custom layers for loading

    return keras


def _export_format(model: Any, folder: Path, fmt: str) -> str:
    """`model.export()` for what the backend supports; a clear error otherwise."""
    import keras

    target = {"savedmodel": "saved_model", "onnx": "model.onnx"}[fmt]
    keras_format = {"savedmodel": "tf_saved_model", "onnx": "onnx"}[fmt]
    try:
        model.export(str(folder / target), format=keras_format, verbose=False)
    except (ImportError, ModuleNotFoundError, ValueError, NotImplementedError) as exc:
        raise ExportError(
            f"--format {fmt} is not available with the {keras.backend.backend()} backend here "
            f"({type(exc).__name__}: {str(exc)[:200]}). SavedModel needs TensorFlow; ONNX needs "
            "`pip install onnx tf2onnx` (TensorFlow) or `onnx onnxscript` (torch)."
        ) from None
    return target


def model_card(
    row: pd.Series,
    spec: SearchSpec,
    shape: tuple[int, ...],
    class_names: list[str],
    verified: float | None,
    files: list[str],
) -> dict[str, Any]:
    """What a user of the file needs: preprocessing, classes, provenance and metrics."""
    hps = {k.removeprefix("hp_"): _plain(v) for k, v in row.items() if k.startswith("hp_") and pd.notna(v)}
    metrics = ("val_accuracy", "val_loss", "test_accuracy", "test_loss", "epochs_run",
               "best_epoch", "params", "train_time_s", "total_time_s")  # fmt: skip
    versions = ("harness_version", "keras_version", "backend", "backend_version", "device")
    builder = row.get("builder")
    own = isinstance(builder, str)
    return {
        "study": row["study"],
        "trial_id": row["trial_id"],
        "builder": builder if own else "harness CNN (space:)",
        "dataset": {
            "name": row["dataset"],
            "spec": spec.dataset.model_dump(mode="json"),
            "class_names": class_names,
        },
        "input": {
            "shape": list(shape),
            "dtype": "uint8",
            "color_mode": "grayscale" if shape[-1] == 1 else "rgb",
            "scaling": "raw pixels 0-255, as the search fed them; "
            + (
                "the model scales them as its build does"
                if own
                else "the model's first layer rescales by 1/255"
            ),
            "resize": f"{shape[0]}x{shape[1]} (height x width)",
        },
        "hyperparameters": hps,
        "metrics": {k: _plain(row[k]) for k in metrics},
        "verified": verified is not None,  # re-evaluated on the test set after reloading
        "verified_test_accuracy": verified,
        "versions": {k: row[k] for k in versions},
        "spec_hash": row["spec_hash"],
        "files": files,
        "exported_at": datetime.now(UTC).isoformat(),
    }


def _plain(value: Any) -> Any:
    """numpy scalars -> Python, NaN -> None, for JSON."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


@dataclass(frozen=True)
class Prediction:
    """One image's top classes, most probable first."""

    image: str
    top: list[tuple[str, float]]


def predict_images(
    model_dir: str | Path | Location, images: Sequence[str | Path], *, top: int = 3
) -> list[Prediction]:
    """Classify image files with an exported model.

    Each image is resized and converted as the model card says.

    Args:
        model_dir: A `harness export` folder, or its URI.
        images: Image files (anything Pillow reads).
        top: How many classes to return for each image.

    Returns:
        One prediction per image: its top classes with probabilities, most probable first.

    Raises:
        ExportError: `model_dir` holds no model card, or its model holds Python code (a
            `Lambda` layer), which safe mode refuses.
    """
    from PIL import Image

    folder = Location.of(model_dir)
    card_path = folder / "model_card.json"
    if not card_path.is_file():
        raise ExportError(f"--model {model_dir}: no model_card.json; pass a `harness export` folder.")
    card = json.loads(card_path.read_text())
    height, width, channels = card["input"]["shape"]
    batch = []
    for image in images:
        try:
            with Image.open(image) as img:
                pixels = img.convert("L" if channels == 1 else "RGB").resize((width, height), 3)
                batch.append(np.asarray(pixels, np.uint8).reshape(height, width, channels))
        except (OSError, ValueError) as exc:
            raise ExportError(f"{image}: not a readable image ({exc}).") from None
    keras = _import_keras(card["versions"].get("backend"))
    import_builder(card.get("builder"))
    with (folder / "model.keras").as_local_file() as path:
        model = _load_without_code(keras, path, model_dir)
    probs = model.predict(np.stack(batch), verbose=0)
    names = card["dataset"]["class_names"]
    results = []
    for image, p in zip(images, probs, strict=True):
        order = np.argsort(p)[::-1][:top]
        results.append(Prediction(str(image), [(names[i], float(p[i])) for i in order]))
    return results


def import_builder(builder: object) -> None:
    """Import a user model's module before loading its model: the custom layers and losses it
    registers (`keras.saving.register_keras_serializable`) are then known to Keras' safe mode.
    A module that cannot be imported here is left to Keras, whose error names the unknown class."""
    if not isinstance(builder, str) or ":" not in builder:
        return
    with contextlib.suppress(Exception):  # the user's module: anything may fail; Keras says what is missing
        importlib.import_module(builder.partition(":")[0])


def _load_without_code(keras: Any, path: Any, model_dir: str | Path | Location) -> Any:
    """A model file in Keras' safe mode: one holding Python code (a `Lambda` layer) could run
    anything when loaded, so it is refused with a message, never loaded with safe mode off."""
    try:
        return keras.saving.load_model(path)
    except ValueError as exc:
        if "safe_mode" not in str(exc):
            raise
        raise ExportError(
            f"--model {model_dir}: model.keras holds Python code (a Lambda layer); harness will not "
            "load arbitrary code from a model file. Export a model without Lambda layers (e.g. with "
            "`harness export`)."
        ) from None
