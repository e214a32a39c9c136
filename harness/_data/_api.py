"""The package's functions: look the dataset's source up by name, then load, describe or locate."""

from __future__ import annotations

from pathlib import Path

from harness._data._registry import Description, search_roots, source
from harness._data._split import Dataset, RawData, split_validation
from harness._spec import DatasetSpec


def load_dataset(spec: DatasetSpec, *, data_dir: str | Path | None = None, seed: int = 0) -> Dataset:
    """Load the spec's selection and hold out a seeded, stratified validation split."""
    raw = source(spec.name).load(spec, search_roots(data_dir), seed)
    return split_validation(raw, spec, seed)


def load_raw(spec: DatasetSpec, *, data_dir: str | Path | None = None) -> RawData:
    """Every class and training image, from the first place the dataset is found.

    `classes` and `limit_train` are ignored; `image_size` is applied.
    """
    whole = spec.model_copy(update={"classes": None, "limit_train": None})
    return source(spec.name).load(whole, search_roots(data_dir), seed=0)


def describe(spec: DatasetSpec, *, data_dir: str | Path | None = None) -> Description:
    """(where it is found, input shape, class names) without decoding any image (--dry-run)."""
    return source(spec.name).describe(spec, search_roots(data_dir))


def locate(name: str, data_dir: str | Path | None = None) -> str | None:
    """Where a known dataset's files are found, or None (used by `harness datasets`)."""
    return source(name).locate(search_roots(data_dir))
