#!/usr/bin/env bash
# A first search from the command line: search, read the leaderboard, export and predict.
# Run from anywhere: bash examples/first_search.sh (results go to ./results, the model to ./best).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
harness search "$here/../search_spaces/digits.yaml" --trials 4 --results results
harness leaderboard --results results --study digits_demo --top 3
harness export --results results --study digits_demo --rank 1 --out best
python -c "
import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
Image.fromarray((load_digits().images[0] * 16).astype(np.uint8)).save('zero.png')
"
harness predict --model best zero.png
