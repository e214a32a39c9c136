"""The driver side of a search: Ray and its cluster, resources per trial, Optuna's sampler and
what it is told, the schedulers, the callbacks that record each trial as it ends (rows, curves,
kept models, MLflow), the study lock, progress and the dry run.

It may import every stage below it (spec, data, results, trial); reports and the public API
import it.
"""
