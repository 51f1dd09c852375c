"""Why is the moving variance after a training step not the batch variance?

One training step moves each moving statistic only part of the way towards the batch's:
``moving = moving * momentum + batch * (1 - momentum)``. Which estimate of the batch
variance goes in differs between frameworks, and people paste the moving statistics they saw
after a step and ask why. Each candidate below is a documented update rule with its code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from bntui.core.analysis.explain import TIER_SINGLE, ExplainResult, Explanation, compare_values
from bntui.core.analysis.explain_catalogue import UNEXPLAINED
from bntui.core.errors import InputValueError
from bntui.core.input_parse import resolve_axis
from bntui.core.model import BNLayer
from bntui.core.numbers import fmt
from bntui.core.tolerance import Given

#: (batch variance biased, n, epsilon) -> the variance estimate the rule feeds the update.
Estimator = Callable[[np.ndarray, int, float], np.ndarray]


@dataclass(frozen=True)
class UpdateRule:
    """One way the moving statistics are updated after a step."""

    code: str
    title: str
    sentences: str
    estimator: Estimator
    inverted: bool = False


def biased(variance: np.ndarray, n: int, epsilon: float) -> np.ndarray:
    """The batch variance divided by n. Evidence: Keras 3 ``BatchNormalization.call`` assigns
    ``moving_variance * momentum + variance * (1 - momentum)`` with ``variance`` from
    ``_moments`` (``ops.moments``, biased); tf.keras 2.x's non-fused path does the same."""
    return variance


def unbiased(variance: np.ndarray, n: int, epsilon: float) -> np.ndarray:
    """n / (n - 1) times the biased variance. Evidence: TensorFlow's ``FusedBatchNormV3``
    (tf.keras 2.x with ``fused=True``, the default for 4D inputs) applies Bessel's correction
    to the running variance; PyTorch's ``BatchNorm`` running_var and ONNX training do too."""
    return variance * n / (n - 1) if n > 1 else np.full_like(variance, np.nan)


def keras21(variance: np.ndarray, n: int, epsilon: float) -> np.ndarray:
    """n / (n - 1 - epsilon) times the biased variance. Evidence: Keras 2.1.3's
    ``BatchNormalization.call`` multiplied the variance by
    ``sample_size / (sample_size - (1.0 + self.epsilon))`` before the update."""
    return variance * n / (n - 1.0 - epsilon) if n > 1 else np.full_like(variance, np.nan)


RULES: tuple[UpdateRule, ...] = (
    UpdateRule("moving_update_biased", "Keras 3's update with the biased batch variance",
               "One step moves the moving statistics (1 - momentum) of the way towards the batch's mean and biased "
               "variance (divided by n), as Keras 3 does; they reach the batch's values only after many steps.", biased),
    UpdateRule("moving_update_unbiased", "the update with the unbiased batch variance",
               "The update used the unbiased batch variance (divided by n - 1): tf.keras's fused kernel, PyTorch and "
               "ONNX training do this, Keras 3 does not.", unbiased),
    UpdateRule("moving_update_keras21", "Keras 2.1's update, n / (n - 1 - epsilon)",
               "The update used the batch variance times n / (n - 1 - epsilon), as Keras 2.1 to 2.2 did.", keras21),
    UpdateRule("momentum_inverted", "momentum used the other way round",
               "The momentum was applied the other way round: moving * (1 - m) + batch * m, so the moving statistics "
               "jumped most of the way to the batch's (PyTorch's momentum 0.1 means what Keras' 0.9 means).",
               biased, inverted=True),
)


def explain_moving_update(layer: BNLayer, batch: np.ndarray, mean: Given | None, variance: Given | None) -> ExplainResult:
    """Rank the update rules by how well they give the moving mean and variance seen after one
    training step on ``batch`` (already shaped for the layer), from the layer's weights before it."""
    if mean is None and variance is None:
        raise InputValueError("give the moving mean or the moving variance you saw after the step")
    for name, given in (("moving mean", mean), ("moving variance", variance)):
        if given is not None and given.values.size != layer.channels:
            raise InputValueError(f"{given.values.size} {name} values given; the layer has {layer.channels} channels")
    x = np.asarray(batch, dtype=np.float64)
    axis = resolve_axis(layer.axis, x.ndim)
    if x.shape[axis] != layer.channels:
        raise InputValueError(f"the batch has {x.shape[axis]} entries on axis {layer.axis}; the layer has {layer.channels} channels")
    reduce_axes = tuple(index for index in range(x.ndim) if index != axis)
    n = int(x.size // layer.channels)
    batch_mean = x.mean(axis=reduce_axes)
    shape = [1] * x.ndim
    shape[axis] = -1
    squares = np.square(x - batch_mean.reshape(shape))
    batch_variance = squares.mean(axis=reduce_axes)
    # A float32 framework sums n values for each statistic: its rounding grows like log2(n)
    # ulps of the largest value summed (pairwise reduction).
    growth = 1.0 + np.log2(max(n, 1))
    widest_x = np.abs(x).max(axis=reduce_axes) * growth
    widest_square = squares.max(axis=reduce_axes) * growth
    m = float(layer.momentum)
    old_mean = layer.moving_mean.astype(np.float64)
    old_variance = layer.moving_variance.astype(np.float64)
    entries = []
    for rule in RULES:
        keep, take = (1.0 - m, m) if rule.inverted else (m, 1.0 - m)
        with np.errstate(all="ignore"):
            estimate = rule.estimator(batch_variance, n, float(layer.epsilon))
            predicted = {"mean": old_mean * keep + batch_mean * take, "variance": old_variance * keep + estimate * take}
            terms = {"mean": np.maximum.reduce([np.abs(old_mean * keep), np.abs(batch_mean * take), widest_x * take]),
                     "variance": np.maximum.reduce([np.abs(old_variance * keep), np.abs(estimate * take),
                                                    widest_square * take])}
        entries.append(_score(rule, layer, n, predicted, terms, {"mean": mean, "variance": variance}))
    ranked = sorted(entries, key=lambda e: (not e.reproduces, e.difference.mismatches, e.closeness))
    if not ranked[0].reproduces:
        near = ranked[0]
        text = (f"No known update rule gives these statistics. The closest is {near.code} "
                f"({near.difference.describe(3)}). Check the batch, the momentum ({fmt(m)}) and that the values were "
                "read after exactly one training step from these weights.")
        ranked.insert(0, Explanation(UNEXPLAINED, "no known update rule gives these statistics", text, False,
                                     near.max_abs_diff, {}, None, np.array([]), TIER_SINGLE + 1, float("inf"),
                                     None, near.comparison))
    kind = " and ".join(name for name, g in (("moving mean", mean), ("moving variance", variance)) if g is not None)
    return ExplainResult(layer.path, f"saw the {kind}", x, _combined(mean, variance), None, tuple(ranked))


def _combined(mean: Given | None, variance: Given | None) -> Given:
    """The given statistics as one list: the mean's values first, then the variance's."""
    parts = [g for g in (mean, variance) if g is not None]
    return Given(np.concatenate([g.values for g in parts]), np.concatenate([g.below for g in parts]),
                 np.concatenate([g.above for g in parts]), parts[0].source)


def _score(rule: UpdateRule, layer: BNLayer, n: int, predicted: dict[str, np.ndarray], terms: dict[str, np.ndarray],
           given: dict[str, Given | None]) -> Explanation:
    ratios, values, wanted = [], [], []
    for key in ("mean", "variance"):
        g = given[key]
        if g is None:
            continue
        ratios.append(g.excess(predicted[key], terms[key]))
        values.append(predicted[key])
        wanted.append(g.values)
    ratio = np.concatenate(ratios)
    difference = compare_values(np.concatenate(values), np.concatenate(wanted))
    reproduces = bool(np.all(ratio <= 1.0))
    matched = np.all(np.stack([r <= 1.0 for r in ratios]), axis=0)
    channels = [int(c) for c in np.flatnonzero(matched)] if not reproduces and matched.any() and layer.channels > 1 else None
    parameters: dict[str, Any] = {"momentum": float(layer.momentum), "samples": n}
    frozen = "" if layer.trainable else (
        " Note: the layer is frozen (trainable=False), and Keras does not update a frozen layer's statistics at all.")
    formula = (f"As computed (channel 0): moving_variance = {fmt(layer.moving_variance[0])} * "
               f"{fmt(1 - layer.momentum if rule.inverted else layer.momentum)} + batch estimate * "
               f"{fmt(layer.momentum if rule.inverted else 1 - layer.momentum)}.")
    explanation = f"{rule.sentences}{frozen} {formula} Tolerance: the digits typed plus 4 float32 ulps of the largest term."
    compared = ratio[np.isfinite(np.concatenate(values)) & np.isfinite(np.concatenate(wanted))]
    closeness = float(np.max(compared, initial=0.0)) if difference.mismatches else float(np.max(ratio))
    return Explanation(rule.code, rule.title, explanation, reproduces, difference.max_abs_diff, parameters, channels,
                       np.concatenate(values), TIER_SINGLE, closeness, None, difference)
