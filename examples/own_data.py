"""Search your own NumPy images: arrays in memory, string labels, no test set given.

harness carves a test set (20%, stratified, fixed seed) and a validation split from the
training images. Run: python examples/own_data.py
"""

import numpy as np
from sklearn.datasets import load_digits

import harness

digits = load_digits()
x = (digits.images * 16).clip(0, 255).astype(np.uint8)  # (n, 8, 8) pixels 0-255
names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
y = names[digits.target]  # string labels become the class names

data = harness.Data.from_arrays(x, y)
spec = {
    "study": "my_digits",
    "search": {"trials": 3, "max_epochs": 3},
    "space": {
        "conv_blocks": 1,
        "filters": {"type": "categorical", "choices": [8, 16]},
        "learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
    },
}
study = harness.search(spec, data=data, results="results")
best = study.best_trial
print(f"best val_accuracy {best.val_accuracy:.4f}, test_accuracy {best.test_accuracy:.4f}")
print("dataset as the rows name it:", study.best_trial.dataset)
