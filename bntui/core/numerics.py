"""The arithmetic every analysis shares, defined once.

- :func:`scale_float64`: ``s = gamma / sqrt(variance + epsilon)``, the exact per-channel scale;
- :func:`folded_float32`: TensorFlow's folded form in float32, ``s = gamma * rsqrt(var + eps)``
  and ``offset = beta - mean * s``, so that ``y = x * s + offset``;
- :func:`term_scaled_ulp`: the one definition of an ulp distance in bntui.

Why term-scaled: an output is a sum of terms (``x * s`` and ``offset``, or ``gamma * x_hat``
and ``beta``). A float32 sum is exact only to about half an ulp *of its largest term*, so an
output that cancels to nearly 0 carries an absolute error far larger than its own ulp. Counting
ulps at ``max(|exact|, largest term)`` measures what the arithmetic can deliver; counting at the
output's own size would call a correct result "10,000,000 ulps" off.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from bntui.core.model import BNLayer


def scale_float64(layer: BNLayer, variance: np.ndarray | None = None) -> np.ndarray:
    """``gamma / sqrt(variance + epsilon)`` in float64 (moving variance unless given)."""
    var = layer.moving_variance if variance is None else variance
    with np.errstate(all="ignore"):
        return layer.gamma_or_one.astype(np.float64) / np.sqrt(np.asarray(var, dtype=np.float64) + layer.epsilon)


def folded_float32(layer: BNLayer) -> tuple[np.ndarray, np.ndarray]:
    """TensorFlow's folded scale and offset, computed in float32 as it does (a negative
    variance gives NaN here as it does there; diagnostics report it, numpy need not warn)."""
    variance = layer.moving_variance.astype(np.float32)
    with np.errstate(all="ignore"):
        inverse = np.float32(1.0) / np.sqrt(variance + np.float32(layer.epsilon))
        s = inverse * layer.gamma_or_one.astype(np.float32) if layer.scale else inverse
        mean = layer.moving_mean.astype(np.float32)
        offset = layer.beta_or_zero.astype(np.float32) - mean * s if layer.center else -mean * s
    return s.astype(np.float32), offset.astype(np.float32)


def broadcast(vector: np.ndarray, ndim: int, axis: int) -> np.ndarray:
    """A per-channel vector shaped to broadcast against an input of rank ``ndim`` along ``axis``."""
    shape = [1] * ndim
    shape[axis] = -1
    return np.asarray(vector).reshape(shape)


def folded_terms(x: np.ndarray, axis: int, s: np.ndarray, offset: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """The largest term summed into each output of the folded form: ``max(|x * s|, |offset|,
    |beta|)`` per element, the magnitude :func:`term_scaled_ulp` counts ulps at."""
    def per_channel(vector: np.ndarray) -> np.ndarray:
        return broadcast(np.abs(np.asarray(vector, dtype=np.float64)), x.ndim, axis)

    with np.errstate(invalid="ignore", over="ignore"):
        return np.maximum(np.abs(x) * per_channel(s), np.maximum(per_channel(offset), per_channel(beta)))


def ulp_of(magnitude: np.ndarray | float, dtype: type = np.float32) -> np.ndarray:
    """The spacing of ``dtype`` at ``|magnitude|`` (one ulp there), as float64."""
    with np.errstate(invalid="ignore", over="ignore"):
        return np.spacing(np.abs(np.asarray(magnitude, dtype=np.float64)).astype(dtype)).astype(np.float64)


def term_scaled_ulp(
    approx: np.ndarray, exact: np.ndarray, terms: np.ndarray | float = 0.0, dtype: type = np.float32
) -> np.ndarray:
    """|approx - exact| in ulps of ``dtype`` at ``max(|exact|, terms)``: bntui's one ulp.

    ``terms`` is the magnitude of the largest term summed into each output (see the module
    docstring); 0 gives the plain ulp at the output's own size. Equal values (NaN with NaN,
    an infinity with the same infinity) are 0 ulps apart.
    """
    a = np.asarray(approx, dtype=np.float64)
    e = np.asarray(exact, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        magnitude = np.maximum(np.abs(e), np.asarray(terms, dtype=np.float64))
        distance = np.abs(a - e) / ulp_of(magnitude, dtype)
    distance = np.array(distance, dtype=np.float64, copy=True)
    same = (a == e) | (np.isnan(a) & np.isnan(e))
    distance[np.broadcast_to(same, distance.shape)] = 0.0
    return distance
