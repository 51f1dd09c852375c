"""The BatchNormalization formula, step by step, in the two modes Keras has, as Keras runs it.

Inference (what ``model.predict`` does) uses the moving statistics stored in the file:
``y = gamma * (x - moving_mean) / sqrt(moving_variance + epsilon) + beta``.

Training (``layer(x, training=True)``) is what Keras *returns* for that call:
- a trainable layer normalises with the batch's mean and *biased* variance (divided by n) over
  every axis except the channel axis (per ghost batch with tf_keras' ``virtual_batch_size``;
  with batch renormalisation's r and d corrections when ``renorm=True``);
- a frozen layer (``trainable: false``) runs with its moving statistics even then, in Keras 3
  and in tf.keras since TF 2.0. Its batch-statistics result is kept as ``unfrozen_output``.

Everything is computed in float64 as a reference, and inference once more in TensorFlow's
folded float32 form (``s = gamma * rsqrt(var + eps)``, ``y = x * s + (beta - mean * s)``).
Under a 16-bit dtype policy Keras casts the input to float16/bfloat16, computes in float32 and
casts the output back: ``output_as_keras`` holds those values. Ulps are term-scaled
(:func:`bntui.core.numerics.term_scaled_ulp`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from bntui.core.input_parse import resolve_axis
from bntui.core.model import BNLayer
from bntui.core.numbers import fmt
from bntui.core.numerics import broadcast, folded_float32, folded_terms, scale_float64, term_scaled_ulp
from bntui.core.precision import round_to

BATCH = "batch_statistics"
MOVING = "moving_statistics"


@dataclass(frozen=True, eq=False)
class Step:
    """One line of the computation for one channel: a stable ``key``, a name for people, the
    formula with numbers, the values, and the precision they were computed in."""

    name: str
    formula: str
    values: np.ndarray
    key: str = ""
    precision: str = "float64"


@dataclass(frozen=True, eq=False)
class ChannelSteps:
    """One channel's computation in one mode, with every quantity named."""

    mode: str
    channel: int
    uses: str
    x: np.ndarray
    mean: np.ndarray
    variance: np.ndarray
    var_eps: np.ndarray
    root: np.ndarray
    centred: np.ndarray
    x_hat: np.ndarray
    gamma: float | None
    beta: float | None
    scaled: np.ndarray
    y: np.ndarray
    #: Batch renormalisation's corrections (training mode of a renorm layer), else None.
    renorm_r: float | None = None
    renorm_d: float | None = None
    steps: tuple[Step, ...] = ()


@dataclass(frozen=True, eq=False)
class ModeResult:
    """The statistics a mode normalises with, the float64 output it gives, and what Keras
    returns (``output_as_keras``, rounded as the layer's dtype policy rounds)."""

    mode: str
    mean: np.ndarray
    variance: np.ndarray
    output: np.ndarray
    uses: str = MOVING
    reason: str = ""
    output_as_keras: np.ndarray | None = None
    #: A frozen layer's training-mode output if it were not frozen (batch statistics).
    unfrozen: ModeResult | None = None
    renorm_r: np.ndarray | None = None
    renorm_d: np.ndarray | None = None
    #: Ghost batches: mean and variance per group (G, C), and each element's group index.
    ghost_groups: np.ndarray | None = None
    notes: tuple[str, ...] = field(default=())


@dataclass(frozen=True, eq=False)
class Computation:
    """A layer applied to one input in both modes, with per-channel access to every step."""

    layer: BNLayer
    x: np.ndarray
    axis: int
    inference: ModeResult
    training: ModeResult
    #: The float32 folded form of inference (on the input as Keras sees it).
    output_float32: np.ndarray
    #: Term-scaled float32 ulps between the folded float32 form and the float64 reference.
    ulp: np.ndarray
    #: TensorFlow's folded float32 scale and offset per channel (computed once, used per channel).
    scale_float32: np.ndarray
    offset_float32: np.ndarray
    #: The input after the dtype policy's cast (float16/bfloat16 values), as float64; else x.
    x_keras: np.ndarray | None = None

    @property
    def max_ulp(self) -> float:
        """Largest term-scaled distance of the float32 folded form from the float64 reference."""
        finite = self.ulp[np.isfinite(self.ulp)]
        return float(finite.max()) if finite.size else 0.0

    @property
    def samples_per_channel(self) -> int:
        """How many values each channel's batch statistics are computed over."""
        return int(self.x.size // self.layer.channels)

    @property
    def policy_dtype(self) -> str:
        """The dtype Keras rounds input and output to under this layer's policy."""
        return self.layer.compute_dtype

    def folded_terms(self) -> np.ndarray:
        """The largest term of the folded form per element, which ulps are counted at."""
        return folded_terms(self.x, self.axis, self.scale_float32, self.offset_float32, self.layer.beta_or_zero)

    def channel_values(self, array: np.ndarray, channel: int) -> np.ndarray:
        """The elements of ``array`` (shaped like the input) that belong to ``channel``."""
        return np.take(array, channel, axis=self.axis).ravel()

    def result(self, mode: str) -> ModeResult:
        """The :class:`ModeResult` for ``"inference"`` or ``"training"``."""
        return self.inference if mode == "inference" else self.training

    def channel_steps(self, channel: int, mode: str = "inference", *, unfrozen: bool = False) -> ChannelSteps:
        """Every quantity of the float64 formula for one channel, named (``unfrozen``: a frozen
        layer's batch-statistics computation instead of what Keras returns)."""
        layer = self.layer
        result = self.result(mode)
        if unfrozen and result.unfrozen is not None:
            result = result.unfrozen
        x = self.channel_values(self.x, channel)
        batch = result.uses == BATCH
        if result.ghost_groups is not None:
            group = self.channel_values(result.ghost_groups, channel).astype(int)
            mean = result.mean[group, channel]
            variance = result.variance[group, channel]
        else:
            mean = np.array([float(result.mean[channel])])
            variance = np.array([float(result.variance[channel])])
        eps = layer.epsilon
        with np.errstate(all="ignore"):
            centred = x - mean
            var_eps = variance + eps
            root = np.sqrt(var_eps)
            x_hat = centred / root
            r = d = None
            if result.renorm_r is not None and result.renorm_d is not None:
                r, d = float(result.renorm_r[channel]), float(result.renorm_d[channel])
                corrected = x_hat * r + d
            else:
                corrected = x_hat
            gamma = float(layer.gamma[channel]) if layer.scale and layer.gamma is not None else None
            beta = float(layer.beta[channel]) if layer.center and layer.beta is not None else None
            scaled = corrected * gamma if gamma is not None else corrected
            y = scaled + beta if beta is not None else scaled
        mean_name = "batch_mean" if batch else "moving_mean"
        var_name = "batch_variance" if batch else "moving_variance"
        one = mean.size == 1
        m_text = fmt(mean[0]) if one else f"{mean_name} of its ghost batch"
        v_text = fmt(variance[0]) if one else f"{var_name} of its ghost batch"
        steps = [
            Step("x", "input", x, "x"),
            Step(f"x - {mean_name}", f"x - {m_text}", centred, "centred"),
            Step(f"{var_name} + epsilon", f"{v_text} + {fmt(eps)}", var_eps, "var_eps"),
            Step(f"sqrt({var_name} + epsilon)", f"sqrt({fmt(var_eps[0]) if one else '…'})", root, "root"),
            Step("x_hat", f"(x - {m_text}) / {fmt(root[0]) if one else 'sqrt(…)'}", x_hat, "x_hat"),
        ]
        if r is not None and d is not None:
            steps.append(Step("x_hat * r + d", f"x_hat * {fmt(r)} + {fmt(d)}  (batch renormalisation)", corrected, "renorm"))
        steps.append(Step("gamma * x_hat", f"x_hat * {fmt(gamma)}" if gamma is not None else
                          "scale=False: no gamma (taken as 1)", scaled, "scaled"))
        steps.append(Step("y", f"gamma * x_hat + {fmt(beta)}" if beta is not None else
                          "center=False: no beta (taken as 0)", y, "y"))
        return ChannelSteps(
            mode=mode, channel=channel, uses=result.uses, x=x, mean=mean, variance=variance, var_eps=var_eps,
            root=root, centred=centred, x_hat=x_hat, gamma=gamma, beta=beta, scaled=scaled, y=y,
            renorm_r=r, renorm_d=d, steps=tuple(steps),
        )

    def steps(self, channel: int, mode: str = "inference") -> list[Step]:
        """Every step of the float64 formula for one channel, with the numbers substituted."""
        return list(self.channel_steps(channel, mode).steps)

    def float32_steps(self, channel: int) -> list[Step]:
        """Inference in TensorFlow's folded float32 form, the dtype policy's casts around it,
        and its term-scaled distance from float64."""
        s, offset = self.scale_float32, self.offset_float32
        y32 = self.channel_values(self.output_float32, channel)
        if not y32.size:
            return []
        steps: list[Step] = []
        dtype = self.policy_dtype
        if self.x_keras is not None:
            steps.append(Step(f"x as {dtype}", f"Keras casts the input to the policy's {dtype}",
                              self.channel_values(self.x_keras, channel), "x_cast", dtype))
        steps += [
            Step("s", "gamma * rsqrt(moving_variance + epsilon)  [float32]", np.array([s[channel]]), "s", "float32"),
            Step("offset", "beta - moving_mean * s  [float32]", np.array([offset[channel]]), "offset", "float32"),
            Step("y (float32 folded)", f"x * {fmt(s[channel], 9)} + {fmt(offset[channel], 9)}", y32, "y32", "float32"),
        ]
        keras_out = self.inference.output_as_keras
        if self.x_keras is not None and keras_out is not None:
            steps.append(Step(f"y as {dtype}", f"Keras casts the output back to {dtype}",
                              self.channel_values(keras_out, channel), "y_cast", dtype))
        steps.append(Step("ulp distance", "|y float32 - y float64| in float32 ulps of the largest term",
                          self.channel_values(self.ulp, channel), "ulp"))
        return steps

    def notes(self) -> list[str]:
        """Facts worth saying about the training-mode view of this input."""
        notes = list(self.training.notes)
        if self.training.uses == BATCH or self.training.unfrozen is not None:
            notes.append(
                "batch statistics are the batch mean and the biased batch variance "
                f"(divided by n = {self.values_per_statistic}, the values per channel"
                + (" in each ghost batch)" if self.layer.virtual_batch_size else ")")
            )
            if self.values_per_statistic == 1 and np.all(np.isfinite(self.x)):
                notes.append("one value per channel: the batch variance is 0, so x_hat is 0 and every "
                             "batch-statistics output is beta")
        return notes

    @property
    def values_per_statistic(self) -> int:
        """How many values one batch statistic is taken over (per channel, per ghost batch)."""
        size = self.samples_per_channel
        virtual = self.layer.virtual_batch_size
        return size * virtual // self.x.shape[0] if virtual and self.x.ndim and self.x.shape[0] else size


def normalise(layer: BNLayer, x: np.ndarray, axis: int, mean: np.ndarray, variance: np.ndarray,
              r: np.ndarray | None = None, d: np.ndarray | None = None) -> np.ndarray:
    """The float64 formula over a whole tensor with the given per-channel statistics (and
    batch renormalisation's r and d where given)."""
    def shaped(vector: np.ndarray) -> np.ndarray:
        array = np.asarray(vector, dtype=np.float64)
        return array if array.ndim == x.ndim else broadcast(array, x.ndim, axis)

    x_hat = (x - shaped(mean)) / np.sqrt(shaped(variance) + layer.epsilon)
    if r is not None and d is not None:
        x_hat = x_hat * shaped(r) + shaped(d)
    return x_hat * shaped(layer.gamma_or_one) + shaped(layer.beta_or_zero)


def _moments(x: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    reduce_axes = tuple(index for index in range(x.ndim) if index != axis)
    mean = x.mean(axis=reduce_axes)
    variance = np.square(x - broadcast(mean, x.ndim, axis)).mean(axis=reduce_axes)
    return mean, variance


def _renorm(layer: BNLayer, mean: np.ndarray, variance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Batch renormalisation's corrections, as Keras computes them: r = stddev / renorm_stddev
    and d = (mean - renorm_mean) / renorm_stddev, renorm_stddev at least sqrt(epsilon), then
    clipped by ``renorm_clipping`` (rmin, rmax, dmax)."""
    assert layer.renorm_mean is not None and layer.renorm_stddev is not None
    stddev = np.sqrt(variance + layer.epsilon)
    renorm_stddev = np.maximum(layer.renorm_stddev.astype(np.float64), np.sqrt(layer.epsilon))
    r = stddev / renorm_stddev
    d = (mean - layer.renorm_mean.astype(np.float64)) / renorm_stddev
    clipping = layer.renorm_clipping or {}
    if "rmin" in clipping:
        r = np.maximum(r, clipping["rmin"])
    if "rmax" in clipping:
        r = np.minimum(r, clipping["rmax"])
    if "dmax" in clipping:
        d = np.clip(d, -clipping["dmax"], clipping["dmax"])
    return r, d


def _ghost_batches(layer: BNLayer, x: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """tf_keras' ghost batches: the batch (B, ...) is reshaped to (V, B/V, ...) and moments are
    taken over V and the other axes, so ghost batch g holds samples g, g + B/V, g + 2B/V...
    Returns the output, the per-group mean and variance (G, C) and each element's group."""
    virtual = layer.virtual_batch_size or 1
    batch = x.shape[0]
    if axis == 0 or batch % virtual:
        raise ValueError(f"virtual_batch_size {virtual} must divide the batch size {batch} (axis 0 is the batch)")
    groups = batch // virtual
    group_of_sample = np.arange(batch) % groups
    means = np.empty((groups, layer.channels))
    variances = np.empty((groups, layer.channels))
    output = np.empty_like(x)
    for group in range(groups):
        part = x[group_of_sample == group]
        mean, variance = _moments(part, axis)
        means[group], variances[group] = mean, variance
        output[group_of_sample == group] = normalise(layer, part, axis, mean, variance)
    index_shape = [1] * x.ndim
    index_shape[0] = batch
    group_index = np.broadcast_to(group_of_sample.reshape(index_shape), x.shape).astype(np.float64)
    return output, means, variances, group_index


def _training(layer: BNLayer, x: np.ndarray, axis: int, inference: ModeResult) -> ModeResult:
    """What Keras returns for ``layer(x, training=True)``, and why."""
    mean, variance = _moments(x, axis)
    notes: list[str] = []
    if layer.virtual_batch_size:
        output, means, variances, groups = _ghost_batches(layer, x, axis)
        batch = ModeResult("training", means, variances, output, BATCH, ghost_groups=groups,
                           notes=((f"ghost batches of {layer.virtual_batch_size} samples (virtual_batch_size): "
                                   "each is normalised with its own statistics"),))
    elif layer.renorm:
        r, d = _renorm(layer, mean, variance)
        batch = ModeResult("training", mean, variance, normalise(layer, x, axis, mean, variance, r, d), BATCH,
                           renorm_r=r, renorm_d=d,
                           notes=(("batch renormalisation: x_hat is corrected to x_hat * r + d with r = batch stddev"
                                   " / renorm_stddev and d = (batch mean - renorm_mean) / renorm_stddev"),))
    else:
        batch = ModeResult("training", mean, variance, normalise(layer, x, axis, mean, variance), BATCH)
    if layer.trainable:
        reason = "a trainable layer called with training=True normalises with the batch's own statistics"
        return replace(batch, reason=reason, notes=batch.notes + tuple(notes))
    reason = ("the layer is frozen (trainable: false): since TF 2.0 and in Keras 3 it runs with its moving "
              "statistics even when called with training=True")
    if layer.standalone_keras_frozen_semantics:
        notes.append(f"this file was written by standalone Keras {layer.keras_version}, which still used batch "
                     "statistics for frozen layers: that result is shown as the unfrozen output")
    return ModeResult("training", inference.mean, inference.variance, inference.output, MOVING, reason,
                      inference.output_as_keras, unfrozen=batch, notes=tuple(notes))


def compute(layer: BNLayer, x: np.ndarray) -> Computation:
    """Apply ``layer`` to ``x`` (already shaped for it) in inference and training mode."""
    x = np.asarray(x, dtype=np.float64)
    axis = resolve_axis(layer.axis, x.ndim)
    dtype = layer.compute_dtype
    with np.errstate(all="ignore"):
        moving_mean = layer.moving_mean.astype(np.float64)
        moving_variance = layer.moving_variance.astype(np.float64)
        inference_output = normalise(layer, x, axis, moving_mean, moving_variance)
        s, offset = folded_float32(layer)
        x_keras = round_to(x, dtype).astype(np.float64) if dtype in ("float16", "bfloat16") else None
        x32 = (x_keras if x_keras is not None else x).astype(np.float32)
        output32 = (x32 * broadcast(s, x.ndim, axis) + broadcast(offset, x.ndim, axis)).astype(np.float32)
        if x_keras is not None:
            as_keras = round_to(output32, dtype)
        elif dtype == "float64":  # a float64 policy computes the folded form in float64
            s64 = scale_float64(layer)
            offset64 = layer.beta_or_zero.astype(np.float64) - moving_mean * s64
            as_keras = x * broadcast(s64, x.ndim, axis) + broadcast(offset64, x.ndim, axis)
        else:
            as_keras = output32
        inference = ModeResult("inference", moving_mean, moving_variance, inference_output, MOVING,
                               "inference always normalises with the moving statistics stored in the file",
                               as_keras)
        training = _training(layer, x, axis, inference)
        if x_keras is not None and training.uses == BATCH:
            # Keras takes the batch statistics of the cast input; the float64 column stays on x.
            on_cast_input = _training(layer, x_keras, axis, inference).output
            training = replace(training, output_as_keras=round_to(on_cast_input.astype(np.float32), dtype))
        terms = folded_terms(x, axis, s, offset, layer.beta_or_zero)
        reference = normalise(layer, x_keras, axis, moving_mean, moving_variance) if x_keras is not None else inference_output
        ulp = term_scaled_ulp(output32, reference, terms, np.float32)
    return Computation(layer, x, axis, inference, training, output32, ulp, s, offset, x_keras)
