"""A first search from Python: the digits demo space, its best trial, the leaderboard.

Run from anywhere: python examples/first_search.py (results go to ./results).
"""

from pathlib import Path

import harness

SPACE = Path(__file__).resolve().parent.parent / "search_spaces" / "digits.yaml"

study = harness.search(SPACE, trials=4, results="results")
best = study.best_trial
print(f"best of {len(study.trials)} trials: {best.trial_id}, val_accuracy {best.val_accuracy:.4f}")
print("its hyperparameters:", best.hyperparameters)
print(study.to_pandas()[["trial_id", "status", "val_accuracy", "test_accuracy", "params"]])
