"""`cpus_per_trial: auto`: the cluster's CPUs shared among the trials that run at once."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from harness import ArgumentError, SearchSpec
from harness._search.resources import place, trial_resources
from harness._trial.worker import trial_cpus, trial_gpus


def spec(resources: dict | None = None, **search) -> SearchSpec:
    return SearchSpec.model_validate(
        {
            "study": "s",
            "dataset": {"name": "digits"},
            "search": {"trials": 20, **search},
            "resources": resources or {},
        }
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
    placement = place(spec(max_concurrent=4), [{"CPU": 8.0}])
    assert trial_cpus(trial_resources({"start_point": False}, placement=placement)) == 2
    assert trial_cpus(trial_resources({"start_point": True}, placement=placement)) == 8
    assert trial_cpus(None) is None  # a trial Ray has not placed yet


def test_the_run_s_first_trials_get_a_whole_node_when_asked():
    placement = place(spec({"whole_node_trials": 3}, max_concurrent=4), [{"CPU": 8.0}])
    cpus = [trial_cpus(trial_resources({"trial_number": n}, placement=placement)) for n in range(5)]
    assert cpus == [8, 8, 8, 2, 2]  # one after another on every core, then the shares
    default = place(spec(max_concurrent=4), [{"CPU": 8.0}])
    assert trial_cpus(trial_resources({"trial_number": 0}, placement=default)) == 2  # off by default


def test_whole_node_trials_with_a_fixed_cpu_share_is_a_spec_error():
    with pytest.raises(ValueError, match="whole_node_trials applies to cpus_per_trial: auto only"):
        spec({"cpus_per_trial": 1, "whole_node_trials": 2})
    assert spec({"whole_node_trials": 0}).spec_hash() != spec().spec_hash()  # asked for: hashed
    assert spec({"whole_node_trials": None}).spec_hash() == spec().spec_hash()  # left out: the old hash


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
from harness._search.resources import place
from harness._search.cluster import init_ray
from rich.console import Console
ray.init(num_cpus=8, include_dashboard=False, log_to_driver=False)
out = {}
for concurrent in (1, 2, 4):
    spec = SearchSpec.model_validate({"study": "s", "dataset": {"name": "digits"},
                                      "search": {"trials": 10, "max_concurrent": concurrent}})
    out[concurrent] = place(spec, init_ray(None, {}, Console())).cpus
print(json.dumps(out))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"1": 8.0, "2": 4.0, "4": 2.0}


@pytest.mark.parametrize(
    ("gpus", "concurrent", "trials", "share"),
    [
        (1, None, 20, 1.0),  # without max_concurrent: one trial per GPU
        (1, 1, 20, 1.0),
        (1, 2, 20, 0.5),
        (1, 3, 20, 1 / 3),
        (1, 8, 20, 0.125),
        (1, 8, 2, 0.5),  # never more at once than there are trials
        (2, None, 20, 1.0),
        (2, 2, 20, 1.0),  # they fit: one per GPU
        (2, 3, 20, 0.5),
        (2, 4, 20, 0.5),
        (2, 8, 20, 0.25),
    ],
)
def test_auto_gpus_are_the_largest_share_that_fits_the_trials_at_once(gpus, concurrent, trials, share):
    placement = place(spec(max_concurrent=concurrent, trials=trials), [{"CPU": 16.0, "GPU": float(gpus)}])
    assert placement.gpus == pytest.approx(share)
    slots = round(gpus / placement.gpus)
    at_once = min(concurrent or slots, trials, slots)
    assert slots >= min(concurrent or gpus, trials) and placement.cpus == 16 // at_once
    assert placement.start_cpus == placement.cpus  # GPU start points keep their share


def test_auto_gpus_on_a_cluster_without_gpus_is_zero_and_refuses_mixed_precision():
    assert place(spec(), [{"CPU": 4.0}]).gpus == 0
    mixed = SearchSpec.model_validate(
        {"study": "s", "dataset": {"name": "digits"}, "space": {"precision": "mixed_bfloat16"}}
    )
    with pytest.raises(
        ArgumentError, match="found no GPU on the Ray cluster, and space.precision mixed_bfloat16"
    ):
        place(mixed, [{"CPU": 4.0}])


def test_auto_gpus_across_nodes_give_each_trial_a_share_of_one_card():
    nodes = [{"CPU": 8.0, "GPU": 1.0}, {"CPU": 8.0, "GPU": 1.0}]
    assert place(spec(max_concurrent=4), nodes).gpus == 0.5
    assert (
        trial_gpus(trial_resources({"start_point": True}, placement=place(spec(max_concurrent=4), nodes)))
        == 0.5
    )
    assert trial_gpus(trial_resources({}, placement=place(spec(), [{"CPU": 2.0}]))) == 0


def test_workers_are_shared_within_a_block_of_trial_numbers_and_retired_after_it():
    """Ray reuses a worker only for equal requests; TensorFlow leaks per model, so blocks differ."""
    from harness._search.resources import WORKER_GENERATION

    placement = place(spec(max_concurrent=2), [{"CPU": 2.0}])
    numbers = (0, WORKER_GENERATION - 1)
    first, last = (trial_resources({"trial_number": n}, placement=placement) for n in numbers)
    later = trial_resources({"trial_number": WORKER_GENERATION}, placement=placement)
    assert first.required_resources == last.required_resources != later.required_resources
    assert trial_cpus(later) == trial_cpus(first) == 1 and later.required_resources["memory"] < 1e3  # a token


@pytest.mark.slow
def test_a_search_retires_its_workers_after_each_block_of_trial_numbers(
    tmp_path, local_ray, write_spec, monkeypatch
):
    """TensorFlow's fit leaks per new model, so no worker may serve a long search to its end."""
    import harness._search.resources
    from harness import load_spec, run_search

    monkeypatch.setattr(harness._search.resources, "WORKER_GENERATION", 2)  # read on the driver, per trial
    path = write_spec(search={"trials": 4, "max_epochs": 1, "seed": 0, "max_concurrent": 1,
                              "scheduler": {"name": "none"}})  # fmt: skip
    frame = run_search(load_spec(path), results_dir=tmp_path)
    assert len(frame) == 4
    worker = {}  # trial number -> the pid of the worker that ran it
    for result_file in tmp_path.glob("runs/t/run-*/*/result.json"):
        result = json.loads(result_file.read_text().splitlines()[-1])
        worker[result["config"]["trial_number"]] = result["pid"]
    assert sorted(worker) == [0, 1, 2, 3]
    assert worker[0] == worker[1] != worker[2] == worker[3]  # reused within a block, not across
