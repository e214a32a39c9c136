"""Your own Keras model, KerasTuner style: a build(hp) function whose depth is a hyperparameter.

Optuna samples what `hp` declares, conditional parameters included (the momentum exists
only for SGD). Run: python examples/own_model.py
"""

import keras
from keras import layers

import harness


def build(hp):
    inputs = keras.Input(shape=(8, 8, 1))
    x = layers.Rescaling(1 / 255)(inputs)  # models get uint8 pixels, as exported models will
    x = layers.Conv2D(hp.Choice("width", [8, 16]), 3, padding="same", activation="relu")(x)
    for i in range(hp.Int("blocks", 1, 2)):  # residual blocks
        y = layers.Conv2D(x.shape[-1], 3, padding="same", activation="relu", name=f"res{i}_a")(x)
        y = layers.Conv2D(x.shape[-1], 3, padding="same", name=f"res{i}_b")(y)
        x = layers.Activation("relu")(layers.Add()([x, y]))
    outputs = layers.Dense(10, activation="softmax")(layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    lr = hp.Float("learning_rate", 1e-3, 3e-2, sampling="log")
    if hp.Choice("optimizer", ["adam", "sgd"]) == "sgd":
        optimizer = keras.optimizers.SGD(lr, momentum=hp.Float("momentum", 0.5, 0.95))
    else:
        optimizer = keras.optimizers.Adam(lr)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


spec = {"study": "my_model", "dataset": {"name": "digits"}, "search": {"trials": 3, "max_epochs": 3}}
study = harness.search(spec, model=build, results="results")
rows = study.to_pandas().filter(regex="^(trial_id|status|val_accuracy|hp_)").dropna(axis=1, how="all")
print(rows.to_string())  # the model's own hyperparameters, as typed hp_* columns
model = study.load_model()
print(f"the best model has {model.count_params():,} parameters")
