"""`hp`: the hyperparameters a model-building function declares and reads, KerasTuner's way.

`build(hp)` asks `hp.Int("units", 32, 512, step=32)` and gets a value. What answers depends
on where the build runs: on the search's driver an Optuna trial samples it (define-by-run,
so TPE sees conditional parameters: those a build never asks for in a trial are absent
from it); in the trial's worker the driver's values are replayed; for a dry run each
declaration's default answers. The same build therefore declares the space and builds the
model, and the names are KerasTuner's, so a KerasTuner build function runs unchanged.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from harness._errors import TrialFailed

if TYPE_CHECKING:  # Optuna is imported when a build first declares something, not with harness
    import optuna
    from optuna.distributions import BaseDistribution

Value = int | float | bool | str
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
"""Hyperparameter names become leaderboard columns (`hp_<name>`)."""
RESERVED = frozenset({"trial_number", "start_point"})
"""Config keys the search itself adds beside the hyperparameters."""
Sampling = Literal["linear", "log"]

Answer = Callable[[str, "BaseDistribution | None", Value], Value]
"""Where values come from: (name, distribution or None for a fixed value, default) -> value."""


class HyperParameterError(TrialFailed):
    """A declaration `hp` cannot accept (a bad range, a name declared twice differently); the
    trial fails as the user's error, and a search checks its build before any trial runs."""


class HyperParameters:
    """The `hp` a `build(hp)` function reads: `Int`, `Float`, `Choice`, `Boolean`, `Fixed`, and
    `conditional_scope`, with KerasTuner's signatures. `values` holds what this build read."""

    def __init__(self, answer: Answer) -> None:
        self._answer = answer
        self.values: dict[str, Value] = {}
        self._declared: dict[
            str, tuple[str, Any]
        ] = {}  # name -> ("searched", distribution) | ("fixed", value)
        self._conditions: list[tuple[str, tuple[Value, ...]]] = []

    def Int(  # noqa: N802 - KerasTuner's name
        self,
        name: str,
        min_value: int,
        max_value: int,
        step: int | None = None,
        sampling: Sampling = "linear",
        default: int | None = None,
        parent_name: str | None = None,
        parent_values: Sequence[Value] | None = None,
    ) -> int | None:
        """An integer in [min_value, max_value] (every `step`-th; `sampling="log"` for scales)."""
        low, high = _integer(name, "min_value", min_value), _integer(name, "max_value", max_value)
        log = _log(name, sampling, low)
        if step is not None and (_integer(name, "step", step) < 1 or log):
            raise HyperParameterError(
                f"hp.Int({name!r}): step must be a positive integer, without log sampling"
            )
        _ordered(name, low, high)
        from optuna.distributions import IntDistribution

        dist = IntDistribution(low, high, log=log, step=step or 1)
        value = self._read(name, dist, low if default is None else default, parent_name, parent_values)
        return None if value is None else int(value)

    def Float(  # noqa: N802 - KerasTuner's name
        self,
        name: str,
        min_value: float,
        max_value: float,
        step: float | None = None,
        sampling: Sampling = "linear",
        default: float | None = None,
        parent_name: str | None = None,
        parent_values: Sequence[Value] | None = None,
    ) -> float | None:
        """A float in [min_value, max_value] (`sampling="log"` for learning rates and the like)."""
        low, high = _finite(name, "min_value", min_value), _finite(name, "max_value", max_value)
        log = _log(name, sampling, low)
        if step is not None and (_finite(name, "step", step) <= 0 or log):
            raise HyperParameterError(f"hp.Float({name!r}): step must be positive, without log sampling")
        _ordered(name, low, high)
        from optuna.distributions import FloatDistribution

        dist = FloatDistribution(low, high, log=log, step=step)
        value = self._read(name, dist, low if default is None else default, parent_name, parent_values)
        return None if value is None else float(value)

    def Choice(  # noqa: N802 - KerasTuner's name
        self,
        name: str,
        values: Sequence[Value],
        ordered: bool | None = None,
        default: Value | None = None,
        parent_name: str | None = None,
        parent_values: Sequence[Value] | None = None,
    ) -> Value | None:
        """One of `values` (ints, floats, strings or booleans). `ordered` is accepted for
        KerasTuner's sake; TPE treats choices as categories either way."""
        choices = tuple(values)
        if not choices or not all(isinstance(v, bool | int | float | str) for v in choices):
            raise HyperParameterError(
                f"hp.Choice({name!r}): values must be a non-empty list of ints, floats, strings or "
                f"booleans; got {list(values)!r}"
            )
        if len(set(choices)) != len(choices):
            raise HyperParameterError(f"hp.Choice({name!r}): values must be distinct; got {list(values)!r}")
        if default is not None and default not in choices:
            raise HyperParameterError(
                f"hp.Choice({name!r}): default {default!r} is not among {list(values)!r}"
            )
        from optuna.distributions import CategoricalDistribution

        dist = CategoricalDistribution(choices)
        return self._read(name, dist, choices[0] if default is None else default, parent_name, parent_values)

    def Boolean(  # noqa: N802 - KerasTuner's name
        self,
        name: str,
        default: bool = False,
        parent_name: str | None = None,
        parent_values: Sequence[Value] | None = None,
    ) -> bool | None:
        """True or False."""
        from optuna.distributions import CategoricalDistribution

        value = self._read(name, CategoricalDistribution((False, True)), default, parent_name, parent_values)
        return None if value is None else bool(value)

    def Fixed(  # noqa: N802 - KerasTuner's name
        self,
        name: str,
        value: Value,
        parent_name: str | None = None,
        parent_values: Sequence[Value] | None = None,
    ) -> Value | None:
        """A value that is not searched, recorded with the trial's hyperparameters."""
        if not isinstance(value, bool | int | float | str):
            raise HyperParameterError(f"hp.Fixed({name!r}): value must be an int, float, string or boolean")
        return self._read(name, None, value, parent_name, parent_values)

    @contextlib.contextmanager
    def conditional_scope(self, parent_name: str, parent_values: Value | Sequence[Value]) -> Iterator[None]:
        """Hyperparameters declared inside are active only while `parent_name`'s value is among
        `parent_values`; otherwise they read None and are not searched (the code inside runs anyway)."""
        wanted = (
            (parent_values,) if isinstance(parent_values, bool | int | float | str) else tuple(parent_values)
        )
        self._parent(parent_name)
        self._conditions.append((parent_name, wanted))
        try:
            yield
        finally:
            self._conditions.pop()

    def distributions(self) -> dict[str, BaseDistribution]:
        """Optuna's distribution of each searched hyperparameter this build read (not the fixed)."""
        return {n: d for n, (kind, d) in self._declared.items() if n in self.values and kind == "searched"}

    def get(self, name: str) -> Value:
        """The value a hyperparameter read earlier in this build."""
        if name not in self.values:
            raise HyperParameterError(f"hp.get({name!r}): no active hyperparameter of that name; "
                                      f"read so far: {sorted(self.values)}")  # fmt: skip
        return self.values[name]

    def __getitem__(self, name: str) -> Value:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self.values

    def _read(
        self,
        name: str,
        dist: BaseDistribution | None,
        default: Value,
        parent_name: str | None,
        parent_values: Sequence[Value] | None,
    ) -> Value | None:
        """The value of an active hyperparameter, None for an inactive one; a name declared again
        must be declared alike, and then reads the same value."""
        _check_name(name)
        declared = ("searched", dist) if dist is not None else ("fixed", default)
        if name in self._declared and self._declared[name] != declared:
            raise HyperParameterError(
                f"hp {name!r} is declared twice, differently ({_describe(self._declared[name])}, then "
                f"{_describe(declared)}); give each its own name"
            )
        self._declared[name] = declared
        if not self._active(parent_name, parent_values):
            return None
        if name not in self.values:
            self.values[name] = self._answer(name, dist, default)
        return self.values[name]

    def _active(self, parent_name: str | None, parent_values: Sequence[Value] | None) -> bool:
        conditions = list(self._conditions)
        if parent_name is not None:
            self._parent(parent_name)
            conditions.append((parent_name, tuple(parent_values or ())))
        return all(self.values.get(parent) in wanted for parent, wanted in conditions)

    def _parent(self, parent_name: str) -> None:
        if parent_name not in self._declared:
            raise HyperParameterError(
                f"hp: the condition's parent {parent_name!r} must be declared before what depends on it"
            )


def sampling_hp(trial: optuna.Trial) -> HyperParameters:
    """Values an Optuna trial samples (on the driver): fixed ones are recorded, not sampled."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    def answer(name: str, dist: BaseDistribution | None, default: Value) -> Value:
        if dist is None:
            return default
        if isinstance(dist, IntDistribution):
            return trial.suggest_int(name, int(dist.low), int(dist.high), step=dist.step, log=dist.log)
        if isinstance(dist, FloatDistribution):
            return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
        assert isinstance(dist, CategoricalDistribution)  # the only other kind `hp` declares
        value = trial.suggest_categorical(name, [c for c in dist.choices if c is not None])
        return value if value is not None else default  # choices hold no None

    return HyperParameters(answer)


def replaying_hp(values: Mapping[str, Value]) -> HyperParameters:
    """The values the driver sampled, read again in the trial's worker."""

    def answer(name: str, dist: BaseDistribution | None, default: Value) -> Value:
        if name in values:
            return values[name]
        if dist is None:
            return default
        raise HyperParameterError(
            f"the build read hp {name!r}, which the search did not sample for this trial (it sampled "
            f"{sorted(values)}): a build must declare the same hyperparameters for the same values, "
            "so nothing in it may be random or depend on anything but hp"
        )

    return HyperParameters(answer)


def default_hp() -> HyperParameters:
    """Each declaration's default: a dry run's model, and the check before a search."""
    return HyperParameters(lambda name, dist, default: default)


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not NAME.match(name) or name in RESERVED:
        raise HyperParameterError(
            f"hp name {name!r}: use a letter, then up to 63 letters, digits or '_' (it becomes the "
            f"leaderboard column hp_{name}); {sorted(RESERVED)} are the search's own"
        )


def _integer(name: str, argument: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise HyperParameterError(f"hp.Int({name!r}): {argument} must be an integer; got {value!r}")
    return value


def _finite(name: str, argument: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise HyperParameterError(f"hp.Float({name!r}): {argument} must be a finite number; got {value!r}")
    return float(value)


def _log(name: str, sampling: str, low: float) -> bool:
    if sampling not in ("linear", "log"):
        raise HyperParameterError(f"hp {name!r}: sampling must be 'linear' or 'log'; got {sampling!r}")
    if sampling == "log" and low <= 0:
        raise HyperParameterError(f"hp {name!r}: log sampling needs min_value > 0; got {low!r}")
    return sampling == "log"


def _ordered(name: str, low: float, high: float) -> None:
    if low > high:
        raise HyperParameterError(f"hp {name!r}: min_value must be <= max_value; got {low!r} > {high!r}")


def _describe(declared: tuple[str, Any]) -> str:
    kind, what = declared
    return repr(what) if kind == "searched" else f"fixed {what!r}"
