"""Drift's pure core: moments merged across batches, per-channel measures, flags, horizon.

Expected values come from numpy on the concatenated data and from the formulas written out
here, or from simulating Keras' moving-average update step by step.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from bntui.core.analysis.drift import (
    CallStatistics,
    Moments,
    analyse,
    forget_steps,
    layer_drift,
    output_shift,
    steps_to_fit,
)
from bntui.core.model import BNLayer
from bntui.core.output import Result, render


def _layer(mean: list[float], variance: list[float], *, gamma: list[float] | None = None,
           beta: list[float] | None = None, epsilon: float = 1e-3, momentum: float = 0.99, path: str = "bn") -> BNLayer:
    return BNLayer(name=path.split("/")[-1], path=path, axis=-1, epsilon=epsilon, momentum=momentum, center=True,
                   scale=True, moving_mean=np.array(mean, np.float32), moving_variance=np.array(variance, np.float32),
                   gamma=np.array(gamma if gamma is not None else [1.0] * len(mean), np.float32),
                   beta=np.array(beta if beta is not None else [0.0] * len(mean), np.float32))


def test_chan_merge_equals_numpy_over_all_samples() -> None:
    rng = np.random.default_rng(0)
    # Uneven batches, an offset far larger than the spread: the case where a one-pass
    # sum-of-squares loses every digit, and where Chan's merge must not.
    batches = [rng.normal(1e4, 0.01, (n, 3, 5)).astype(np.float32) for n in (7, 1, 32, 5)]
    merged = Moments.of(batches[0], -1)
    for batch in batches[1:]:
        merged = merged.merge(Moments.of(batch, -1))
    everything = np.concatenate(batches).astype(np.float64).reshape(-1, 5)
    assert merged.count == everything.shape[0]
    # Float64 two-pass on one side, pairwise float64 merges on the other: both are within a
    # few float64 ulps of the exact moments of the float32 data (relative 1e-12 is 4,500 ulps).
    np.testing.assert_allclose(merged.mean, everything.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(merged.variance, everything.var(axis=0), rtol=1e-9)
    np.testing.assert_array_equal(merged.minimum, everything.min(axis=0))
    np.testing.assert_array_equal(merged.maximum, everything.max(axis=0))


def test_moments_from_float32_group_summaries() -> None:
    """What the forward pass sends out of the graph: per-sample float32 means, mean squared
    deviations from each sample's own mean, maxima and minima."""
    rng = np.random.default_rng(6)
    x = rng.normal(100.0, 2.0, (16, 400, 3)).astype(np.float32)  # mean 50 deviations from 0
    means = x.mean(axis=1, dtype=np.float32, keepdims=True)
    groups = Moments.from_groups(means[:, 0], ((x - means) ** 2).mean(axis=1, dtype=np.float32),
                                 x.max(axis=1), x.min(axis=1), 400)
    exact = Moments.of(x, -1)
    assert groups.count == exact.count == 6400
    # float32 sums of 400 values: each group's mean and spread within ~400 * 2**-24 relative
    # (2.4e-5, the worst case of a sequential sum); float64 combines the groups.
    np.testing.assert_allclose(groups.mean, exact.mean, rtol=3e-5)
    np.testing.assert_allclose(groups.variance, exact.variance, rtol=3e-5)
    np.testing.assert_array_equal(groups.minimum, exact.minimum)
    np.testing.assert_array_equal(groups.maximum, exact.maximum)
    # Groups of one value: the values themselves, spread 0, exact two-pass float64.
    values = Moments.from_groups(x[:, 0], np.zeros_like(x[:, 0]), x[:, 0], x[:, 0], 1)
    np.testing.assert_allclose(values.variance, x[:, 0].astype(np.float64).var(axis=0), rtol=1e-13)
    # A constant channel has no spread at all: exactly zero, as the dead-channel flag needs.
    constant = np.full((8, 400, 2), 7.3, dtype=np.float32)
    flat = Moments.from_groups(constant.mean(axis=1, dtype=np.float32), np.zeros((8, 2), np.float32),
                               constant.max(axis=1), constant.min(axis=1), 400)
    np.testing.assert_array_equal(flat.m2, 0.0)


def test_measures_follow_their_definitions() -> None:
    layer = _layer([1.0, -2.0, 0.0], [4.0, 0.25, 1.0], gamma=[2.0, 0.5, -1.0], beta=[3.0, 0.0, 1.0])
    x = np.random.default_rng(1).normal([2.0, -2.0, 10.0], [2.0, 2.0, 0.1], (500, 3))
    moments = Moments.of(x, -1)
    drift = layer_drift(CallStatistics(layer, moments))
    mean, var = x.mean(axis=0), x.var(axis=0)
    mm, mv, eps = layer.moving_mean.astype(float), layer.moving_variance.astype(float), layer.epsilon
    np.testing.assert_allclose(drift.z, (mean - mm) / np.sqrt(mv + eps), rtol=1e-12)
    np.testing.assert_allclose(drift.variance_ratio, var / mv, rtol=1e-12)
    # The output shift, by brute force over a fine grid of the seen range (endpoints included).
    gamma, beta = layer.gamma.astype(float), layer.beta.astype(float)
    grid = np.linspace(x.min(axis=0), x.max(axis=0), 2001)
    with_data = gamma * (grid - mean) / np.sqrt(var + eps) + beta
    with_moving = gamma * (grid - mm) / np.sqrt(mv + eps) + beta
    np.testing.assert_allclose(drift.output_shift, np.abs(with_data - with_moving).max(axis=0), rtol=1e-12)
    # channel 0: |z| 0.5, ratio ~1; channel 1: ratio ~16; channel 2: z ~10, ratio ~0.01
    assert drift.drifted.tolist() == [False, True, True]
    assert drift.drifted_channels == 2 and drift.max_abs_z == pytest.approx(np.abs(drift.z).max())


def test_forget_horizon_at_keras_default_momentum() -> None:
    k = forget_steps(0.99)
    assert 0.99**k < 0.01 <= 0.99 ** (k - 1) and k == 459
    assert forget_steps(1.0) is None and forget_steps(0.0) == 1


def _simulate(momentum: float, mm: float, mv: float, dm: float, dv: float, eps: float) -> int | None:
    """Keras' update ``moving = m * moving + (1 - m) * batch``, one step at a time."""
    for k in range(100_000):
        fits = abs(mm - dm) <= math.sqrt(dv + eps) and 0.25 <= dv / mv <= 4.0
        if fits:
            return k
        mm, mv = momentum * mm + (1 - momentum) * dm, momentum * mv + (1 - momentum) * dv
    return None


@pytest.mark.parametrize("momentum, mm, mv, dm, dv", [
    (0.99, 0.0, 1.0, 10.0, 1.0),     # mean far off
    (0.99, 0.0, 100.0, 0.0, 1.0),    # variance too large
    (0.9, 5.0, 0.01, 0.0, 9.0),      # both: variance too small, mean off
    (0.5, -3.0, 1.0, 3.0, 0.5),
    (0.999, 0.0, 1.0, 0.5, 1.0),     # already fits
])
def test_steps_to_fit_match_the_update_rule(momentum: float, mm: float, mv: float, dm: float, dv: float) -> None:
    eps = 1e-3
    assert steps_to_fit(momentum, mm, mv, dm, dv, eps) == _simulate(momentum, mm, mv, dm, dv, eps)


def test_a_dead_channel_never_fits_and_is_flagged() -> None:
    layer = _layer([0.5, 0.0], [2.0, 1.0])
    x = np.stack([np.full(50, 0.0), np.linspace(-1, 1, 50)], axis=-1)
    drift = layer_drift(CallStatistics(layer, Moments.of(x, -1)))
    assert drift.steps_to_fit[0] is None  # variance 0 can never be within 4x of a positive one
    assert [(f.code, f.channels) for f in drift.flags] == [("dead_channels", (0,))]


def test_initial_and_half_updated_statistics_are_flagged() -> None:
    far = Moments.of(np.random.default_rng(2).normal(8.0, 3.0, (200, 2)), -1)
    near = Moments.of(np.random.default_rng(3).normal(0.0, 1.0, (200, 2)), -1)
    initial = _layer([0.0, 0.0], [1.0, 1.0])
    assert [f.code for f in layer_drift(CallStatistics(initial, far)).flags] == ["initial_statistics"]
    assert layer_drift(CallStatistics(initial, near)).flags == ()  # data that fits: nothing to say
    half = _layer([0.7, -0.2], [1.0, 1.0])
    assert [f.code for f in layer_drift(CallStatistics(half, near)).flags] == ["half_updated"]


def test_result_ranks_exports_and_merges_shared_calls() -> None:
    rng = np.random.default_rng(4)
    shared = _layer([0.0], [1.0], path="shared")
    other = _layer([0.0], [1.0], path="block/bn")
    a, b = rng.normal(5.0, 1.0, (100, 1)), rng.normal(-1.0, 2.0, (300, 1))
    calls = [CallStatistics(shared, Moments.of(a, -1), 0, 2), CallStatistics(shared, Moments.of(b, -1), 1, 2),
             CallStatistics(other, Moments.of(b, -1))]
    result = analyse(calls, samples=400, batches=4)
    assert isinstance(result, Result)
    assert result.layers[0].label == "shared [call 1/2]"  # z = 5 against about 1 for the others
    assert [e.max_abs_z for e in result.layers] == sorted((e.max_abs_z for e in result.layers), reverse=True)
    mean, variance = result.reestimated()["shared"]
    both = np.concatenate([a, b])
    np.testing.assert_allclose(mean, both.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(variance, both.var(axis=0), rtol=1e-12)
    data = result.to_dict()
    assert set(data) == {"samples", "batches", "layers", "notes"}
    assert {"path", "channels", "data_mean", "data_variance", "z", "variance_ratio", "output_shift", "max_abs_z",
            "drifted_channels", "max_output_shift", "flags"} <= set(data["layers"][0])
    rows = result.rows()
    assert rows[0][:3] == ["path", "call", "channel"] and len(rows) == 1 + 3
    assert "shared [call 1/2]" in render(result, "text")


def test_broken_stored_variance_ranks_first_without_warnings() -> None:
    broken = _layer([0.0], [-5.0], path="broken")
    fine = _layer([0.0], [1.0], path="fine")
    x = Moments.of(np.random.default_rng(5).normal(9.0, 1.0, (50, 1)), -1)
    result = analyse([CallStatistics(fine, x), CallStatistics(broken, x)], samples=50, batches=1)
    assert result.layers[0].path == "broken" and math.isnan(result.layers[0].max_abs_z)
    assert result.to_dict()["layers"][0]["max_abs_z"] == "nan"
    assert np.isnan(output_shift(broken, x)).all()
