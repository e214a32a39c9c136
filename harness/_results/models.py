"""A study's saved models: where they live in a results folder, and the only deletions made there.

A row names its model relative to the results folder (`models/<study>/<trial_id>.keras`),
so a copied, moved or differently mounted folder (an NFS export seen at other paths on
two nodes) reads its own files and never reaches another folder's. Rows written before
that hold absolute paths or URIs; they resolve by file name into the folder holding the
row. Either way a model resolves inside `<results>/models/<study>/`, the only place
keep-top-k and the end-of-search sweep delete from.
"""

from __future__ import annotations

from collections.abc import Iterable

from harness._errors import ArgumentError
from harness._storage import Location, Results

MODELS_DIR = "models"
SUFFIX = ".keras"


def models_dir(results_dir: Results, study: str) -> Location:
    return Location.of(results_dir) / MODELS_DIR / study


def stored_path(study: str, trial_id: str) -> str:
    """What a row stores: the model's path relative to the results folder."""
    return f"{MODELS_DIR}/{study}/{trial_id}{SUFFIX}"


def model_file(results_dir: Results, study: str, stored: str) -> Location | None:
    """The model a row names, in this results folder (None for a name that is not a model file)."""
    name = stored.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    if not name.endswith(SUFFIX):
        return None
    try:
        return models_dir(results_dir, study) / name
    except ArgumentError:  # `..` or empty: not a file of this folder
        return None


def delete_model(results_dir: Results, study: str, stored: str) -> None:
    """Delete a row's model, never outside `<results>/models/<study>/` whatever the row says."""
    target = model_file(results_dir, study, stored)
    if target is not None:
        target.delete()


def orphaned_models(results_dir: Results, study: str, named: Iterable[str]) -> list[Location]:
    """A study's model files that no row names: a driver that died after a trial saved its model
    and before its row (or between keep-top-k's row and its delete) leaves one behind.
    `named`: the study's rows' stored model paths (relative, or absolute from older rows)."""
    kept = {f.uri for stored in named if (f := model_file(results_dir, study, stored)) is not None}
    return [f for f in models_dir(results_dir, study).files(SUFFIX) if f.uri not in kept]
