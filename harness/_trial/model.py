"""Build and compile a Keras CNN from one trial's hyperparameters (backend-neutral).

Imports Keras: import this module only where the backend is already chosen (workers).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping
from typing import Any

import keras
from keras import layers, ops

from harness._errors import TrialFailed
from harness._spec.space import resolve


def build_model(config: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """[augmentation] -> rescale -> conv blocks -> flatten/global pool -> dense layers -> softmax.

    Takes uint8 pixels. Pooling that would shrink a feature map below 1x1 is skipped; a
    `valid` convolution larger than its input raises TrialFailed (one failed trial, not
    a crashed search). Layers take the `precision` policy; the softmax stays float32.
    """
    with _dtype_policy(str(resolve(config, "precision"))):
        return _build(config, input_shape, num_classes)


@contextlib.contextmanager
def _dtype_policy(name: str) -> Iterator[None]:
    """Keras' policy is global: set it for one build, then put back what was there."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _build(config: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    inputs = keras.Input(shape=input_shape, name="image")
    x = augmentation(config, inputs)
    x = layers.Rescaling(1.0 / 255, name="rescale")(x)
    size = (input_shape[0], input_shape[1])
    activation = resolve(config, "activation")
    dropout = 0.0
    for b in range(1, int(resolve(config, "conv_blocks")) + 1):
        x, size = _conv_block(x, config, b, size, activation)
        dropout = float(resolve(config, "dropout", b))
        if dropout > 0:
            x = layers.Dropout(dropout, name=f"block{b}_dropout")(x)
    head = resolve(config, "head")
    if head == "flatten":
        x = layers.Flatten(name="flatten")(x)
    else:
        pool = layers.GlobalAveragePooling2D if head == "global_avg" else layers.GlobalMaxPooling2D
        x = pool(name=head)(x)
    units = [
        int(resolve(config, "dense_units", d)) for d in range(1, int(resolve(config, "dense_layers")) + 1)
    ]
    units = [u for u in units if u > 0]
    for d, u in enumerate(units, 1):
        x = layers.Dense(u, activation=activation, name=f"dense{d}" if d > 1 else "dense")(x)
    dense_dropout = config.get("dense_dropout")
    dense_dropout = dropout if dense_dropout is None else float(dense_dropout)
    if units and dense_dropout > 0:
        x = layers.Dropout(dense_dropout, name="dense_dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="classes", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="cnn")


def _conv_block(
    x: Any, config: Mapping[str, Any], b: int, size: tuple[int, int], activation: str
) -> tuple[Any, tuple[int, int]]:
    """`convs_per_block` x [Conv2D (+ BatchNorm)], then max pooling; tracks the map size."""
    kernel = int(resolve(config, "kernel_size", b))
    paddings = str(resolve(config, "padding", b)).split(",")
    convs = int(resolve(config, "convs_per_block", b))
    batch_norm = resolve(config, "batch_norm", b)
    for c in range(1, convs + 1):
        padding = paddings[min(c, len(paddings)) - 1]  # the last one repeats
        if padding == "valid":
            if min(size) < kernel:
                raise TrialFailed(
                    f"block {b} conv {c}: a {kernel}x{kernel} 'valid' convolution does not fit a "
                    f"{size[0]}x{size[1]} feature map; use padding 'same', a smaller kernel or fewer blocks"
                )
            size = (size[0] - kernel + 1, size[1] - kernel + 1)
        x = layers.Conv2D(
            int(resolve(config, "filters", b)),
            kernel,
            padding=padding,
            activation=activation,
            name=f"block{b}_conv{c}",
        )(x)
        if batch_norm and (c < convs or resolve(config, "batch_norm_last", b)):
            x = layers.BatchNormalization(name=f"block{b}_bn{c}")(x)
    pool = int(resolve(config, "pool_size", b))
    if pool > 1 and min(size) >= pool:
        x = layers.MaxPooling2D(pool, name=f"block{b}_pool")(x)
        size = (size[0] // pool, size[1] // pool)
    return x, size


def augmentation(config: Mapping[str, Any], x: Any) -> Any:
    """Training-only augmentation on 0-255 pixels; every layer is a no-op at inference.

    Shifts use pad + random crop (`RandomShift`), not affine transforms, which ran ~80x
    slower on JAX (measured).
    """
    flip = resolve(config, "augment_flip")
    if flip != "none":
        mode = "horizontal_and_vertical" if flip == "both" else flip
        x = layers.RandomFlip(mode, name="augment_flip")(x)
    rotation = float(resolve(config, "augment_rotation"))
    if rotation > 0:
        x = layers.RandomRotation(rotation, fill_mode="reflect", name="augment_rotation")(x)
    shift = float(resolve(config, "augment_shift"))
    if shift > 0:
        x = RandomShift(shift, name="augment_shift")(x)
    brightness = float(resolve(config, "augment_brightness"))
    if brightness > 0:
        x = layers.RandomBrightness(brightness, value_range=(0, 255), name="augment_brightness")(x)
    return x


def make_optimizer(
    config: Mapping[str, Any], *, epochs: int = 1, steps_per_epoch: int = 1
) -> keras.optimizers.Optimizer:
    """The sampled optimizer, learning rate (schedule) and weight decay.

    SGD uses Nesterov momentum 0.9. Without `weight_decay` each optimizer keeps its own
    default (AdamW 0.004, the others none).
    """
    name = resolve(config, "optimizer")
    lr = learning_rate(config, epochs=epochs, steps_per_epoch=steps_per_epoch)
    decay = config.get("weight_decay")
    extra: dict[str, Any] = {} if decay is None else {"weight_decay": float(decay)}
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=0.9, nesterov=True, **extra)
    classes = {"adam": "Adam", "adamw": "AdamW", "nadam": "Nadam", "rmsprop": "RMSprop"}
    optimizer: keras.optimizers.Optimizer = getattr(keras.optimizers, classes[name])(
        learning_rate=lr, **extra
    )
    return optimizer


def learning_rate(config: Mapping[str, Any], *, epochs: int, steps_per_epoch: int) -> Any:
    """A constant (also for `plateau`, which a callback lowers) or a per-step schedule.

    Schedules span `epochs` (the search's `max_epochs`): early stopping may end a trial
    before its schedule does, as it would end a constant rate.
    """
    lr = float(resolve(config, "learning_rate"))
    schedule = resolve(config, "lr_schedule")
    total = max(1, epochs * steps_per_epoch)
    if schedule == "cosine":
        warmup = min(int(resolve(config, "warmup_epochs")) * steps_per_epoch, total // 2)
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=lr / 10 if warmup else lr,
            decay_steps=max(1, total - warmup),
            warmup_target=lr if warmup else None,
            warmup_steps=warmup,
        )
    if schedule == "one_cycle":
        return OneCycle(peak=lr, total_steps=total)
    return lr


def training_callbacks(config: Mapping[str, Any]) -> list[keras.callbacks.Callback]:
    """`plateau`: halve the learning rate when val_loss stalls for 2 epochs."""
    if resolve(config, "lr_schedule") != "plateau":
        return []
    lr = float(resolve(config, "learning_rate"))
    return [keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, min_lr=lr / 100)]


def compile_model(
    model: keras.Model, config: Mapping[str, Any], *, epochs: int = 1, steps_per_epoch: int = 1
) -> keras.Model:
    """Loss with the sampled label smoothing: labels stay integer class ids everywhere."""
    smoothing = float(resolve(config, "label_smoothing"))
    model.compile(
        optimizer=make_optimizer(config, epochs=epochs, steps_per_epoch=steps_per_epoch),
        loss=SmoothedSparseCrossentropy(smoothing) if smoothing else "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


@keras.saving.register_keras_serializable(package="harness")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):  # type: ignore[misc]
    """Smith's one-cycle policy: 30% of the steps rising from peak/25 to peak, then a cosine
    fall to peak/1e4 (as in PyTorch's OneCycleLR; Keras has none)."""

    def __init__(self, peak: float, total_steps: int) -> None:
        self.peak, self.total_steps = float(peak), int(total_steps)

    def __call__(self, step: Any) -> Any:
        step = ops.cast(step, "float32")
        rise = max(1.0, 0.3 * self.total_steps)
        start, end = self.peak / 25, self.peak / 1e4
        up = start + (self.peak - start) * ops.minimum(step / rise, 1.0)
        fall_t = ops.clip((step - rise) / max(1.0, self.total_steps - rise), 0.0, 1.0)
        down = end + (self.peak - end) * 0.5 * (1 + ops.cos(math.pi * fall_t))
        return ops.where(step < rise, up, down)

    def get_config(self) -> dict[str, Any]:
        return {"peak": self.peak, "total_steps": self.total_steps}


@keras.saving.register_keras_serializable(package="harness")
class SmoothedSparseCrossentropy(keras.losses.Loss):  # type: ignore[misc]
    """Cross-entropy against `(1 - s) * one_hot(y) + s / classes`, from integer labels.

    Keras' sparse cross-entropy has no label smoothing; this keeps integer labels (and
    so evaluation, export and prediction) unchanged instead of converting every split
    to one-hot for the categorical loss. Same value as `CategoricalCrossentropy(label_smoothing=s)`.
    """

    def __init__(
        self, label_smoothing: float = 0.0, name: str = "smoothed_sparse_crossentropy", **kwargs: Any
    ):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        log_p = ops.log(ops.clip(ops.cast(y_pred, "float32"), 1e-7, 1.0))
        labels = ops.reshape(ops.cast(y_true, "int32"), (-1, 1))
        nll = -ops.squeeze(ops.take_along_axis(log_p, labels, axis=-1), axis=-1)
        uniform = -ops.mean(log_p, axis=-1)
        return (1.0 - self.label_smoothing) * nll + self.label_smoothing * uniform

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="harness")
class RandomShift(layers.Layer):  # type: ignore[misc]
    """Shift each image by up to `factor` of its size: zero-pad, then crop at its own offset.

    The per-image crop is two one-hot matrix products (rows, then columns): the same
    few ops on every backend, no gather, and no affine transform (which ran ~80x slower
    on JAX; measured).
    """

    def __init__(self, factor: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.factor, self.seed = factor, seed
        self.generator = keras.random.SeedGenerator(seed)

    def call(self, images: Any, training: bool | None = None) -> Any:
        if not training:
            return images
        height, width = images.shape[1], images.shape[2]
        pad_h, pad_w = max(1, int(height * self.factor)), max(1, int(width * self.factor))
        padded = ops.pad(images, [[0, 0], [pad_h, pad_h], [pad_w, pad_w], [0, 0]])
        n = ops.shape(images)[0]
        dy = keras.random.randint((n, 1), 0, 2 * pad_h + 1, seed=self.generator)
        dx = keras.random.randint((n, 1), 0, 2 * pad_w + 1, seed=self.generator)
        rows = ops.one_hot(dy + ops.arange(height)[None, :], height + 2 * pad_h, dtype=images.dtype)
        cols = ops.one_hot(dx + ops.arange(width)[None, :], width + 2 * pad_w, dtype=images.dtype)
        cropped = ops.einsum("nhp,npwc->nhwc", rows, padded)
        return ops.einsum("nwq,nhqc->nhwc", cols, cropped)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "factor": self.factor, "seed": self.seed}
