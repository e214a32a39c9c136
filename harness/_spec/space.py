"""The hyperparameter vocabulary of a CNN and how each entry is sampled.

Every parameter name a search space may use is declared once in `PARAMETERS`, with
its type. That one table drives validation (`space.filters: choices must be
integers`), Optuna's define-by-run sampling, the model builder's defaults and the
leaderboard's fixed `hp_*` columns, so no other module hard-codes parameter names.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

if TYPE_CHECKING:
    import optuna

MAX_BLOCKS = 8
"""Most conv blocks a space may ask for; fixes the leaderboard's per-block columns."""
MAX_DENSE = 4
"""Most hidden dense layers; `dense_units` may be sampled per dense layer."""
MAX_FILTERS = 16384
"""Most filters of a conv. Two 3x3 convs of 16384 filters hold 2.4G weights (~40 GB with
Adam's slots and gradients), about what one large GPU fits; above, memory runs out."""
MAX_UNITS = 65536
"""Most units of a dense layer: 65536 into 65536 is 4.3G weights (~70 GB while training)."""
MAX_KERNEL = 4096
"""Largest conv kernel side: no image is larger (`dataset.image_size`, 4096 per side)."""

Kind = Literal["int", "float", "bool", "str"]
Value = int | float | bool | str
PADDING = re.compile(r"^(same|valid)(,(same|valid))*$")


@dataclass(frozen=True)
class Parameter:
    """One entry of the vocabulary: its type, default and allowed values.

    `group` names the count a per-block value follows: `conv_blocks` (one value per
    conv block) or `dense_layers` (one per hidden dense layer).
    """

    kind: Kind
    default: Value | None
    group: str | None = None
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] | None = None
    help: str = ""
    cheap: Literal["low", "high"] | None = None
    """Which end of its range makes a model cheaper to train (the cold-start probe's pick)."""

    @property
    def per_block(self) -> bool:
        return self.group is not None


OPTIMIZERS = ("adam", "adamw", "nadam", "rmsprop", "sgd")
LR_SCHEDULES = ("none", "cosine", "one_cycle", "plateau")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
BLOCK, DENSE = "conv_blocks", "dense_layers"
GROUP_SIZES = {BLOCK: MAX_BLOCKS, DENSE: MAX_DENSE}
PARAMETERS: dict[str, Parameter] = {
    "conv_blocks": Parameter("int", 2, low=1, high=MAX_BLOCKS, help="number of conv blocks", cheap="low"),
    "filters": Parameter("int", 32, BLOCK, low=1, high=MAX_FILTERS, help="filters of each conv", cheap="low"),
    "kernel_size": Parameter("int", 3, BLOCK, low=1, high=MAX_KERNEL, help="conv kernel size", cheap="low"),
    "convs_per_block": Parameter(
        "int", 1, BLOCK, low=1, high=4, help="Conv2D layers in a block", cheap="low"
    ),
    "padding": Parameter("str", "same", BLOCK, help="same | valid | per conv: same,valid"),
    "batch_norm": Parameter("bool", False, BLOCK, help="BatchNorm after each conv"),
    "batch_norm_last": Parameter("bool", True, BLOCK, help="false: BatchNorm only between convs"),
    "pool_size": Parameter("int", 2, BLOCK, low=1, help="max pooling after a block; 1 = none"),
    "dropout": Parameter("float", 0.0, BLOCK, low=0.0, high=0.95, help="after each block"),
    "activation": Parameter(
        "str",
        "relu",
        choices=("relu", "elu", "gelu", "selu", "swish", "tanh"),
        help="of every conv and dense layer",
    ),
    "head": Parameter(
        "str", "flatten", choices=("flatten", "global_avg", "global_max"), help="after the last block"
    ),
    "dense_layers": Parameter("int", 1, low=0, high=MAX_DENSE, help="hidden dense layers", cheap="low"),
    "dense_units": Parameter(
        "int", 128, DENSE, low=0, high=MAX_UNITS, help="units per dense layer; 0 = none", cheap="low"
    ),
    "dense_dropout": Parameter(
        "float", None, low=0.0, high=0.95, help="after the last dense layer; default: last block's"
    ),
    "augment_flip": Parameter(
        "str", "none", choices=("none", "horizontal", "vertical", "both"), help="random flips, training only"
    ),
    "augment_rotation": Parameter(
        "float", 0.0, low=0.0, high=0.5, help="random rotation, as a fraction of a full turn"
    ),
    "augment_shift": Parameter(
        "float", 0.0, low=0.0, high=0.5, help="per-image random crop of the image padded by this fraction"
    ),
    "augment_brightness": Parameter(
        "float", 0.0, low=0.0, high=1.0, help="random brightness, a fraction of 255"
    ),
    "optimizer": Parameter("str", "adam", choices=OPTIMIZERS, help="sgd: Nesterov momentum 0.9"),
    "learning_rate": Parameter(
        "float", 1e-3, low=1e-7, high=10.0, help="the optimizer's (peak, with a schedule)"
    ),
    "lr_schedule": Parameter(
        "str",
        "none",
        choices=LR_SCHEDULES,
        help="cosine: warmup, then decay to 0; one_cycle: rise from lr/25, fall to lr/1e4; plateau: halve "
        "when val_loss stalls 2 epochs, down to lr/100",
    ),  # fmt: skip
    "warmup_epochs": Parameter("int", 1, low=0, help="cosine: epochs of linear warmup"),
    "weight_decay": Parameter(
        "float", None, low=0.0, high=1.0, help="decoupled; default: the optimizer's (AdamW 0.004)"
    ),
    "label_smoothing": Parameter(
        "float", 0.0, low=0.0, high=0.5, help="targets (1 - s) * one_hot + s / classes"
    ),
    "precision": Parameter("str", "float32", choices=PRECISIONS, help="mixed_*: GPU trials only"),
    "batch_size": Parameter(
        "int", 64, low=1, high=65536, help="images per step", cheap="high"
    ),  # fewer steps
}


def column_names() -> list[str]:
    """Config keys of every possible sampled value, in a stable order."""
    names: list[str] = []
    for name, param in PARAMETERS.items():
        names.append(name)
        if param.group:
            names.extend(f"{name}_{i}" for i in range(1, GROUP_SIZES[param.group] + 1))
    return names


def base_name(key: str) -> str:
    """`filters_2` -> `filters`; `filters` -> `filters`."""
    head, _, tail = key.rpartition("_")
    return head if tail.isdigit() and head in PARAMETERS else key


def _check_value(name: str, value: Any, what: str) -> None:
    """Raise ValueError unless `value` fits parameter `name`."""
    param = PARAMETERS[name]
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "str": isinstance(value, str),
    }[param.kind]
    if not ok:
        expected = {"int": "an integer", "float": "a number", "bool": "true or false"}
        allowed = expected.get(param.kind) or f"one of {list(param.choices or ())}"
        raise ValueError(f"{what} must be {allowed}; got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number; got {value!r}")
    if name == "padding" and not PADDING.match(value):
        raise ValueError(f"{what} must be same, valid, or one per conv like same,valid; got {value!r}")
    if param.choices is not None and value not in param.choices:
        raise ValueError(f"{what} must be one of {list(param.choices)}; got {value!r}")
    if param.low is not None and value < param.low:
        raise ValueError(f"{what} must be >= {param.low}; got {value!r}")
    if param.high is not None and value > param.high:
        raise ValueError(f"{what} must be <= {param.high}; got {value!r}")


class _Dist(BaseModel):
    model_config = ConfigDict(extra="forbid")
    per_block: bool = False


class IntDist(_Dist):
    type: Literal["int"]
    low: int
    high: int
    step: int = Field(1, ge=1)
    log: bool = False

    @model_validator(mode="after")
    def _bounds(self) -> IntDist:
        _check_bounds(self.low, self.high, self.log, self.step != 1)
        return self


class FloatDist(_Dist):
    type: Literal["float"]
    low: float
    high: float
    step: float | None = Field(None, gt=0)
    log: bool = False

    @model_validator(mode="after")
    def _bounds(self) -> FloatDist:
        _check_bounds(self.low, self.high, self.log, self.step is not None)
        return self


class CategoricalDist(_Dist):
    type: Literal["categorical"]
    choices: list[bool | int | float | str] = Field(min_length=1)


Distribution = IntDist | FloatDist | CategoricalDist


def _check_bounds(low: float, high: float, log: bool, stepped: bool) -> None:
    if low > high:
        raise ValueError(f"low must be <= high; got low={low}, high={high}")
    if log and low <= 0:
        raise ValueError(f"log scale needs low > 0; got low={low}")
    if log and stepped:
        raise ValueError("use either `log` or `step`, not both")


def parse_entry(name: str, raw: Any) -> Distribution | Value | list[Value]:
    """Validate one `space:` entry against the vocabulary."""
    if name not in PARAMETERS:
        raise ValueError(f"unknown parameter {name!r}; allowed: {', '.join(PARAMETERS)}")
    param = PARAMETERS[name]
    if param.kind == "float":
        raw = coerce_floats(raw)
    if isinstance(raw, dict):
        kinds: dict[str, type[Distribution]] = {
            "int": IntDist,
            "float": FloatDist,
            "categorical": CategoricalDist,
        }
        if raw.get("type") not in kinds:
            raise ValueError(f"type must be one of {list(kinds)}; got {raw.get('type')!r}")
        dist: Distribution = kinds[raw["type"]].model_validate(raw)
        _check_dist(name, param, dist)
        return dist
    if isinstance(raw, list):
        if not param.per_block:
            raise ValueError("a list of fixed values is only allowed for per-block parameters")
        if not raw:
            raise ValueError("a list of per-block values must not be empty")
        for i, value in enumerate(raw, 1):
            _check_value(name, value, f"block {i} value")
        return list(raw)
    _check_value(name, raw, "the fixed value")
    fixed: Value = raw
    return fixed


def coerce_floats(raw: Any) -> Any:
    """YAML reads `1e-3` (no dot) as text; accept it as the number it means."""

    def number(value: Any) -> Any:
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                return value
        return value

    if isinstance(raw, dict):
        raw = dict(raw)
        for key in ("low", "high", "step"):
            if key in raw:
                raw[key] = number(raw[key])
        if isinstance(raw.get("choices"), list):
            raw["choices"] = [number(c) for c in raw["choices"]]
        return raw
    if isinstance(raw, list):
        return [number(v) for v in raw]
    return number(raw)


def _check_dist(name: str, param: Parameter, dist: Distribution) -> None:
    if dist.per_block and not param.per_block:
        per_block = [n for n, p in PARAMETERS.items() if p.per_block]
        raise ValueError(f"per_block is only allowed for {per_block}")
    if isinstance(dist, CategoricalDist):
        for value in dist.choices:
            _check_value(name, value, "each choice")
        return
    if param.kind not in ("int", "float") or (param.kind == "int" and dist.type == "float"):
        raise ValueError(f"type {dist.type!r} does not fit a {param.kind} parameter")
    _check_value(name, dist.low, "low")
    _check_value(name, dist.high, "high")


def validate_space(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Parse every entry and check that per-block lists cover every block."""
    space = {}
    for name, value in raw.items():
        try:
            space[name] = parse_entry(name, value)
        except ValidationError as exc:
            raise ValueError(f"{name}: {'; '.join(_describe(e) for e in exc.errors())}") from None
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    for name, value in space.items():
        group = PARAMETERS[name].group
        most = max_count(space, group) if group else 0
        if isinstance(value, list) and len(value) < most:
            raise ValueError(f"{name} lists {len(value)} per-block values but {group} can be {most}")
        if isinstance(value, list) and len(value) > most:  # the extra values would never be used
            raise ValueError(
                f"{name} lists {len(value)} per-block values but {group} is at most {most} in this "
                f"space; give one value per {'block' if group == BLOCK else 'dense layer'}"
            )
    return space


def _describe(error: Any) -> str:
    """A distribution's Pydantic error as `field: message (got value)`."""
    where = ".".join(map(str, error["loc"])) or "entry"
    msg = error["msg"].removeprefix("Value error, ")
    got = "" if error["type"] == "value_error" else f" (got {error.get('input')!r})"
    return f"{where}: {msg}{got}"


def sampled(space: Mapping[str, Any]) -> frozenset[str]:
    """The space's entries the sampler varies (the rest are fixed values)."""
    return frozenset(name for name, entry in space.items() if isinstance(entry, _Dist))


def max_count(space: Mapping[str, Any], group: str) -> int:
    """Largest number of conv blocks (or dense layers) the space can produce."""
    count = space.get(group, PARAMETERS[group].default)
    if isinstance(count, IntDist):
        return count.high
    if isinstance(count, CategoricalDist):
        return max(int(c) for c in count.choices)
    return int(count)


def suggest(trial: optuna.Trial, space: Mapping[str, Any]) -> dict[str, Value]:
    """Define-by-run sampling: per-block entries depend on the sampled `conv_blocks`
    (per-layer `dense_units` on the sampled `dense_layers`).

    Returns the fixed values, which Ray Tune's OptunaSearch merges into the config.
    """
    fixed: dict[str, Value] = {}
    counts = {
        group: int(_sample(trial, group, space.get(group, PARAMETERS[group].default), fixed))
        for group in GROUP_SIZES
    }
    for name, entry in space.items():
        if name in GROUP_SIZES:
            continue
        group = PARAMETERS[name].group
        if isinstance(entry, list) and group is not None:
            fixed.update({f"{name}_{i}": entry[i - 1] for i in range(1, counts[group] + 1)})
        elif isinstance(entry, _Dist) and entry.per_block and group is not None:
            for i in range(1, counts[group] + 1):
                _sample(trial, f"{name}_{i}", entry, fixed)
        else:
            _sample(trial, name, entry, fixed)
    return fixed


def first_config(space: Mapping[str, Any], params: Mapping[str, Value] | None = None) -> dict[str, Value]:
    """The configuration a search would train first (for --dry-run).

    With `params` (a start point's sampled values) that point; otherwise each
    distribution's low end or first choice.
    """
    trial = _FirstTrial(params or {})
    return {**suggest(trial, space), **trial.params}  # type: ignore[arg-type]


class _FirstTrial:
    """Just enough of optuna.Trial to walk a space deterministically."""

    def __init__(self, given: Mapping[str, Value]) -> None:
        self.given = given
        self.params: dict[str, Value] = {}

    def _take(self, name: str, default: Value) -> Value:
        self.params[name] = self.given.get(name, default)
        return self.params[name]

    def suggest_int(self, name: str, low: int, high: int, **_: Any) -> Value:
        return self._take(name, low)

    def suggest_float(self, name: str, low: float, high: float, **_: Any) -> Value:
        return self._take(name, low)

    def suggest_categorical(self, name: str, choices: list[Value]) -> Value:
        return self._take(name, choices[0])


def _sample(trial: optuna.Trial, key: str, entry: Any, fixed: dict[str, Value]) -> Value:
    """Sample a distribution under `key`, or record a fixed value in `fixed`."""
    value: Value
    if isinstance(entry, IntDist):
        value = trial.suggest_int(key, entry.low, entry.high, step=entry.step, log=entry.log)
    elif isinstance(entry, FloatDist):
        value = trial.suggest_float(key, entry.low, entry.high, step=entry.step, log=entry.log)
    elif isinstance(entry, CategoricalDist):
        value = cast(Value, trial.suggest_categorical(key, entry.choices))  # choices hold no None
    else:
        value = fixed[key] = entry
    return value


def resolve(config: Mapping[str, Any], name: str, block: int | None = None) -> Any:
    """The value of `name` (for 1-based conv block or dense layer) in a config, else its default."""
    if block is not None and f"{name}_{block}" in config:
        return config[f"{name}_{block}"]
    return config.get(name, PARAMETERS[name].default)


TRIAL_NUMBER = "trial_number"
"""Config key the search adds beside the sampled values, so repeats of a fixed spec differ in seed."""
START_POINT = "start_point"
"""Config key marking a trial enqueued from `search.start_from` (never pruned)."""
BUILD_ERROR = "build_error"
"""Config key of a trial whose model function failed on the driver (harness._trial.builder)."""


def hyperparameters(config: Mapping[str, Any]) -> dict[str, Value]:
    """A trial config's hyperparameters: everything but the search's own bookkeeping keys."""
    return {
        key: value for key, value in config.items() if key not in (TRIAL_NUMBER, START_POINT, BUILD_ERROR)
    }
