"""When does TensorFlow's output agree with the exact formula? A tolerance per element, derived
from the arithmetic TensorFlow performs, never tuned.

Notation: u is the unit roundoff of the dtype (2**-24 for float32, 2**-53 for float64); S the
exact scale |gamma| / sqrt(var + eps); X = |x|, M = |mean|, B = |beta|. Every operation rounds
with a relative error of at most u.

**Folded form** (``tf.nn.batch_normalization``: ``inv = rsqrt(var + eps) * gamma``,
``y = x * inv + (beta - mean * inv)``):
- the input and the stored weights are rounded to the dtype: u each;
- ``var + eps``: 2u to 3u relative, halved by the square root; ``rsqrt`` itself is a CPU
  approximation refined by Newton's method, allowed 2 ulps (4u); times gamma: u more. So the
  scale carries at most ~7.5u;
- ``x * inv`` adds u (product) and u (rounding of x); ``mean * inv`` the same; ``beta - ...``
  and the final sum one u each of their operands.
Summed: |error| <= u * (12 * S * (X + M) + 3 * B), comfortably above 10.5u*XS + 11.5u*MS + 3u*B.

**Batch statistics** (``tf.nn.moments``: ``m = reduce_mean(x)``, then
``v = reduce_mean((x - m)**2)``, two passes) over n values per channel: a sum of n terms in an
unknown order is within gamma_n = n*u / (1 - n*u) of exact, relative to the sum of |terms|
(Higham, Accuracy and Stability of Numerical Algorithms, eq. 4.4: the worst case, since the
reduction order of TensorFlow's kernels is not specified). So
- dm <= gamma_n * mean|x| + u * |m|;
- dv <= (gamma_n + 4u) * (v + dm**2) + dm**2 (each squared difference carries 3u, the mean's
  error enters squared because the centred values sum to zero);
and the output moves by S * dm through the mean and by |x - m| * S * dv / (v + eps) through
the variance (twice the first-order term, for safety), on top of the folded-form rounding.

A float64 comparison doubles the bound: bntui's float64 reference rounds as well. Under a 16-bit
dtype policy the output is rounded once more, to float16 or bfloat16: half an ulp of that type
at the output's size is added.

The bound grows with n, so at large n the float32 training check is weak by construction; the
float64 comparison, whose u is 2**-53, still catches a wrong formula there (an unbiased variance
is off by a relative 1/n, far above gamma_n in float64).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bntui.core.numerics import broadcast, ulp_of
from bntui.core.steps import BATCH, Computation, ModeResult

UNIT_ROUNDOFF = {"float32": 2.0**-24, "float64": 2.0**-53}
#: The folded form's coefficient on S * (|x| + |mean|), in units of u; it allows rsqrt's CPU
#: approximation 2 ulps (see the module docstring).
FOLDED_COEFFICIENT = 12


@dataclass(frozen=True)
class Disagreement:
    """The element where TensorFlow is furthest outside its tolerance."""

    mode: str
    precision: str
    channel: int
    index: tuple[int, ...]
    tensorflow: float
    expected: float
    abs_diff: float
    tolerance: float

    def describe(self) -> str:
        """One line naming the mode, channel and element, and by how much."""
        return (f"{self.mode} {self.precision}: channel {self.channel}, element {list(self.index)}: TensorFlow "
                f"{self.tensorflow:.9g}, expected {self.expected:.9g}, |diff| {self.abs_diff:.3g} > tolerance "
                f"{self.tolerance:.3g} ({self.abs_diff / self.tolerance:.3g}x)")


@dataclass(frozen=True)
class Check:
    """TensorFlow's output for one mode and precision against the exact formula."""

    mode: str
    precision: str
    max_abs_diff: float
    #: Largest |diff| / tolerance over the elements: at most 1 means agreement.
    max_ratio: float
    worst: Disagreement | None

    @property
    def agrees(self) -> bool:
        return self.worst is None


def _unit(precision: str) -> float:
    return UNIT_ROUNDOFF["float64" if precision == "float64" else "float32"]


def tolerance(computation: Computation, mode: str, precision: str = "float32") -> np.ndarray:
    """The largest error TensorFlow's result may carry, per element (see the module docstring).

    ``precision`` is ``float32``, ``float64`` or ``policy`` (the layer's 16-bit dtype policy,
    whose reference is computed on the cast input: pass that computation)."""
    u = _unit(precision)
    layer, x = computation.layer, computation.x
    result = computation.result(mode)
    with np.errstate(all="ignore"):
        bound = _folded_bound(computation, result, u) + _statistics_bound(computation, result, u)
        if precision == "float64":
            bound = 2.0 * bound
        if precision == "policy":
            dtype = layer.compute_dtype
            half = 0.5 * ulp_of(result.output, np.float16) if dtype == "float16" else np.abs(result.output) * 2.0**-8
            bound = bound + half
    return np.where(np.isnan(bound), np.inf, bound) if bound.shape == x.shape else np.broadcast_to(bound, x.shape)


def _per_element(computation: Computation, result: ModeResult, values: np.ndarray) -> np.ndarray:
    """A per-channel (C,) or per-ghost-group (G, C) statistic, spread to the input's shape."""
    x, axis = computation.x, computation.axis
    if result.ghost_groups is not None and np.ndim(values) == 2:
        groups = result.ghost_groups.astype(int)
        channel = np.indices(x.shape)[axis]
        return values[groups, channel]
    return np.broadcast_to(broadcast(values, x.ndim, axis), x.shape)


def _scale_and_offset_terms(computation: Computation, result: ModeResult) -> tuple[np.ndarray, np.ndarray]:
    """|S| (with renorm's r folded in) and |B| (with renorm's d * gamma) per element."""
    layer = computation.layer
    gamma = np.abs(layer.gamma_or_one.astype(np.float64))
    beta = np.abs(layer.beta_or_zero.astype(np.float64))
    variance = _per_element(computation, result, result.variance)
    gamma_e = _per_element(computation, result, gamma)
    beta_e = _per_element(computation, result, beta)
    if result.renorm_r is not None and result.renorm_d is not None:
        gamma_e = gamma_e * _per_element(computation, result, np.abs(result.renorm_r))
        beta_e = beta_e + _per_element(computation, result, np.abs(result.renorm_d) * gamma)
    return gamma_e / np.sqrt(variance + layer.epsilon), beta_e


def _folded_bound(computation: Computation, result: ModeResult, u: float) -> np.ndarray:
    scale, beta = _scale_and_offset_terms(computation, result)
    mean = np.abs(_per_element(computation, result, result.mean))
    return u * (FOLDED_COEFFICIENT * scale * (np.abs(computation.x) + mean) + 3 * beta)


def _statistics_bound(computation: Computation, result: ModeResult, u: float) -> np.ndarray:
    """The error batch statistics computed in the dtype add (0 for moving statistics)."""
    if result.uses != BATCH:
        return np.zeros_like(computation.x)
    x = computation.x
    n = computation.values_per_statistic
    gamma_n = n * u / (1 - n * u) if n * u < 1 else np.inf
    mean = _per_element(computation, result, result.mean)
    variance = _per_element(computation, result, result.variance)
    abs_mean = _group_abs_mean(computation, result)
    dm = gamma_n * abs_mean + u * np.abs(mean)
    dv = (gamma_n + 4 * u) * (variance + dm**2) + dm**2
    scale, _ = _scale_and_offset_terms(computation, result)
    return scale * dm + np.abs(x - mean) * scale * dv / (variance + computation.layer.epsilon)


def _group_abs_mean(computation: Computation, result: ModeResult) -> np.ndarray:
    """mean(|x|) over the values each element's batch statistics were taken from."""
    x, axis = computation.x, computation.axis
    if result.ghost_groups is None:
        reduce_axes = tuple(i for i in range(x.ndim) if i != axis)
        return np.broadcast_to(np.abs(x).mean(axis=reduce_axes, keepdims=True), x.shape)
    groups = result.ghost_groups.astype(int)
    out = np.empty_like(x)
    for group in np.unique(groups):
        mask = groups == group
        part = np.where(mask, np.abs(x), 0.0)
        reduce_axes = tuple(i for i in range(x.ndim) if i != axis)
        count = mask.sum(axis=reduce_axes, keepdims=True)
        out = np.where(mask, np.broadcast_to(part.sum(axis=reduce_axes, keepdims=True) / count, x.shape), out)
    return out


def judge(computation: Computation, mode: str, tensorflow: np.ndarray, precision: str = "float32") -> Check:
    """Compare TensorFlow's output with the exact formula of ``computation`` for ``mode``."""
    expected = computation.result(mode).output
    got = np.asarray(tensorflow, dtype=np.float64).reshape(expected.shape)
    bound = tolerance(computation, mode, precision)
    with np.errstate(invalid="ignore"):
        diff = np.abs(got - expected)
        same = (got == expected) | (np.isnan(got) & np.isnan(expected))
        diff = np.where(same, 0.0, np.where(np.isnan(diff), np.inf, diff))
        ratio = np.where(diff == 0, 0.0, diff / bound)
    if not diff.size:
        return Check(mode, precision, 0.0, 0.0, None)
    flat = int(np.argmax(ratio))
    index = np.unravel_index(flat, expected.shape)
    max_ratio = float(ratio.flat[flat])
    finite = diff[np.isfinite(diff)]
    worst = None
    if max_ratio > 1.0:
        worst = Disagreement(mode, precision, int(index[computation.axis]), tuple(int(i) for i in index),
                             float(got[index]), float(expected[index]), float(diff[index]), float(bound[index]))
    return Check(mode, precision, float(finite.max()) if finite.size else float("inf"), max_ratio, worst)
