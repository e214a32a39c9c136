"""What each trial gets: `cpus_per_trial: auto` shares the cluster among the trials that run at once."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from harness._errors import ArgumentError
from harness._spec import SearchSpec


@dataclass(frozen=True, kw_only=True)
class Placement:
    """Resources per trial, resolved against a Ray cluster's totals."""

    cpus: float
    gpus: float


def place(spec: SearchSpec, cluster: Mapping[str, float]) -> Placement:
    """Resolve `auto`: the cluster's CPUs over `min(max_concurrent or CPUs, trials)`, at least one.

    A baseline or a lone trial gets every core; a fixed value is checked against the cluster.
    """
    cpus_total = float(cluster.get("CPU", 0))
    s = spec.search
    wanted = spec.resources.cpus_per_trial
    if wanted == "auto":
        concurrent = max(1, min(s.max_concurrent or int(cpus_total), s.trials))
        cpus = float(max(1, math.floor(cpus_total / concurrent)))
    else:
        cpus = float(wanted)
    placement = Placement(cpus=cpus, gpus=spec.resources.gpus_per_trial)
    for key, name, need in (
        ("CPU", "cpus_per_trial", placement.cpus),
        ("GPU", "gpus_per_trial", placement.gpus),
    ):
        if need > 0 and need > cluster.get(key, 0):
            raise ArgumentError(
                f"spec.resources.{name}",
                f"must fit the Ray cluster, which has {cluster.get(key, 0):g} {key}s; lower it or "
                "join a larger cluster",
                need,
            )
    return placement
