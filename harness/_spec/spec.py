"""The search spec: one validated, typed object per YAML file (the docs' spec reference is generated
from these models: docs/reference/spec.md)."""

from __future__ import annotations

import enum
import functools
import hashlib
import json
import operator
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from harness._errors import ArgumentError, SpecError
from harness._names import MAX_NAME, NAME_PATTERN
from harness._spec.points import point_params, probe_point
from harness._spec.space import CategoricalDist, FloatDist, IntDist, validate_space
from harness._storage import Location, Results, write_text

DatasetName = Literal["digits", "mnist", "fashion_mnist", "cifar10", "image_folder", "arrays"]
DATASETS: tuple[str, ...] = get_args(DatasetName)
MODEL_PATTERN = r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.<>]*$"
"""`module:function` (or `module:Class`, a HyperModel; `<locals>` for functions defined inside others)."""
OWN_DATA = ("image_folder", "arrays")
"""Datasets a spec names by `dataset.path`: a folder of images, an `.npz` file of arrays."""


_ONE, _MANY = "(one objective)", "(objectives)"
"""Tags of `objective`'s two forms; left out of error locations."""
MIXED_ON_CPUS = (
    "is for GPU trials only (on CPUs bfloat16 trained slower than float32: docs/benchmarks.md, "
    '"Mixed precision on CPU")'
)


MAX_IMAGE_SIDE = 4096
"""Most pixels per side of `dataset.image_size`: datasets are held in memory, and 1,000 RGB
images of 4096x4096 are already 50 GB; common vision inputs are at most 1024 per side."""
MAX_SEED = 2**32 - 1
"""NumPy's and scikit-learn's seeds are unsigned 32-bit integers."""


class Direction(enum.StrEnum):
    """Which way an objective improves: the one place "max" and "min" are told apart."""

    MAX = "max"
    MIN = "min"

    @classmethod
    def of(cls, mode: object) -> Direction:
        """A row's `objective_mode` (rows written before it existed maximise)."""
        return cls.MIN if str(mode) == "min" else cls.MAX

    def better(self, value: float, than: float) -> bool:
        return value > than if self is Direction.MAX else value < than

    def badness(self, value: float) -> float:
        """The value as "smaller is better"."""
        return -value if self is Direction.MAX else value


class _Strict(BaseModel):
    # NaN or infinity is never a meaningful setting (null means "no limit"); refused, not guessed.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DatasetSpec(_Strict):
    name: DatasetName = Field(description="A built-in dataset, `image_folder` or `arrays` (your own data).")
    path: str | None = Field(
        None, description="`image_folder`: a folder or tarball; `arrays`: an `.npz` file. Own data only."
    )
    classes: list[str] | None = Field(
        None, min_length=2, description="Keep these classes only, by name (relabelled in label order)."
    )
    image_size: tuple[int, int] | None = Field(
        None,
        description="`[height, width]` images are resized to (image folders; default: the first image's).",
    )
    validation_split: float = Field(
        0.1,
        gt=0.0,
        lt=1.0,
        description="Share of the training pool held out for model selection, stratified.",
    )
    limit_train: int | None = Field(
        None, ge=10, description="Subsample the training pool to this many images (stratified) first."
    )
    test_split: float | None = Field(
        None, gt=0.0, lt=1.0,
        description="Data without a test set: the share of training images carved as one (null: 0.2).",
    )  # fmt: skip
    digest: str | None = Field(
        None, pattern=r"^[0-9a-f]{12}$",
        description="Arrays passed from Python: their digest, set by the search (a resume checks it).",
    )  # fmt: skip

    @field_validator("classes")
    @classmethod
    def _distinct(cls, classes: list[str] | None) -> list[str] | None:
        if classes and len(set(classes)) != len(classes):
            twice = sorted({c for c in classes if classes.count(c) > 1})
            raise ValueError(f"each class may be listed once; repeated: {twice}")
        return classes

    @field_validator("image_size")
    @classmethod
    def _positive(cls, size: tuple[int, int] | None) -> tuple[int, int] | None:
        if size is not None and (min(size) < 1 or max(size) > MAX_IMAGE_SIDE):
            raise ValueError(
                f"image_size must be two integers [h, w], each from 1 to {MAX_IMAGE_SIDE}; got {list(size)}"
            )
        return size

    @model_validator(mode="after")
    def _path_for_own_data_only(self) -> DatasetSpec:
        """A built-in dataset is found by name: a path there would be silently ignored."""
        if self.path is not None and self.name not in OWN_DATA:
            raise ValueError(
                f"dataset.path is only for {' and '.join(OWN_DATA)}; got path {self.path!r} with name "
                f"{self.name}. Remove it, and use --data-dir / HARNESS_DATA_DIR for built-in datasets"
            )
        if self.digest is not None and (self.name != "arrays" or self.path is not None):
            raise ValueError(
                "dataset.digest names arrays passed from Python (run_search(spec, data=...) sets it); "
                f"got it with name {self.name} and path {self.path!r}. Remove it"
            )
        return self

    @property
    def label(self) -> str:
        """Dataset name as shown in the leaderboard, with the class subset if any."""
        return f"{self.name}[{','.join(self.classes)}]" if self.classes else self.name


Metric = Literal["val_accuracy", "val_loss", "params", "train_time_s", "steady_epoch_s", "total_time_s"]
"""Record fields a search may optimise or constrain (never test_*: the test set only reports)."""


class Objective(_Strict):
    metric: Metric = Field("val_accuracy", description="What the search optimises (never a test metric).")
    mode: Literal["max", "min"] | None = Field(
        None, description="Null: max for `val_accuracy`, min for the rest (the only sensible ones)."
    )

    @model_validator(mode="after")
    def _direction(self) -> Objective:
        natural = "max" if self.metric == "val_accuracy" else "min"
        if self.mode is None:
            object.__setattr__(self, "mode", natural)
        elif self.mode != natural:
            raise ValueError(f"{self.metric} is only sensible with mode: {natural}; got {self.mode}")
        return self

    @property
    def direction(self) -> Direction:
        """`mode`, always set once validated."""
        return Direction.of(self.mode)

    def __str__(self) -> str:
        return f"{self.metric}:{self.direction}"


class Bound(_Strict):
    """`constraints.<metric>`: a trial outside [min, max] is infeasible."""

    min: float | None = Field(None, description="The least value a feasible trial may have.")
    max: float | None = Field(None, description="The most value a feasible trial may have.")

    @model_validator(mode="after")
    def _some(self) -> Bound:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min must be <= max; got min={self.min}, max={self.max}")
        return self


class Scheduler(_Strict):
    name: Literal["asha", "hyperband", "none"] = Field(
        "asha", description="Who stops trials early: ASHA (asynchronous), Hyperband (synchronous) or none."
    )
    grace_period: int = Field(1, ge=1, description="ASHA: epochs before a trial can be stopped.")
    reduction_factor: float = Field(
        3.0, gt=1.0, description="Rungs are this factor apart; about 1/factor of trials pass each."
    )
    # ASHA only: rungs inside the first epoch, each reduction_factor times shorter than the
    # next (2 at factor 3: trials are compared after 1/9 and 1/3 of an epoch); null = 2 where
    # they apply (ASHA, grace_period 1, a whole reduction_factor), else 0
    first_epoch_rungs: int | None = Field(
        None, ge=0, le=4,
        description="ASHA: rungs inside the first epoch (null: 2 where they apply, at 1/9 and 1/3; 0: none).",
    )  # fmt: skip
    # ASHA only: start points (and the probe) report at its rungs without being stopped, so the
    # first sampled trials are compared with them instead of passing every rung unopposed
    compare_with_start_points: bool | None = Field(
        None, description="ASHA: start points and the probe report at its rungs, never stopped (opt-in)."
    )

    @model_validator(mode="after")
    def _start_points_compared_by_asha_only(self) -> Scheduler:
        if self.compare_with_start_points and self.name != "asha":
            raise ValueError(
                f"compare_with_start_points: only the asha scheduler records start points at its rungs "
                f"(a synchronous scheduler waits for every member of a rung); got {self.name}"
            )
        return self

    @property
    def seeded(self) -> bool:
        """Whether start points' reports count at ASHA's rungs."""
        return bool(self.compare_with_start_points) and self.name == "asha"

    @model_validator(mode="after")
    def _rungs_apply(self) -> Scheduler:
        if not self.first_epoch_rungs:
            return self
        why = _no_first_epoch_rungs(self)
        if why:
            raise ValueError(f"first_epoch_rungs: {why}; leave it out or set it to 0")
        return self

    @property
    def sub_epoch_rungs(self) -> int:
        """How many rungs the first epoch holds (0: a trial's first comparison is after an epoch)."""
        if _no_first_epoch_rungs(self):
            return 0
        return 2 if self.first_epoch_rungs is None else self.first_epoch_rungs

    @property
    def units_per_epoch(self) -> int:
        """The scheduler counts training in these units (an epoch is `units_per_epoch` of them)."""
        return int(int(self.reduction_factor) ** self.sub_epoch_rungs)

    def first_epoch_fractions(self) -> tuple[float, ...]:
        """Where in the first epoch trials report for comparison: 1/9, 1/3 at the defaults."""
        rf = int(self.reduction_factor)
        return tuple(rf**-k for k in range(self.sub_epoch_rungs, 0, -1))


def _no_first_epoch_rungs(sched: Scheduler) -> str | None:
    """Why the first epoch holds no rungs: they are ASHA's, below a 1-epoch grace, in whole factors."""
    if sched.name != "asha":
        return f"only the asha scheduler compares trials inside an epoch; got {sched.name}"
    if sched.grace_period != 1:
        return f"needs grace_period 1 (the first rungs sit inside it); got {sched.grace_period}"
    if sched.reduction_factor != int(sched.reduction_factor):
        return f"needs a whole reduction_factor (rungs at 1/factor^k); got {sched.reduction_factor:g}"
    return None


Sampler = Literal["tpe", "random", "qmc", "gp", "cmaes", "nsga2"]
FIRST_REPORT_FLOOR_S = 30.0
"""The least time a budgeted search's sampled trial gets to its first report, by default."""


class SearchSettings(_Strict):
    trials: int = Field(20, ge=1, description="Trials per run, start points and the probe included.")
    max_epochs: int = Field(10, ge=1, description="Epochs a trial trains at most.")
    sampler: Sampler = Field(
        "tpe", description="Optuna's sampler (`gp` needs torch, `cmaes` the cmaes package)."
    )
    seed: int = Field(
        0, ge=0, le=MAX_SEED, description="Seeds the sampler, the validation split and each trial."
    )
    scheduler: Scheduler = Field(Scheduler(), description="Early stopping of trials across the search.")
    max_concurrent: int | None = Field(None, ge=1, description="Trials at once (null: one per CPU).")
    time_budget_s: float | None = Field(
        None,
        gt=0,
        description="Wall seconds for the run; running trials then wind down, evaluated and saved.",
    )
    keep_models: int | None = Field(5, ge=0, description="Models kept per study, best first (null: all).")
    max_retries: int = Field(
        1, ge=0, description="Restarts of a trial whose worker died, from its last epoch."
    )
    trial_timeout_s: float | None = Field(
        None, gt=0, description="A trial running longer fails (`stop_reason: timeout`); null: no limit."
    )
    # A sampled trial whose first batches say its first report (ASHA's first rung) would come later
    # than this is stopped there (pruned, stop_reason too_slow); null: a tenth of time_budget_s,
    # at least FIRST_REPORT_FLOOR_S (no limit without a budget); 0: no limit
    first_report_s: float | None = Field(
        None, ge=0,
        description="A sampled trial projected to report later is stopped (`too_slow`); null: a tenth of "
        "`time_budget_s`, at least 30 s (no limit without a budget); 0: no limit.",
    )  # fmt: skip
    start_from: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Points (mappings of values, or spec files) trained first, whole-node, never stopped.",
    )
    probe: bool | None = Field(
        None, description="A cold search trains the space's cheapest model first (null: on; false: off)."
    )
    warm_start: list[Annotated[str, Field(pattern=NAME_PATTERN, max_length=MAX_NAME)]] = Field(
        default_factory=list,
        description="Earlier studies in the same results whose rows the sampler learns from.",
    )

    @property
    def first_report_limit_s(self) -> float | None:
        """How long a sampled trial may take to its first report (None: no limit).

        By default a tenth of the time budget: at ASHA's first rung (1/9 of an epoch) that is a
        first epoch taking most of the budget, a trial the search cannot afford to learn about.
        Never under `FIRST_REPORT_FLOOR_S`: compiling a model's first batch alone takes seconds.
        """
        if self.first_report_s is None:
            return max(self.time_budget_s / 10, FIRST_REPORT_FLOOR_S) if self.time_budget_s else None
        return self.first_report_s or None

    @field_validator("start_from", mode="before")
    @classmethod
    def _start_points(cls, raw: Any, info: ValidationInfo) -> list[Any]:
        """Spec files become their fixed space (paths relative to the spec naming them)."""
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise ValueError("start_from must be a list of parameter mappings or spec file paths")
        context = info.context or {}
        points: list[Any] = []
        for i, item in enumerate(raw):
            if isinstance(item, str):
                if context.get("nested"):
                    raise ValueError(f"[{i}] {item}: a start point's spec may not name further spec files")
                points.append(_fixed_space(Path(context.get("base_dir", ".")) / item, i))
            elif isinstance(item, dict):
                points.append(item)
            else:
                raise ValueError(
                    f"[{i}] must be a mapping of parameter values or a spec file path; got {item!r}"
                )
        return points


class EarlyStopping(_Strict):
    monitor: Literal["val_loss", "val_accuracy"] = Field("val_loss", description="The metric watched.")
    patience: int = Field(3, ge=0, description="Epochs without improvement before a trial stops.")
    min_delta: float = Field(0.0, ge=0.0, description="The least change that counts as an improvement.")
    restore_best_weights: bool = Field(True, description="Keep (and evaluate) the best epoch's weights.")


class Training(_Strict):
    early_stopping: EarlyStopping | None = Field(
        EarlyStopping(), description="Keras' EarlyStopping for every trial; null: train `max_epochs`."
    )


class Resources(_Strict):
    cpus_per_trial: Annotated[float, Field(gt=0)] | Literal["auto"] = Field(
        "auto",
        description="`auto`: the cluster's CPUs shared by the trials at once (start points: a whole node).",
    )
    gpus_per_trial: Annotated[float, Field(ge=0)] | Literal["auto"] = Field(
        "auto", description="`auto`: none without GPUs, else 1/k of a GPU so that the concurrent trials fit."
    )
    whole_node_trials: int | None = Field(
        None,
        ge=0,
        description="CPU trials with `cpus_per_trial: auto`: the first this many trials of a run (the "
        "probe and start points included) each get a whole node, one after another, so the first "
        "comparisons come sooner; later trials share the cluster (null: 0).",
    )

    @model_validator(mode="after")
    def _whole_node_needs_auto(self) -> Resources:
        if self.whole_node_trials and self.cpus_per_trial != "auto":
            raise ValueError(
                "resources.whole_node_trials applies to cpus_per_trial: auto only (a fixed share is "
                f"kept by every trial); got cpus_per_trial {self.cpus_per_trial}. Remove one of them"
            )
        return self


ADDED_LATER = (
    ("constraints",),
    ("search", "trial_timeout_s"),
    ("search", "first_report_s"),
    ("search", "probe"),
    ("search", "scheduler", "first_epoch_rungs"),
    ("search", "scheduler", "compare_with_start_points"),
    ("resources", "whole_node_trials"),
    ("dataset", "test_split"),
    ("dataset", "digest"),
    ("model",),
)
"""Spec fields added after the first release, left out of `spec_hash` while unset."""


class SearchSpec(_Strict):
    """A validated search space file: what to search, on which data, how, and with what resources.

    Build one with `load_spec(path)`; it is frozen, and `with_overrides` returns a changed copy.
    """

    study: str = Field(
        pattern=NAME_PATTERN,
        max_length=MAX_NAME,
        description="The study's name: its rows, models and reports.",
    )
    dataset: DatasetSpec = Field(description="The data searched on.")
    objective: Annotated[
        Annotated[Objective, Tag(_ONE)] | Annotated[list[Objective], Field(min_length=1), Tag(_MANY)],
        Discriminator(lambda raw: _MANY if isinstance(raw, list) else _ONE),
    ] = Field(Objective(), description="One objective, or a list: a multi-objective search.")
    constraints: dict[Metric, Bound] = Field(
        default_factory=dict, description="Limits a trial must meet to be feasible, by metric."
    )
    search: SearchSettings = Field(SearchSettings(), description="How the budget is spent.")
    training: Training = Field(Training(), description="How each trial trains.")
    resources: Resources = Field(Resources(), description="What each trial is given.")
    model: str | None = Field(
        None, pattern=MODEL_PATTERN, description="`module:function`: your `build(hp)` instead of `space`."
    )
    space: dict[str, Any] = Field(
        default_factory=dict, description="harness' CNN: each parameter a distribution or a fixed value."
    )

    @field_validator("space", mode="before")
    @classmethod
    def _space(cls, raw: Any) -> dict[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            raise ValueError("space must be a mapping of parameter name to distribution or value")
        return validate_space(raw)

    @property
    def objectives(self) -> list[Objective]:
        """`objective` as a list: one entry, or several for a multi-objective search."""
        return self.objective if isinstance(self.objective, list) else [self.objective]

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @property
    def objectives_column(self) -> str | None:
        """A multi-objective search's objectives as rows record them (`val_accuracy:max,params:min`)."""
        return ",".join(map(str, self.objectives)) if self.multi_objective else None

    @property
    def limits(self) -> dict[str, Bound]:
        """`constraints:` keyed by plain metric name."""
        return {str(metric): bound for metric, bound in self.constraints.items()}

    @model_validator(mode="after")
    def _objectives_fit_the_search(self) -> SearchSpec:
        metrics = [o.metric for o in self.objectives]
        if len(set(metrics)) < len(metrics):
            raise ValueError(f"objective lists a metric twice: {metrics}")
        if not self.multi_objective:
            return self
        sched, given = self.search.scheduler, self.search.model_fields_set
        defaults: dict[str, Any] = {
            "scheduler": Scheduler(name="none"),  # the default ASHA ranks by one metric
            "keep_models": None,  # every front member stays exportable
        }
        update = {key: value for key, value in defaults.items() if key not in given}
        object.__setattr__(self, "search", self.search.model_copy(update=update))
        if "scheduler" in given and sched.name != "none":
            raise ValueError(
                f"search.scheduler: {sched.name} stops trials on one metric, and objective lists "
                f"{len(metrics)} ({', '.join(metrics)}); use scheduler: {{name: none}} for a "
                "multi-objective search, or keep one objective and add constraints"
            )
        if self.search.sampler == "cmaes":
            raise ValueError("search.sampler: cmaes optimises one objective; use tpe, nsga2, random or qmc")
        return self

    @model_validator(mode="after")
    def _mixed_precision_on_gpus_only(self) -> SearchSpec:
        """Offered where it was measured faster: GPUs (benchmarks/README.md, mixed precision)."""
        mixed = self.mixed_precision
        if mixed and self.resources.gpus_per_trial == 0:
            raise ValueError(
                f"space.precision: {mixed} {MIXED_ON_CPUS}; give trials GPUs (resources.gpus_per_trial)"
            )
        return self

    @property
    def mixed_precision(self) -> str | None:
        """The first mixed-precision policy the space may sample, if any."""
        entry = self.space.get("precision")
        values = entry.choices if isinstance(entry, CategoricalDist) else [entry]
        return next((v for v in values if isinstance(v, str) and v.startswith("mixed")), None)

    @model_validator(mode="after")
    def _model_or_space(self) -> SearchSpec:
        """A model function declares its own hyperparameters: `space:` is harness' CNN's."""
        if self.model is not None and self.space:
            raise ValueError(
                f"model: {self.model} declares its own hyperparameters (hp.Int, hp.Choice, ...); space: "
                "is the vocabulary of harness' CNN. Remove space:, or model: to search the CNN"
            )
        return self

    @model_validator(mode="after")
    def _start_points_inside_space(self) -> SearchSpec:
        if self.model is not None:  # a model function's space is known as its build runs: Optuna checks
            return self
        for i, point in enumerate(self.search.start_from):
            try:
                point_params(self.space, point)
            except ValueError as exc:
                raise ValueError(f"search.start_from[{i}]: {exc}") from None
        return self

    @property
    def first_points(self) -> list[dict[str, Any]]:
        """What runs first, on a whole node and never pruned: `search.start_from`, or for a cold
        search (no start point, no warm start) the space's cheapest model (`search.probe`)."""
        s = self.search
        if s.start_from or s.warm_start or s.probe is False or self.model is not None:
            return list(s.start_from)
        probe = probe_point(self.space)
        return [probe] if probe else []

    def spec_hash(self) -> str:
        """Short hash of the validated spec, so each result names what produced it."""
        data = self.model_dump(mode="json")
        for *parents, key in ADDED_LATER:  # specs that leave them out keep the hash they had before them
            section = functools.reduce(operator.getitem, parents, data)
            if section[key] is None or section[key] == {}:
                del section[key]
        dumped = json.dumps(data, sort_keys=True)
        return hashlib.sha256(dumped.encode()).hexdigest()[:12]

    def with_overrides(self, **overrides: Any) -> SearchSpec:
        """A copy with dotted-path overrides (`search.trials=3`), re-validated."""
        data = self.model_dump(mode="json")
        for dotted, value in overrides.items():
            if value is None:
                continue
            node = data
            *parents, leaf = dotted.split(".")
            for part in parents:
                if not isinstance(node.get(part, {}), dict):
                    raise SpecError(f"override {dotted}: {part} is {node.get(part)!r}, not a mapping.")
                node = node.setdefault(part, {})
            node[leaf] = value
        try:
            return SearchSpec.model_validate(data)
        except ValidationError as exc:
            given = [dotted for dotted, value in overrides.items() if value is not None]
            raise _override_error(exc, given) from None


OVERRIDE_EXPECTED = {
    "resources.cpus_per_trial": "must be a positive number or auto",
    "resources.gpus_per_trial": "must be a number >= 0 or auto",
}
"""What an override allows, where Pydantic's words would name its types (float | 'auto')."""


class OverrideError(ArgumentError, SpecError):
    """A bad `with_overrides` value: an ArgumentError naming `spec.<dotted path>`, which the
    CLI renames to its flag (`--cpus-per-trial`), and still a SpecError."""


def _override_error(exc: ValidationError, given: list[str]) -> SpecError:
    """The first error about an overridden field as an OverrideError; others as before."""
    for error in exc.errors():
        loc = _location(error)
        dotted = next((d for d in given if loc == d or loc.startswith(d + ".")), None)
        if dotted is not None and error["type"] != "extra_forbidden":
            msg = error["msg"].removeprefix("Value error, ")
            expected = OVERRIDE_EXPECTED.get(dotted) or re.sub(r"^\w+ should ", "must ", msg)
            return OverrideError(f"spec.{dotted}", expected, error["input"])
    return SpecError("overrides: " + "; ".join(describe_error(e) for e in exc.errors()))


def save_spec(spec: SearchSpec, results_dir: Results) -> Location:
    """Store the validated spec by hash, so export can rebuild the exact dataset later."""
    path = Location.of(results_dir) / "specs" / f"{spec.spec_hash()}.json"
    if not path.is_file():
        write_text(path, spec.model_dump_json(indent=2))
    return path


def load_saved_spec(results_dir: Results, spec_hash: str) -> SearchSpec:
    path = Location.of(results_dir) / "specs" / f"{spec_hash}.json"
    if not path.is_file():
        raise SpecError(f"{path}: the spec of this trial is missing; re-run its search.")
    return _validate(json.loads(path.read_text()), str(path))


def load_spec(source: str | Path | Mapping[str, Any], *, own_data: bool = False) -> SearchSpec:
    """Read and validate a search spec: a YAML file, or a dict with the same sections.

    Relative paths in a dict (`start_from`, `dataset.path`) are relative to the working
    directory; in a file, to the file's folder.

    Args:
        source: A YAML file's path, or a mapping.
        own_data: The data will be passed from Python (`Data`): a spec without a `dataset`
            section (or one without a name, such as `{validation_split: 0.2}`) means
            `{name: arrays}`.

    Returns:
        The validated, frozen spec.

    Raises:
        SpecError: The file cannot be read, or a field is invalid; the message names the file,
            the field, what was received and what is allowed.
    """
    if isinstance(source, Mapping):
        raw, where, base = dict(source), "the spec dict", Path.cwd()
    else:
        raw, where, base = _read(Path(source)), str(source), Path(source).parent
    if own_data and isinstance(raw.setdefault("dataset", {}), dict):
        raw["dataset"] = {"name": "arrays", **raw["dataset"]}
    return _validate(raw, where, {"base_dir": str(base), "nested": False})


def _load(path: Path, *, nested: bool) -> SearchSpec:
    return _validate(_read(path), str(path), {"base_dir": str(path.parent), "nested": nested})


def _read(path: Path) -> dict[str, Any]:
    """A spec file's top-level mapping, unvalidated."""
    if not path.is_file():
        raise SpecError(f"{path}: no such file. Pass the path of a search space YAML file.")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # a SafeLoader
    except UnicodeDecodeError:
        raise SpecError(f"{path}: not UTF-8 text; save the search space as a UTF-8 YAML file.") from None
    except _DuplicateKey as exc:
        raise SpecError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: the top level must be a mapping with study, dataset, space.")
    return raw


class _DuplicateKey(Exception):
    """A key given twice in one YAML mapping."""


class _UniqueKeyLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML is untyped
    """PyYAML's safe loader, refusing a key given twice in one mapping at any depth: plain
    YAML keeps the last one silently, so a second `space:` would replace the first."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` then a key overrides the merged one: allowed
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, str | int | float | bool) and key in seen:
                raise _DuplicateKey(
                    f"line {line}: key {key!r} is given twice in one mapping (first on line "
                    f"{seen[key]}); YAML would keep only the last. Keep one."
                )
            seen.setdefault(key, line)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


def _fixed_space(path: Path, index: int) -> dict[str, Any]:
    """A start point from a spec file whose space is fixed (a baseline)."""
    try:
        spec = _load(path, nested=True)
    except SpecError as exc:
        raise ValueError(f"[{index}] {exc}") from None
    sampled = [
        name for name, entry in spec.space.items() if isinstance(entry, IntDist | FloatDist | CategoricalDist)
    ]
    if sampled:
        raise ValueError(f"[{index}] {path}: not a fixed spec (its space samples {sampled}); use a baseline")
    return dict(spec.space)


def _validate(raw: dict[str, Any], source: str, context: dict[str, Any] | None = None) -> SearchSpec:
    try:
        return SearchSpec.model_validate(raw, context=context)
    except ValidationError as exc:
        raise SpecError(f"{source}: " + "; ".join(describe_error(e) for e in exc.errors())) from None


def _location(error: Any) -> str:
    """A Pydantic error's field path, without the names of validators or union members."""
    return ".".join(
        str(p) for p in error["loc"] if not str(p).startswith("function-") and p not in (_ONE, _MANY)
    )


def describe_error(error: Any) -> str:
    """One readable line per Pydantic error: `field.path: message (got: value)`."""
    loc = _location(error)
    msg = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return f"{loc}: unknown field; check the spelling against the spec reference (docs/reference/spec.md)"
    if error["type"] in ("value_error", "missing"):
        return f"{loc}: {msg}" if loc else msg
    return f"{loc}: {msg} (got {error.get('input')!r})"
