"""The package's functions: look the dataset's source up by name, then load, describe or locate."""

from __future__ import annotations

from pathlib import Path

from harness._data._registry import DatasetSource, Description, search_roots, source
from harness._data._split import Dataset, RawData, split_validation
from harness._data.arrays import Data, InMemory
from harness._errors import ArgumentError, DataError
from harness._spec.spec import DatasetSpec, SearchSpec


def load_dataset(
    spec: DatasetSpec, *, data_dir: str | Path | None = None, seed: int = 0, data: Data | None = None
) -> Dataset:
    """Load the spec's selection and hold out a seeded, stratified validation split."""
    raw = _source(spec, data).load(spec, search_roots(data_dir), seed)
    return split_validation(raw, spec, seed)


def for_data(spec: SearchSpec, data: Data | None) -> SearchSpec:
    """The spec with the digest of arrays passed from Python, which its hash (and a resume's
    check) then covers; unchanged without them."""
    if data is None:
        return spec
    if not isinstance(data, Data):
        raise ArgumentError("data", "must be a harness.Data (Data.from_arrays(x, y) or Data.from_npz(path))",
                            type(data).__name__)  # fmt: skip
    d = spec.dataset
    if d.name != "arrays" or d.path is not None:
        raise ArgumentError(
            "data", f"is for a spec whose dataset is `{{name: arrays}}` without a path; this spec's is "
            f"{{name: {d.name}, path: {d.path}}}", data,
        )  # fmt: skip
    if d.digest is not None and d.digest != data.digest:
        raise ArgumentError("data", f"must be the arrays this spec was made for (digest {d.digest})", data)
    return spec.with_overrides(**{"dataset.digest": data.digest})


def _source(spec: DatasetSpec, data: Data | None) -> DatasetSource:
    """Arrays from Python when the spec was made for them (its digest), else the named dataset's."""
    if spec.digest is None:
        return source(spec.name)
    if data is None:
        raise DataError(
            f"dataset: this study searched arrays passed from Python (digest {spec.digest}), which no "
            "file holds; pass the same arrays again (data=harness.Data.from_arrays(...))."
        )
    if data.digest != spec.digest:
        raise DataError(
            f"dataset: the arrays given (digest {data.digest}) are not the ones this study searched "
            f"(digest {spec.digest}); pass the same arrays."
        )
    return InMemory(data)


def load_raw(spec: DatasetSpec, *, data_dir: str | Path | None = None) -> RawData:
    """Every class and training image, from the first place the dataset is found.

    `classes` and `limit_train` are ignored; `image_size` is applied.
    """
    whole = spec.model_copy(update={"classes": None, "limit_train": None})
    return source(spec.name).load(whole, search_roots(data_dir), seed=0)


def describe(
    spec: DatasetSpec, *, data_dir: str | Path | None = None, data: Data | None = None
) -> Description:
    """(where it is found, input shape, class names) without decoding any image (--dry-run)."""
    return _source(spec, data).describe(spec, search_roots(data_dir))


def locate(name: str, data_dir: str | Path | None = None) -> str | None:
    """Where a known dataset's files are found, or None (used by `harness datasets`)."""
    return source(name).locate(search_roots(data_dir))
