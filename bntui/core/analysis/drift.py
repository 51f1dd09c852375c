"""Drift: do a layer's stored moving statistics describe the activations real data gives it?

Pure: it receives per-channel moments of each BN layer's real input (collected by
:mod:`bntui.tf_bridge.drift` in one forward pass) and the layers as bntui read them, and
returns a frozen :class:`DriftResult`. Per layer and channel:

- the data's mean and biased variance (what Keras' batch statistics are);
- ``z = (data mean - moving mean) / sqrt(moving variance + eps)``: how many stored standard
  deviations the data's mean sits away;
- ``variance_ratio = data variance / moving variance``;
- ``output_shift``: the largest ``|y_data(x) - y_moving(x)|`` for ``x`` in the range the
  channel saw. Both outputs are linear in ``x``, so their difference is too, and its largest
  magnitude on ``[min, max]`` is at one of the two ends: exact, with no sampling.

A channel is *drifted* when ``|z| > 3`` or its variance ratio is above 4 or below 1/4.

Momentum horizon: Keras updates ``moving = m * moving + (1 - m) * batch``. After ``k`` updates
the start weighs ``m**k``, so it is forgotten (below 1 %) after ``ceil(log 0.01 / log m)``
updates (459 at 0.99). Fed this data's statistics, a drifted channel fits again when its
stored mean is within one data standard deviation of the data's mean and its variance ratio
is back within [1/4, 4]; both are closed forms in ``m**k``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bntui.core.model import BNLayer
from bntui.core.numbers import fmt, to_json_value

Z_LIMIT = 3.0
RATIO_LIMIT = 4.0
FORGET_FRACTION = 0.01


@dataclass(frozen=True, eq=False)
class Moments:
    """Per-channel count, mean, sum of squared deviations (M2), minimum and maximum, float64.

    Batches are merged with Chan et al.'s parallel formula, so the variance of any number of
    samples is exact to float64 rounding and memory does not grow with the sample count.
    """

    count: int
    mean: np.ndarray
    m2: np.ndarray
    minimum: np.ndarray
    maximum: np.ndarray

    @classmethod
    def of(cls, x: np.ndarray, channel_axis: int) -> Moments:
        """The moments of one array (two-pass, float64), channels on ``channel_axis``."""
        data = np.moveaxis(np.asarray(x, dtype=np.float64), channel_axis, -1)
        flat = data.reshape(-1, data.shape[-1])
        mean = flat.mean(axis=0)
        return cls(count=flat.shape[0], mean=mean, m2=((flat - mean) ** 2).sum(axis=0),
                   minimum=flat.min(axis=0), maximum=flat.max(axis=0))

    @classmethod
    def from_groups(cls, means: np.ndarray, spread: np.ndarray, maximum: np.ndarray, minimum: np.ndarray,
                    length: int) -> Moments:
        """The moments of a batch from per-group summaries, ``(groups, channels)`` each: every
        group's mean, its mean squared deviation from that mean (its own two-pass variance, so
        well conditioned whatever the mean's size), maximum and minimum; every group holds
        ``length`` values per channel. Combined in float64 by the parallel formula
        ``M2 = length * (sum(spread) + sum((means - mean)**2))``; with ``length == 1`` the groups
        are the values themselves (spread 0) and M2 is their exact two-pass float64 sum."""
        means64 = np.asarray(means, dtype=np.float64)
        count = means64.shape[0] * length
        mean = means64.mean(axis=0)
        m2 = (np.asarray(spread, dtype=np.float64).sum(axis=0) + ((means64 - mean) ** 2).sum(axis=0)) * length
        return cls(count=count, mean=mean, m2=m2,
                   minimum=np.asarray(minimum, dtype=np.float64).min(axis=0),
                   maximum=np.asarray(maximum, dtype=np.float64).max(axis=0))

    def merge(self, other: Moments) -> Moments:
        """Chan's parallel combination of two sets of moments of the same channels."""
        total = self.count + other.count
        delta = other.mean - self.mean
        return Moments(
            count=total,
            mean=self.mean + delta * (other.count / total),
            m2=self.m2 + other.m2 + delta**2 * (self.count * other.count / total),
            minimum=np.minimum(self.minimum, other.minimum),
            maximum=np.maximum(self.maximum, other.maximum),
        )

    @property
    def variance(self) -> np.ndarray:
        """The biased variance (divided by the count), as Keras' batch statistics are."""
        return self.m2 / self.count


@dataclass(frozen=True)
class CallStatistics:
    """What one call of one BN layer received over all the data (a shared layer has several)."""

    layer: BNLayer
    moments: Moments
    call: int = 0
    calls: int = 1


@dataclass(frozen=True)
class Flag:
    """A named finding on a layer, with the channels it concerns (empty: the whole layer)."""

    code: str
    message: str
    channels: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "channels": list(self.channels)}


@dataclass(frozen=True, eq=False)
class LayerDrift:
    """The drift of one BN layer call, per channel and summed up."""

    layer: BNLayer
    moments: Moments
    call: int
    calls: int
    z: np.ndarray
    variance_ratio: np.ndarray
    output_shift: np.ndarray
    drifted: np.ndarray
    flags: tuple[Flag, ...]
    #: Updates until the stored statistics' start weighs under 1 % (None: momentum >= 1).
    forget_steps: int | None
    #: Per channel, updates at this data's statistics until it fits (None: not drifted, or never).
    steps_to_fit: tuple[int | None, ...]

    @property
    def path(self) -> str:
        return self.layer.path

    @property
    def label(self) -> str:
        """The path, with the call when the layer is shared."""
        return self.path if self.calls == 1 else f"{self.path} [call {self.call + 1}/{self.calls}]"

    @property
    def max_abs_z(self) -> float:
        return _nan_max(np.abs(self.z))

    @property
    def drifted_channels(self) -> int:
        return int(self.drifted.sum())

    @property
    def fit_after(self) -> str:
        """The most updates at this data's statistics any drifted channel needs to fit, as
        text: "-" when none drifted, "never" when one never fits."""
        steps = [steps for steps, bad in zip(self.steps_to_fit, self.drifted) if bad]
        if not steps:
            return "-"
        return "never" if None in steps else str(max(step for step in steps if step is not None))

    @property
    def max_output_shift(self) -> float:
        return _nan_max(self.output_shift)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "call": self.call,
            "calls": self.calls,
            "channels": self.layer.channels,
            "count_per_channel": self.moments.count,
            "data_mean": to_json_value(self.moments.mean),
            "data_variance": to_json_value(self.moments.variance),
            "data_min": to_json_value(self.moments.minimum),
            "data_max": to_json_value(self.moments.maximum),
            "z": to_json_value(self.z),
            "variance_ratio": to_json_value(self.variance_ratio),
            "output_shift": to_json_value(self.output_shift),
            "max_abs_z": to_json_value(self.max_abs_z),
            "drifted_channels": self.drifted_channels,
            "max_output_shift": to_json_value(self.max_output_shift),
            "flags": [flag.to_dict() for flag in self.flags],
            "momentum": self.layer.momentum,
            "forget_steps": self.forget_steps,
            "steps_to_fit": list(self.steps_to_fit),
        }


@dataclass(frozen=True, eq=False)
class DriftResult:
    """Every BN layer call ranked by ``max_abs_z`` (largest first), and how the data was fed."""

    samples: int
    batches: int
    layers: tuple[LayerDrift, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    def reestimated(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """AdaBN: per layer path, the moving mean and (biased) variance this data gives, all calls
        of a shared layer merged (training would have updated it at each of them)."""
        merged: dict[str, Moments] = {}
        for entry in sorted(self.layers, key=lambda item: (item.path, item.call)):
            merged[entry.path] = merged[entry.path].merge(entry.moments) if entry.path in merged else entry.moments
        return {path: (moments.mean, moments.variance) for path, moments in merged.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "batches": self.batches,
            "layers": [entry.to_dict() for entry in self.layers],
            "notes": list(self.notes),
        }

    def rows(self) -> list[list[Any]]:
        header = ["path", "call", "channel", "data_mean", "data_variance", "moving_mean", "moving_variance",
                  "z", "variance_ratio", "output_shift", "drifted", "steps_to_fit"]
        rows: list[list[Any]] = [header]
        for entry in self.layers:
            variance = entry.moments.variance
            for channel in range(entry.layer.channels):
                steps = entry.steps_to_fit[channel]
                rows.append([
                    entry.path, entry.call, channel, float(entry.moments.mean[channel]), float(variance[channel]),
                    float(entry.layer.moving_mean[channel]), float(entry.layer.moving_variance[channel]),
                    float(entry.z[channel]), float(entry.variance_ratio[channel]),
                    float(entry.output_shift[channel]), bool(entry.drifted[channel]), "" if steps is None else steps,
                ])
        return rows

    def fed_text(self) -> str:
        """How much data went through: ``256 samples in 8 batches through 2 BN layer calls``."""
        batches = f"{self.batches} batch{'es' if self.batches != 1 else ''}"
        calls = f"{len(self.layers)} BN layer call{'s' if len(self.layers) != 1 else ''}"
        return f"{self.samples} samples in {batches} through {calls}"

    def drifted_text(self) -> str:
        """How many layer calls drifted, and what drifted means."""
        drifted = sum(1 for entry in self.layers if entry.drifted_channels)
        return (f"{drifted} with drifted channels (|z| > {Z_LIMIT:g} or variance ratio outside "
                f"[1/{RATIO_LIMIT:g}, {RATIO_LIMIT:g}])")

    def to_text(self) -> str:
        lines = [f"{self.fed_text()}; {self.drifted_text()}"]
        table = [["layer", "channels", "max |z|", "drifted", "max output shift", "fit after", "flags"]]
        for entry in self.layers:
            fit = entry.fit_after
            table.append([entry.label, str(entry.layer.channels), fmt(entry.max_abs_z),
                          str(entry.drifted_channels), fmt(entry.max_output_shift),
                          f"{fit} updates" if fit.isdigit() else fit,
                          "; ".join(flag.message for flag in entry.flags) or "-"])
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
        lines.extend("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1]
                     for row in table)
        horizons = sorted({entry.forget_steps for entry in self.layers}, key=lambda s: (s is None, s or 0))
        for steps in horizons:
            momenta = sorted({entry.layer.momentum for entry in self.layers if entry.forget_steps == steps})
            said = ", ".join(fmt(m) for m in momenta)
            lines.append(f"momentum {said}: " + (f"the stored statistics forget their start (weight < 1%) after "
                                                  f"{steps} updates" if steps is not None else "never updated"))
        lines.append("'fit after': updates at this data's statistics until every drifted channel's stored mean is "
                     "within one data standard deviation and its variance ratio within [1/4, 4]")
        lines.extend(f"note: {note}" for note in self.notes)
        return "\n".join(lines)


def analyse(calls: list[CallStatistics], *, samples: int, batches: int, notes: tuple[str, ...] = ()) -> DriftResult:
    """Measure every layer call and rank them by ``max_abs_z`` (NaN, from a broken stored
    variance, ranks first: it is the worst fit of all)."""
    entries = [layer_drift(item) for item in calls]
    entries.sort(key=lambda entry: (-_rank_key(entry.max_abs_z), -_rank_key(entry.max_output_shift),
                                    entry.path, entry.call))
    return DriftResult(samples=samples, batches=batches, layers=tuple(entries), notes=notes)


def layer_drift(item: CallStatistics) -> LayerDrift:
    """The per-channel drift of one layer call."""
    layer, moments = item.layer, item.moments
    if moments.mean.shape != layer.moving_mean.shape:
        raise ValueError(f"{layer.path}: statistics of {moments.mean.shape[0]} channels for a layer of {layer.channels}")
    moving_mean = layer.moving_mean.astype(np.float64)
    moving_variance = layer.moving_variance.astype(np.float64)
    data_variance = moments.variance
    with np.errstate(all="ignore"):
        moving_std = np.sqrt(moving_variance + layer.epsilon)
        z = (moments.mean - moving_mean) / moving_std
        ratio = np.where(moving_variance != 0, data_variance / np.where(moving_variance != 0, moving_variance, 1.0),
                         np.where(data_variance == 0, 1.0, np.inf))
        drifted = (np.abs(z) > Z_LIMIT) | (ratio > RATIO_LIMIT) | (ratio < 1.0 / RATIO_LIMIT)
    return LayerDrift(
        layer=layer, moments=moments, call=item.call, calls=item.calls, z=z, variance_ratio=ratio,
        output_shift=output_shift(layer, moments), drifted=drifted,
        flags=_flags(layer, moments, drifted), forget_steps=forget_steps(layer.momentum),
        steps_to_fit=tuple(
            steps_to_fit(layer.momentum, float(moving_mean[c]), float(moving_variance[c]), float(moments.mean[c]),
                         float(data_variance[c]), layer.epsilon) if drifted[c] else None
            for c in range(layer.channels)),
    )


def output_shift(layer: BNLayer, moments: Moments) -> np.ndarray:
    """Per channel, max over x in [min, max] of |BN(x; data statistics) - BN(x; moving statistics)|.

    ``gamma * ((x - mu_d) * s_d - (x - mu_m) * s_m)`` is linear in x (beta cancels), so the
    largest magnitude is at an end of the range."""
    gamma = layer.gamma_or_one.astype(np.float64)
    with np.errstate(all="ignore"):
        s_data = 1.0 / np.sqrt(moments.variance + layer.epsilon)
        s_moving = 1.0 / np.sqrt(layer.moving_variance.astype(np.float64) + layer.epsilon)
        mean = layer.moving_mean.astype(np.float64)
        ends = [np.abs(gamma * ((x - moments.mean) * s_data - (x - mean) * s_moving))
                for x in (moments.minimum, moments.maximum)]
        return np.maximum(ends[0], ends[1])


def forget_steps(momentum: float) -> int | None:
    """Updates until the start of the moving statistics weighs under 1 % (None: never)."""
    if momentum >= 1.0:
        return None
    if momentum <= 0.0:
        return 1
    return math.ceil(math.log(FORGET_FRACTION) / math.log(momentum))


def steps_to_fit(momentum: float, moving_mean: float, moving_variance: float, data_mean: float,
                 data_variance: float, epsilon: float) -> int | None:
    """Updates at the data's statistics until the channel fits: stored mean within one data
    standard deviation of the data's mean, variance ratio within [1/4, 4]. None: never."""
    if momentum >= 1.0 or not all(map(math.isfinite, (moving_mean, moving_variance, data_mean, data_variance))):
        return None
    # Each criterion asks m**k <= bound; the steps are the largest k any of them needs.
    bounds: list[float] = []
    gap = abs(moving_mean - data_mean)
    if gap > 0:
        bounds.append(math.sqrt(data_variance + epsilon) / gap)
    if moving_variance > RATIO_LIMIT * data_variance:
        if data_variance == 0:
            return None
        bounds.append((RATIO_LIMIT - 1.0) * data_variance / (moving_variance - data_variance))
    elif moving_variance * RATIO_LIMIT < data_variance:
        bounds.append((1.0 - 1.0 / RATIO_LIMIT) * data_variance / (data_variance - moving_variance))
    needed = [bound for bound in bounds if bound < 1.0]
    if not needed:
        return 0
    if momentum <= 0.0:
        return 1
    return max(math.ceil(math.log(bound) / math.log(momentum)) for bound in needed)


def _flags(layer: BNLayer, moments: Moments, drifted: np.ndarray) -> tuple[Flag, ...]:
    flags: list[Flag] = []
    mean, variance = layer.moving_mean, layer.moving_variance
    all_unit_variance = bool(np.all(variance == 1.0))
    if all_unit_variance and bool(np.all(mean == 0.0)):
        if drifted.any():
            flags.append(Flag("initial_statistics",
                              "initial-looking statistics (moving mean 0, variance 1) far from the data: never "
                              "trained, or its statistics never updated",
                              tuple(int(c) for c in np.flatnonzero(drifted))))
    elif all_unit_variance:
        flags.append(Flag("half_updated",
                          "half-updated: the moving means moved but every moving variance is exactly 1 "
                          "(an update that skipped the variances)"))
    dead = np.flatnonzero(moments.minimum == moments.maximum)
    if dead.size:
        flags.append(Flag("dead_channels", f"{dead.size} dead channel{'s' if dead.size != 1 else ''}: "
                          "its input never varies over the data", tuple(int(c) for c in dead)))
    return tuple(flags)


def _nan_max(values: np.ndarray) -> float:
    """The largest value, NaN when any is NaN (a broken variance must not hide)."""
    if values.size == 0:
        return 0.0
    return float("nan") if bool(np.isnan(values).any()) else float(values.max())


def _rank_key(value: float) -> float:
    return math.inf if math.isnan(value) else value
