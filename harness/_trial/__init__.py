"""The worker side: one trial built, trained, reported and finished.

`runner.TrialRunner` builds the model (`builder`: harness' CNN from `model`, or a user's
`build(hp)`), fits it with a report per epoch (`reporter`), checkpoints it (`checkpoint`) and
finishes it outside `fit`; `worker` is the thin Ray adapter and the worker's settings;
`devices` picks and caps the backend's devices. It may import the spec, data and results
stages, never the driver (`harness._search`) or reports.
"""
