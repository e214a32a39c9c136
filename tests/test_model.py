"""harness._trial.model: real Keras models (TensorFlow backend unless KERAS_BACKEND says otherwise)."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from harness._errors import TrialFailed  # noqa: E402
from harness._trial.model import build_model, compile_model, make_optimizer  # noqa: E402

# The Keras/TensorFlow Fashion-MNIST tutorial CNN.
TUTORIAL = {
    "conv_blocks": 1,
    "filters": 32,
    "kernel_size": 3,
    "padding": "same",
    "pool_size": 2,
    "dropout": 0.25,
    "dense_units": 128,
    "dense_dropout": 0.25,
}


def layer_names(model: keras.Model) -> list[str]:
    return [layer.name for layer in model.layers]


def test_tutorial_cnn_has_the_known_parameter_count():
    model = build_model(TUTORIAL, (28, 28, 1), 10)
    # conv 3*3*1*32+32 = 320; dense 14*14*32*128+128 = 802,944; softmax 128*10+10 = 1,290
    assert model.count_params() == 804_554
    assert model.output_shape == (None, 10)
    assert model.input_shape == (None, 28, 28, 1)
    assert model.get_layer("block1_pool").output.shape[1:] == (14, 14, 32)
    assert model.get_layer("block1_dropout").rate == 0.25
    assert model.get_layer("dense_dropout").rate == 0.25
    assert model.get_layer("classes").activation is keras.activations.softmax


def test_model_predicts_probabilities_from_uint8():
    model = build_model(TUTORIAL, (28, 28, 1), 10)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(3, 28, 28, 1), dtype=np.uint8)
    probs = np.asarray(model.predict(x, verbose=0))
    assert probs.shape == (3, 10)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert np.all(probs >= 0)


def test_per_block_values_are_used_per_block():
    config = {
        "conv_blocks": 3,
        "filters_1": 8, "filters_2": 16, "filters_3": 24,
        "kernel_size_1": 5, "kernel_size_2": 3, "kernel_size_3": 1,
        "convs_per_block_2": 2,
        "batch_norm_3": True,
        "dropout_1": 0.1, "dropout_2": 0.0, "dropout_3": 0.3,
        "dense_units": 32,
    }  # fmt: skip
    model = build_model(config, (32, 32, 3), 4)
    names = layer_names(model)

    assert model.get_layer("block1_conv1").filters == 8
    assert model.get_layer("block1_conv1").kernel_size == (5, 5)
    assert model.get_layer("block2_conv1").filters == 16
    assert model.get_layer("block2_conv2").filters == 16  # two convs in block 2 only
    assert model.get_layer("block2_conv1").kernel_size == (3, 3)
    assert model.get_layer("block3_conv1").filters == 24
    assert model.get_layer("block3_conv1").kernel_size == (1, 1)
    assert "block1_conv2" not in names and "block3_conv2" not in names
    assert "block3_bn1" in names and "block1_bn1" not in names
    assert model.get_layer("block1_dropout").rate == pytest.approx(0.1)
    assert "block2_dropout" not in names  # dropout 0 adds no layer
    # dense_dropout defaults to the last block's dropout
    assert model.get_layer("dense_dropout").rate == pytest.approx(0.3)
    assert model.output_shape == (None, 4)


def test_shared_value_applies_to_every_block():
    model = build_model({"conv_blocks": 2, "filters": 12, "dense_units": 0}, (16, 16, 1), 3)
    assert [model.get_layer(f"block{b}_conv1").filters for b in (1, 2)] == [12, 12]
    assert "dense" not in layer_names(model)  # dense_units 0 = no hidden dense layer


def test_too_many_blocks_skip_pooling_instead_of_crashing():
    config = {"conv_blocks": 8, "filters": 4, "kernel_size": 3, "padding": "same",
              "pool_size": 2, "dense_units": 8}  # fmt: skip
    model = build_model(config, (8, 8, 1), 10)
    names = layer_names(model)

    # 8 -> 4 -> 2 -> 1: three pools fit, the other five are skipped.
    assert [n for n in names if n.endswith("_pool")] == [f"block{b}_pool" for b in (1, 2, 3)]
    assert all(f"block{b}_conv1" in names for b in range(1, 9))
    assert model.get_layer("flatten").output.shape[1:] == (4,)  # 1x1x4
    probs = np.asarray(model.predict(np.zeros((2, 8, 8, 1), np.uint8), verbose=0))
    assert probs.shape == (2, 10)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_valid_conv_bigger_than_feature_map_fails_the_trial():
    config = {"conv_blocks": 3, "filters": 4, "kernel_size": 5, "padding": "valid",
              "pool_size": 2, "dense_units": 8}  # fmt: skip
    # block 1: 8 -> 4 (valid 5x5) -> 2 (pool); block 2: a 5x5 conv on 2x2 cannot fit.
    with pytest.raises(TrialFailed, match=r"block 2\b") as info:
        build_model(config, (8, 8, 1), 10)
    assert "2x2" in str(info.value) and "5x5" in str(info.value)


def test_valid_conv_inside_a_block_is_tracked():
    config = {"conv_blocks": 1, "filters": 4, "kernel_size": 3, "padding": "valid",
              "convs_per_block": 3, "pool_size": 1, "dense_units": 0}  # fmt: skip
    # 7 -> 5 -> 3 -> 1 fits exactly; a fourth conv would not.
    model = build_model(config, (7, 7, 1), 2)
    assert model.get_layer("flatten").output.shape[1:] == (4,)
    with pytest.raises(TrialFailed, match=r"block 1 conv 4"):
        build_model({**config, "convs_per_block": 4}, (7, 7, 1), 2)


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("adam", keras.optimizers.Adam),
        ("adamw", keras.optimizers.AdamW),
        ("nadam", keras.optimizers.Nadam),
        ("rmsprop", keras.optimizers.RMSprop),
        ("sgd", keras.optimizers.SGD),
    ],
)
def test_make_optimizer(name, cls):
    opt = make_optimizer({"optimizer": name, "learning_rate": 3e-3})
    assert type(opt) is cls
    lr = float(keras.ops.convert_to_numpy(opt.learning_rate))
    assert lr == pytest.approx(3e-3, rel=1e-6)


def test_sgd_uses_nesterov_momentum():
    opt = make_optimizer({"optimizer": "sgd", "learning_rate": 0.1})
    assert opt.nesterov is True
    assert float(opt.momentum) == pytest.approx(0.9)


def test_make_optimizer_defaults():
    opt = make_optimizer({})
    assert type(opt) is keras.optimizers.Adam
    assert float(keras.ops.convert_to_numpy(opt.learning_rate)) == pytest.approx(1e-3)


def test_compiled_model_trains_a_step():
    config = {**TUTORIAL, "filters": 4, "dense_units": 8, "optimizer": "sgd",
              "learning_rate": 0.05}  # fmt: skip
    model = compile_model(build_model(config, (8, 8, 1), 3), config)
    assert type(model.optimizer) is keras.optimizers.SGD
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(32, 8, 8, 1), dtype=np.uint8)
    y = rng.integers(0, 3, size=32)
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert set(history.history) >= {"loss", "accuracy"}
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return (x.reshape(-1, 8, 8, 1) * 16).clip(0, 255).astype(np.uint8), y


RECIPES = {
    "cosine with warmup": {"lr_schedule": "cosine", "warmup_epochs": 1},
    "one_cycle": {"lr_schedule": "one_cycle"},
    "plateau": {"lr_schedule": "plateau"},
    "label smoothing": {"label_smoothing": 0.1},
    "weight decay": {"optimizer": "adam", "weight_decay": 1e-4},
    "per-image crop and flip": {"augment_shift": 0.25, "augment_flip": "horizontal"},
}


@pytest.mark.parametrize("recipe", RECIPES.values(), ids=RECIPES.keys())
def test_each_training_recipe_trains_an_epoch_on_digits_saves_and_reloads(recipe, digits, tmp_path):
    from harness._trial.model import training_callbacks

    x, y = digits
    keras.utils.set_random_seed(0)  # above chance after two epochs, every time
    config = {"conv_blocks": 1, "filters": 8, "dense_units": 16, "learning_rate": 0.01, **recipe}
    model = compile_model(build_model(config, (8, 8, 1), 10), config, epochs=3, steps_per_epoch=26)
    history = model.fit(x, y, validation_split=0.1, epochs=2, batch_size=64, verbose=0,
                        callbacks=training_callbacks(config))  # fmt: skip
    assert np.isfinite(history.history["loss"]).all() and history.history["accuracy"][-1] > 0.1
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(
        reloaded.predict(x[:16], verbose=0), model.predict(x[:16], verbose=0), atol=1e-6
    )
    assert type(reloaded.loss) is type(model.loss)
    assert reloaded.evaluate(x[:64], y[:64], verbose=0)[0] == pytest.approx(
        model.evaluate(x[:64], y[:64], verbose=0)[0]
    )


def test_schedules_follow_their_shape():
    from harness._trial.model import OneCycle, learning_rate

    def at(schedule, step):
        return float(keras.ops.convert_to_numpy(schedule(step)))

    cosine = learning_rate({"lr_schedule": "cosine", "learning_rate": 0.01, "warmup_epochs": 2},
                           epochs=10, steps_per_epoch=10)  # fmt: skip
    assert at(cosine, 0) == pytest.approx(0.001) and at(cosine, 20) == pytest.approx(0.01)
    assert at(cosine, 60) < at(cosine, 20) and at(cosine, 100) == pytest.approx(0.0, abs=1e-6)
    cycle = OneCycle(peak=0.01, total_steps=100)
    assert at(cycle, 0) == pytest.approx(0.0004) and at(cycle, 30) == pytest.approx(0.01)
    assert at(cycle, 100) == pytest.approx(1e-6, rel=1e-3) and at(cycle, 15) < 0.01
    assert (
        learning_rate({"lr_schedule": "plateau", "learning_rate": 0.01}, epochs=5, steps_per_epoch=5) == 0.01
    )


def test_smoothed_sparse_crossentropy_equals_keras_categorical_smoothing():
    from harness._trial.model import SmoothedSparseCrossentropy

    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(5), size=8).astype("float32")
    labels = rng.integers(0, 5, size=8)
    ours = SmoothedSparseCrossentropy(0.2)(labels, probs)
    theirs = keras.losses.CategoricalCrossentropy(label_smoothing=0.2)(np.eye(5)[labels], probs)
    assert float(ours) == pytest.approx(float(theirs), rel=1e-5)


def test_shift_crops_each_image_at_its_own_offset():
    from harness._trial.model import RandomShift

    images = np.tile(np.arange(16, dtype="float32").reshape(1, 4, 4, 1), (64, 1, 1, 1))
    shifted = np.asarray(RandomShift(0.25, seed=1)(images, training=True))
    assert shifted.shape == images.shape
    assert len({s.tobytes() for s in shifted}) > 1  # not one offset for the whole batch
    for s in shifted:  # each is the image moved by at most one pixel, zeros where it left
        assert any(np.array_equal(s, np.roll(np.roll(images[0], dy, 0), dx, 1) * mask(dy, dx))
                   for dy in (-1, 0, 1) for dx in (-1, 0, 1))  # fmt: skip
    np.testing.assert_array_equal(RandomShift(0.25)(images, training=False), images)


def mask(dy: int, dx: int) -> np.ndarray:
    """Ones where a (dy, dx) shift of a 4x4 image keeps pixels, zeros where padding came in."""
    m = np.ones((4, 4, 1), dtype="float32")
    if dy > 0:
        m[:dy] = 0
    if dy < 0:
        m[dy:] = 0
    if dx > 0:
        m[:, :dx] = 0
    if dx < 0:
        m[:, dx:] = 0
    return m


def test_mixed_precision_builds_with_a_float32_softmax_and_leaves_the_policy_alone():
    config = {**TUTORIAL, "filters": 4, "dense_units": 8, "precision": "mixed_bfloat16"}
    model = build_model(config, (8, 8, 1), 3)
    assert model.get_layer("block1_conv1").compute_dtype == "bfloat16"
    assert model.get_layer("classes").compute_dtype == "float32"
    assert keras.config.dtype_policy().name == "float32"
