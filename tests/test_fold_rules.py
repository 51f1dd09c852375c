"""Fold rules that need no TensorFlow: the arithmetic on hand-made weights, and the edge cases.

The layers here are plain data (a BNLayer and the FeedingLayer the reader would produce), so
each rule is checked against the formula written out in the test.
"""

from __future__ import annotations

import numpy as np

from bntui.core.analysis.fold import fold_layer, output_channels_view
from bntui.core.feeding_layers import FeedingLayer
from bntui.core.model import BNLayer


def _bn(channels: int, *, variance: np.ndarray | None = None, gamma: np.ndarray | None = None, axis: int = -1) -> BNLayer:
    rng = np.random.default_rng(channels)
    return BNLayer(
        name="bn", path="bn", axis=axis, epsilon=1e-3, momentum=0.99, center=True, scale=True,
        gamma=rng.uniform(0.5, 2, channels) if gamma is None else gamma,
        beta=rng.normal(0, 1, channels), moving_mean=rng.normal(0, 1, channels),
        moving_variance=rng.uniform(0.1, 2, channels) if variance is None else variance,
    )


def _feeding(class_name: str, weights: dict[str, np.ndarray], **config: object) -> FeedingLayer:
    return FeedingLayer(bn_path="bn", name="conv", path="conv", class_name=class_name,
                        config={"activation": "linear", **config}, consumers=("bn",), weights=weights)


def test_fold_formula_per_output_channel_for_every_kernel_layout() -> None:
    rng = np.random.default_rng(0)
    cases = {
        "Conv2D": (rng.normal(0, 1, (3, 3, 2, 4)), lambda w, s: w * s),
        "Conv2DTranspose": (rng.normal(0, 1, (3, 3, 4, 2)), lambda w, s: w * s[:, None]),  # (..., out, in)
        "DepthwiseConv2D": (rng.normal(0, 1, (3, 3, 2, 2)), lambda w, s: w * s.reshape(2, 2)),  # channel i*2 + m
        "Dense": (rng.normal(0, 1, (5, 4)), lambda w, s: w * s),
    }
    for class_name, (kernel, expected_kernel) in cases.items():
        layer = _bn(4)
        role = "depthwise_kernel" if class_name.startswith("Depthwise") else "kernel"
        bias = rng.normal(0, 1, 4)
        fold = fold_layer(layer, _feeding(class_name, {role: kernel, "bias": bias}))
        assert fold.foldable and fold.folded is not None, (class_name, fold.reason)
        s = layer.gamma_or_one / np.sqrt(layer.moving_variance + layer.epsilon)
        np.testing.assert_allclose(fold.folded[role], expected_kernel(kernel, s), rtol=1e-15)
        np.testing.assert_allclose(fold.folded["bias"], (bias - layer.moving_mean) * s + layer.beta_or_zero, rtol=1e-15)


def test_depthwise_output_channel_order_is_input_times_multiplier() -> None:
    kernel = np.arange(2 * 3, dtype=np.float64).reshape(1, 1, 2, 3)  # 2 inputs, multiplier 3
    view = output_channels_view(kernel, "DepthwiseConv2D")
    assert view.shape == (1, 6) and view[0].tolist() == [0, 1, 2, 3, 4, 5]


def test_non_positive_variance_plus_epsilon_is_refused() -> None:
    layer = _bn(3, variance=np.array([1.0, -0.5, 0.2]))
    fold = fold_layer(layer, _feeding("Dense", {"kernel": np.ones((2, 3)), "bias": np.zeros(3)}))
    assert not fold.foldable and "var + eps <= 0" in str(fold.reason) and "channels 1" in str(fold.reason)


def test_zero_and_negative_gamma_fold_with_a_note() -> None:
    layer = _bn(3, gamma=np.array([0.0, -1.5, 1.0]))
    fold = fold_layer(layer, _feeding("Dense", {"kernel": np.ones((2, 3)), "bias": np.zeros(3)}))
    assert fold.foldable and fold.folded is not None
    assert not fold.folded["kernel"][:, 0].any() and (fold.folded["kernel"][:, 1] < 0).all()
    assert any("gamma is 0 in channels 0" in note for note in fold.notes)
    assert any("negative in channels 1" in note for note in fold.notes)
    q = fold.quantization
    assert q is not None and np.isinf(q.bits_lost[0])  # an all-zero channel: no range to quantize


def test_missing_bias_becomes_the_folded_bias() -> None:
    layer = _bn(2)
    fold = fold_layer(layer, _feeding("Conv1D", {"kernel": np.ones((3, 1, 2))}, use_bias=False))
    assert fold.folded is not None
    s = layer.gamma_or_one / np.sqrt(layer.moving_variance + layer.epsilon)
    np.testing.assert_allclose(fold.folded["bias"], layer.beta_or_zero - layer.moving_mean * s, rtol=1e-15)
    assert any("no bias" in note for note in fold.notes)


def test_channel_count_and_axis_must_match_the_kernel() -> None:
    assert "output channels" in str(fold_layer(_bn(3), _feeding("Dense", {"kernel": np.ones((2, 4))})).reason)
    channels_first = _feeding("Conv2D", {"kernel": np.ones((3, 3, 2, 3))}, data_format="channels_first")
    assert fold_layer(_bn(3, axis=1), channels_first).foldable
    assert "channels_first" in str(fold_layer(_bn(3, axis=-1), channels_first).reason)


def test_refusals_for_activation_readers_and_missing_feeder() -> None:
    weights = {"kernel": np.ones((2, 3)), "bias": np.zeros(3)}
    relu = FeedingLayer(bn_path="bn", name="d", path="d", class_name="Dense", config={"activation": "relu"},
                        consumers=("bn",), weights=weights)
    assert "relu activation" in str(fold_layer(_bn(3), relu).reason)
    shared = FeedingLayer(bn_path="bn", name="d", path="d", class_name="Dense", config={}, consumers=("bn",),
                          calls=2, weights=weights)
    assert "called 2 times" in str(fold_layer(_bn(3), shared).reason)
    outside = FeedingLayer(bn_path="bn", name=None, path=None, class_name=None, problem="the BN is the first layer")
    assert fold_layer(_bn(3), outside).reason == "the BN is the first layer"
