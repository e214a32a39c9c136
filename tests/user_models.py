"""Model functions as users write them (KerasTuner style), importable as `user_models:<name>`
by the tests and by their Ray workers (Ray gives workers the driver's sys.path)."""

from __future__ import annotations

import keras
from keras import layers


def residual_cnn(hp):
    """A small residual CNN whose depth is a hyperparameter; the momentum exists only for SGD."""
    inputs = keras.Input(shape=(8, 8, 1))
    x = layers.Rescaling(1.0 / 255)(inputs)
    x = layers.Conv2D(hp.Choice("width", [8, 16]), 3, padding="same", activation="relu")(x)
    for i in range(hp.Int("blocks", 1, 3)):
        y = layers.Conv2D(x.shape[-1], 3, padding="same", activation="relu", name=f"res{i}_a")(x)
        y = layers.Conv2D(x.shape[-1], 3, padding="same", name=f"res{i}_b")(y)
        x = layers.Activation("relu")(layers.Add()([x, y]))
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    lr = hp.Float("learning_rate", 1e-3, 3e-2, sampling="log")
    if hp.Choice("optimizer", ["adam", "sgd"]) == "sgd":
        optimizer = keras.optimizers.SGD(lr, momentum=hp.Float("momentum", 0.5, 0.95))
    else:
        optimizer = keras.optimizers.Adam(lr)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def uncompiled(hp):
    """Returns a model without compiling it: harness compiles it (Adam at hp's learning_rate)."""
    return keras.Sequential([
        keras.Input(shape=(8, 8, 1)),
        layers.Flatten(),
        layers.Dense(hp.Int("units", 8, 32), activation="relu"),
        layers.Dense(10, activation="softmax"),
    ])  # fmt: skip


def wide_fails(hp):
    """Fails for one value of its hyperparameter only: one trial's error, not the search's."""
    if hp.Choice("width", [16, 1024]) == 1024:
        raise ValueError("1024 units are too many for this test")
    return uncompiled(hp)


def always_fails(hp):
    hp.Int("units", 8, 32)
    raise RuntimeError("the user's build is broken")


def not_a_model(hp):
    hp.Int("units", 8, 32)
    return "a model"


class HyperModelLike:
    """KerasTuner's HyperModel shape: an object with build(hp)."""

    def build(self, hp):
        return uncompiled(hp)


@keras.saving.register_keras_serializable(package="user_models")
class Scale(layers.Layer):
    """A custom layer, registered as Keras asks: its model reloads in safe mode where this module
    is importable."""

    def __init__(self, factor: float, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        return x * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def residual_cifar(hp):
    """`residual_cnn`'s design on 32x32 colour images, as a KerasTuner user writes it for CIFAR-10."""
    inputs = keras.Input(shape=(32, 32, 3))
    x = Scale(1.0 / 255)(inputs)
    x = layers.Conv2D(hp.Choice("width", [8, 16]), 3, strides=2, padding="same", activation="relu")(x)
    for i in range(hp.Int("blocks", 1, 2)):
        y = layers.Conv2D(x.shape[-1], 3, padding="same", activation="relu", name=f"res{i}_a")(x)
        y = layers.Conv2D(x.shape[-1], 3, padding="same", name=f"res{i}_b")(y)
        x = layers.Activation("relu")(layers.Add()([x, y]))
    x = layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, layers.Dense(3, activation="softmax")(x))
    model.compile(optimizer=keras.optimizers.Adam(hp.Float("learning_rate", 1e-3, 1e-2, sampling="log")),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])  # fmt: skip
    return model
