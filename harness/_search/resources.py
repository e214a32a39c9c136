"""What each trial gets: `auto` shares the cluster's CPUs and GPUs among the trials that run at once."""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness._errors import ArgumentError
from harness._spec.space import START_POINT, TRIAL_NUMBER
from harness._spec.spec import MIXED_ON_CPUS, SearchSpec

if TYPE_CHECKING:
    from ray.tune.execution.placement_groups import PlacementGroupFactory


@dataclass(frozen=True, kw_only=True)
class Placement:
    """Resources per trial, resolved against a Ray cluster's nodes."""

    cpus: float
    gpus: float
    start_cpus: float  # start points run first and to completion: with `auto`, a whole node each
    whole_node_trials: int = 0  # the run's first trials (by number) get `start_cpus` too


def place(spec: SearchSpec, nodes: Sequence[Mapping[str, float]]) -> Placement:
    """Resolve `auto` against the live nodes; check fixed values against the largest one.

    GPUs first, since they bound how many trials run at once: `gpus_per_trial: auto` is 1/k
    for the smallest whole k that fits `min(max_concurrent, trials)` trials on the cluster's
    GPUs (without `max_concurrent`, one trial per GPU). CPUs: the cluster's over the trials
    that run at once, at least one, and never more than one node has (a trial runs on one
    node). On CPUs, start points, a lone trial and the run's first `whole_node_trials` get
    every core of the largest node: they are the search's floor, and nothing reported before
    the first of them ends is worth as much. GPU trials keep their share (the GPU does their
    work).
    """
    gpus = _gpu_share(spec, nodes)
    if spec.mixed_precision and not gpus:  # `auto` found no GPU
        raise ArgumentError(
            "spec.resources.gpus_per_trial",
            f"found no GPU on the Ray cluster, and space.precision {spec.mixed_precision} {MIXED_ON_CPUS}; "
            "use float32 or join a cluster with GPUs",
            spec.resources.gpus_per_trial,
        )
    s = spec.search
    wanted = spec.resources.cpus_per_trial
    if wanted == "auto":
        cpus_total = sum(node.get("CPU", 0.0) for node in nodes)
        node_cpus = _largest(nodes, "CPU")
        concurrent = max(1, min(s.max_concurrent or int(cpus_total), s.trials, _gpu_slots(nodes, gpus)))
        cpus = float(max(1, min(math.floor(cpus_total / concurrent), math.floor(node_cpus))))
        start_cpus = cpus if gpus else float(max(1, math.floor(node_cpus)))
    else:
        cpus = start_cpus = float(wanted)
    placement = Placement(
        cpus=cpus, gpus=gpus, start_cpus=start_cpus, whole_node_trials=spec.resources.whole_node_trials or 0
    )
    for key, name, need in (
        ("CPU", "cpus_per_trial", placement.cpus),
        ("GPU", "gpus_per_trial", placement.gpus),
    ):
        largest = _largest(nodes, key)
        if need > 0 and need > largest:
            raise ArgumentError(
                f"spec.resources.{name}",
                f"must fit one node of the Ray cluster, and its largest has {largest:g} {key}s; "
                "lower it or join a larger cluster",
                need,
            )
    return placement


def _gpu_share(spec: SearchSpec, nodes: Sequence[Mapping[str, float]]) -> float:
    """`gpus_per_trial`, with `auto` resolved (0 on a cluster without GPUs)."""
    wanted = spec.resources.gpus_per_trial
    if wanted != "auto":
        return float(wanted)
    whole = sum(math.floor(node.get("GPU", 0.0)) for node in nodes)
    if whole == 0:
        return 0.0
    concurrent = min(spec.search.max_concurrent or whole, spec.search.trials)
    return 1.0 / math.ceil(concurrent / whole)


def _gpu_slots(nodes: Sequence[Mapping[str, float]], gpus: float) -> int:
    """How many trials the cluster's GPUs hold at once (no limit for CPU-only trials)."""
    if gpus <= 0:
        return sys.maxsize
    return sum(math.floor(node.get("GPU", 0.0) / gpus + 1e-9) for node in nodes)


def _largest(nodes: Sequence[Mapping[str, float]], key: str) -> float:
    """The most of resource `key` one node has (a trial cannot span nodes)."""
    return max((node.get(key, 0.0) for node in nodes), default=0.0)


WORKER_GENERATION = 50
"""Trials numbered alike in blocks of this many share workers; the next block starts fresh ones."""


def trial_resources(config: Mapping[str, Any], *, placement: Placement) -> PlacementGroupFactory:
    """Ray's per-trial resource request (`tune.with_resources` calls it with each config).

    Ray reuses a worker only for trials with equal requests, and TensorFlow's `fit` leaks
    about 6 MB per new model in a process (benchmarks/README.md, "Long searches"), so each
    block of `WORKER_GENERATION` trial numbers asks for a different token amount of Ray's
    `memory` resource (bytes: nothing a node notices). Workers then run at most a block's
    trials before retiring, at one backend import per block.
    """
    from ray.tune.execution.placement_groups import PlacementGroupFactory

    number = int(config.get(TRIAL_NUMBER, 0))
    first = config.get(START_POINT) or number < placement.whole_node_trials
    cpus = placement.start_cpus if first else placement.cpus
    bundle = {"CPU": cpus, "GPU": placement.gpus} if placement.gpus else {"CPU": cpus}
    generation = number // WORKER_GENERATION
    return PlacementGroupFactory([{**bundle, "memory": generation + 1}])
