"""scikit-learn's 8x8 digits: bundled, so a search runs with no data at all."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness._data._registry import ArraySource, register
from harness._data._split import RawData, select
from harness._spec.spec import DatasetSpec

DIGIT_CLASSES = [str(i) for i in range(10)]


@register
class Digits(ArraySource):
    """`load_digits` rescaled to 0..255, split 80/20 once (fixed seed) into train and test."""

    name = "digits"
    shape = (8, 8, 1)
    class_names = DIGIT_CLASSES

    def locate(self, roots: list[Path]) -> str:
        return "bundled with scikit-learn"

    def load(self, spec: DatasetSpec, roots: list[Path], seed: int) -> RawData:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        bunch = load_digits()
        images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
        x_tr, x_te, y_tr, y_te = train_test_split(
            images, bunch.target.astype(np.int64), test_size=0.2, stratify=bunch.target, random_state=0
        )
        raw = RawData(x_tr, y_tr, x_te, y_te, list(DIGIT_CLASSES), "scikit-learn load_digits (fixed 80/20)")
        return select(raw, spec, seed)
