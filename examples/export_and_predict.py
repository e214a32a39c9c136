"""Export a study's best model with its model card, reload it, and classify images.

Run after first_search.py (it reads ./results): python examples/export_and_predict.py
"""

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

import harness

study = harness.load_study("results", study="digits_demo")
card = study.export("exported/best")  # re-evaluated on the test set after reloading: the model card
print("exported; test accuracy", card["metrics"]["test_accuracy"], "verified:", card["verified"])

digits = load_digits()
paths = []
for i in range(3):
    path = f"digit_{i}.png"
    Image.fromarray((digits.images[i] * 16).clip(0, 255).astype(np.uint8)).save(path)
    paths.append(path)
for prediction in harness.predict_images("exported/best", paths):
    print(prediction.image, prediction.top)  # [(class name, probability), ...], most probable first
