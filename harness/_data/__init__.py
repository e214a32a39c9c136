"""Datasets: find the files, read them into uint8 arrays once, split for selection.

One `DatasetSource` per dataset name (`SOURCES`); the functions below look it up.
"""

from __future__ import annotations

from harness._data import arrays, cifar10, digits, idx, image_folder  # noqa: F401 - registers the sources
from harness._data._api import describe, for_data, load_dataset, load_raw, locate
from harness._data._images import cache_dir
from harness._data._registry import SOURCES, DatasetSource, search_roots
from harness._data._split import Dataset, RawData
from harness._data.arrays import Data
from harness._data.cifar10 import CIFAR10_CLASSES
from harness._data.idx import FASHION_MNIST_CLASSES, read_idx

__all__ = [
    "CIFAR10_CLASSES",
    "Data",
    "FASHION_MNIST_CLASSES",
    "SOURCES",
    "Dataset",
    "DatasetSource",
    "RawData",
    "cache_dir",
    "describe",
    "for_data",
    "load_dataset",
    "load_raw",
    "locate",
    "read_idx",
    "search_roots",
]
