""""Why did I get this number?": which known computation produces the values a user gave.

The user gives the numbers they got (or expected) for an input. Every entry of the
catalogue (:mod:`bntui.core.analysis.explain_catalogue`) predicts its numbers for that
input; those within the tolerance of every given value *reproduce* them (see
:mod:`bntui.core.tolerance`: the digits typed plus float32 rounding).

Ranking, simplest first, because with one or two values a solved parameter fits almost
anything: ``correct`` when it reproduces; then mistakes with no fitted parameter; then a
fitted epsilon (only in [0, 1]); then pairs of two mistakes; closeness decides among equals.
When nothing reproduces, an ``unexplained`` entry comes first and the closest follow.

NaN and infinities (a NaN fed in, a zero variance) are compared as values, not as numbers:
NaN where the user has NaN, or the same infinity, agrees (difference 0); a non-finite value
on one side only is a mismatch, never reproduced, counted apart from ``max |diff|``
(:func:`compare_values`), which is over the values where both sides are numbers.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from bntui.core.analysis.explain_catalogue import (
    CATALOGUE,
    CORRECT,
    KNOWN_EPSILONS,
    UNEXPLAINED,
    Context,
    Mistake,
    Recipe,
    Variant,
)
from bntui.core.errors import InputValueError
from bntui.core.input_parse import resolve_axis, shape_for_layer
from bntui.core.model import BNLayer, ModelInfo
from bntui.core.numbers import fmt, fmt_list, to_json_value
from bntui.core.numerics import broadcast
from bntui.core.steps import compute
from bntui.core.tolerance import Given

#: Tiers of the ranking: lower is simpler.
TIER_CORRECT, TIER_SINGLE, TIER_FITTED, TIER_PAIR = 0, 1, 2, 3
#: A solved epsilon outside these bounds fits the numbers but explains nothing.
PLAUSIBLE_EPSILON = (0.0, 1.0)
#: Entries kept after the reproducing ones, for a person to see what came close.
CLOSEST_SHOWN = 5
#: Of those, how many the text output lists.
CLOSEST_IN_TEXT = 3
#: Above this many values, candidates are screened on a sample of this size first.
SCREENING_SAMPLE = 4096
#: Values per channel of the input suggested to tell apart codes that give the same numbers.
SEPARATING_SAMPLES = (-3.0, 0.0, 1.0, 10.0)


@dataclass(frozen=True)
class ValueComparison:
    """How a candidate's values differ from the values given, NaN and infinities apart."""

    #: The largest |difference| where both are numbers (agreeing NaN or infinities count 0);
    #: NaN when no value could be compared as a number.
    max_abs_diff: float
    #: How many values are NaN or infinite on one side only (or different infinities).
    mismatches: int = 0
    #: Those mismatches in words, e.g. "1 NaN where you have a number" ("" when none).
    note: str = ""
    #: Whether every mismatch involves a NaN (else some are infinities).
    only_nan: bool = True

    def describe(self, digits: int = 3) -> str:
        """``max |diff| 0.0012`` and, after it, the mismatches, e.g. ``; 1 NaN where you have a number``."""
        if np.isnan(self.max_abs_diff):
            return f"no value to compare as a number; {self.note}" if self.note else "no value to compare"
        text = f"max |diff| {fmt(self.max_abs_diff, digits)}"
        return f"{text}; {self.note}" if self.note else text

    def short(self, digits: int = 4) -> str:
        """For a table cell: ``0.0012`` or ``0.0012 +1 NaN`` (``- +3 NaN`` when nothing compares)."""
        number = "-" if np.isnan(self.max_abs_diff) else fmt(self.max_abs_diff, digits)
        if not self.mismatches:
            return number
        return f"{number} +{self.mismatches} {'NaN' if self.only_nan else 'non-finite'}"


def compare_values(candidate: np.ndarray, given: np.ndarray) -> ValueComparison:
    """Compare a candidate's values with the given ones, element by element (same size).

    NaN against NaN and an infinity against the same infinity agree (difference 0); two
    numbers differ by ``|c - g|``; anything else (NaN or an infinity on one side only, or
    infinities of opposite signs) is a mismatch: counted, described, and kept out of the
    maximum, so one NaN does not make every difference infinite.
    """
    c = np.asarray(candidate, dtype=np.float64).ravel()
    g = np.asarray(given, dtype=np.float64).ravel()
    c_finite, g_finite = np.isfinite(c), np.isfinite(g)
    both_nan = np.isnan(c) & np.isnan(g)
    with np.errstate(invalid="ignore"):
        agree = both_nan | (~c_finite & ~g_finite & (c == g))
    numbers = c_finite & g_finite
    with np.errstate(over="ignore"):
        differences = np.abs(c[numbers] - g[numbers])
    mismatched = ~(numbers | agree)
    kinds = (
        (np.isnan(c) & g_finite, "NaN where you have a number", "NaN where you have a number"),
        (np.isinf(c) & g_finite, "infinity where you have a number", "infinities where you have a number"),
        (c_finite & np.isnan(g), "number where you have NaN", "numbers where you have NaN"),
        (c_finite & np.isinf(g), "number where you have an infinity", "numbers where you have an infinity"),
        (~c_finite & ~g_finite & mismatched, "other non-finite mismatch", "other non-finite mismatches"),
    )
    parts = [f"{int(m.sum())} {one if m.sum() == 1 else many}" for m, one, many in kinds if m.any()]
    if differences.size:
        largest = float(differences.max())
    elif agree.any() or not c.size:
        largest = 0.0
    else:
        largest = float("nan")
    only_nan = not (mismatched & (np.isinf(c) | np.isinf(g))).any()
    return ValueComparison(largest, int(mismatched.sum()), ", ".join(parts), bool(only_nan))


@dataclass(frozen=True, eq=False)
class Explanation:
    """One candidate computation and how well it reproduces the values given."""

    code: str
    title: str
    explanation: str
    reproduces: bool
    #: The largest |difference| where both sides are numbers (see :class:`ValueComparison`).
    max_abs_diff: float
    parameters: dict[str, Any]
    #: Channels where every value matches, when that is only some of them (else None).
    channels: list[int] | None
    #: The candidate's numbers for the values given (flat, as compared).
    values: np.ndarray
    tier: int
    #: The largest ratio of a difference to its allowance over the values compared as numbers
    #: (at most 1, with no non-finite mismatch, means reproduced).
    closeness: float
    #: What computes it, to try it on another input (None for ``unexplained``).
    variant: Variant | None = field(default=None, repr=False)
    #: The comparison with the values given, NaN and infinities apart (see :func:`compare_values`).
    comparison: ValueComparison | None = field(default=None, repr=False)

    @property
    def difference(self) -> ValueComparison:
        """The difference from the values given, NaN and infinities apart."""
        return self.comparison if self.comparison is not None else ValueComparison(self.max_abs_diff)

    def to_dict(self) -> dict[str, Any]:
        """The JSON entry of the ``explanations`` list."""
        return {
            "code": self.code, "title": self.title, "explanation": self.explanation,
            "reproduces": self.reproduces, "max_abs_diff": to_json_value(self.max_abs_diff),
            "non_finite_mismatches": self.difference.mismatches, "non_finite_note": self.difference.note,
            "parameters": _json_parameters(self.parameters), "channels": self.channels,
            "values": to_json_value(self.values),
        }


@dataclass(frozen=True, eq=False)
class ExplainResult:
    """The explanations for one layer, input and set of given values, best first."""

    layer_path: str
    kind: str
    x: np.ndarray
    given: Given
    channel: int | None
    explanations: tuple[Explanation, ...]

    @property
    def explained(self) -> bool:
        """Whether some computation reproduces the values."""
        return bool(self.explanations) and self.explanations[0].reproduces

    def to_dict(self) -> dict[str, Any]:
        """``{"layer", "input", "given", "channel", "tolerance", "explanations"}``."""
        return {
            "layer": self.layer_path,
            "input": {"shape": list(self.x.shape), "values": to_json_value(self.x)},
            "given": {"kind": self.kind, "values": to_json_value(self.given.values)},
            "channel": self.channel,
            "tolerance": self.given.describe(),
            "explanations": [entry.to_dict() for entry in self.explanations],
        }

    def rows(self) -> list[list[Any]]:
        """One row per explanation, full precision."""
        rows: list[list[Any]] = [["rank", "code", "title", "reproduces", "max_abs_diff", "non_finite_mismatches",
                                  "parameters", "channels", "explanation"]]
        for rank, entry in enumerate(self.explanations, start=1):
            parameters = "; ".join(f"{k}={v}" for k, v in _json_parameters(entry.parameters).items())
            channels = " ".join(map(str, entry.channels)) if entry.channels is not None else ""
            rows.append([rank, entry.code, entry.title, entry.reproduces, entry.max_abs_diff,
                         entry.difference.mismatches, parameters, channels, entry.explanation])
        return rows

    def to_text(self) -> str:
        """The best explanation in full, then one line per other candidate (JSON has them all)."""
        where = f", channel {self.channel}" if self.channel is not None else ""
        heading = f"{self.layer_path}{where}: you {self.kind} {fmt_list(self.given.values)} for input {fmt_list(self.x)}"
        lines = [heading, f"tolerance: {self.given.describe()}", ""]
        first, *rest = self.explanations
        lines.append(f"1. {first.code}: {first.title}" + ("" if first.code == UNEXPLAINED else f" ({_verdict(first)})"))
        if first.code != UNEXPLAINED:
            lines.append(f"   values: {fmt_list(first.values)}")
        lines.extend("   " + line for line in textwrap.wrap(first.explanation, 96))
        also = [entry for entry in rest if entry.reproduces]
        if also:
            lines += ["", "also reproducing:"]
            lines += [f"{rank}. {e.code}: {e.title} ({_verdict(e)})" for rank, e in enumerate(also, start=2)]
        closest = [entry for entry in rest if not entry.reproduces][:CLOSEST_IN_TEXT]
        if closest:
            lines += ["", "closest that do not reproduce:"]
            lines += [f"-  {e.code}: {e.title} ({_verdict(e)}), values {fmt_list(e.values)}" for e in closest]
        return "\n".join(lines)


def _verdict(entry: Explanation) -> str:
    return f"{'reproduces' if entry.reproduces else 'does not reproduce'}; {entry.difference.describe(3)}"


def explain(layer: BNLayer, x: np.ndarray, given: Given, *, kind: str = "got", channel: int | None = None,
            model: ModelInfo | None = None) -> ExplainResult:
    """Rank the catalogue's computations by how well they reproduce ``given`` for input ``x``.

    ``x`` is already shaped for the layer. ``given`` holds one value per element of ``x``,
    or, with ``channel``, one per element of that channel. ``model`` lets the explainer try
    the weights of the model's other BN layers.
    """
    computation = compute(layer, x)
    context = Context(layer, computation, model)
    if channel is not None and not 0 <= channel < layer.channels:
        raise InputValueError(f"channel {channel} does not exist; {layer.path!r} has channels 0 to {layer.channels - 1}")
    expected_count = computation.samples_per_channel if channel is not None else computation.x.size
    if given.values.size != expected_count:
        what = f"channel {channel} has" if channel is not None else "the input has"
        raise InputValueError(f"{given.values.size} values given, but {what} {expected_count}: give one value per input value")
    candidates = _candidates(context, given, channel)
    ranked = _best_per_code(sorted(_scores(context, given, channel, candidates), key=_rank_key))
    reproducing = [entry for entry in ranked if entry.reproduces]
    shown = reproducing + [entry for entry in ranked if not entry.reproduces][:CLOSEST_SHOWN]
    if len(reproducing) > 1:
        note = _ambiguity(context, reproducing)
        if given.source == "digits":
            note += " More digits of your values would also narrow it down."
        shown[0] = replace(shown[0], explanation=f"{shown[0].explanation} {note}")
    if not reproducing:
        shown.insert(0, _unexplained(shown[0] if shown else None, given))
    return ExplainResult(layer.path, kind, computation.x, given, channel, tuple(shown))


@dataclass(frozen=True, eq=False)
class _Candidate:
    """A computation to score: which code, its tier, and the variant that computes it."""

    mistake: tuple[Mistake, ...]
    variant: Variant
    tier: int
    code: str
    title: str
    sentences: str


def _candidates(context: Context, given: Given, channel: int | None) -> list[_Candidate]:
    right = context.right_recipe()
    if context.half_policy:
        layer = context.layer

        def as_keras(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            rounded = compute(layer, x).inference.output_as_keras
            assert rounded is not None  # a 16-bit policy always has Keras' rounded output
            return np.asarray(rounded, dtype=np.float64), np.zeros(x.shape)

        correct = Variant({"mode": _correct_modes(context), "dtype_policy": layer.dtype_policy}, predict_direct=as_keras,
                          formula=f"y = {layer.compute_dtype}(float32 folded form of {right.formula(0)[4:]})")
    else:
        correct = Variant({"mode": _correct_modes(context)}, recipe=right)
    candidates = [_Candidate((), correct, TIER_CORRECT, CORRECT, "what Keras computes", _correct_sentences(context))]
    singles: list[tuple[Mistake, tuple[Recipe, dict[str, Any], str]]] = []
    for mistake in CATALOGUE:
        if mistake.change is not None:
            for changed, parameters, note in mistake.change(right, context):
                if changed.same_as(right):
                    continue  # gamma left out of a layer whose gamma is 1: not a different computation
                singles.append((mistake, (changed, parameters, note)))
                variant = Variant(parameters, recipe=changed, note=note)
                candidates.append(_Candidate((mistake,), variant, TIER_SINGLE, mistake.code, mistake.title, mistake.sentences))
        elif mistake.direct is not None:
            for variant in mistake.direct(context):
                candidates.append(_Candidate((mistake,), variant, TIER_SINGLE, mistake.code, mistake.title, mistake.sentences))
    fitted = _fitted_epsilon(context, given, channel, right)
    if fitted is not None:
        epsilon_mistake = next(m for m in CATALOGUE if m.code == "epsilon_value")
        candidates.append(_Candidate((epsilon_mistake,), fitted, TIER_FITTED, epsilon_mistake.code,
                                     "another epsilon (solved from your values)", epsilon_mistake.sentences))
    candidates.extend(_pairs(context, right, singles))
    return candidates


def _pairs(context: Context, right: Recipe,
           singles: list[tuple[Mistake, tuple[Recipe, dict[str, Any], str]]]) -> list[_Candidate]:
    """Two mistakes together, applied in catalogue order, when they change different slots."""
    order = {mistake.code: index for index, mistake in enumerate(CATALOGUE)}
    known = {right.fingerprint} | {single.fingerprint for _mistake, (single, _p, _n) in singles}
    pairs = []
    for first, (recipe, parameters, note) in singles:
        if not first.pairable:
            continue
        for second in CATALOGUE:
            if not second.pairable or second.change is None or order[second.code] <= order[first.code]:
                continue
            if first.slots & second.slots:
                continue
            for changed, more, second_note in second.change(recipe, context):
                if changed.fingerprint in known:
                    continue  # one mistake alone computes the same (or the first changed nothing the second uses)
                variant = Variant({**parameters, **more}, recipe=changed, note=" ".join(n for n in (note, second_note) if n))
                pairs.append(_Candidate((first, second), variant, TIER_PAIR, f"{first.code}+{second.code}",
                                        f"{first.title}, and {second.title}", f"{first.sentences} Also: {second.sentences}"))
    return pairs


def _fitted_epsilon(context: Context, given: Given, channel: int | None, right: Recipe) -> Variant | None:
    """Solve ``y - beta = k * gamma * (x - mean)`` for ``k = 1 / sqrt(var + eps)`` per channel
    (least squares over the channel's values), and keep epsilons in the plausible range."""
    computation = context.computation
    channels = [channel] if channel is not None else list(range(context.layer.channels))
    got = given.values.reshape(computation.x.shape) if channel is None else given.values
    solved = np.full(context.layer.channels, np.nan)
    for c in channels:
        x = computation.channel_values(computation.x, c)
        y = got if channel is not None else computation.channel_values(got, c)
        a = right.gamma[c] * (x - right.mean[c])
        b = y - right.beta[c]
        denominator = float(np.dot(a, a))
        if not denominator or not np.all(np.isfinite(a)) or not np.all(np.isfinite(b)):
            continue
        k = float(np.dot(a, b)) / denominator
        if k <= 0:
            continue
        epsilon = 1.0 / k**2 - right.variance[c]
        if PLAUSIBLE_EPSILON[0] <= epsilon <= PLAUSIBLE_EPSILON[1]:
            solved[c] = epsilon
    found = solved[np.isfinite(solved)]
    if not found.size:
        return None
    if np.ptp(found) <= 1e-3 * float(np.max(found)):
        value = float(np.median(found))
        if abs(value - right.epsilon[0]) <= 0.01 * right.epsilon[0]:
            return None  # the layer's own epsilon: that is `correct`, not another epsilon
        epsilon = np.full_like(right.epsilon, value)
        parameters: dict[str, Any] = {"epsilon": value}
        note = f"Solved from your values: epsilon {fmt(value, 4)}{_known_epsilon(value)}."
    else:
        epsilon = solved
        parameters = {"epsilon": [None if np.isnan(e) else float(e) for e in solved]}
        note = "Solved per channel from your values: the channels need different epsilons."
    return Variant(parameters, recipe=replace(right, epsilon=epsilon), note=note)


def _known_epsilon(value: float) -> str:
    for known, meaning in KNOWN_EPSILONS.items():
        if known and abs(value - known) <= 0.01 * known:
            return f", close to {fmt(known)} ({meaning})"
    return ""


@dataclass(frozen=True, eq=False)
class _Elements:
    """The input elements compared with the given values, flat and in their order."""

    x: np.ndarray
    channel: np.ndarray
    #: Index of each element in ``x.ravel()`` of the whole input.
    position: np.ndarray
    #: Every channel's largest |x| over the whole input.
    widest: np.ndarray


def _elements(context: Context, channel: int | None) -> _Elements:
    computation = context.computation
    x, axis = computation.x, computation.axis
    index = np.arange(x.size).reshape(x.shape)
    position = index.ravel() if channel is None else np.take(index, channel, axis=axis).ravel()
    channels = np.broadcast_to(broadcast(np.arange(context.layer.channels), x.ndim, axis), x.shape).ravel()
    widest = np.max(np.abs(np.nan_to_num(x)), axis=_other_axes(x.ndim, axis))
    return _Elements(x.ravel()[position], channels[position], position, widest)


def _scores(context: Context, given: Given, channel: int | None, candidates: list[_Candidate]) -> list[Explanation]:
    """Score every candidate. On large inputs each is first tried on an evenly spread sample
    of the values: a computation that misses there cannot reproduce them all, so only those
    that pass, and the closest few, are then computed on every value."""
    elements = _elements(context, channel)
    cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    everything = np.arange(elements.x.size)
    if elements.x.size <= SCREENING_SAMPLE:
        return [_score(context, given, channel, c, elements, everything, cache) for c in candidates]
    sample = np.unique(np.linspace(0, elements.x.size - 1, SCREENING_SAMPLE).astype(np.int64))
    screened = sorted(((_score(context, given, channel, c, elements, sample, cache), c) for c in candidates),
                      key=lambda pair: _rank_key(pair[0]))
    passing = [c for entry, c in screened if entry.reproduces]
    closest = [c for entry, c in screened if not entry.reproduces][:CLOSEST_SHOWN]
    return [_score(context, given, channel, c, elements, everything, cache) for c in passing + closest]


def _predict(candidate: _Candidate, context: Context, elements: _Elements, subset: np.ndarray,
             cache: dict[int, tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """A candidate's outputs and largest terms at some of the compared elements."""
    variant = candidate.variant
    if variant.recipe is not None:
        return variant.recipe.at(elements.x[subset], elements.channel[subset], elements.widest)
    if id(variant) not in cache:  # computed once over the whole input, then read where needed
        output, terms = variant.predict(context.computation.x, context.computation.axis)
        cache[id(variant)] = (output.ravel(), terms.ravel())
    output, terms = cache[id(variant)]
    return output[elements.position[subset]], terms[elements.position[subset]]


def _score(context: Context, given: Given, channel: int | None, candidate: _Candidate, elements: _Elements,
           subset: np.ndarray, cache: dict[int, tuple[np.ndarray, np.ndarray]]) -> Explanation:
    values, terms = _predict(candidate, context, elements, subset, cache)
    wanted = given if subset.size == given.values.size else given.take(subset)
    ratio = wanted.excess(values, terms)
    reproduces = bool(np.all(ratio <= 1.0))
    difference = compare_values(values, wanted.values)
    compared = ratio[np.isfinite(values) & np.isfinite(wanted.values)]
    closeness = float(np.max(compared, initial=0.0)) if difference.mismatches else float(np.max(ratio, initial=0.0))
    channels = None
    layer = context.layer
    if channel is None and not reproduces and layer.channels > 1:
        present = np.bincount(elements.channel[subset], minlength=layer.channels) > 0
        missed = np.bincount(elements.channel[subset][ratio > 1.0], minlength=layer.channels) > 0
        matched = present & ~missed
        if matched.any():
            channels = [int(c) for c in np.flatnonzero(matched)]
    elif channel is not None and reproduces and layer.channels > 1:
        channels = [channel]
    explanation = _explanation(context, candidate, channel, given)
    return Explanation(candidate.code, candidate.title, explanation, reproduces, difference.max_abs_diff,
                       dict(candidate.variant.parameters), channels, values, candidate.tier, closeness,
                       candidate.variant, difference)


def _other_axes(ndim: int, axis: int) -> tuple[int, ...]:
    return tuple(index for index in range(ndim) if index != axis)


def _explanation(context: Context, candidate: _Candidate, channel: int | None, given: Given) -> str:
    variant = candidate.variant
    shown = channel if channel is not None else 0
    if variant.recipe is not None:
        formula = variant.recipe.formula(shown)
        if context.layer.channels > 1:
            formula = f"channel {shown}: {formula}"
    else:
        formula = variant.formula
    parts = [candidate.sentences, variant.note, f"As computed: {formula}.", f"Tolerance: {given.describe(short=True)}."]
    return " ".join(part for part in parts if part)


def _rank_key(entry: Explanation) -> tuple[Any, ...]:
    if entry.reproduces:
        return (0, entry.tier, entry.closeness, entry.max_abs_diff)
    matched_channels = len(entry.channels) if entry.channels else 0
    return (1, -matched_channels, entry.difference.mismatches, entry.closeness, entry.tier)


def _correct_modes(context: Context) -> str:
    if context.training_uses_batch_statistics():
        return "inference"
    return "inference and training"


def _correct_sentences(context: Context) -> str:
    text = ("These are the values Keras computes in inference mode (predict, evaluate, model(x)): "
            "gamma * (x - moving_mean) / sqrt(moving_variance + epsilon) + beta, with the statistics stored in the layer, "
            "not those of your batch.")
    if not context.training_uses_batch_statistics():
        text += " The layer is frozen (trainable=False), so Keras computes the same in training mode (fit, training=True)."
    return text


def _unexplained(closest: Explanation | None, given: Given) -> Explanation:
    near = f" The closest is {closest.code} ({closest.difference.describe(3)})." if closest else ""
    text = ("None of the known computations reproduces these values within the tolerance "
            f"({given.describe()}).{near} Check that the input, the layer and the values belong together.")
    return Explanation(UNEXPLAINED, "no known computation gives these values", text, False,
                       closest.max_abs_diff if closest else float("inf"), {}, None, np.array([]), TIER_PAIR + 1,
                       float("inf"), None, closest.comparison if closest else None)


def _best_per_code(ranked: list[Explanation]) -> list[Explanation]:
    """Keep each code's best variant (one epsilon, one other layer): the list names causes."""
    kept: dict[str, Explanation] = {}
    also_fit: dict[str, list[str]] = {}
    for entry in ranked:
        if entry.code not in kept:
            kept[entry.code] = entry
        elif entry.reproduces and entry.parameters:
            also_fit.setdefault(entry.code, []).append(
                ", ".join(f"{key} {fmt(value) if isinstance(value, float) else value}" for key, value in entry.parameters.items()))
    for code, others in also_fit.items():
        text = f"{kept[code].explanation} These values also fit with {'; '.join(others)}."
        kept[code] = replace(kept[code], explanation=text)
    return list(kept.values())


def _ambiguity(context: Context, reproducing: list[Explanation]) -> str:
    """Say which other codes give the same numbers, and suggest an input that separates them."""
    others = [entry.code for entry in reproducing[1:]]
    text = (f"{len(others)} other computation{'s' if len(others) != 1 else ''} also reproduce{'s' if len(others) == 1 else ''} "
            f"these values ({', '.join(others)}): this input cannot tell them apart.")
    table = np.tile(np.array(SEPARATING_SAMPLES)[:, None], (1, context.layer.channels))
    try:
        x = shape_for_layer(table, context.layer.channels, context.layer.axis, typed_flat=context.layer.channels == 1)
    except InputValueError:
        return text
    axis = resolve_axis(context.layer.axis, x.ndim)
    outputs = [entry.variant.predict(x, axis)[0] for entry in reproducing if entry.variant is not None]
    same = [entry.code for entry, out in zip(reproducing[1:], outputs[1:])
            if np.allclose(out, outputs[0], rtol=1e-3, atol=1e-6, equal_nan=True)]
    typed = _typed(table, context.layer.channels)
    if not same:
        return text + f" An input such as {typed} gives different numbers for each of them."
    return text + (f" {', '.join(same)} give{'s' if len(same) == 1 else ''} the same numbers as {reproducing[0].code} "
                   f"even on {typed}: for this layer they are practically the same computation.")


def _typed(table: np.ndarray, channels: int) -> str:
    if channels == 1:
        return ", ".join(fmt(v) for v in table[:, 0])
    if channels <= 4:
        return "[" + ", ".join("[" + ", ".join(fmt(v) for v in row) + "]" for row in table) + "]"
    return f"a batch of {table.shape[0]} samples per channel ({', '.join(fmt(v) for v in table[:, 0])})"


def _json_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in parameters.items():
        out[key] = to_json_value(np.asarray(value)) if isinstance(value, float | np.floating | np.ndarray) else value
    return out


