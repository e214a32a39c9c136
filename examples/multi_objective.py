"""Two objectives: the most accurate and the smallest models, as a Pareto front.

Run: python examples/multi_objective.py
"""

from pathlib import Path

import harness

spec = harness.load_spec(Path(__file__).resolve().parent.parent / "search_spaces" / "digits.yaml")
spec = spec.with_overrides(
    study="digits_pareto",
    objective=[{"metric": "val_accuracy"}, {"metric": "params"}],  # max accuracy, min parameters
    constraints={"params": {"max": 50_000}},  # and nothing over 50k parameters
    # ASHA stops trials on one metric: a multi-objective search runs each trial to its end
    **{"search.trials": 4, "search.max_epochs": 3, "search.scheduler.name": "none"},
)
study = harness.search(spec, results="results")
for trial in study.best_trials:  # the Pareto front, best first
    print(f"{trial.trial_id}: val_accuracy {trial.val_accuracy:.4f} with {trial.params:,} parameters")
