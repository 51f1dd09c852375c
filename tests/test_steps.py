"""The step computation against an independent statement of the formula, for any layer."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bntui.core.model import BNLayer
from bntui.core.steps import compute


def make_layer(channels: int, axis: int, rng: np.random.Generator, *, center: bool = True, scale: bool = True,
               epsilon: float = 1e-3) -> BNLayer:
    return BNLayer(
        name="bn", path="bn", axis=axis, epsilon=epsilon, momentum=0.99, center=center, scale=scale,
        gamma=rng.normal(1, 0.5, channels).astype(np.float32) if scale else None,
        beta=rng.normal(0, 0.5, channels).astype(np.float32) if center else None,
        moving_mean=rng.normal(0, 1, channels).astype(np.float32),
        moving_variance=rng.uniform(0.01, 3, channels).astype(np.float32),
    )


def reference(layer: BNLayer, x: np.ndarray, axis: int, training: bool) -> np.ndarray:
    """The formula written out directly, channel by channel."""
    out = np.empty_like(x)
    for c in range(layer.channels):
        xc = np.take(x, c, axis=axis)
        mean, var = (xc.mean(), xc.var()) if training else (float(layer.moving_mean[c]), float(layer.moving_variance[c]))
        g = float(layer.gamma[c]) if layer.gamma is not None else 1.0
        b = float(layer.beta[c]) if layer.beta is not None else 0.0
        index = [slice(None)] * x.ndim
        index[axis] = c
        out[tuple(index)] = g * (xc - mean) / np.sqrt(var + layer.epsilon) + b
    return out


def _assert_float32_error_bounded(result) -> None:  # type: ignore[no-untyped-def]
    """float32 error stays within a few roundings of the terms it adds (cancellation allowed)."""
    from bntui.core.steps import folded_float32

    s, offset = folded_float32(result.layer)
    shape = [1] * result.x.ndim
    shape[result.axis] = -1
    magnitude = np.abs(result.x * s.reshape(shape)) + np.abs(offset.reshape(shape)).astype(np.float64)
    error = np.abs(result.output_float32.astype(np.float64) - result.inference.output)
    assert np.all(error <= 8 * np.finfo(np.float32).eps * (magnitude + np.abs(result.inference.output)))


def _check_against_reference(layer: BNLayer, x: np.ndarray, axis: int, training_tolerance: float):  # type: ignore[no-untyped-def]
    result = compute(layer, x)
    position = axis % x.ndim
    np.testing.assert_allclose(result.inference.output, reference(layer, x, position, False), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(result.training.output, reference(layer, x, position, True),
                               rtol=training_tolerance, atol=training_tolerance)
    _assert_float32_error_bounded(result)
    return result


SHAPES = [((4, 3), -1), ((2, 5, 3), -1), ((2, 4, 4, 3), -1), ((2, 3, 4, 4), 1), ((1, 2, 2, 2, 3), -1), ((2, 2, 1), 2)]


@pytest.mark.parametrize("shape, axis", SHAPES)
@pytest.mark.parametrize("center, scale", [(True, True), (False, True), (True, False), (False, False)])
def test_any_rank_and_axis(shape: tuple, axis: int, center: bool, scale: bool) -> None:
    rng = np.random.default_rng(0)
    channels = shape[axis]
    layer = make_layer(channels, axis, rng, center=center, scale=scale)
    x = rng.normal(0, 2, shape)
    result = _check_against_reference(layer, x, axis, training_tolerance=1e-10)
    last = result.steps(channels - 1)[-1].values
    np.testing.assert_allclose(last, result.channel_values(result.inference.output, channels - 1), rtol=1e-15)


def test_one_value_per_channel_trains_to_beta() -> None:
    layer = make_layer(3, -1, np.random.default_rng(1))
    result = compute(layer, np.array([[1.0, 2.0, 3.0]]))
    np.testing.assert_allclose(result.training.output.ravel(), layer.beta.astype(np.float64))
    assert any("output is beta" in note for note in result.notes())


@settings(max_examples=150, deadline=None)
@given(
    channels=st.integers(1, 6),
    batch=st.integers(1, 5),
    extra=st.integers(0, 2),
    seed=st.integers(0, 2**32 - 1),
    epsilon=st.sampled_from([1e-3, 1e-5, 0.1]),
    channels_first=st.booleans(),
)
def test_property_matches_formula(channels, batch, extra, seed, epsilon, channels_first) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    shape = [batch] + [2] * extra + [channels]
    axis = -1
    if channels_first and extra:
        shape = [batch, channels] + [2] * extra
        axis = 1
    layer = make_layer(channels, axis, rng, epsilon=epsilon)
    x = rng.normal(0, 3, shape)
    _check_against_reference(layer, x, axis, training_tolerance=1e-9)


@settings(max_examples=100, deadline=None)
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=4, max_side=4),
                  elements=st.floats(-1e6, 1e6, allow_nan=False)))
def test_float32_path_is_tensorflows_folded_form(x: np.ndarray) -> None:
    channels = x.shape[-1]
    assume(channels >= 1)
    layer = make_layer(channels, -1, np.random.default_rng(3))
    result = compute(layer, x)
    g, v, m, b = (w.astype(np.float32) for w in (layer.gamma, layer.moving_variance, layer.moving_mean, layer.beta))
    s = (np.float32(1) / np.sqrt(v + np.float32(layer.epsilon))) * g
    expected = x.astype(np.float32) * s + (b - m * s)
    np.testing.assert_array_equal(result.output_float32, expected)
