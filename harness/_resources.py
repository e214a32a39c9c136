"""What each trial gets: `cpus_per_trial: auto` shares the cluster among the trials that run at once."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness._errors import ArgumentError
from harness._space import START_POINT
from harness._spec import SearchSpec

if TYPE_CHECKING:
    from ray.tune.execution.placement_groups import PlacementGroupFactory


@dataclass(frozen=True, kw_only=True)
class Placement:
    """Resources per trial, resolved against a Ray cluster's nodes."""

    cpus: float
    gpus: float
    start_cpus: float  # start points run first and to completion: with `auto`, a whole node each


def place(spec: SearchSpec, nodes: Sequence[Mapping[str, float]]) -> Placement:
    """Resolve `auto`: the cluster's CPUs over `min(max_concurrent or CPUs, trials)`, at least one.

    A trial runs on one node, so no share exceeds the largest node. A baseline or a lone
    trial gets every core of it, and so do start points: they are the search's floor, and
    nothing reported before the first of them finishes is worth as much. A fixed value is
    checked against the largest node.
    """
    cpus_total = sum(node.get("CPU", 0.0) for node in nodes)
    node_cpus = _largest(nodes, "CPU")
    s = spec.search
    wanted = spec.resources.cpus_per_trial
    if wanted == "auto":
        concurrent = max(1, min(s.max_concurrent or int(cpus_total), s.trials))
        cpus = float(max(1, min(math.floor(cpus_total / concurrent), math.floor(node_cpus))))
        start_cpus = float(max(1, math.floor(node_cpus)))
    else:
        cpus = start_cpus = float(wanted)
    placement = Placement(cpus=cpus, gpus=spec.resources.gpus_per_trial, start_cpus=start_cpus)
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


def _largest(nodes: Sequence[Mapping[str, float]], key: str) -> float:
    """The most of resource `key` one node has (a trial cannot span nodes)."""
    return max((node.get(key, 0.0) for node in nodes), default=0.0)


def trial_resources(config: Mapping[str, Any], *, placement: Placement) -> PlacementGroupFactory:
    """Ray's per-trial resource request (`tune.with_resources` calls it with each config)."""
    from ray.tune.execution.placement_groups import PlacementGroupFactory

    cpus = placement.start_cpus if config.get(START_POINT) else placement.cpus
    bundle = {"CPU": cpus, "GPU": placement.gpus} if placement.gpus else {"CPU": cpus}
    return PlacementGroupFactory([bundle])


def trial_cpus(resources: PlacementGroupFactory | None) -> float | None:
    """The CPUs a trial was given, from its resource request (None before Ray has made it)."""
    return None if resources is None else float(resources.required_resources.get("CPU", 0.0))
