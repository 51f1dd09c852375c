"""The BatchNormalization formula, step by step, in the two modes Keras has.

Inference (what ``model.predict`` does) uses the moving statistics stored in the file:
``y = gamma * (x - moving_mean) / sqrt(moving_variance + epsilon) + beta``.
Training (``training=True``) uses the statistics of the batch it is given: the mean and
the *biased* variance (divided by n) over every axis except the channel axis.

Everything is computed in float64 as a reference, and inference once more in float32 the
way TensorFlow folds it (``s = gamma * rsqrt(var + eps)``, ``y = x * s + (beta - mean * s)``),
so a user can see by how many ulps the real float32 output differs from the exact value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bntui.core.input_parse import resolve_axis
from bntui.core.model import BNLayer
from bntui.core.numbers import fmt
from bntui.core.numerics import folded_float32


@dataclass(frozen=True, eq=False)
class Step:
    """One line of the computation for one channel: what it is, the formula, the numbers."""

    name: str
    formula: str
    values: np.ndarray


@dataclass(frozen=True, eq=False)
class ModeResult:
    """The statistics a mode normalises with and the float64 output it gives."""

    mode: str
    mean: np.ndarray
    variance: np.ndarray
    output: np.ndarray


@dataclass(frozen=True, eq=False)
class Computation:
    """A layer applied to one input in both modes, with per-channel access to every step."""

    layer: BNLayer
    x: np.ndarray
    axis: int
    inference: ModeResult
    training: ModeResult
    output_float32: np.ndarray
    ulp: np.ndarray
    #: TensorFlow's folded float32 scale and offset per channel (computed once, used per channel).
    scale_float32: np.ndarray
    offset_float32: np.ndarray

    @property
    def max_ulp(self) -> float:
        """Largest distance of the float32 output from the float64 reference, in ulps."""
        finite = self.ulp[np.isfinite(self.ulp)]
        return float(finite.max()) if finite.size else 0.0

    @property
    def samples_per_channel(self) -> int:
        """How many values each channel's batch statistics are computed over."""
        return int(self.x.size // self.layer.channels)

    def channel_values(self, array: np.ndarray, channel: int) -> np.ndarray:
        """The elements of ``array`` (shaped like the input) that belong to ``channel``."""
        return np.take(array, channel, axis=self.axis).ravel()

    def result(self, mode: str) -> ModeResult:
        """The :class:`ModeResult` for ``"inference"`` or ``"training"``."""
        return self.inference if mode == "inference" else self.training

    def steps(self, channel: int, mode: str = "inference") -> list[Step]:
        """Every step of the float64 formula for one channel, with the numbers substituted."""
        layer = self.layer
        result = self.result(mode)
        x = self.channel_values(self.x, channel)
        mean = float(result.mean[channel])
        variance = float(result.variance[channel])
        eps = layer.epsilon
        mean_name = "moving_mean" if mode == "inference" else "batch_mean"
        var_name = "moving_variance" if mode == "inference" else "batch_variance"
        centred = x - mean
        var_eps = variance + eps
        root = np.sqrt(var_eps)
        x_hat = centred / root
        steps = [
            Step("x", "input", x),
            Step(f"x - {mean_name}", f"x - {fmt(mean)}", centred),
            Step(f"{var_name} + epsilon", f"{fmt(variance)} + {fmt(eps)}", np.array([var_eps])),
            Step(f"sqrt({var_name} + epsilon)", f"sqrt({fmt(var_eps)})", np.array([root])),
            Step("x_hat", f"(x - {fmt(mean)}) / {fmt(root)}", x_hat),
        ]
        if layer.scale:
            gamma = float(layer.gamma_or_one[channel])
            scaled = x_hat * gamma
            steps.append(Step("gamma * x_hat", f"x_hat * {fmt(gamma)}", scaled))
        else:
            scaled = x_hat
            steps.append(Step("gamma * x_hat", "scale=False: no gamma (taken as 1)", scaled))
        if layer.center:
            beta = float(layer.beta_or_zero[channel])
            steps.append(Step("y", f"gamma * x_hat + {fmt(beta)}", scaled + beta))
        else:
            steps.append(Step("y", "center=False: no beta (taken as 0)", scaled))
        return steps

    def float32_steps(self, channel: int) -> list[Step]:
        """Inference as TensorFlow computes it in float32, and its distance from float64."""
        s, offset = self.scale_float32, self.offset_float32
        y32 = self.channel_values(self.output_float32, channel)
        return [
            Step("s", "gamma * rsqrt(moving_variance + epsilon)  [float32]", np.array([s[channel]])),
            Step("offset", "beta - moving_mean * s  [float32]", np.array([offset[channel]])),
            Step("y (float32)", f"x * {fmt(s[channel])} + {fmt(offset[channel])}", y32),
            Step("ulp distance", "|y float32 - y float64| in float32 ulps", self.channel_values(self.ulp, channel)),
        ] if y32.size else []

    def notes(self) -> list[str]:
        """Facts worth saying about the training-mode view of this input."""
        notes = [
            "training mode normalises with the batch mean and the biased batch variance "
            f"(divided by n = {self.samples_per_channel}, the values per channel)"
        ]
        if self.samples_per_channel == 1:
            notes.append("one value per channel: the batch variance is 0, so x_hat is 0 and every output is beta")
        return notes


def _broadcast(vector: np.ndarray, ndim: int, axis: int) -> np.ndarray:
    shape = [1] * ndim
    shape[axis] = vector.shape[0]
    return vector.reshape(shape)


def normalise(layer: BNLayer, x: np.ndarray, axis: int, mean: np.ndarray, variance: np.ndarray) -> np.ndarray:
    """The float64 formula over a whole tensor with the given per-channel statistics."""
    shaped = lambda vector: _broadcast(np.asarray(vector, dtype=np.float64), x.ndim, axis)  # noqa: E731
    x_hat = (x - shaped(mean)) / np.sqrt(shaped(variance) + layer.epsilon)
    return x_hat * shaped(layer.gamma_or_one) + shaped(layer.beta_or_zero)


def ulp_distance(approx: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """|approx - exact| in units of the float32 spacing at ``exact`` (NaN where undefined)."""
    with np.errstate(invalid="ignore", over="ignore"):
        spacing = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
        distance = np.abs(approx.astype(np.float64) - exact) / spacing
        both_nan = np.isnan(approx) & np.isnan(exact)
        same_inf = np.isinf(approx) & (approx.astype(np.float64) == exact)
    distance[both_nan | same_inf] = 0.0
    return distance


def compute(layer: BNLayer, x: np.ndarray) -> Computation:
    """Apply ``layer`` to ``x`` (already shaped for it) in inference and training mode."""
    x = np.asarray(x, dtype=np.float64)
    axis = resolve_axis(layer.axis, x.ndim)
    reduce_axes = tuple(index for index in range(x.ndim) if index != axis)
    with np.errstate(all="ignore"):
        moving_mean = layer.moving_mean.astype(np.float64)
        moving_variance = layer.moving_variance.astype(np.float64)
        inference = ModeResult("inference", moving_mean, moving_variance, normalise(layer, x, axis, moving_mean, moving_variance))
        batch_mean = x.mean(axis=reduce_axes)
        batch_variance = np.square(x - _broadcast(batch_mean, x.ndim, axis)).mean(axis=reduce_axes)
        training = ModeResult("training", batch_mean, batch_variance, normalise(layer, x, axis, batch_mean, batch_variance))
        s, offset = folded_float32(layer)
        x32 = x.astype(np.float32)
        output32 = x32 * _broadcast(s, x.ndim, axis) + _broadcast(offset, x.ndim, axis)
        ulp = ulp_distance(output32, inference.output)
    return Computation(layer, x, axis, inference, training, output32.astype(np.float32), ulp, s, offset)
