"""The explainer against values made by Keras itself, on layers of real Keras-written files.

Three layers: the seed layer (Keras 3), a 64-channel layer after a convolution of a Keras 3
model fitted a few steps (with a second 64-channel BN layer whose weights can be loaded into
the wrong place), and a layer of a Keras 2 file written by tf_keras. Mistakes that are a
TensorFlow behaviour (training mode, float16, a frozen layer, the moving update) are made by
Keras; the others by formulas written out here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
from conftest import SEED_VALUES

from bntui.core.analysis.explain import explain
from bntui.core.analysis.explain_moving import explain_moving_update
from bntui.core.model import BNLayer, ModelInfo
from bntui.core.reader import open_model
from bntui.core.tolerance import exact, typed

pytestmark = pytest.mark.tensorflow


@dataclass
class Case:
    """A layer read back by bntui, an input, and what Keras returned for it."""

    model: ModelInfo
    layer: BNLayer
    x: np.ndarray
    inference: np.ndarray
    training: np.ndarray
    float16: np.ndarray
    moving_mean_after: np.ndarray
    moving_variance_after: np.ndarray


def _keras_outputs(keras_layer, x: np.ndarray, make_half: Callable[[], object]) -> tuple[np.ndarray, ...]:  # type: ignore[no-untyped-def]
    """Inference, then float16 from a twin layer, then training mode (which moves the statistics)."""
    inference = np.asarray(keras_layer(x.astype(np.float32), training=False), dtype=np.float64)
    half = make_half()
    half.build(x.shape)  # type: ignore[attr-defined]
    half.set_weights([w.astype(np.float16) for w in keras_layer.get_weights()])  # type: ignore[attr-defined]
    float16 = np.asarray(half(x.astype(np.float16), training=False), dtype=np.float64)  # type: ignore[operator]
    training = np.asarray(keras_layer(x.astype(np.float32), training=True), dtype=np.float64)
    return inference, float16, training


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    import keras

    keras.utils.set_random_seed(12)  # the same weights on every run (TensorFlow's seed too)
    folder = tmp_path_factory.mktemp("explain")
    rng = np.random.default_rng(7)
    out: dict[str, Case] = {}

    # The seed layer, Keras 3.
    inputs = keras.Input((1,))
    seed_bn = keras.layers.BatchNormalization(name="bn")
    seed_model = keras.Model(inputs, seed_bn(inputs))
    seed_bn.set_weights([np.array([SEED_VALUES[k]], dtype=np.float32) for k in ("gamma", "beta", "moving_mean", "moving_variance")])
    seed_model.save(folder / "seed.keras")
    x = np.array([[1.0], [5.0]])
    out["seed"] = _case(folder / "seed.keras", "bn", x, seed_bn, lambda: keras.layers.BatchNormalization(dtype="float16"))

    # A conv net with two 64-channel BN layers, fitted a few steps.
    inputs = keras.Input((5, 5, 3))
    h = keras.layers.Conv2D(64, 3, padding="same")(inputs)
    h = keras.layers.BatchNormalization(name="bn_a")(h)
    h = keras.layers.Conv2D(64, 1)(h)
    h = keras.layers.BatchNormalization(name="bn_b")(h)
    conv = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.GlobalAveragePooling2D()(h)))
    conv.compile(optimizer="adam", loss="mse")
    conv.fit(rng.normal(size=(16, 5, 5, 3)), rng.normal(size=(16, 1)), epochs=2, batch_size=4, verbose=0)
    conv.save(folder / "conv.keras")
    x = rng.normal(0.5, 2.0, size=(2, 3, 3, 64))
    out["conv64"] = _case(folder / "conv.keras", "bn_a", x, conv.get_layer("bn_a"),
                          lambda: keras.layers.BatchNormalization(dtype="float16"))

    # A Keras 2 file written by tf_keras.
    import tf_keras

    inputs2 = tf_keras.Input((4,))
    h2 = tf_keras.layers.Dense(4)(inputs2)
    old = tf_keras.Model(inputs2, tf_keras.layers.BatchNormalization(name="bn")(h2))
    old.compile(optimizer="adam", loss="mse")
    old.fit(rng.normal(size=(32, 4)), rng.normal(size=(32, 4)), epochs=3, batch_size=8, verbose=0)
    old.save(folder / "keras2.h5")
    x = rng.normal(0.0, 1.5, size=(3, 4))
    out["keras2"] = _case(folder / "keras2.h5", "bn", x, old.get_layer("bn"),
                          lambda: tf_keras.layers.BatchNormalization(dtype="float16"))
    return out


def _case(path: Path, name: str, x: np.ndarray, keras_layer, make_half: Callable[[], object]) -> Case:  # type: ignore[no-untyped-def]
    model = open_model(path)
    layer = model.find(name)
    inference, float16, training = _keras_outputs(keras_layer, x, make_half)
    mean_after, variance_after = (np.asarray(w, dtype=np.float64) for w in keras_layer.get_weights()[2:4])
    return Case(model, layer, x, inference, training, float16, mean_after, variance_after)


CASES = ("seed", "conv64", "keras2")


def _first(case: Case, got: np.ndarray) -> tuple[str, bool]:
    result = explain(case.layer, case.x, exact(got), model=case.model)
    return result.explanations[0].code, result.explanations[0].reproduces


@pytest.mark.parametrize("name", CASES)
def test_keras_inference_is_correct(cases: dict[str, Case], name: str) -> None:
    assert _first(cases[name], cases[name].inference) == ("correct", True)


@pytest.mark.parametrize("name", CASES)
def test_keras_training_mode_is_batch_statistics(cases: dict[str, Case], name: str) -> None:
    assert _first(cases[name], cases[name].training) == ("batch_statistics", True)


@pytest.mark.parametrize("name", CASES)
def test_keras_float16_layer_is_float16(cases: dict[str, Case], name: str) -> None:
    assert _first(cases[name], cases[name].float16) == ("float16", True)


@pytest.mark.parametrize("name", CASES)
def test_keras_moving_update_is_biased(cases: dict[str, Case], name: str) -> None:
    case = cases[name]
    # Keras 3's layer and tf_keras' non-fused 2D layer both update with the biased variance.
    result = explain_moving_update(case.layer, case.x, exact(case.moving_mean_after), exact(case.moving_variance_after))
    assert (result.explanations[0].code, result.explanations[0].reproduces) == ("moving_update_biased", True)


def test_tf_keras_fused_update_is_unbiased(cases: dict[str, Case]) -> None:
    """tf.keras' fused kernel (4D input) updates the moving variance with n / (n - 1)."""
    import tf_keras

    case = cases["keras2"]
    layer = tf_keras.layers.BatchNormalization(axis=-1, fused=True)
    x = np.random.default_rng(3).normal(1.0, 2.0, size=(2, 2, 2, case.layer.channels))
    layer.build(x.shape)
    layer.set_weights([np.asarray(w, dtype=np.float32) for w in (case.layer.gamma, case.layer.beta,
                                                                  case.layer.moving_mean, case.layer.moving_variance)])
    layer(x.astype(np.float32), training=True)
    variance_after = np.asarray(layer.moving_variance, dtype=np.float64)
    channels_last = replace(case.layer, axis=3)  # the same weights, read as a 4D channels-last layer
    result = explain_moving_update(channels_last, x, None, exact(variance_after))
    assert (result.explanations[0].code, result.explanations[0].reproduces) == ("moving_update_unbiased", True)


def test_frozen_layer_in_training_mode_is_correct(tmp_path: Path) -> None:
    """A frozen layer (trainable=False) runs in inference mode even with training=True."""
    import keras

    inputs = keras.Input((1,))
    bn = keras.layers.BatchNormalization(name="bn")
    model = keras.Model(inputs, bn(inputs))
    bn.set_weights([np.array([SEED_VALUES[k]], dtype=np.float32) for k in ("gamma", "beta", "moving_mean", "moving_variance")])
    bn.trainable = False
    model.save(tmp_path / "frozen.keras")
    x = np.array([[1.0], [5.0]])
    got = np.asarray(bn(x.astype(np.float32), training=True), dtype=np.float64)
    layer = open_model(tmp_path / "frozen.keras").find("bn")
    result = explain(layer, x, exact(got))
    assert (result.explanations[0].code, result.explanations[0].reproduces) == ("correct", True)
    assert "frozen" in result.explanations[0].explanation


Vector = np.ndarray | float


def _bn(x: np.ndarray, mean: Vector, var: Vector, gamma: Vector, beta: Vector, eps: float) -> np.ndarray:
    """The textbook formula on channels-last data, written out independently of bntui."""
    return gamma * (x - mean) / np.sqrt(var + eps) + beta


def _stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    flat = x.reshape(-1, x.shape[-1])
    return flat.mean(axis=0), flat.var(axis=0), flat.shape[0]


#: code -> the mistake on channels-last x with the layer's (mean, var, gamma, beta, eps).
NUMPY_MISTAKES: dict[str, Callable[..., np.ndarray]] = {
    "batch_statistics_unbiased": lambda x, m, v, g, b, e: _bn(x, _stats(x)[0], _stats(x)[1] * _stats(x)[2] / (_stats(x)[2] - 1), g, b, e),
    "batch_standardisation": lambda x, m, v, g, b, e: (x - _stats(x)[0]) / np.sqrt(_stats(x)[1] + e),
    "epsilon_value": lambda x, m, v, g, b, e: _bn(x, m, v, g, b, 1e-5),
    "epsilon_outside_sqrt": lambda x, m, v, g, b, e: g * (x - m) / (np.sqrt(v) + e) + b,
    "variance_not_square_rooted": lambda x, m, v, g, b, e: g * (x - m) / (v + e) + b,
    "variance_is_std": lambda x, m, v, g, b, e: g * (x - m) / np.sqrt(np.sqrt(v) + e) + b,
    "inverse_std_as_variance": lambda x, m, v, g, b, e: _bn(x, m, 1 / np.sqrt(v + e), g, b, e),
    "mean_variance_swapped": lambda x, m, v, g, b, e: _bn(x, v, np.abs(m), g, b, e),
    "gamma_beta_swapped": lambda x, m, v, g, b, e: _bn(x, m, v, b, g, e),
    "gamma_ignored": lambda x, m, v, g, b, e: _bn(x, m, v, 1.0, b, e),
    "beta_ignored": lambda x, m, v, g, b, e: _bn(x, m, v, g, 0.0, e),
    "wrong_axis_standardisation": lambda x, m, v, g, b, e: ((x - x.mean(axis=-1, keepdims=True))
                                                            / np.sqrt(x.var(axis=-1, keepdims=True) + e)),
}


def _weights(layer: BNLayer) -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(a, dtype=np.float64) for a in (layer.moving_mean, layer.moving_variance,
                                                            layer.gamma_or_one, layer.beta_or_zero))


@pytest.mark.parametrize("name", ("conv64", "keras2"))
@pytest.mark.parametrize("code", list(NUMPY_MISTAKES))
def test_numpy_mistakes_rank_first(cases: dict[str, Case], name: str, code: str) -> None:
    case = cases[name]
    m, v, g, b = _weights(case.layer)
    if code == "mean_variance_swapped":
        m = np.abs(m)  # a negative mean used as a variance gives NaN: keep the test about the swap
        case = Case(case.model, _with_mean(case.layer, m), case.x, *[np.empty(0)] * 5)
    got = NUMPY_MISTAKES[code](case.x, m, v, g, b, case.layer.epsilon)
    result = explain(case.layer, case.x, exact(got), model=case.model)
    first = result.explanations[0]
    assert (first.code, first.reproduces) == (code, True), result.to_text()[:2000]


def _with_mean(layer: BNLayer, mean: np.ndarray) -> BNLayer:
    return replace(layer, moving_mean=mean.astype(layer.moving_mean.dtype))


def test_other_layer_weights_names_the_layer(cases: dict[str, Case]) -> None:
    case = cases["conv64"]
    other = case.model.find("bn_b")
    m, v, g, b = _weights(other)
    got = _bn(case.x, m, v, g, b, case.layer.epsilon)
    result = explain(case.layer, case.x, exact(got), model=case.model)
    first = result.explanations[0]
    assert (first.code, first.reproduces, first.parameters["layer"]) == ("other_layer_weights", True, other.path)


def test_conv_layer_values_printed_with_four_digits_match(cases: dict[str, Case]) -> None:
    case = cases["conv64"]
    text = "[" + ", ".join(f"{v:.4g}" for v in case.training.ravel()) + "]"
    result = explain(case.layer, case.x, typed(text), model=case.model)
    assert "batch_statistics" in [e.code for e in result.explanations if e.reproduces]


def test_one_channel_of_the_conv_layer(cases: dict[str, Case]) -> None:
    case = cases["conv64"]
    channel = 17
    got = case.training[..., channel].ravel()
    result = explain(case.layer, case.x, exact(got), channel=channel, model=case.model)
    assert (result.explanations[0].code, result.explanations[0].reproduces) == ("batch_statistics", True)
    assert result.explanations[0].channels == [channel]


def test_a_mistake_in_some_channels_says_which(cases: dict[str, Case]) -> None:
    case = cases["conv64"]
    m, v, g, b = _weights(case.layer)
    got = _bn(case.x, m, v, g, b, case.layer.epsilon)
    swapped = [3, 40]
    got[..., swapped] = _bn(case.x, m, v, b, g, case.layer.epsilon)[..., swapped]
    result = explain(case.layer, case.x, exact(got), model=case.model)
    assert result.explanations[0].code == "unexplained"
    partial = {e.code: e.channels for e in result.explanations}
    assert partial.get("gamma_beta_swapped") == swapped


def test_mixed_float16_policy_layer(tmp_path: Path) -> None:
    """Under mixed_float16 Keras' own output is float16: that is `correct`; the float32 formula
    is the policy ignored (code float16)."""
    import keras

    inputs = keras.Input((1,))
    bn = keras.layers.BatchNormalization(name="bn", dtype="mixed_float16")
    model = keras.Model(inputs, bn(inputs))
    bn.set_weights([np.array([SEED_VALUES[k]], dtype=np.float32) for k in ("gamma", "beta", "moving_mean", "moving_variance")])
    model.save(tmp_path / "mixed.keras")
    layer = open_model(tmp_path / "mixed.keras").find("bn")
    x = np.array([[1.0], [5.0], [-2.5]])
    keras_output = np.asarray(bn(x.astype(np.float16), training=False), dtype=np.float64)
    assert explain(layer, x, exact(keras_output)).explanations[0].code == "correct"
    g, b, m, v = (SEED_VALUES[k] for k in ("gamma", "beta", "moving_mean", "moving_variance"))
    float32_formula = g * (x - m) / np.sqrt(v + layer.epsilon) + b
    first = explain(layer, x, exact(float32_formula)).explanations[0]
    assert (first.code, first.reproduces) == ("float16", True)
    assert "policy ignored" in first.parameters["arithmetic"]
