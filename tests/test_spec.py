"""harness._spec.spec: YAML search spaces loaded from real files, validated into SearchSpec."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness._errors import ArgumentError, SpecError
from harness._spec.space import CategoricalDist, FloatDist, IntDist
from harness._spec.spec import SearchSpec, load_spec

# The original contract's example spec ("Search space YAML"), verbatim.
DESIGN_EXAMPLE = """\
study: fashion_mnist_cnn              # results go under this name
dataset:
  name: fashion_mnist                 # digits | mnist | fashion_mnist | cifar10 | image_folder
  path: null                          # image_folder: PATH/train/<class>/*, PATH/test/<class>/*
  classes: null                       # optional subset by class name
  image_size: null                    # [h, w] resize (image folders; optional elsewhere)
  validation_split: 0.1               # stratified, seeded, carved from train
  limit_train: null                   # optional subsample size for quick runs
objective: {metric: val_accuracy, mode: max}
search:
  trials: 40
  max_epochs: 20
  sampler: tpe                        # tpe | random (more may be added)
  seed: 0
  scheduler: {name: asha, grace_period: 2, reduction_factor: 3}   # or {name: none}
  max_concurrent: null                # default: as many as resources allow
  time_budget_s: null                 # optional wall-clock budget for the whole search
training:
  early_stopping: {monitor: val_loss, patience: 3, restore_best_weights: true}
resources: {cpus_per_trial: 1, gpus_per_trial: 0}     # fractional GPUs allowed
space:                                # each entry: a distribution, or a plain value (fixed)
  conv_blocks: {type: int, low: 1, high: 3}
  filters: {type: categorical, choices: [16, 32, 64, 128], per_block: true}
  kernel_size: {type: categorical, choices: [3, 5], per_block: true}
  convs_per_block: 1
  batch_norm: {type: categorical, choices: [false, true]}
  dropout: {type: float, low: 0.0, high: 0.5, step: 0.05}
  dense_units: {type: categorical, choices: [64, 128, 256]}
  optimizer: {type: categorical, choices: [adam, sgd, rmsprop]}
  learning_rate: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
  batch_size: {type: categorical, choices: [64, 128, 256]}
"""


def example() -> dict[str, Any]:
    return yaml.safe_load(DESIGN_EXAMPLE)


def write(tmp_path: Path, data: dict[str, Any] | str, name: str = "space.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


# --------------------------------------------------------------------------- valid specs


def test_design_example_loads(tmp_path):
    spec = load_spec(write(tmp_path, DESIGN_EXAMPLE))

    assert isinstance(spec, SearchSpec)
    assert spec.study == "fashion_mnist_cnn"
    assert spec.dataset.name == "fashion_mnist"
    assert spec.dataset.validation_split == 0.1
    assert spec.dataset.label == "fashion_mnist"
    assert (spec.objective.metric, spec.objective.mode) == ("val_accuracy", "max")
    assert (spec.search.trials, spec.search.max_epochs, spec.search.sampler) == (40, 20, "tpe")
    assert spec.search.scheduler.name == "asha"
    assert spec.search.scheduler.grace_period == 2
    assert spec.search.scheduler.reduction_factor == 3
    assert spec.training.early_stopping.patience == 3
    assert spec.resources.cpus_per_trial == 1
    assert spec.resources.gpus_per_trial == 0
    assert set(spec.space) == set(example()["space"])


def test_design_example_space_entries_are_typed(tmp_path):
    space = load_spec(write(tmp_path, DESIGN_EXAMPLE)).space

    assert isinstance(space["conv_blocks"], IntDist)
    assert (space["conv_blocks"].low, space["conv_blocks"].high) == (1, 3)
    assert not space["conv_blocks"].per_block

    filters = space["filters"]
    assert isinstance(filters, CategoricalDist) and filters.per_block
    assert filters.choices == [16, 32, 64, 128]
    assert all(type(c) is int for c in filters.choices)

    batch_norm = space["batch_norm"]
    assert isinstance(batch_norm, CategoricalDist) and not batch_norm.per_block
    assert batch_norm.choices == [False, True]
    assert all(type(c) is bool for c in batch_norm.choices)

    assert space["convs_per_block"] == 1  # a plain value is fixed

    dropout = space["dropout"]
    assert isinstance(dropout, FloatDist)
    assert (dropout.low, dropout.high, dropout.step, dropout.log) == (0.0, 0.5, 0.05, False)

    lr = space["learning_rate"]
    assert isinstance(lr, FloatDist)
    assert (lr.low, lr.high, lr.step, lr.log) == (1e-4, 1e-2, None, True)

    assert space["optimizer"].choices == ["adam", "sgd", "rmsprop"]


def test_fixed_values_and_distribution_options(tmp_path):
    data = example()
    data["space"] = {
        "conv_blocks": 3,
        "filters": [16, 32, 64],  # fixed per-block list
        "kernel_size": {"type": "int", "low": 3, "high": 7, "step": 2, "per_block": True},
        "padding": "valid",
        "batch_norm": True,
        "pool_size": [2, 2, 1],
        "dropout": {"type": "float", "low": 0.1, "high": 0.4, "per_block": True},
        "activation": "gelu",
        "dense_units": {"type": "int", "low": 32, "high": 256, "step": 32},
        "dense_dropout": 0.5,
        "optimizer": "sgd",
        "learning_rate": 0.01,
        "batch_size": {"type": "int", "low": 16, "high": 256, "log": True},
    }
    space = load_spec(write(tmp_path, data)).space

    assert space["conv_blocks"] == 3
    assert space["filters"] == [16, 32, 64]
    assert space["pool_size"] == [2, 2, 1]
    assert space["padding"] == "valid"
    assert space["batch_norm"] is True
    assert space["activation"] == "gelu"
    assert space["optimizer"] == "sgd"
    assert space["learning_rate"] == 0.01
    assert space["dense_dropout"] == 0.5

    ks = space["kernel_size"]
    assert isinstance(ks, IntDist) and ks.per_block and (ks.low, ks.high, ks.step) == (3, 7, 2)
    assert isinstance(space["dropout"], FloatDist) and space["dropout"].per_block
    du = space["dense_units"]
    assert isinstance(du, IntDist) and not du.per_block and du.step == 32 and not du.log
    bs = space["batch_size"]
    assert isinstance(bs, IntDist) and bs.log and bs.step == 1


def test_minimal_spec_gets_defaults(tmp_path):
    spec = load_spec(write(tmp_path, {"study": "tiny", "dataset": {"name": "digits"}}))

    assert spec.space == {}
    assert spec.search.trials >= 1 and spec.search.max_epochs >= 1
    assert spec.search.sampler in ("tpe", "random")
    assert spec.dataset.validation_split == 0.1
    assert spec.dataset.classes is None


def test_class_subset_label(tmp_path):
    data = {"study": "s", "dataset": {"name": "cifar10", "classes": ["airplane", "bird"]}}
    spec = load_spec(write(tmp_path, data))
    assert spec.dataset.classes == ["airplane", "bird"]
    assert spec.dataset.label == "cifar10[airplane,bird]"


# --------------------------------------------------------------------------- invalid specs


def _set(path: str, value: Any):
    """An edit of the DESIGN example: set a dotted path (creating mappings)."""

    def edit(data: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value

    return edit


# id: (edit, field(s) the message must name, what the message must say about the problem)
BAD = {
    "unknown_top_level_key": (_set("bogus", 1), ["bogus"], r"unknown field"),
    "unknown_space_parameter": (_set("space.filterz", 16), ["filterz"], r"unknown parameter"),
    "wrong_type": (_set("search.trials", "abc"), ["search.trials"], r"integer"),
    "low_above_high": (
        _set("space.dropout", {"type": "float", "low": 0.5, "high": 0.1}),
        ["dropout"],
        r"low must be <= high",
    ),
    "int_low_above_high": (
        _set("space.conv_blocks", {"type": "int", "low": 3, "high": 1}),
        ["conv_blocks"],
        r"low must be <= high",
    ),
    "empty_choices": (
        _set("space.filters", {"type": "categorical", "choices": []}),
        ["filters"],
        r"at least 1",
    ),
    "log_with_low_zero": (
        _set("space.learning_rate", {"type": "float", "low": 0.0, "high": 0.1, "log": True}),
        ["learning_rate"],
        r"low > 0",
    ),
    "log_and_step": (
        _set(
            "space.learning_rate",
            {"type": "float", "low": 1e-3, "high": 1e-1, "log": True, "step": 1e-3},
        ),
        ["learning_rate"],
        r"log.*step",
    ),
    "choice_of_wrong_type": (
        _set("space.filters", {"type": "categorical", "choices": ["a"], "per_block": True}),
        ["filters"],
        r"integer.*'a'",
    ),
    "per_block_on_global_parameter": (
        _set(
            "space.optimizer",
            {"type": "categorical", "choices": ["adam", "sgd"], "per_block": True},
        ),
        ["optimizer"],
        r"per_block",
    ),
    "unknown_dataset": (_set("dataset.name", "imagenet"), ["dataset.name"], r"mnist.*imagenet"),
    "per_block_list_shorter_than_blocks": (
        _set("space.kernel_size", [3, 5]),  # conv_blocks goes up to 3
        ["kernel_size"],
        r"\b2\b.*\b3\b",
    ),
    "unknown_optimizer": (_set("space.optimizer", "adamx"), ["optimizer"], r"adamw.*adamx"),
    "conv_blocks_above_max": (
        _set("space.conv_blocks", {"type": "int", "low": 1, "high": 9}),
        ["conv_blocks"],
        r"<= 8",
    ),
    "per_block_list_longer_than_blocks": (
        _set("space.kernel_size", [3, 5, 7, 9]),  # conv_blocks goes up to 3: the 4th is never used
        ["kernel_size", "conv_blocks"],
        r"lists 4 per-block values but conv_blocks is at most 3",
    ),
    "seed_negative": (_set("search.seed", -1), ["search.seed"], r"greater than or equal to 0 \(got -1\)"),
    "seed_above_32_bits": (
        _set("search.seed", 2**32),
        ["search.seed"],
        r"less than or equal to 4294967295 \(got 4294967296\)",
    ),
    "nan_float_field": (
        _set("dataset.validation_split", float("nan")),
        ["dataset.validation_split"],
        r"finite number \(got nan\)",
    ),
    "inf_time_budget": (_set("search.time_budget_s", float("inf")), ["search.time_budget_s"], r"finite.*inf"),
    "nan_distribution_bound": (
        _set("space.learning_rate", {"type": "float", "low": float("nan"), "high": 0.1}),
        ["learning_rate", "low"],
        r"finite number; got nan",
    ),
    "nan_constraint": (
        _set("constraints", {"params": {"max": float("nan")}}),
        ["constraints.params.max"],
        r"finite number \(got nan\)",
    ),
    "nan_fixed_value": (_set("space.dropout", float("nan")), ["dropout"], r"finite number; got nan"),
    "nan_choice": (
        _set("space.dropout", {"type": "categorical", "choices": [0.1, float("nan")]}),
        ["dropout"],
        r"each choice must be a finite number; got nan",
    ),
    "filters_beyond_memory": (_set("space.filters", 10**9), ["filters"], r"<= 16384; got 1000000000"),
    "dense_units_beyond_memory": (
        _set("space.dense_units", 10**8),
        ["dense_units"],
        r"<= 65536; got 100000000",
    ),
    "image_size_beyond_memory": (
        _set("dataset.image_size", [100000, 100000]),
        ["dataset.image_size"],
        r"each from 1 to 4096; got \[100000, 100000\]",
    ),
    "path_on_a_built_in_dataset": (
        _set("dataset.path", "my_fashion"),
        ["dataset.path"],
        r"only for image_folder and arrays; got path 'my_fashion'.*--data-dir / HARNESS_DATA_DIR",
    ),
}


def _load_bad(tmp_path: Path, case: str) -> tuple[Path, str]:
    edit = BAD[case][0]
    data = copy.deepcopy(example())
    edit(data)
    path = write(tmp_path, data)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    return path, str(info.value)


@pytest.mark.parametrize("case", list(BAD))
def test_bad_spec_raises_spec_error_naming_file_and_problem(tmp_path, case):
    path, message = _load_bad(tmp_path, case)
    assert message.startswith(str(path)), message
    assert re.search(BAD[case][2], message), message


@pytest.mark.parametrize("case", list(BAD))
def test_bad_spec_message_names_the_field(tmp_path, case):
    path, message = _load_bad(tmp_path, case)
    rest = message.replace(str(path), "")  # tmp_path contains the test's name
    for field in BAD[case][1]:
        assert field in rest, message


@pytest.mark.parametrize(
    ("text", "key", "line", "first"),
    [
        ("study: s\ndataset: {name: digits}\nspace: {conv_blocks: 1}\nspace: {filters: 8}\n", "space", 4, 3),
        ("study: s\ndataset:\n  name: digits\n  validation_split: 0.2\n  validation_split: 0.3\n",
         "validation_split", 5, 4),
        ("study: s\ndataset: {name: digits}\nspace:\n  filters: {type: categorical, choices: [8],\n"
         "            choices: [16]}\n", "choices", 5, 4),
    ],
)  # fmt: skip
def test_a_key_given_twice_is_refused_naming_file_key_and_line(tmp_path, text, key, line, first):
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value) == (
        f"{path}: line {line}: key {key!r} is given twice in one mapping (first on line {first}); "
        "YAML would keep only the last. Keep one."
    )


def test_a_yaml_merge_may_still_override_merged_keys(tmp_path):
    """`<<: *base` then a key of its own is ordinary YAML, not a key given twice."""
    path = write(tmp_path, "study: s\ndataset: {name: digits}\nsearch: {<<: {trials: 2}, trials: 3}\n")
    assert load_spec(path).search.trials == 3


def test_missing_file_raises_spec_error(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(SpecError, match=re.escape(str(path))):
        load_spec(path)


def test_invalid_yaml_raises_spec_error(tmp_path):
    path = write(tmp_path, "study: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML") as info:
        load_spec(path)
    assert str(path) in str(info.value)


def test_top_level_not_a_mapping_raises_spec_error(tmp_path):
    path = write(tmp_path, "- just\n- a list\n")
    with pytest.raises(SpecError, match=re.escape(str(path))):
        load_spec(path)


def test_missing_required_field_is_named(tmp_path):
    path = write(tmp_path, {"study": "s", "space": {}})
    with pytest.raises(SpecError, match=r"dataset: Field required"):
        load_spec(path)


# --------------------------------------------------------------------------- overrides, hash


def test_with_overrides_returns_validated_copy(tmp_path):
    spec = load_spec(write(tmp_path, DESIGN_EXAMPLE))
    small = spec.with_overrides(**{"search.trials": 3, "search.max_epochs": 2, "search.seed": None})

    assert isinstance(small, SearchSpec)
    assert (small.search.trials, small.search.max_epochs) == (3, 2)
    assert small.search.seed == spec.search.seed  # None means "not given"
    assert (spec.search.trials, spec.search.max_epochs) == (40, 20)  # original untouched
    assert small.space == spec.space
    assert small.dataset == spec.dataset
    assert isinstance(small.space["conv_blocks"], IntDist)  # re-validated, not raw dicts


def test_with_overrides_can_change_space(tmp_path):
    spec = load_spec(write(tmp_path, DESIGN_EXAMPLE))
    fixed = spec.with_overrides(**{"space.conv_blocks": 2})
    assert fixed.space["conv_blocks"] == 2
    assert isinstance(fixed.space["filters"], CategoricalDist)


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"search.trials": 0}, "search.trials"),
        ({"search.trials": "many"}, "search.trials"),
        ({"search.trialz": 3}, "search.trialz"),
        ({"resources.gpus_per_trial": -1}, "resources.gpus_per_trial"),
        ({"space.conv_blocks": 9}, "space"),
    ],
)
def test_bad_override_raises_spec_error(tmp_path, override, field):
    spec = load_spec(write(tmp_path, DESIGN_EXAMPLE))
    with pytest.raises(SpecError) as info:
        spec.with_overrides(**override)
    assert field in str(info.value)


@pytest.mark.parametrize("value", ["abc", "-1", "nan", "inf"])
def test_a_bad_per_trial_override_names_the_flag_and_what_is_allowed(tmp_path, value):
    from harness.cli import _in_cli_words

    spec = load_spec(write(tmp_path, DESIGN_EXAMPLE))
    with pytest.raises(SpecError) as info:
        spec.with_overrides(**{"resources.cpus_per_trial": value})
    assert isinstance(info.value, ArgumentError)
    assert _in_cli_words(info.value) == (
        f"--cpus-per-trial must be a positive number or auto. Received: --cpus-per-trial {value}"
    )


def test_spec_hash_is_stable_across_loads(tmp_path):
    first = load_spec(write(tmp_path, DESIGN_EXAMPLE, "a.yaml"))
    again = load_spec(write(tmp_path, DESIGN_EXAMPLE, "a.yaml"))
    # Same content, other formatting and key order: same validated spec, same hash.
    reordered = example()
    reordered = {k: reordered[k] for k in reversed(list(reordered))}
    other_file = load_spec(write(tmp_path, reordered, "b.yaml"))

    assert re.fullmatch(r"[0-9a-f]{12}", first.spec_hash())
    assert first.spec_hash() == again.spec_hash() == other_file.spec_hash()
    assert first.with_overrides(**{"search.trials": 40}).spec_hash() == first.spec_hash()


@pytest.mark.parametrize(
    "edit",
    [
        _set("search.trials", 41),
        _set("dataset.validation_split", 0.2),
        _set("space.filters.choices", [16, 32, 64]),
        _set("space.learning_rate.log", False),
        _set("study", "other"),
    ],
)
def test_spec_hash_changes_with_a_field(tmp_path, edit):
    base = load_spec(write(tmp_path, DESIGN_EXAMPLE, "a.yaml"))
    data = example()
    edit(data)
    changed = load_spec(write(tmp_path, data, "b.yaml"))
    assert changed.spec_hash() != base.spec_hash()


def test_review_regressions_give_clear_errors(tmp_path):
    base = {"study": "x", "dataset": {"name": "digits"}}

    def load(data):
        path = tmp_path / "s.yaml"
        path.write_text(yaml.safe_dump(data))
        return load_spec(path)

    with pytest.raises(SpecError, match=r"dataset.classes: each class may be listed once"):
        load({**base, "dataset": {"name": "digits", "classes": ["1", "1"]}})
    with pytest.raises(SpecError, match=r"objective: .*val_loss is only sensible with mode: min"):
        load({**base, "objective": {"metric": "val_loss", "mode": "max"}})
    assert load({**base, "objective": {"metric": "val_loss"}}).objective.mode == "min"
    spec = load(
        {
            **base,
            "space": {"learning_rate": "1e-3", "dropout": {"type": "categorical", "choices": ["0.1", 0.2]}},
        }
    )
    assert spec.space["learning_rate"] == 0.001 and spec.space["dropout"].choices == [0.1, 0.2]
    with pytest.raises(SpecError, match="early_stopping is None, not a mapping"):
        load({**base, "training": {"early_stopping": None}}).with_overrides(
            **{"training.early_stopping.patience": 5}
        )
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("study: caf\xe9\n".encode("latin-1"))
    with pytest.raises(SpecError, match="not UTF-8"):
        load_spec(bad)


# --------------------------------------------------------------------------- issue 8 contract additions


def test_contract_additions_parse(tmp_path):
    base = {"study": "b", "dataset": {"name": "digits"},
            "space": {"conv_blocks": 1, "filters": [16], "learning_rate": 2.0e-3}}  # fmt: skip
    (tmp_path / "baselines").mkdir()
    write(tmp_path, base, "baselines/base.yaml")
    data = {
        "study": "s", "dataset": {"name": "digits"},
        "search": {"sampler": "qmc", "scheduler": {"name": "hyperband"}, "warm_start": ["earlier"],
                   "start_from": [{"conv_blocks": 2, "filters": [16, 32]}, "baselines/base.yaml"]},
        "resources": {"cpus_per_trial": "auto"},
        "space": {"conv_blocks": {"type": "int", "low": 1, "high": 2},
                  "filters": {"type": "categorical", "choices": [16, 32], "per_block": True},
                  "learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}},
    }  # fmt: skip
    spec = load_spec(write(tmp_path, data))
    assert spec.search.start_from[1] == {"conv_blocks": 1, "filters": [16], "learning_rate": 2.0e-3}
    assert spec.resources.cpus_per_trial == "auto" and spec.search.warm_start == ["earlier"]
    assert (
        SearchSpec.model_validate({"study": "x", "dataset": {"name": "digits"}}).resources.cpus_per_trial
        == "auto"
    )
    # the resolved spec (as saved with results) validates again without the baseline file
    assert spec.with_overrides(**{"search.trials": 3}).search.start_from == spec.search.start_from


@pytest.mark.parametrize(
    ("start", "message"),
    [
        ({"filters": 64}, "search.start_from[0]: filters: 64 is outside the space (choices [16, 32])"),
        ({"filters": [16]}, "filters: the space samples one value for all blocks; got a list [16]"),
        ("missing.yaml", "missing.yaml: no such file"),
        ("search.yaml", "not a fixed spec"),
        (7, "must be a mapping of parameter values or a spec file path"),
    ],
)
def test_bad_start_points_are_spec_errors(tmp_path, start, message):
    sampled = {"conv_blocks": {"type": "int", "low": 1, "high": 2}}
    write(tmp_path, {"study": "o", "dataset": {"name": "digits"}, "space": sampled}, "search.yaml")
    data = {"study": "s", "dataset": {"name": "digits"}, "search": {"start_from": [start]},
            "space": {"conv_blocks": 1, "filters": {"type": "categorical", "choices": [16, 32]}}}  # fmt: skip
    with pytest.raises(SpecError, match=re.escape(message)):
        load_spec(write(tmp_path, data))


def test_a_start_point_outside_the_space_exits_2_before_anything_runs(tmp_path, cli):
    search = {"start_from": [{"learning_rate": 0.5}]}
    space = {"learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}}
    data = {"study": "s", "dataset": {"name": "digits"}, "search": search, "space": space}
    out = cli("search", str(write(tmp_path, data)), "--results", str(tmp_path / "r"))
    assert (
        out.returncode == 2 and "search.start_from[0]: learning_rate: 0.5 is outside the space" in out.stderr
    )
    assert not (tmp_path / "r").exists()


def spec_of(**extra: Any) -> SearchSpec:
    from harness._spec.spec import _validate

    return _validate({"study": "s", "dataset": {"name": "digits"}, **extra}, "s.yaml")


def test_several_objectives_make_a_multi_objective_search_without_asha():
    spec = spec_of(objective=[{"metric": "val_accuracy"}, {"metric": "params"}])
    assert spec.multi_objective and [o.direction for o in spec.objectives] == ["max", "min"]
    assert spec.search.scheduler.name == "none" and spec.search.keep_models is None  # defaults fit a front
    assert not spec_of().multi_objective and spec_of().objectives[0].metric == "val_accuracy"
    kept = spec_of(objective=[{"metric": "val_accuracy"}, {"metric": "params"}], search={"keep_models": 3})
    assert kept.search.keep_models == 3  # what the user wrote stays


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"search": {"scheduler": {"name": "asha"}}},
         "search.scheduler: asha stops trials on one metric, and objective lists 2 (val_accuracy, params)"),
        ({"search": {"sampler": "cmaes"}}, "search.sampler: cmaes optimises one objective"),
    ],
)  # fmt: skip
def test_a_multi_objective_search_refuses_what_takes_one_metric(extra, message):
    with pytest.raises(SpecError, match=re.escape(message)):
        spec_of(objective=[{"metric": "val_accuracy"}, {"metric": "params"}], **extra)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"objective": [{"metric": "params"}, {"metric": "params"}]}, "objective lists a metric twice"),
        ({"objective": [{"metric": "test_accuracy"}]}, "objective.0.metric: Input should be 'val_accuracy'"),
        ({"constraints": {"params": {}}}, "constraints.params: give min, max or both"),
        ({"constraints": {"params": {"min": 5, "max": 1}}}, "min must be <= max"),
        ({"constraints": {"test_loss": {"max": 1}}}, "constraints.test_loss.[key]: Input should be"),
        (
            {"space": {"precision": "mixed_bfloat16"}, "resources": {"gpus_per_trial": 0}},
            "space.precision: mixed_bfloat16 is for GPU trials only",
        ),
    ],
)
def test_bad_objectives_constraints_and_precision_are_spec_errors(extra, message):
    with pytest.raises(SpecError, match=re.escape(message)):
        spec_of(**extra)


def test_constraints_and_gpu_mixed_precision_are_accepted():
    precision = {"type": "categorical", "choices": ["float32", "mixed_float16"]}
    spec = spec_of(
        constraints={"params": {"max": 100000}},
        resources={"gpus_per_trial": 0.5},
        space={"precision": precision},
    )
    assert spec.limits["params"].max == 100000
    assert spec_of().spec_hash() != spec.spec_hash()


@pytest.mark.parametrize(
    ("scheduler", "rungs", "fractions"),
    [
        ({}, 2, (1 / 9, 1 / 3)),  # the default: ASHA, grace 1, factor 3
        ({"reduction_factor": 2}, 2, (1 / 4, 1 / 2)),
        ({"first_epoch_rungs": 1}, 1, (1 / 3,)),
        ({"first_epoch_rungs": 0}, 0, ()),
        ({"grace_period": 2}, 0, ()),  # left out: they apply only below a 1-epoch grace
        ({"reduction_factor": 2.5}, 0, ()),
        ({"name": "hyperband"}, 0, ()),
        ({"name": "none"}, 0, ()),
    ],
)
def test_the_first_epoch_holds_rungs_where_asha_can_use_them(scheduler, rungs, fractions):
    sched = spec_of(search={"scheduler": scheduler}).search.scheduler
    assert sched.sub_epoch_rungs == rungs
    assert sched.first_epoch_fractions() == pytest.approx(fractions)
    assert sched.units_per_epoch == round(1 / fractions[0]) if fractions else sched.units_per_epoch == 1


@pytest.mark.parametrize(
    ("scheduler", "message"),
    [
        ({"name": "hyperband", "first_epoch_rungs": 2}, "only the asha scheduler compares trials inside"),
        ({"grace_period": 3, "first_epoch_rungs": 1}, "needs grace_period 1 (the first rungs sit inside it)"),
        ({"reduction_factor": 2.5, "first_epoch_rungs": 1}, "needs a whole reduction_factor"),
        ({"first_epoch_rungs": 5}, "first_epoch_rungs: Input should be less than or equal to 4"),
    ],
)  # fmt: skip
def test_first_epoch_rungs_asked_where_they_cannot_apply_are_spec_errors(scheduler, message):
    with pytest.raises(SpecError, match=re.escape(message)):
        spec_of(search={"scheduler": scheduler})


def test_a_spec_that_leaves_first_epoch_rungs_out_keeps_its_hash():
    assert spec_of().spec_hash() == spec_of(search={"scheduler": {"name": "asha"}}).spec_hash()
    assert spec_of().spec_hash() != spec_of(search={"scheduler": {"first_epoch_rungs": 0}}).spec_hash()


def test_start_points_are_compared_at_asha_s_rungs_only_when_asked_and_only_by_asha():
    assert not spec_of().search.scheduler.seeded  # the default, until measured
    assert spec_of(search={"scheduler": {"compare_with_start_points": True}}).search.scheduler.seeded
    with pytest.raises(SpecError, match="compare_with_start_points: only the asha scheduler records"):
        spec_of(search={"scheduler": {"name": "hyperband", "compare_with_start_points": True}})
    unset = spec_of(search={"scheduler": {"compare_with_start_points": None}})
    assert unset.spec_hash() == spec_of().spec_hash()  # specs that leave it out keep their hash


def test_the_first_report_limit_is_a_tenth_of_the_time_budget_unless_set_and_zero_means_none():
    assert spec_of().search.first_report_limit_s is None  # no budget, no limit
    assert spec_of(search={"time_budget_s": 600}).search.first_report_limit_s == 60
    assert spec_of(search={"time_budget_s": 100}).search.first_report_limit_s == 30  # compiling takes time
    assert spec_of(search={"time_budget_s": 600, "first_report_s": 0}).search.first_report_limit_s is None
    assert spec_of(search={"first_report_s": 60}).search.first_report_limit_s == 60
    with pytest.raises(SpecError, match="first_report_s"):
        spec_of(search={"first_report_s": -1})
