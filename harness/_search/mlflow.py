"""MLflow: every trial as one MLflow run, logged by the driver when the trial's row is written.

Why not Ray's `MLflowLoggerCallback`: it opens a run per trial *start*, so a retried or
resumed trial becomes a second run; it logs the raw config (harness' bookkeeping keys
included) and every result key; and it uploads no model. Logging from the row gives one
run per leaderboard row, keyed by the trial id (a rewritten row replaces its run), with
the row's own parameters, per-epoch curves, final metrics and kept model.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness._errors import ArgumentError, HarnessError
from harness._results.record import EpochRecord, TrialRecord, TrialStatus
from harness._storage import Location, refuse_credentials

if TYPE_CHECKING:
    from mlflow import MlflowClient

TRIAL_TAG = "harness.trial_id"
"""The tag that finds a trial's run again (a resumed trial replaces it)."""
EPOCH_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "epoch_s")
FINAL_METRICS = {  # MLflow name -> row field; `best_*` are the selected epoch's, not the last one's
    "best_val_accuracy": "val_accuracy", "best_val_loss": "val_loss", "test_accuracy": "test_accuracy",
    "test_loss": "test_loss", "params": "params", "epochs_run": "epochs_run", "best_epoch": "best_epoch",
    "train_time_s": "train_time_s", "total_time_s": "total_time_s", "steady_epoch_s": "steady_epoch_s",
}  # fmt: skip
DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
"""Stores whose experiments would keep their artifacts in `./mlruns`, in whatever folder the
driver was started from; harness gives them a folder under the results instead."""
_RUN_STATUS = {TrialStatus.COMPLETED: "FINISHED", TrialStatus.PRUNED: "KILLED", TrialStatus.FAILED: "FAILED"}
log = logging.getLogger("harness")


@dataclass
class MlflowLogger:
    """Logs trials to the tracking store at `uri`, under the experiment `experiment` (the study).

    `artifacts`: where a new experiment in a database store keeps its models (a folder or
    bucket prefix under the results). File stores keep them inside the store, and a tracking
    server decides for itself, so neither is told.
    """

    uri: str
    experiment: str
    artifacts: Location | None = None
    _client: MlflowClient | None = field(default=None, repr=False)
    _experiment_id: str | None = field(default=None, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_client": None}  # Ray pickles the recorder that holds this

    def check(self) -> None:
        """Before any work: no credentials in the URI (Ray pickles this logger into the run's state),
        mlflow importable and the store reachable (the experiment made if new)."""
        refuse_credentials("mlflow", self.uri)
        try:
            self._experiment_id = self._experiment()
        except HarnessError:
            raise
        except Exception as exc:  # MLflow raises many kinds for an unreachable or foreign store
            raise ArgumentError(
                "mlflow", f"must be an MLflow tracking URI harness can reach (sqlite:///mlflow.db, "
                f"http://host:5000, a folder); it failed with {type(exc).__name__}: {exc}", self.uri,
            ) from None  # fmt: skip

    def log(self, record: TrialRecord, epochs: Sequence[EpochRecord]) -> None:
        """One run for the trial; a missing store later on is a warning (the row is the truth)."""
        try:
            self._log(record, epochs)
        except Exception as exc:
            log.warning("MLflow: trial %s was not logged to %s: %s: %s", record.trial_id, self.uri,
                        type(exc).__name__, exc)  # fmt: skip

    def _log(self, record: TrialRecord, epochs: Sequence[EpochRecord]) -> None:
        from mlflow.entities import Metric, Param

        client, experiment = self._connect(), self._experiment()
        same_trial = f"tags.`{TRIAL_TAG}` = '{record.trial_id}'"
        for old in client.search_runs([experiment], filter_string=same_trial):
            client.delete_run(old.info.run_id)  # a retried or resumed trial: its newest row wins
        tags = {TRIAL_TAG: record.trial_id, "harness.study": record.study,
                "harness.run_id": str(record.run_id), "harness.status": str(record.status),
                "harness.dataset": str(record.dataset), "harness.stop_reason": str(record.stop_reason or "")}
        run_id = client.create_run(experiment, run_name=record.trial_id, tags=tags).info.run_id
        stamp = int((record.finished_at.timestamp() if record.finished_at else 0) * 1000)
        metrics = [
            Metric(name, value, int(e.finished_at.timestamp() * 1000) if e.finished_at else stamp, e.epoch)
            for e in epochs
            for name in EPOCH_METRICS
            if (value := e.metric(name)) is not None
        ]
        metrics += [
            Metric(name, float(value), stamp, record.epochs_run or 0)
            for name, attr in FINAL_METRICS.items()
            if (value := getattr(record, attr)) is not None
        ]
        params = [Param(k, str(v)) for k, v in sorted(record.hyperparameters.items())]
        client.log_batch(run_id, metrics=metrics, params=params)
        if record.error:
            client.set_tag(run_id, "harness.error", record.error[:5000])
        if record.model_path:
            with Location.of(record.model_path).as_local_file() as path:
                client.log_artifact(run_id, str(path), "model")
        client.set_terminated(run_id, _RUN_STATUS[record.status])

    def _connect(self) -> MlflowClient:
        if self._client is None:
            try:
                from mlflow import MlflowClient
            except ImportError:
                raise HarnessError(
                    "--mlflow needs MLflow: `pip install -e '.[mlflow]'` (mlflow-skinny, with the "
                    "SQLite, file and HTTP tracking stores)."
                ) from None
            self._client = MlflowClient(tracking_uri=self.uri)
        return self._client

    def _experiment(self) -> str:
        if self._experiment_id is None:
            client = self._connect()
            found = client.get_experiment_by_name(self.experiment)
            self._experiment_id = (
                found.experiment_id
                if found
                else client.create_experiment(self.experiment, artifact_location=self._artifact_location())
            )
        return self._experiment_id

    def _artifact_location(self) -> str | None:
        if self.artifacts is None or self.uri.split(":", 1)[0].split("+", 1)[0] not in DATABASE_SCHEMES:
            return None
        return Path(self.artifacts.uri).as_uri() if self.artifacts.local else self.artifacts.uri
