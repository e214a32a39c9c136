"""Build and compile a Keras CNN from one trial's hyperparameters (backend-neutral)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from harness.errors import TrialFailed
from harness.space import resolve

if TYPE_CHECKING:
    import keras


def build_model(config: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """Conv blocks -> Flatten -> Dense -> Dropout -> softmax, from uint8 images.

    Pooling that would shrink a feature map below 1x1 is skipped; a `valid`
    convolution larger than its input raises TrialFailed (one failed trial, not a
    crashed search).
    """
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    height, width = input_shape[0], input_shape[1]
    activation = resolve(config, "activation")
    blocks = int(resolve(config, "conv_blocks"))
    dropout = 0.0
    for b in range(1, blocks + 1):
        kernel = int(resolve(config, "kernel_size", b))
        padding = resolve(config, "padding", b)
        for c in range(1, int(resolve(config, "convs_per_block", b)) + 1):
            if padding == "valid":
                if min(height, width) < kernel:
                    raise TrialFailed(
                        f"block {b} conv {c}: a {kernel}x{kernel} 'valid' convolution does "
                        f"not fit a {height}x{width} feature map; use padding 'same', a "
                        "smaller kernel or fewer blocks"
                    )
                height, width = height - kernel + 1, width - kernel + 1
            x = layers.Conv2D(
                int(resolve(config, "filters", b)), kernel, padding=padding,
                activation=activation, name=f"block{b}_conv{c}",
            )(x)  # fmt: skip
            if resolve(config, "batch_norm", b):
                x = layers.BatchNormalization(name=f"block{b}_bn{c}")(x)
        pool = int(resolve(config, "pool_size", b))
        if pool > 1 and min(height, width) >= pool:
            x = layers.MaxPooling2D(pool, name=f"block{b}_pool")(x)
            height, width = height // pool, width // pool
        dropout = float(resolve(config, "dropout", b))
        if dropout > 0:
            x = layers.Dropout(dropout, name=f"block{b}_dropout")(x)
    x = layers.Flatten(name="flatten")(x)
    units = int(resolve(config, "dense_units"))
    if units > 0:
        x = layers.Dense(units, activation=activation, name="dense")(x)
        dense_dropout = config.get("dense_dropout")
        dense_dropout = dropout if dense_dropout is None else float(dense_dropout)
        if dense_dropout > 0:
            x = layers.Dropout(dense_dropout, name="dense_dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="classes")(x)
    return keras.Model(inputs, outputs, name="cnn")


def make_optimizer(config: Mapping[str, Any]) -> keras.optimizers.Optimizer:
    """The sampled optimizer at the sampled learning rate (SGD with Nesterov momentum 0.9)."""
    import keras

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
