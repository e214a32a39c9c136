"""The seam between a search and the model it trains: what is sampled, and what is built.

`CnnBuilder` is harness' own CNN from the spec's `space:` vocabulary (no code needed).
`FunctionBuilder` is a user's `build(hp) -> keras.Model` (or a KerasTuner-style HyperModel's
`build`): on the driver an Optuna trial answers its `hp` declarations (define-by-run), in the
worker the same values are replayed into the same function. Both hand the trial a compiled
model, its batch size and its callbacks; nothing downstream knows which one built it.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness._errors import SpecError, TrialFailed
from harness._spec.hp import HyperParameters, Value, default_hp, replaying_hp, sampling_hp
from harness._spec.space import BUILD_ERROR

if TYPE_CHECKING:
    import keras
    import optuna
    from optuna.distributions import BaseDistribution

USER_BATCH_SIZE = 32
"""A user model's batch size unless its build declares `hp.*("batch_size", ...)`: Keras' `fit` default."""


class ModelBuilder(ABC):
    """Samples a trial's hyperparameters (driver) and builds its compiled model (worker)."""

    label: str  # what the model card names as the builder

    @abstractmethod
    def sample(self, trial: optuna.Trial) -> dict[str, Value]:
        """The trial's values (Optuna's `trial.params` hold the sampled ones)."""

    @abstractmethod
    def build(
        self, config: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int, *, epochs: int,
        steps_per_epoch: int,
    ) -> keras.Model:  # fmt: skip
        """A compiled model for `config` (sparse integer labels; accuracy among its metrics)."""

    @abstractmethod
    def batch_size(self, config: Mapping[str, Any]) -> int: ...

    @abstractmethod
    def trial_params(self, values: Mapping[str, Any]) -> tuple[dict[str, Value], dict[str, BaseDistribution]]:
        """An earlier trial's values as Optuna params and distributions in this space (warm starts,
        reports); ValueError when they do not fit it."""

    def start_params(self, point: Mapping[str, Any]) -> dict[str, Value]:
        """A start point (or the probe) as the values Optuna enqueues."""
        return dict(point)

    @abstractmethod
    def first_values(self, start: Mapping[str, Value] | None = None) -> dict[str, Value]:
        """The config a dry run builds: a start point's values, else the space's first ones."""

    @property
    def record_label(self) -> str | None:
        """The rows' `builder`: null for harness' CNN."""
        return None

    def callbacks(self, config: Mapping[str, Any]) -> list[keras.callbacks.Callback]:
        return []

    @property
    def user_modules(self) -> frozenset[str]:
        """Top-level packages whose exceptions during training are the user's, not harness'."""
        return frozenset()


class CnnBuilder(ModelBuilder):
    """harness' CNN from the spec's `space:` (its vocabulary: `harness._spec.space.PARAMETERS`)."""

    label = "harness CNN (space:)"

    def __init__(self, space: Mapping[str, Any]) -> None:
        self.space = dict(space)

    def sample(self, trial: optuna.Trial) -> dict[str, Value]:
        from harness._spec.space import suggest

        return suggest(trial, self.space)

    def build(
        self, config: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int, *, epochs: int,
        steps_per_epoch: int,
    ) -> keras.Model:  # fmt: skip
        from harness._trial.model import build_model, compile_model

        model = build_model(config, input_shape, num_classes)
        return compile_model(model, config, epochs=epochs, steps_per_epoch=steps_per_epoch)

    def batch_size(self, config: Mapping[str, Any]) -> int:
        from harness._spec.space import resolve

        return int(resolve(config, "batch_size"))

    def callbacks(self, config: Mapping[str, Any]) -> list[keras.callbacks.Callback]:
        from harness._trial.model import training_callbacks

        return training_callbacks(config)

    def trial_params(self, values: Mapping[str, Any]) -> tuple[dict[str, Value], dict[str, BaseDistribution]]:
        from harness._spec.points import distributions, point_params, row_point

        params = point_params(self.space, row_point(values))
        return params, distributions(self.space, params)

    def start_params(self, point: Mapping[str, Any]) -> dict[str, Value]:
        from harness._spec.points import point_params

        return point_params(self.space, point)

    def first_values(self, start: Mapping[str, Value] | None = None) -> dict[str, Value]:
        """Each distribution's low end or first choice (or the start point's values)."""
        from harness._spec.space import first_config

        return first_config(self.space, start)


class FunctionBuilder(ModelBuilder):
    """A user's `build(hp) -> keras.Model`; an uncompiled model gets Adam, sparse categorical
    cross-entropy and accuracy (the learning rate from `hp` "learning_rate" when declared)."""

    def __init__(self, build: Callable[[HyperParameters], Any], label: str) -> None:
        self.fn, self.label = build, label

    @classmethod
    def of(cls, model: object) -> FunctionBuilder:
        """A build function, a HyperModel-like object (its `build`), or "module:function"."""
        if isinstance(model, str):
            return cls(_import(model), model)
        build = getattr(model, "build", model)
        if not callable(build):
            raise SpecError(
                f"model: {model!r} is neither a build(hp) function nor an object with a build(hp) method"
            )
        owner = model if build is not model else build
        return cls(
            build,
            f"{getattr(owner, '__module__', '?')}:{getattr(owner, '__qualname__', type(owner).__qualname__)}",
        )

    def sample(self, trial: optuna.Trial) -> dict[str, Value]:
        """Run the build with Optuna answering `hp` (its model is discarded); a build that fails
        for these values fails this trial as the user's error, in the worker, with its row."""
        hp = sampling_hp(trial)
        try:
            self._call(hp)
        except Exception as exc:  # the user's build: its failure is one trial's, not the search's
            return {**hp.values, BUILD_ERROR: user_error(exc, self.label)}
        finally:
            _forget_models()
        return hp.values

    def first_values(self, start: Mapping[str, Value] | None = None) -> dict[str, Value]:
        """Each declaration's default (or the start point's values)."""
        given = dict(start or {})
        hp = HyperParameters(lambda name, dist, default: given.get(name, default))
        self._call(hp)
        return hp.values

    def check(self) -> None:
        """Build once with every declaration's default, before a search starts: a build that
        cannot run at all stops the search with the user's error (exit 2), not N failed rows."""
        try:
            self._call(default_hp())
        except Exception as exc:
            raise SpecError(f"model: {self.label} failed with its hyperparameters' defaults: "
                            f"{user_error(exc, self.label)}") from None  # fmt: skip
        finally:
            _forget_models()

    def build(
        self, config: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int, *, epochs: int,
        steps_per_epoch: int,
    ) -> keras.Model:  # fmt: skip
        if BUILD_ERROR in config:
            raise TrialFailed(str(config[BUILD_ERROR]))
        values = {k: v for k, v in config.items() if isinstance(v, bool | int | float | str)}
        try:
            model = self._call(replaying_hp(values))
        except TrialFailed:
            raise
        except Exception as exc:
            raise TrialFailed(user_error(exc, self.label)) from exc
        if not getattr(model, "compiled", False) or getattr(model, "optimizer", None) is None:
            import keras

            lr = float(config.get("learning_rate", 1e-3))
            model.compile(
                optimizer=keras.optimizers.Adam(lr),
                loss="sparse_categorical_crossentropy",
                metrics=["accuracy"],
            )
        return model

    def batch_size(self, config: Mapping[str, Any]) -> int:
        return int(config.get("batch_size", USER_BATCH_SIZE))

    def trial_params(self, values: Mapping[str, Any]) -> tuple[dict[str, Value], dict[str, BaseDistribution]]:
        """Replayed into the build: its declarations give the distributions of the values it reads."""
        hp = replaying_hp(values)
        try:
            self._call(hp)
        except Exception as exc:
            raise ValueError(f"these values do not build: {user_error(exc, self.label)}") from None
        dists = hp.distributions()
        return {n: hp.values[n] for n in dists}, dists

    @property
    def record_label(self) -> str | None:
        return self.label

    @property
    def user_modules(self) -> frozenset[str]:
        return frozenset({self.label.partition(":")[0].split(".")[0]})

    def import_path(self) -> str | None:
        """The folder the function's module was imported from, for the workers' PYTHONPATH (they
        unpickle the function by its module's name); None for an installed package or a script's
        own function (`__main__`: it travels by value)."""
        top = sys.modules.get(self.label.partition(":")[0].split(".")[0])
        file = getattr(top, "__file__", None)
        if top is None or top.__name__ == "__main__" or file is None:
            return None
        path = Path(file).resolve()
        folder = path.parent.parent if path.name == "__init__.py" else path.parent
        return None if "site-packages" in folder.parts else str(folder)

    def _call(self, hp: HyperParameters) -> Any:
        import keras

        model = self.fn(hp)
        if not isinstance(model, keras.Model):
            raise TypeError(f"build(hp) must return a keras.Model; it returned {type(model).__name__}")
        return model


def make_builder(space: Mapping[str, Any], model: object | None) -> ModelBuilder:
    """The user's model when given (a function, a HyperModel, "module:function"), else the CNN."""
    return CnnBuilder(space) if model is None else FunctionBuilder.of(model)


def user_error(exc: BaseException, label: str) -> str:
    """The error as the user's: its type and message, and the user's own frame where it arose."""
    frames = traceback.extract_tb(exc.__traceback__)
    module = label.partition(":")[0]
    own = [f for f in frames if "/harness/" not in f.filename and "site-packages" not in f.filename]
    where = f" ({own[-1].filename}:{own[-1].lineno}, in {own[-1].name})" if own else f" (in {module})"
    return f"{type(exc).__name__}: {exc}{where}"[:2000]


def _import(reference: str) -> Callable[[HyperParameters], Any]:
    module_name, _, attribute = reference.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise SpecError(
            f"model: {reference!r} cannot be imported ({type(exc).__name__}: {exc}); give module:function "
            "for a module importable here and on every Ray worker (installed, or on PYTHONPATH)"
        ) from None
    build = getattr(target, "build", target)
    if not callable(build):
        raise SpecError(f"model: {reference!r} is not a build(hp) function or a HyperModel")
    return build  # type: ignore[no-any-return]


def _forget_models() -> None:
    """The driver keeps nothing of the models it built only to sample."""
    import keras

    keras.backend.clear_session(free_memory=False)
