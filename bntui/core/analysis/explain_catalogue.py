"""The catalogue of known BatchNormalization computations, right and wrong.

Each entry is a small function that turns the right recipe (Keras' inference formula with
the layer's own weights) into the recipe a known mistake computes, with the source of the
evidence in its docstring. Codes are a stable contract: scripts read them from ``--json``.

Most mistakes keep the formula affine per channel, ``y = x * s + offset``, and only change
what goes into ``s`` and ``offset``: those are :class:`Recipe` changes, and two of them can be
combined (pairs, such as another epsilon with the unbiased variance). Two mistakes change
the arithmetic or the axes themselves (``float16``, ``wrong_axis_standardisation``): they
predict outputs directly and are never paired.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np

from bntui.core.model import BNLayer, ModelInfo
from bntui.core.numbers import fmt
from bntui.core.numerics import broadcast, folded_float32, ulp_of
from bntui.core.steps import BATCH, Computation


def _as64(values: Any) -> np.ndarray:
    """``values`` as a float64 array."""
    return np.asarray(values, dtype=np.float64)


def _as16(values: Any) -> np.ndarray:
    """``values`` rounded to float16."""
    return np.asarray(values, dtype=np.float64).astype(np.float16)

#: Epsilon values tried as they are (no fitting): no epsilon, PyTorch's and ONNX's default,
#: TF 1.x's fused-kernel/cuDNN minimum (also Keras Applications' ResNets), Keras' default.
KNOWN_EPSILONS: dict[float, str] = {
    0.0: "no epsilon at all",
    1e-5: "PyTorch's and ONNX's default",
    1.001e-5: "the minimum TF 1.x's fused kernel and cuDNN accept (Keras Applications' ResNets use it)",
    1e-3: "Keras' default",
}
#: cuDNN's CUDNN_BN_MIN_EPSILON; TF 1.x's fused batch norm raised a smaller epsilon to it.
CUDNN_MIN_EPSILON = 1.001e-5

#: How the denominator is built from the variance slot and epsilon.
DENOMINATORS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "sqrt(var + eps)": lambda v, e: np.sqrt(v + e),
    "sqrt(var) + eps": lambda v, e: np.sqrt(v) + e,
    "var + eps": lambda v, e: v + e,
}


@dataclass(frozen=True, eq=False)
class Recipe:
    """What goes into an affine BN computation, per channel (float64)."""

    mean: np.ndarray
    variance: np.ndarray
    gamma: np.ndarray
    beta: np.ndarray
    epsilon: np.ndarray
    denominator: str = "sqrt(var + eps)"
    #: n when the mean and variance are the batch's own: a float32 framework sums n values
    #: to get them, which adds rounding of the channel's largest term (see :func:`affine`).
    batch_samples: int = 0

    @cached_property
    def _scale(self) -> np.ndarray:
        with np.errstate(all="ignore"):
            return self.gamma / DENOMINATORS[self.denominator](self.variance, self.epsilon)

    def scale(self) -> np.ndarray:
        """``s = gamma / denominator``."""
        return self._scale

    @cached_property
    def _offset(self) -> np.ndarray:
        with np.errstate(all="ignore"):
            return self.beta - self.mean * self._scale

    def offset(self) -> np.ndarray:
        """``offset = beta - mean * s``."""
        return self._offset

    @cached_property
    def fingerprint(self) -> bytes:
        """s and offset to 10 significant digits: equal fingerprints give the same numbers on
        every input (a sum of float64 roundings differs only far below that)."""
        both = np.concatenate([self._scale, self._offset])
        with np.errstate(all="ignore"):
            exponent = np.floor(np.log10(np.abs(np.where(both == 0, 1.0, both))))
            exponent = np.where(np.isfinite(exponent), exponent, 0.0)
            mantissa = np.round(both / 10.0**exponent, 9)
        return np.concatenate([mantissa, exponent]).tobytes()

    def at(self, x: np.ndarray, channel: np.ndarray, widest_x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``x * s + offset`` for flat input values ``x`` of the given channels, and each
        output's largest term (see :func:`affine`); ``widest_x`` is every channel's largest
        |x| over the whole batch, which bounds the rounding of the batch's own statistics."""
        s, offset = self._scale[channel], self._offset[channel]
        with np.errstate(all="ignore"):
            scaled = np.abs(x * s)
            terms = np.maximum(scaled, np.maximum(np.abs(self.mean * self._scale), np.abs(self.beta))[channel])
            if self.batch_samples:
                # The batch mean is a float32 sum of n values: its rounding grows like log2(n) ulps
                # of the channel's largest |x * s| (pairwise reduction), for every output of the channel.
                terms = np.maximum(terms, widest_x[channel] * np.abs(s) * (1.0 + np.log2(self.batch_samples)))
            return x * s + offset, np.nan_to_num(terms, nan=0.0, posinf=np.finfo(np.float64).max)

    def same_as(self, other: Recipe) -> bool:
        """True when both give the same numbers on every input (same s and offset)."""
        return self.fingerprint == other.fingerprint

    def formula(self, channel: int) -> str:
        """The computation of one channel with its numbers, as a person would write it."""
        e = fmt(self.epsilon[channel])
        v = fmt(self.variance[channel])
        denominator = {"sqrt(var + eps)": f"sqrt({v} + {e})", "sqrt(var) + eps": f"(sqrt({v}) + {e})",
                       "var + eps": f"({v} + {e})"}[self.denominator]
        return (f"y = {fmt(self.gamma[channel])} * (x - {fmt(self.mean[channel])}) / {denominator}"
                f" + {fmt(self.beta[channel])}")


@dataclass(frozen=True, eq=False)
class Context:
    """What every catalogue entry may look at: the layer, the input, the model's other layers."""

    layer: BNLayer
    computation: Computation
    model: ModelInfo | None = None
    #: The batch's own statistics over every axis but the channel axis (biased variance).
    batch_mean: np.ndarray = field(init=False)
    batch_variance: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        x, axis = self.computation.x, self.computation.axis
        reduce_axes = tuple(index for index in range(x.ndim) if index != axis)
        with np.errstate(all="ignore"):
            mean = x.mean(axis=reduce_axes)
            variance = np.square(x - broadcast(mean, x.ndim, axis)).mean(axis=reduce_axes)
        object.__setattr__(self, "batch_mean", mean)
        object.__setattr__(self, "batch_variance", variance)

    @property
    def samples(self) -> int:
        """Values per channel in the batch (the n of the variance)."""
        return self.computation.samples_per_channel

    def right_recipe(self) -> Recipe:
        """Keras' inference formula with the layer's own weights."""
        layer = self.layer
        return Recipe(_as64(layer.moving_mean), _as64(layer.moving_variance), _as64(layer.gamma_or_one),
                      _as64(layer.beta_or_zero), np.full(layer.channels, float(layer.epsilon)))

    def training_uses_batch_statistics(self) -> bool:
        """Whether Keras' training mode, as :func:`bntui.core.steps.compute` says, normalises
        this layer with the batch's statistics (a frozen layer does not)."""
        return self.computation.training.uses == BATCH

    @property
    def half_policy(self) -> bool:
        """Whether Keras rounds this layer's input and output to a 16-bit float."""
        return self.layer.compute_dtype in ("float16", "bfloat16")


@dataclass(frozen=True, eq=False)
class Variant:
    """One concrete computation a mistake stands for, with the parameters it was given."""

    parameters: dict[str, Any]
    recipe: Recipe | None = None
    #: For mistakes that are not a recipe: x (shaped for the layer) -> (output, largest term).
    predict_direct: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None
    formula: str = ""
    note: str = ""

    def predict(self, x: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
        """The output for ``x`` and, per element, the largest term summed into it."""
        if self.recipe is not None:
            return affine(self.recipe, x, axis)
        assert self.predict_direct is not None
        return self.predict_direct(x)


RecipeMistake = Callable[[Recipe, Context], list[tuple[Recipe, dict[str, Any], str]]]
DirectMistake = Callable[[Context], list[Variant]]


@dataclass(frozen=True)
class Mistake:
    """A catalogue entry: its stable code, a title, plain sentences, and what it computes.

    ``slots`` are the parts of the recipe it changes: two mistakes pair only when their slots
    are disjoint (a second epsilon cannot be combined with a first one).
    """

    code: str
    title: str
    sentences: str
    slots: frozenset[str]
    change: RecipeMistake | None = None
    direct: DirectMistake | None = None
    pairable: bool = True


def affine(recipe: Recipe, x: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """``x * s + offset`` over a whole tensor, and each output's largest term summed: the terms
    a float32 evaluation rounds, ``|x * s|``, ``|mean * s|`` and ``|beta|`` (see
    :mod:`bntui.core.numerics`), and for the batch's own statistics their rounding."""
    channel = np.broadcast_to(broadcast(np.arange(recipe.mean.shape[0]), x.ndim, axis), x.shape)
    others = tuple(index for index in range(x.ndim) if index != axis)
    widest = np.max(np.abs(np.nan_to_num(x)), axis=others)
    output, terms = recipe.at(x.ravel(), channel.ravel(), widest)
    return output.reshape(x.shape), terms.reshape(x.shape)


# --- statistics -------------------------------------------------------------------------------


def batch_statistics(recipe: Recipe, context: Context) -> list[tuple[Recipe, dict[str, Any], str]]:
    """Training-mode output: the batch's own mean and biased variance.

    Evidence: Keras 3 ``BatchNormalization.call`` (``training and self.trainable`` uses
    ``_moments``, which divides by n); tf.keras 2.x likewise; PyTorch in ``train()``.
    """
    if context.training_uses_batch_statistics():
        note = ("Keras' training mode gives exactly this: fit(), train_on_batch(), a call with "
                "training=True (often hard-coded at the call site, as in BatchNormalization()(x, training=True)), "
                "or a custom loop that calls the model without training=False. In PyTorch, model.eval() was not called.")
    elif context.layer.standalone_keras_frozen_semantics:
        note = (f"The layer is frozen (trainable=False), but the Keras that wrote this file ({context.layer.keras_version}) "
                "still normalised frozen layers with the batch's statistics in training mode; today's Keras does not.")
    else:
        note = ("Keras does not do this for this layer: it is frozen (trainable=False), and a frozen layer runs in "
                "inference mode even with training=True. Standalone Keras 2.0 to 2.3, PyTorch in train() and "
                "converters that ignore the trainable flag do normalise it with the batch's statistics.")
    if context.samples == 1:
        note += (" With one value per channel the batch variance is 0, so every output collapses to beta; "
                 "TF's fused GPU kernel and PyTorch give NaN or refuse such a batch.")
    batch = replace(recipe, mean=context.batch_mean, variance=context.batch_variance, batch_samples=context.samples)
    return [(batch, {"samples": context.samples}, note)]


def batch_statistics_unbiased(recipe: Recipe, context: Context) -> list[tuple[Recipe, dict[str, Any], str]]:
    """The batch's statistics with the unbiased variance, n / (n - 1) times the biased one.

    Evidence: ``numpy.var(ddof=1)``, ``torch.var`` (unbiased by default) and
    ``pandas.Series.var`` in hand-written ports; Keras 2.1's training-mode normalisation
    multiplied the variance by n / (n - 1 - epsilon).
    """
    n = context.samples
    if n < 2:
        return []
    variance = context.batch_variance * n / (n - 1)
    return [(replace(recipe, mean=context.batch_mean, variance=variance, batch_samples=n), {"samples": n}, "")]


def batch_standardisation(recipe: Recipe, context: Context) -> list[tuple[Recipe, dict[str, Any], str]]:
    """The batch's statistics and no gamma or beta: ``(x - batch_mean) / sqrt(batch_var + eps)``.

    Evidence: the question bntui was born from (Stack Overflow 46443196: "[1, 5] should
    yield [-1, 1]"), and Stack Overflow 47567655 ("the results are [-1, -1] and [1, 1]").
    """
    ones, zeros = np.ones_like(recipe.gamma), np.zeros_like(recipe.beta)
    standardised = replace(recipe, mean=context.batch_mean, variance=context.batch_variance, gamma=ones, beta=zeros,
                           batch_samples=context.samples)
    return [(standardised, {}, "")]


def mean_variance_swapped(recipe: Recipe, context: Context) -> list[tuple[Recipe, dict[str, Any], str]]:
    """The moving mean used as the variance and the moving variance as the mean.

    Evidence: converters that read the four BN weights by position (Keras' order is gamma,
    beta, moving_mean, moving_variance; Caffe stores mean, variance, scale factor).
    """
    return [(replace(recipe, mean=recipe.variance, variance=recipe.mean), {}, "")]


# --- epsilon and the denominator ---------------------------------------------------------------


def epsilon_value(recipe: Recipe, context: Context) -> list[tuple[Recipe, dict[str, Any], str]]:
    """Another epsilon than the layer's: 0, 1e-5, 1.001e-5 or 1e-3 (fitted values are
    solved separately, from the values given).

    Evidence: PyTorch ``BatchNorm2d(eps=1e-5)`` against Keras' 1e-3; TF 1.x's
    ``fused_batch_norm`` raised epsilon to cuDNN's minimum 1.001e-5
    (``CUDNN_BN_MIN_EPSILON``), which is why Keras Applications' ResNets use 1.001e-5.
    """
    variants = []
    own = float(context.layer.epsilon)
    for value, known in KNOWN_EPSILONS.items():
        if np.isclose(value, own, rtol=1e-9, atol=0.0):
            continue
        note = f"epsilon {fmt(value)} is {known}."
        if value == CUDNN_MIN_EPSILON and own < CUDNN_MIN_EPSILON:
            note += (f" The layer's {fmt(own)} is below it: TF 1.x's fused kernel and cuDNN silently raise epsilon "
                     f"to at least {fmt(CUDNN_MIN_EPSILON)}.")
        variants.append((replace(recipe, epsilon=np.full_like(recipe.epsilon, value)), {"epsilon": value}, note))
    return variants


def epsilon_outside_sqrt(recipe: Recipe, context: Context) -> list[tuple[Recipe, dict[str, Any], str]]:
    """Epsilon added after the square root: ``(x - mean) / (sqrt(var) + eps)``.

    Evidence: PyTorch pull request 1804 fixed its documentation, which put epsilon outside
    the square root; hand-written ports copy either form.
    """
    return [(replace(recipe, denominator="sqrt(var) + eps"), {}, "")]


def variance_not_square_rooted(recipe: Recipe, context: Context) -> list[tuple[Recipe, dict[str, Any], str]]:
    """Division by ``var + eps`` with no square root.

    Evidence: the tf.keras BatchNormalization documentation said ``(batch - moving_mean) /
    (moving_var + epsilon) * gamma + beta`` (tensorflow issue 46522); Caffe issue 4885.
    """
    return [(replace(recipe, denominator="var + eps"), {}, "")]


def variance_is_std(recipe: Recipe, context: Context) -> list[tuple[Recipe, dict[str, Any], str]]:
    """A standard deviation stored where the variance belongs:
    ``gamma * (x - mean) / sqrt(sqrt(var) + eps) + beta``.

    Evidence: ports from frameworks that keep the standard deviation (``numpy.std``, Keras'
    ``moving_stddev`` of batch renormalisation) into a variance slot.
    """
    with np.errstate(all="ignore"):
        return [(replace(recipe, variance=np.sqrt(recipe.variance)), {}, "")]


def inverse_std_as_variance(recipe: Recipe, context: Context) -> list[tuple[Recipe, dict[str, Any], str]]:
    """``1 / sqrt(var + eps)`` put where the variance belongs.

    Evidence: tensorflow issue 22985 (``tf.nn.fused_batch_norm`` returned the inverse
    standard deviation in its variance output on GPU, and it was saved as the variance).
    """
    with np.errstate(all="ignore"):
        inverse = 1.0 / np.sqrt(recipe.variance + recipe.epsilon)
    return [(replace(recipe, variance=inverse), {}, "")]


# --- gamma and beta ----------------------------------------------------------------------------


def gamma_beta_swapped(recipe: Recipe, context: Context) -> list[tuple[Recipe, dict[str, Any], str]]:
    """gamma used as beta and beta as gamma.

    Evidence: weights loaded by position where the two frameworks order them differently
    (PyTorch's ``weight, bias`` against a converter that writes ``beta`` first).
    """
    if not (context.layer.center and context.layer.scale):
        return []
    return [(replace(recipe, gamma=recipe.beta, beta=recipe.gamma), {}, "")]


def gamma_ignored(recipe: Recipe, context: Context) -> list[tuple[Recipe, dict[str, Any], str]]:
    """gamma left out (taken as 1).

    Evidence: Stack Overflow 46443196 and the textbook formula ``(x - mean) / sqrt(var)``
    that many hand-written checks start from.
    """
    if not context.layer.scale:
        return []
    return [(replace(recipe, gamma=np.ones_like(recipe.gamma)), {}, "")]


def beta_ignored(recipe: Recipe, context: Context) -> list[tuple[Recipe, dict[str, Any], str]]:
    """beta left out (taken as 0).

    Evidence: hand-written checks that stop at ``gamma * x_hat``; models saved with
    ``center=False`` compared against ports that add a bias.
    """
    if not context.layer.center:
        return []
    return [(replace(recipe, beta=np.zeros_like(recipe.beta)), {}, "")]


def other_layer_weights(recipe: Recipe, context: Context) -> list[tuple[Recipe, dict[str, Any], str]]:
    """The weights of another BN layer of the same model with as many channels.

    Evidence: Keras' ``load_weights(by_name=False)`` assigns weights by position, so a model
    built with its layers in another order loads each BN layer with a neighbour's weights.
    """
    if context.model is None:
        return []
    variants = []
    for other in context.model.layers:
        if other.path == context.layer.path or other.channels != context.layer.channels:
            continue
        changed = replace(recipe, mean=_as64(other.moving_mean), variance=_as64(other.moving_variance),
                          gamma=_as64(other.gamma_or_one), beta=_as64(other.beta_or_zero))
        variants.append((changed, {"layer": other.path}, f"These are the weights of {other.path}."))
    return variants


# --- arithmetic and axes -----------------------------------------------------------------------


def float16(context: Context) -> list[Variant]:
    """The computation in float16: Keras' float16 policy, or float16 arithmetic throughout.

    Evidence: Keras 3 ``BatchNormalization.call`` casts float16 inputs and weights to float32,
    computes, and casts the output back to float16 (the ``float16`` and ``mixed_float16``
    policies); PyTorch's ``model.half()`` and TFLite's float16 quantisation compute in float16.
    """
    layer = context.layer
    axis = context.computation.axis
    weights16 = replace(layer, moving_mean=_as16(layer.moving_mean), moving_variance=_as16(layer.moving_variance),
                        gamma=None if layer.gamma is None else _as16(layer.gamma),
                        beta=None if layer.beta is None else _as16(layer.beta))
    s32, offset32 = folded_float32(weights16)

    def keras_policy(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x32 = x.astype(np.float16).astype(np.float32)
        with np.errstate(all="ignore"):
            scaled = x32 * broadcast(s32, x.ndim, axis)
            y32 = scaled + broadcast(offset32, x.ndim, axis)
            y16 = y32.astype(np.float16)
            # Where the float32 result lies within its own rounding of a float16 midpoint, another
            # float32 evaluation order may round to the neighbouring float16: allow that one step.
            # (The slack is 4 float32 ulps of `terms`: 2**12 |y| makes it two float16 ulps, one across a binade.)
            half_step = np.spacing(np.abs(y16)).astype(np.float64) / 2
            from_midpoint = np.abs(np.abs(y32.astype(np.float64) - y16.astype(np.float64)) - half_step)
            rounding = 8 * ulp_of(np.maximum(np.abs(scaled), np.abs(broadcast(offset32, x.ndim, axis))), np.float32)
            terms = np.where(from_midpoint <= rounding, np.abs(y16.astype(np.float64)) * 2.0**12, 0.0)
        return y16.astype(np.float64), np.nan_to_num(terms)

    def throughout(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        def h(values: Any) -> np.ndarray:
            return broadcast(_as16(values), x.ndim, axis)

        with np.errstate(all="ignore"):
            x_hat = (x.astype(np.float16) - h(layer.moving_mean)) / np.sqrt(h(layer.moving_variance) + np.float16(layer.epsilon))
            y = x_hat * h(layer.gamma_or_one) + h(layer.beta_or_zero)
        return y.astype(np.float64), np.zeros(x.shape)

    variants = [Variant({"arithmetic": "float16 throughout"}, predict_direct=throughout,
                        formula="y = gamma * (x - mean) / sqrt(var + eps) + beta, every operation rounded to float16")]
    if context.half_policy:
        # Keras' own float16 result is `correct` for this layer; float32 here means the policy was ignored.
        variants.append(Variant({"arithmetic": f"float32: the layer's {layer.dtype_policy} policy ignored"},
                                recipe=context.right_recipe()))
    else:
        variants.insert(0, Variant({"arithmetic": "float16 weights and output, float32 inside (Keras' float16 policy)"},
                                   predict_direct=keras_policy,
                                   formula="y = float16(float32(x16) * s + offset), s and offset from float16 weights"))
    return variants


def wrong_axis_standardisation(context: Context) -> list[Variant]:
    """Statistics taken over the wrong axis: each sample's channels against each other, or
    the whole tensor at once, instead of each channel over the batch.

    Evidence: ``axis=1`` left at its channels-first value for channels-last data (and the
    reverse), and hand-written ``x.mean(axis=-1)`` checks that normalise a sample's features,
    as layer normalisation does.
    """
    layer = context.layer
    if layer.channels == 1:
        return []  # one channel: over the channels gives beta everywhere, over the whole tensor is the batch
    axis = context.computation.axis
    eps = float(layer.epsilon)
    variants = []
    for over, reduce in (("each sample's channels", lambda x: (axis,)), ("the whole tensor", lambda x: tuple(range(x.ndim)))):
        for affine_too in (False, True):
            def predict(x: np.ndarray, reduce: Callable[[np.ndarray], tuple[int, ...]] = reduce,
                        affine_too: bool = affine_too) -> tuple[np.ndarray, np.ndarray]:
                with np.errstate(all="ignore"):
                    mean = x.mean(axis=reduce(x), keepdims=True)
                    x_hat = (x - mean) / np.sqrt(np.square(x - mean).mean(axis=reduce(x), keepdims=True) + eps)
                    if not affine_too:
                        return x_hat, np.abs(x_hat)
                    gamma = broadcast(np.asarray(layer.gamma_or_one, dtype=np.float64), x.ndim, axis)
                    beta = broadcast(np.asarray(layer.beta_or_zero, dtype=np.float64), x.ndim, axis)
                    return x_hat * gamma + beta, np.maximum(np.abs(x_hat * gamma), np.abs(beta))

            formula = f"x_hat = (x - mean) / sqrt(var + {fmt(eps)}) with mean and var over {over}"
            variants.append(Variant({"statistics_over": over, "gamma_and_beta": affine_too}, predict_direct=predict,
                                    formula=formula + ("; y = gamma * x_hat + beta" if affine_too else "; y = x_hat")))
    return variants


_ALL = frozenset({"statistics", "gamma", "beta"})

#: The catalogue, in the order two mistakes are applied when paired.
CATALOGUE: tuple[Mistake, ...] = (
    Mistake("batch_statistics", "training mode: the batch's own statistics",
            "These are training-mode outputs: the batch is normalised with its own mean and biased variance "
            "(divided by n) instead of the moving statistics stored in the layer.",
            frozenset({"statistics"}), batch_statistics),
    Mistake("batch_statistics_unbiased", "the batch's statistics with the unbiased variance",
            "The batch's own mean and the unbiased variance (divided by n - 1) were used, as numpy's var(ddof=1) "
            "or torch.var compute it. Keras normalises with the biased variance (divided by n).",
            frozenset({"statistics"}), batch_statistics_unbiased),
    Mistake("batch_standardisation", "plain standardisation with the batch's statistics",
            "This standardises the batch with its own mean and variance and applies no gamma or beta. "
            "A trained BN layer at inference uses its moving statistics, then scales by gamma and shifts by beta.",
            _ALL, batch_standardisation),
    Mistake("mean_variance_swapped", "moving mean and moving variance swapped",
            "The moving mean was used as the variance and the moving variance as the mean, "
            "as when weights are copied by position between formats that order them differently.",
            frozenset({"statistics"}), mean_variance_swapped),
    Mistake("other_layer_weights", "another BN layer's weights",
            "These values come from the weights of another BN layer of this model with as many channels, "
            "as when weights are loaded by position into a model whose layers are in another order.",
            _ALL | {"weights"}, other_layer_weights, pairable=False),
    Mistake("epsilon_value", "another epsilon",
            "The formula is right but uses another epsilon than the layer's.",
            frozenset({"epsilon"}), epsilon_value),
    Mistake("variance_is_std", "a standard deviation where the variance belongs",
            "The square root of the variance (a standard deviation) was used where the variance belongs, "
            "so the formula took the square root twice.",
            frozenset({"variance"}), variance_is_std),
    Mistake("inverse_std_as_variance", "1 / sqrt(var + eps) where the variance belongs",
            "The inverse standard deviation 1 / sqrt(var + eps) was used where the variance belongs, "
            "as tensorflow#22985's fused kernel returned it.",
            frozenset({"variance"}), inverse_std_as_variance),
    Mistake("epsilon_outside_sqrt", "epsilon outside the square root",
            "Epsilon was added after the square root: (x - mean) / (sqrt(var) + eps) instead of sqrt(var + eps).",
            frozenset({"denominator"}), epsilon_outside_sqrt),
    Mistake("variance_not_square_rooted", "divided by var + eps, no square root",
            "The input was divided by var + eps instead of its square root.",
            frozenset({"denominator"}), variance_not_square_rooted),
    Mistake("gamma_beta_swapped", "gamma and beta swapped",
            "gamma was used as the shift and beta as the scale.",
            frozenset({"gamma", "beta"}), gamma_beta_swapped),
    Mistake("gamma_ignored", "gamma left out",
            "gamma was left out (taken as 1): the output is not scaled.",
            frozenset({"gamma"}), gamma_ignored),
    Mistake("beta_ignored", "beta left out",
            "beta was left out (taken as 0): the output is not shifted.",
            frozenset({"beta"}), beta_ignored),
    Mistake("float16", "float16 arithmetic",
            "The same computation in float16: a float16 or mixed_float16 policy, model.half(), or a float16 "
            "converted model. float16 keeps about 3 decimal digits.",
            frozenset({"arithmetic"}), direct=float16, pairable=False),
    Mistake("wrong_axis_standardisation", "statistics over the wrong axis",
            "The values were standardised over the wrong axis: each sample's channels against each other, or the "
            "whole tensor at once, instead of each channel over the batch.",
            frozenset({"axes"}), direct=wrong_axis_standardisation, pairable=False),
)

#: Codes outside the catalogue functions: the right answer, a fitted epsilon, and none.
CORRECT = "correct"
UNEXPLAINED = "unexplained"
CODES: tuple[str, ...] = (CORRECT, *(m.code for m in CATALOGUE), UNEXPLAINED)
