"""bntui against Keras itself on every BN variant Keras can save (issue 9).

Every expected value is computed here by Keras (Keras 3, or tf_keras for the Keras 2 layout and
for ghost batches) on the same layer and input; files are written by Keras and read by bntui.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from bntui.core.agreement import judge
from bntui.core.precision import round_to
from bntui.core.reader import open_model
from bntui.core.steps import BATCH, MOVING, compute

pytestmark = pytest.mark.tensorflow

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="module")
def keras():  # type: ignore[no-untyped-def]
    import keras as k

    return k


def _fit(model, x, steps: int = 3):  # type: ignore[no-untyped-def]
    """A few steps of SGD from kernels that depend only on this call: other test modules draw
    from Keras' global generator first, and an unlucky start can diverge to inf."""
    y = np.random.default_rng(1).normal(size=np.shape(model(x[:1]))).repeat(x.shape[0], 0).astype("float32")
    model.set_weights([np.random.default_rng(i).normal(0, 0.05, w.shape).astype(w.dtype) if w.ndim > 1 else w
                       for i, w in enumerate(model.get_weights())])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, epochs=steps, batch_size=max(1, x.shape[0] // 2), verbose=0, shuffle=False)
    return model


def _layer(info, name):  # type: ignore[no-untyped-def]
    return info.find(name)


def _assert_within(computation, mode, got, precision="float32") -> None:  # type: ignore[no-untyped-def]
    check = judge(computation, mode, got, precision)
    assert check.agrees, check.worst.describe() if check.worst else check


# -- 1. frozen layers -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def frozen_files(tmp_path_factory, keras):  # type: ignore[no-untyped-def]
    directory = tmp_path_factory.mktemp("frozen")
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(16, 6, 6, 3)) * 3 + 2).astype("float32")
    inp = keras.Input((6, 6, 3))
    h = keras.layers.Conv2D(8, 3, name="conv")(inp)
    h = keras.layers.BatchNormalization(name="bn")(h)
    model = _fit(keras.Model(inp, keras.layers.GlobalAveragePooling2D()(h)), x)
    model.get_layer("bn").trainable = False
    paths = {suffix: directory / f"frozen.{suffix}" for suffix in ("keras", "h5")}
    for path in paths.values():
        model.save(path)
    features = keras.Model(inp, model.get_layer("conv").output)(x[:4]).numpy()
    return paths, model, features


@pytest.mark.parametrize("suffix", ["keras", "h5"])
def test_frozen_layer_training_output_is_what_keras_returns(frozen_files, suffix) -> None:  # type: ignore[no-untyped-def]
    paths, model, features = frozen_files
    layer = open_model(paths[suffix]).find("bn")
    assert layer.trainable is False
    computation = compute(layer, features.astype(np.float64))
    keras_training = model.get_layer("bn")(features, training=True).numpy()
    assert computation.training.uses == MOVING and "frozen" in computation.training.reason
    _assert_within(computation, "training", keras_training)
    # The unfrozen result is the batch-statistics one: Keras gives it for a trainable copy.
    import keras

    copy = keras.layers.BatchNormalization.from_config({**model.get_layer("bn").get_config(), "trainable": True})
    copy.build(features.shape)
    copy.set_weights(model.get_layer("bn").get_weights())
    batch = copy(features, training=True).numpy()
    unfrozen = computation.training.unfrozen
    assert unfrozen is not None and unfrozen.uses == BATCH
    np.testing.assert_allclose(unfrozen.output, batch, rtol=0, atol=1e-4 * np.abs(batch).max())
    assert np.abs(batch - keras_training).max() > 1e-2  # the two really differ here


def test_standalone_keras_2_era_says_frozen_layers_used_batch_statistics(frozen_files) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    paths, _, features = frozen_files
    layer = replace(open_model(paths["h5"]).find("bn"), keras_version="2.2.4")
    notes = compute(layer, features.astype(np.float64)).notes()
    assert any("standalone Keras 2.2.4" in note for note in notes)
    assert not any("standalone" in note for note in compute(replace(layer, keras_version="2.13.1"),
                                                            features.astype(np.float64)).notes())


# -- 2. dtype policies ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def policy_files(tmp_path_factory, keras):  # type: ignore[no-untyped-def]
    directory = tmp_path_factory.mktemp("policies")
    files = {}
    rng = np.random.default_rng(2)
    for policy in ("mixed_float16", "mixed_bfloat16", "float16", "bfloat16"):
        inp = keras.Input((4,))
        bn = keras.layers.BatchNormalization(name="bn", dtype=policy)
        model = keras.Model(inp, bn(inp))
        weights = [rng.uniform(0.5, 2, 4), rng.normal(size=4), rng.normal(size=4) * 100, rng.uniform(0.1, 9, 4)]
        bn.set_weights([w.astype(v.dtype) for w, v in zip(weights, bn.get_weights())])
        path = directory / f"{policy}.keras"
        model.save(path)
        files[policy] = (path, model)
    return files


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16", "float16", "bfloat16"])
def test_dtype_policy_output_is_keras_bit_for_bit(policy_files, policy) -> None:  # type: ignore[no-untyped-def]
    path, model = policy_files[policy]
    layer = open_model(path).find("bn")  # bfloat16 weights are an opaque 2-byte type in HDF5
    assert layer.dtype_policy == policy
    np.testing.assert_array_equal(layer.moving_mean, np.asarray(model.get_layer("bn").moving_mean, dtype=np.float32))
    x = np.random.default_rng(3).normal(size=(64, 4)) * 100 + 1000.3
    computation = compute(layer, x)
    keras_out = model.get_layer("bn")(x.astype("float32"), training=False).numpy().astype(np.float32)
    ours = computation.inference.output_as_keras.astype(np.float32)
    # Bit for bit wherever the float32 folded form is TensorFlow's own (rsqrt may be 1 ulp
    # off on some channels, item 8): run TF's float32 layer on the same cast input to know.
    tf32 = _float32_twin(model.get_layer("bn"), computation.x_keras)
    same32 = computation.output_float32 == tf32
    assert same32.mean() > 0.5
    np.testing.assert_array_equal(ours[same32], keras_out[same32])
    # Elsewhere at most one step of the policy's type.
    dtype = layer.compute_dtype
    step = np.abs(round_to(np.nextafter(np.abs(keras_out), np.inf), dtype).astype(np.float32) - np.abs(keras_out))
    assert np.all(np.abs(ours - keras_out) <= np.maximum(step, np.spacing(np.abs(keras_out)) * 2**16))


def _float32_twin(bn, x):  # type: ignore[no-untyped-def]
    import keras

    twin = keras.layers.BatchNormalization.from_config({**bn.get_config(), "dtype": "float32"})
    twin.build(x.shape)
    twin.set_weights([np.asarray(w, dtype=np.float32) for w in bn.get_weights()])
    return twin(x.astype("float32"), training=False).numpy()


def test_input_1000_3_is_1000_5_in_float16(policy_files) -> None:  # type: ignore[no-untyped-def]
    path, model = policy_files["mixed_float16"]
    layer = open_model(path).find("bn")
    computation = compute(layer, np.full((1, 4), 1000.3))
    assert np.all(computation.x_keras == 1000.5)
    keras_out = model.get_layer("bn")(np.full((1, 4), 1000.3, "float32"), training=False).numpy()
    np.testing.assert_allclose(computation.inference.output_as_keras.astype(np.float32), keras_out, rtol=2e-3)
    keys = [step.key for step in computation.float32_steps(0)]
    assert keys[0] == "x_cast" and "y_cast" in keys


def test_verify_builds_its_layer_with_the_files_policy(policy_files) -> None:  # type: ignore[no-untyped-def]
    from bntui import tf_bridge

    path, _ = policy_files["mixed_float16"]
    layer = open_model(path).find("bn")
    x = np.full((2, 4), 1000.3)
    verdict = tf_bridge.verify(compute(layer, x))
    assert verdict.inference.policy is not None and verdict.agrees, verdict.summary()


# -- 3. renorm and 4. ghost batches ---------------------------------------------------------


@pytest.fixture(scope="module")
def renorm_files(tmp_path_factory, keras):  # type: ignore[no-untyped-def]
    import tf_keras

    directory = tmp_path_factory.mktemp("renorm")
    x = (np.random.default_rng(4).normal(size=(32, 5)) * 2 + 1).astype("float32")
    files = {}
    for name, module in (("keras3", keras), ("tf_keras", tf_keras)):
        inp = module.Input((5,))
        bn = module.layers.BatchNormalization(name="bn", renorm=True, renorm_clipping={"rmax": 1.5, "rmin": 0.7, "dmax": 0.3},
                                              renorm_momentum=0.9, momentum=0.9)
        model = _fit(module.Model(inp, bn(inp)), x, steps=4)
        path = directory / (f"{name}.keras" if name == "keras3" else f"{name}.h5")
        model.save(path)
        files[name] = (path, model.get_layer("bn"))
    return files, x


@pytest.mark.parametrize("which", ["keras3", "tf_keras"])
def test_renorm_training_matches_keras(renorm_files, which) -> None:  # type: ignore[no-untyped-def]
    files, x = renorm_files
    path, bn = files[which]
    layer = open_model(path).find("bn")
    assert layer.renorm and layer.renorm_clipping == {"rmax": 1.5, "rmin": 0.7, "dmax": 0.3}
    np.testing.assert_array_equal(layer.renorm_stddev, np.asarray(bn.renorm_stddev))
    batch = x[:8].astype(np.float64)
    computation = compute(layer, batch)
    before = [w.copy() for w in bn.get_weights()]
    keras_training = np.asarray(bn(batch.astype("float32"), training=True))
    bn.set_weights(before)  # calling with training=True updated them
    _assert_within(computation, "training", keras_training)
    _assert_within(computation, "inference", np.asarray(bn(batch.astype("float32"), training=False)))
    assert computation.training.renorm_r is not None


@pytest.fixture(scope="module")
def ghost_file(tmp_path_factory):  # type: ignore[no-untyped-def]
    import tf_keras

    x = (np.random.default_rng(5).normal(size=(16, 3)) * 3 + 1).astype("float32")
    inp = tf_keras.Input((3,))
    bn = tf_keras.layers.BatchNormalization(name="bn", virtual_batch_size=4)
    model = _fit(tf_keras.Model(inp, bn(inp)), x)
    path = tmp_path_factory.mktemp("ghost") / "ghost.h5"
    model.save(path)
    return path, bn, x


def test_ghost_batches_match_tf_keras(ghost_file) -> None:  # type: ignore[no-untyped-def]
    path, bn, x = ghost_file
    layer = open_model(path).find("bn")
    assert layer.virtual_batch_size == 4 and layer.channels == 3
    computation = compute(layer, x.astype(np.float64))
    before = [w.copy() for w in bn.get_weights()]
    keras_training = np.asarray(bn(x, training=True))
    bn.set_weights(before)
    _assert_within(computation, "training", keras_training)
    _assert_within(computation, "inference", np.asarray(bn(x, training=False)))


# -- 5. layers inside custom blocks, subclassed models, wrappers ----------------------------


@pytest.fixture(scope="module")
def held_files(tmp_path_factory, keras):  # type: ignore[no-untyped-def]
    directory = tmp_path_factory.mktemp("held")
    layers = keras.layers
    register = keras.saving.register_keras_serializable(package="bntui_test")

    @register
    class Block(layers.Layer):
        def __init__(self, **kwargs):  # type: ignore[no-untyped-def]
            super().__init__(**kwargs)
            self.conv = layers.Dense(3)
            self.bn = layers.BatchNormalization()

        def call(self, x, training=None):  # type: ignore[no-untyped-def]
            return self.bn(self.conv(x), training=training)

    @register
    class Cell(layers.Layer):
        def __init__(self, units=3, **kwargs):  # type: ignore[no-untyped-def]
            super().__init__(**kwargs)
            self.units, self.state_size = units, units
            self.d, self.bn = layers.Dense(units), layers.BatchNormalization()

        def call(self, x, states, training=None):  # type: ignore[no-untyped-def]
            h = self.bn(self.d(x) + states[0], training=training)
            return h, [h]

        def get_config(self):  # type: ignore[no-untyped-def]
            return {**super().get_config(), "units": self.units}

    @register
    class Sub(keras.Model):
        def __init__(self, **kwargs):  # type: ignore[no-untyped-def]
            super().__init__(**kwargs)
            self.d, self.bn1 = layers.Dense(4), layers.BatchNormalization()

        def call(self, x, training=None):  # type: ignore[no-untyped-def]
            return self.bn1(self.d(x), training=training)

    inp = keras.Input((5, 4))
    h = layers.TimeDistributed(layers.BatchNormalization(name="td_bn"))(inp)
    h = layers.Bidirectional(layers.RNN(Cell(3), return_sequences=True))(h)
    out = Block(name="block")(h)
    model = _fit(keras.Model(inp, out), np.random.default_rng(6).normal(size=(8, 5, 4)).astype("float32"))
    model.save(directory / "held.keras")
    model.save_weights(directory / "held.weights.h5")
    sub = Sub()
    _fit(sub, np.random.default_rng(7).normal(size=(8, 3)).astype("float32"))
    sub.save_weights(directory / "sub.weights.h5")
    sub.save(directory / "sub.keras")
    expected = {
        "time_distributed/td_bn": model.get_layer("time_distributed").layer,
        "bidirectional/forward_layer/cell/bn": model.get_layer("bidirectional").forward_layer.cell.bn,
        "bidirectional/backward_layer/cell/bn": model.get_layer("bidirectional").backward_layer.cell.bn,
        "block/bn": model.get_layer("block").bn,
    }
    return directory, expected, sub


@pytest.mark.parametrize("name", ["held.keras", "held.weights.h5"])
def test_bn_held_by_custom_blocks_and_wrappers_is_found(held_files, name) -> None:  # type: ignore[no-untyped-def]
    directory, expected, _ = held_files
    info = open_model(directory / name)
    assert {layer.path for layer in info.layers} == set(expected)
    for path, keras_bn in expected.items():
        layer = info.find(path)
        for ours, theirs in zip([layer.gamma, layer.beta, layer.moving_mean, layer.moving_variance], keras_bn.get_weights()):
            np.testing.assert_array_equal(ours, theirs)


def test_subclassed_model_files_open(held_files) -> None:  # type: ignore[no-untyped-def]
    directory, _, sub = held_files
    for name in ("sub.keras",):
        layer = open_model(directory / name).find("bn1")
        np.testing.assert_array_equal(layer.moving_variance, np.asarray(sub.bn1.moving_variance))


# -- 6. one ulp, and 7. fair verification on realistic activations --------------------------


@pytest.fixture(scope="module")
def realistic(tmp_path_factory, keras):  # type: ignore[no-untyped-def]
    """A conv net with a 112x112x64 activation and a nested block, fitted a few steps, and the
    real input of every BN layer captured by Keras through a multi-output model."""
    layers = keras.layers
    rng = np.random.default_rng(8)
    inp = keras.Input((112, 112, 3))
    h = layers.Conv2D(64, 3, padding="same", name="conv1")(inp)
    h = layers.BatchNormalization(name="conv1_bn", epsilon=1.001e-5)(h)
    h = layers.ReLU()(h)
    block_in = keras.Input((56, 56, 64))
    b = layers.Conv2D(32, 1, name="b_conv")(block_in)
    b = layers.BatchNormalization(name="b_bn")(b)
    block = keras.Model(block_in, b, name="block")
    h = block(layers.MaxPooling2D()(h))
    h = layers.GlobalAveragePooling2D()(h)
    h = layers.Dense(2048, name="wide")(h)
    h = layers.BatchNormalization(name="wide_bn")(h)
    model = keras.Model(inp, layers.Dense(1)(h))
    x = (rng.uniform(0, 255, size=(8, 112, 112, 3))).astype("float32")
    _fit(model, x, steps=2)
    path = tmp_path_factory.mktemp("realistic") / "realistic.keras"
    model.save(path)
    probe = keras.Model(inp, [model.get_layer("conv1").output, model.get_layer("wide").output])
    conv1, wide = probe(x[:2])
    block_probe = keras.Model(block_in, block.get_layer("b_conv").output)
    b_in = block_probe(layers.MaxPooling2D()(layers.ReLU()(model.get_layer("conv1_bn")(conv1, training=False))))
    inputs = {"conv1_bn": np.asarray(conv1), "block/b_bn": np.asarray(b_in), "wide_bn": np.asarray(wide)}
    return path, inputs


def test_every_layer_agrees_with_tensorflow_on_real_activations(realistic) -> None:  # type: ignore[no-untyped-def]
    from bntui import tf_bridge

    path, inputs = realistic
    info = open_model(path)
    assert inputs["conv1_bn"].shape == (2, 112, 112, 64) and info.find("wide_bn").channels == 2048
    for layer_path, x in inputs.items():
        computation = compute(info.find(layer_path), x.astype(np.float64))
        verdict = tf_bridge.verify(computation)
        assert verdict.agrees, (layer_path, verdict.summary())
        # One ulp everywhere: term-scaled, so outputs that cancel near 0 are not "millions" off.
        assert computation.max_ulp <= 4, layer_path


@pytest.mark.parametrize("mistake", ["epsilon", "mean", "swap"])
def test_a_wrong_reference_disagrees(realistic, mistake) -> None:  # type: ignore[no-untyped-def]
    """TensorFlow runs the real layer; bntui computes a deliberately wrong one: it must say so."""
    from dataclasses import replace

    from bntui import tf_bridge

    path, inputs = realistic
    layer = open_model(path).find("conv1_bn")
    x = inputs["conv1_bn"][:1].astype(np.float64)
    if mistake == "epsilon":
        # Epsilon only shows where the variance is comparable to it (a 1% change of 1e-5 next
        # to a variance of 100 is below float32's resolution): give every channel such a
        # variance, as collapsed channels of real models have.
        layer = replace(layer, moving_variance=np.full_like(layer.moving_variance, 2e-5))
    real = tf_bridge.verify(compute(layer, x))
    wrong = {
        "epsilon": replace(layer, epsilon=layer.epsilon * 1.01),
        "mean": replace(layer, moving_mean=layer.moving_mean * (1 + 1e-4)),
        "swap": replace(layer, gamma=layer.beta, beta=layer.gamma),
    }[mistake]
    check = judge(compute(wrong, x), "inference", real.inference.tensorflow_output, "float32")
    assert not check.agrees
    assert check.worst is not None and 0 <= check.worst.channel < 64


def test_float64_policy_returns_float64(keras, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The demo's seed layer is stored in float64: Keras computes it in float64."""
    from conftest import SEED

    model = keras.models.load_model(SEED, compile=False)
    bn = model.layers[-1]
    layer = open_model(SEED).layers[0]
    assert layer.dtype_policy == "float64"
    x = np.array([[[1.0], [5.0]]])  # the seed's input shape (1, 2, 1)
    keras_out = np.asarray(bn(x, training=False))
    assert keras_out.dtype == np.float64
    np.testing.assert_allclose(compute(layer, x).inference.output_as_keras, keras_out, rtol=4 * 2.0**-52)


@pytest.fixture(scope="module")
def frozen_mixed(tmp_path_factory, keras):  # type: ignore[no-untyped-def]
    """A fine-tuned transfer model as people have them: a conv backbone whose BN layers are
    frozen, under mixed_float16, fitted a few steps; saved as .keras. The real input and output
    of every BN layer is captured by Keras through a multi-output model."""
    layers = keras.layers
    rng = np.random.default_rng(9)
    inp = keras.Input((32, 32, 3))
    h = inp
    for index, width in enumerate((16, 32)):
        h = layers.Conv2D(width, 3, padding="same", name=f"conv{index}", dtype="mixed_float16")(h)
        h = layers.BatchNormalization(name=f"bn{index}", dtype="mixed_float16")(h)
        h = layers.ReLU(dtype="mixed_float16")(h)
    out = layers.Dense(1, dtype="float32")(layers.GlobalAveragePooling2D()(h))
    model = keras.Model(inp, out)
    x = (rng.uniform(0, 255, (8, 32, 32, 3)) / 255).astype("float32")  # pixels scaled as usual
    _fit(model, x, steps=2)
    for index in range(2):
        model.get_layer(f"bn{index}").trainable = False
    _fit(model, x, steps=2)  # fine-tuning with the backbone's BN frozen
    path = tmp_path_factory.mktemp("frozen_mixed") / "transfer.keras"
    model.save(path)
    probe = keras.Model(inp, [t for i in range(2) for t in (model.get_layer(f"conv{i}").output,
                                                             model.get_layer(f"bn{i}").output)])
    outputs = [np.asarray(t) for t in probe(x[:2], training=True)]  # training=True: frozen ignores it
    return path, {f"bn{i}": (outputs[2 * i], outputs[2 * i + 1]) for i in range(2)}


def test_sweep_frozen_mixed_precision_model(frozen_mixed) -> None:  # type: ignore[no-untyped-def]
    from bntui import tf_bridge

    path, captured = frozen_mixed
    info = open_model(path)
    for name, (layer_input, layer_output) in captured.items():
        layer = info.find(name)
        assert layer.dtype_policy == "mixed_float16" and layer.trainable is False
        assert layer_input.dtype == np.float16 and layer_output.dtype == np.float16
        assert np.isfinite(layer_output).all()
        computation = compute(layer, layer_input.astype(np.float64))
        # frozen: training mode returns exactly what inference returns, casts included
        np.testing.assert_array_equal(computation.training.output_as_keras, computation.inference.output_as_keras)
        # what the model returned with training=True is the frozen, float16 inference output
        ours = computation.training.output_as_keras.astype(np.float16)
        differ = ours != layer_output
        # Bit for bit except where TF's float32 rsqrt is an ulp off (see the policy test):
        # those are rare and one float16 step at most.
        assert differ.mean() < 0.01, name
        steps = np.abs(ours[differ].astype(np.float64) - layer_output[differ].astype(np.float64))
        assert np.all(steps <= np.spacing(np.abs(layer_output[differ])).astype(np.float64) * 1.0001), name
        verdict = tf_bridge.verify(computation)
        assert verdict.agrees, (name, verdict.summary())


def test_list_json_says_what_each_call_does_with_a_frozen_layer(frozen_files) -> None:  # type: ignore[no-untyped-def]
    """--list --json carries the mode audit per layer: a frozen layer uses its moving statistics
    in fit and with training=True too, and never updates them (what the Keras test above saw)."""
    from bntui.core.report import model_dict

    paths, _, _ = frozen_files
    layer = model_dict(open_model(paths["keras"]))["layers"][0]
    assert layer["trainable"] is False and layer["call_training"] is None
    for call in ("predict", "fit", "call_training_true", "call"):
        assert layer["behaviour"][call] == {"statistics": "moving", "updates_moving_statistics": False,
                                            "variance_update": None}
