"""Build and compile a Keras CNN from one trial's hyperparameters (backend-neutral).

Imports Keras: import this module only where the backend is already chosen (workers).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
from keras import layers, ops

from harness._errors import TrialFailed
from harness._space import resolve


def build_model(config: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """[augmentation] -> rescale -> conv blocks -> flatten/global pool -> dense layers -> softmax.

    Takes uint8 pixels. Pooling that would shrink a feature map below 1x1 is skipped; a
    `valid` convolution larger than its input raises TrialFailed (one failed trial, not
    a crashed search).
    """
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
    outputs = layers.Dense(num_classes, activation="softmax", name="classes")(x)
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
    slower on JAX (DESIGN.md, measured pitfalls).
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


def make_optimizer(config: Mapping[str, Any]) -> keras.optimizers.Optimizer:
    """The sampled optimizer at the sampled learning rate (SGD with Nesterov momentum 0.9)."""
    name = resolve(config, "optimizer")
    lr = float(resolve(config, "learning_rate"))
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=0.9, nesterov=True)
    classes = {"adam": "Adam", "adamw": "AdamW", "nadam": "Nadam", "rmsprop": "RMSprop"}
    return getattr(keras.optimizers, classes[name])(learning_rate=lr)


def compile_model(model: keras.Model, config: Mapping[str, Any]) -> keras.Model:
    model.compile(
        optimizer=make_optimizer(config),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


@keras.saving.register_keras_serializable(package="harness")
class RandomShift(layers.Layer):  # type: ignore[misc]
    """Shift images by up to `factor` of their size: zero-pad, then crop at a random offset.

    One offset per batch keeps it to a pad and a slice on every backend.
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
        dy = keras.random.randint((), 0, 2 * pad_h + 1, seed=self.generator)
        dx = keras.random.randint((), 0, 2 * pad_w + 1, seed=self.generator)
        return ops.slice(padded, [0, dy, dx, 0], [ops.shape(images)[0], height, width, images.shape[3]])

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "factor": self.factor, "seed": self.seed}
