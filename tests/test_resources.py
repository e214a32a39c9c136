"""`cpus_per_trial: auto`: the cluster's CPUs shared among the trials that run at once."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from harness import ArgumentError, SearchSpec
from harness._resources import place, trial_cpus, trial_resources


def spec(**search) -> SearchSpec:
    return SearchSpec.model_validate(
        {"study": "s", "dataset": {"name": "digits"}, "search": {"trials": 20, **search}}
    )


def test_auto_shares_the_cpus_among_concurrent_trials():
    cluster = [{"CPU": 8.0}]
    assert place(spec(max_concurrent=1), cluster).cpus == 8
    assert place(spec(max_concurrent=2), cluster).cpus == 4
    assert place(spec(max_concurrent=4), cluster).cpus == 2
    assert place(spec(max_concurrent=3), cluster).cpus == 2  # whole CPUs: threads are whole
    assert place(spec(), cluster).cpus == 1  # as many trials as CPUs
    assert place(spec(trials=1), cluster).cpus == 8  # a baseline gets every core
    assert place(spec(trials=2), [{"CPU": 2.0}]).cpus == 1


def test_no_share_exceeds_one_node_and_start_points_get_a_whole_node():
    two_nodes = [{"CPU": 4.0}, {"CPU": 2.0}]
    assert place(spec(max_concurrent=1), two_nodes).cpus == 4  # not 6: a trial runs on one node
    assert place(spec(max_concurrent=2), two_nodes).cpus == 3
    assert place(spec(max_concurrent=2), two_nodes).start_cpus == 4
    assert place(spec(), [{"CPU": 2.0}]).start_cpus == 2


def test_trials_ask_ray_for_their_share_and_start_points_for_theirs():
    placement = place(spec(max_concurrent=4), [{"CPU": 8.0, "GPU": 2.0}])
    assert trial_cpus(trial_resources({"start_point": False}, placement=placement)) == 2
    assert trial_cpus(trial_resources({"start_point": True}, placement=placement)) == 8
    assert trial_cpus(None) is None  # a trial Ray has not placed yet


def test_fixed_values_are_checked_against_the_cluster():
    fixed = spec().model_copy(
        update={"resources": spec().resources.model_copy(update={"cpus_per_trial": 3.0})}
    )
    assert place(fixed, [{"CPU": 8.0}]).cpus == place(fixed, [{"CPU": 8.0}]).start_cpus == 3
    with pytest.raises(ArgumentError, match="its largest has 2 CPUs"):
        place(fixed, [{"CPU": 2.0}, {"CPU": 2.0}])


def test_auto_on_a_real_eight_cpu_ray_cluster():
    """Ray's own node list (8 fake CPUs) through the same code path as a search."""
    code = """
import json, ray
from harness import SearchSpec
from harness._resources import place
from harness._search import _init_ray
ray.init(num_cpus=8, include_dashboard=False, log_to_driver=False)
out = {}
for concurrent in (1, 2, 4):
    spec = SearchSpec.model_validate({"study": "s", "dataset": {"name": "digits"},
                                      "search": {"trials": 10, "max_concurrent": concurrent}})
    out[concurrent] = place(spec, _init_ray(None, {})).cpus
print(json.dumps(out))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"1": 8.0, "2": 4.0, "4": 2.0}
