"""Compare the BN layers of two model files: what changed in each layer, and what kind of change.

People compare before against after fine-tuning, a model against its re-import from another
framework, or a checkpoint that "loaded" suspiciously fast. A plain weight diff says *that*
numbers differ; this module says *how*: each matched pair gets findings from a stable
vocabulary (:data:`MEANINGS`), each with the one sentence of what it usually means.

Matching: by path, then by name, then, for what is left, by order among layers with the same
channel count (a re-import from another framework renames every layer but keeps the order).

A pair gets the most specific finding that explains its change: ``statistics_reset``,
``folded``, a swap... The generic ``moving_statistics_changed`` and ``gamma_beta_changed``
only describe what no known pattern explains, so a reset layer is not also "changed".

Settings a file does not carry (a weights-only file has no epsilon) are not compared, and the
output effect takes them from the other file, as loading those weights into that model would.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from bntui.core.model import BNLayer, ModelInfo
from bntui.core.numbers import fmt, to_json_value
from bntui.core.numerics import scale_float64, term_scaled_ulp

#: The stable vocabulary of findings, each with what it usually means (one sentence).
MEANINGS: dict[str, str] = {
    "unchanged": "The layer is bit-for-bit the same in both files: it was frozen, or untouched by what happened "
                 "between them.",
    "moving_statistics_changed": "Only the moving statistics moved: typical of a frozen layer whose statistics "
                                 "still updated, or of a forward pass run with training=True.",
    "gamma_beta_changed": "gamma or beta differ (usually the moving statistics too): the layer was trained further "
                          "or the weights come from another run.",
    "statistics_reset": "The second file has moving mean 0 and variance 1 where the first has learned statistics: "
                        "they were reset, and inference outputs are off until they are re-estimated.",
    "not_loaded": "The second file holds exactly Keras' initializers (gamma 1, beta 0, mean 0, variance 1): its "
                  "weights were never loaded, as by a load_weights(by_name=True) whose names matched nothing.",
    "mean_variance_swapped": "The second file's moving mean is the first's variance and the other way round: a "
                             "converter or hand-written loader put the weights in the wrong order.",
    "gamma_beta_swapped": "The second file's gamma is the first's beta and the other way round: weights were "
                          "assigned in the wrong order (Keras' order is gamma, beta, mean, variance).",
    "folded": "The second file has neutral statistics (mean 0, variance 1 up to epsilon) and the first's folded "
              "scale and offset as gamma and beta: a converter folded the layer, and the outputs agree.",
    "epsilon_changed": "epsilon differs, typical of a port from PyTorch (1e-5) or another framework: outputs move "
                       "most in channels with a small variance.",
    "momentum_changed": "momentum differs: inference is unaffected, but further training moves the statistics at "
                        "another rate (PyTorch's momentum 0.1 is Keras' 0.9).",
    "config_changed": "Other settings differ (axis, center, scale, trainable...): the layer was rebuilt, frozen or "
                      "unfrozen between the two files.",
    "channels_changed": "The channel counts differ: the architecture changed, so no weights are compared.",
    "dtype_changed": "The weights' dtype or the dtype policy differs: the model was cast or saved under mixed "
                     "precision, so values may differ by rounding.",
    "weights_from_other_layer": "The second file's values equal another layer's in the first: weights were loaded "
                                "by position into a model whose layers are shifted.",
    "only_in_first": "The layer exists only in the first file: removed, or renamed beyond matching.",
    "only_in_second": "The layer exists only in the second file: added, or renamed beyond matching.",
}
CODES: tuple[str, ...] = tuple(MEANINGS)

PARAMETERS = ("gamma", "beta", "moving_mean", "moving_variance")

#: The unit-normal standard input: this many samples per channel, from numpy's generator with SEED.
NORMAL_SAMPLES = 64
NORMAL_SEED = 0

#: A folded layer's gamma and beta may differ from the first file's exact scale and offset by the
#: float32 rounding of storing them plus that of a float32 fold (a few ulps each, term-scaled).
FOLD_TOLERANCE_ULPS = 16.0

#: How many pairs the summary lists by output effect.
LARGEST_SHOWN = 10

# Settings compared between paired layers, with the finding a difference gives.
_SETTING_CODES: dict[str, str] = {
    "channels": "channels_changed",
    "epsilon": "epsilon_changed",
    "momentum": "momentum_changed",
    "dtype": "dtype_changed",
    "dtype_policy": "dtype_changed",
    "axis": "config_changed",
    "center": "config_changed",
    "scale": "config_changed",
    "trainable": "config_changed",
    "renorm": "config_changed",
    "renorm_clipping": "config_changed",
    "renorm_momentum": "config_changed",
    "virtual_batch_size": "config_changed",
}
_ALWAYS_KNOWN = ("channels", "dtype")


@dataclass(frozen=True)
class Finding:
    """One finding about a pair or an unmatched layer: a vocabulary code, what was seen, what it means."""

    code: str
    message: str
    other_layer: str | None = None

    @property
    def meaning(self) -> str:
        """What this kind of finding usually means (one sentence)."""
        return MEANINGS[self.code]

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"code": self.code, "message": self.message, "meaning": self.meaning}
        if self.other_layer is not None:
            data["other_layer"] = self.other_layer
        return data


@dataclass(frozen=True)
class ConfigChange:
    """One setting that differs between the paired layers (``note`` when it may still be the same)."""

    setting: str
    first: Any
    second: Any
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = {"first": self.first, "second": self.second}
        return data | ({"note": self.note} if self.note else {})

    def text(self) -> str:
        note = f" ({self.note})" if self.note else ""
        return f"{self.setting} {_value_text(self.first)} -> {_value_text(self.second)}{note}"


@dataclass(frozen=True, eq=False)
class ParameterDiff:
    """Per-channel differences of one parameter (gamma and beta as Keras uses them: 1 and 0 when off).

    The relative difference is taken against the larger magnitude of the two values: symmetric,
    at most 2, and finite where one value is 0.
    """

    name: str
    abs_diff: np.ndarray
    rel_diff: np.ndarray

    @property
    def max_abs_diff(self) -> float:
        return _max(self.abs_diff)

    @property
    def max_rel_diff(self) -> float:
        return _max(self.rel_diff)

    @property
    def channels_changed(self) -> tuple[int, ...]:
        """Channels whose values differ (NaN against NaN counts as equal; NaN against a number differs)."""
        return tuple(np.flatnonzero(self.abs_diff != 0).tolist())

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_abs_diff": to_json_value(self.max_abs_diff),
            "max_rel_diff": to_json_value(self.max_rel_diff),
            "channels_changed": list(self.channels_changed),
            "abs_diff": to_json_value(self.abs_diff),
            "rel_diff": to_json_value(self.rel_diff),
        }


@dataclass(frozen=True)
class OutputEffect:
    """How far the inference output moves between the two layers on one standard input."""

    input: str
    max_abs_diff: float
    max_ulp: float
    channel: int

    def to_dict(self) -> dict[str, Any]:
        return {"max_abs_diff": to_json_value(self.max_abs_diff), "max_ulp": to_json_value(self.max_ulp),
                "channel": self.channel}


@dataclass(frozen=True, eq=False)
class LayerPair:
    """Two matched layers, how they were matched, and what differs between them."""

    first: BNLayer
    second: BNLayer
    matched_by: str
    findings: tuple[Finding, ...]
    config_diff: tuple[ConfigChange, ...]
    #: None when the channel counts differ.
    parameters: dict[str, ParameterDiff] | None
    #: ``zeros`` and ``normal`` effects; None for unchanged weights and settings, or other channel counts.
    output_effect: dict[str, OutputEffect] | None

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(finding.code for finding in self.findings)

    @property
    def label(self) -> str:
        """The first path, and the second where it differs."""
        same = self.first.path == self.second.path
        return self.first.path if same else f"{self.first.path} ~ {self.second.path}"

    def detail_lines(self) -> list[str]:
        """What a person reads about this pair: each finding's message, then settings that may be the same."""
        lines = [finding.message for finding in self.findings if finding.code != "unchanged"]
        return lines + [change.text() for change in self.config_diff if change.note]

    def to_dict(self) -> dict[str, Any]:
        return {
            "first_path": self.first.path,
            "second_path": self.second.path,
            "matched_by": self.matched_by,
            "findings": [finding.to_dict() for finding in self.findings],
            "config_diff": {change.setting: change.to_dict() for change in self.config_diff},
            "parameters": None if self.parameters is None else {
                name: diff.to_dict() for name, diff in self.parameters.items()},
            "output_effect": None if self.output_effect is None else {
                name: effect.to_dict() for name, effect in self.output_effect.items()},
        }


@dataclass(frozen=True, eq=False)
class Unmatched:
    """A layer without a partner in the other file."""

    layer: BNLayer
    finding: Finding

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.layer.path, "name": self.layer.name, "channels": self.layer.channels,
                "finding": self.finding.to_dict()}


@dataclass(frozen=True, eq=False)
class ModelComparison:
    """The comparison of two model files: matched pairs (in the first file's order) and the rest."""

    first: ModelInfo
    second: ModelInfo
    pairs: tuple[LayerPair, ...]
    unmatched: tuple[Unmatched, ...]

    def counts(self) -> dict[str, int]:
        """How many times each finding code occurs (every code, zeros included)."""
        counts = dict.fromkeys(CODES, 0)
        for pair in self.pairs:
            for code in set(pair.codes):
                counts[code] += 1
        for item in self.unmatched:
            counts[item.finding.code] += 1
        return counts

    def largest_effects(self, limit: int = LARGEST_SHOWN) -> list[LayerPair]:
        """Pairs whose output moves, largest move on the unit-normal input first (NaN first of all)."""
        moved = [p for p in self.pairs if p.output_effect and p.output_effect["normal"].max_abs_diff != 0]

        def key(pair: LayerPair) -> float:
            value = pair.output_effect["normal"].max_abs_diff if pair.output_effect else 0.0
            return np.inf if np.isnan(value) else value

        return sorted(moved, key=key, reverse=True)[:limit]

    def to_dict(self) -> dict[str, Any]:
        return {
            "first": _file_dict(self.first),
            "second": _file_dict(self.second),
            "summary": {
                "counts": self.counts(),
                "matched": len(self.pairs),
                "matched_by": _matched_by_counts(self.pairs),
                "largest_output_effect": [
                    {"first_path": p.first.path, "second_path": p.second.path,
                     **p.output_effect["normal"].to_dict()}  # type: ignore[index]
                    for p in self.largest_effects()
                ],
                "standard_inputs": {"zeros": "every input 0",
                                    "normal": f"{NORMAL_SAMPLES} unit-normal samples per channel, "
                                              f"numpy default_rng({NORMAL_SEED})"},
            },
            "pairs": [pair.to_dict() for pair in self.pairs],
            "unmatched": {
                side: [item.to_dict() for item in self.unmatched if item.finding.code == f"only_in_{side}"]
                for side in ("first", "second")
            },
        }

    def rows(self) -> list[list[Any]]:
        header = ["first_path", "second_path", "matched_by", "findings", "config_diff"]
        for name in PARAMETERS:
            header += [f"{name}_max_abs_diff", f"{name}_max_rel_diff", f"{name}_channels_changed"]
        header += ["zeros_max_abs_diff", "zeros_max_ulp", "normal_max_abs_diff", "normal_max_ulp"]
        rows: list[list[Any]] = [header]
        for pair in self.pairs:
            row: list[Any] = [pair.first.path, pair.second.path, pair.matched_by, " ".join(pair.codes),
                              "; ".join(change.text() for change in pair.config_diff)]
            for name in PARAMETERS:
                diff = pair.parameters[name] if pair.parameters else None
                row += ["", "", ""] if diff is None else [diff.max_abs_diff, diff.max_rel_diff,
                                                           len(diff.channels_changed)]
            for name in ("zeros", "normal"):
                effect = pair.output_effect[name] if pair.output_effect else None
                row += ["", ""] if effect is None else [effect.max_abs_diff, effect.max_ulp]
            rows.append(row)
        blank = [""] * (len(header) - 4)
        for item in self.unmatched:
            first = item.finding.code == "only_in_first"
            paths = [item.layer.path, ""] if first else ["", item.layer.path]
            rows.append([*paths, "", item.finding.code, *blank])
        return rows

    def to_text(self) -> str:
        lines = [f"first:  {_file_text(self.first)}", f"second: {_file_text(self.second)}"]
        by = ", ".join(f"{count} by {how}" for how, count in _matched_by_counts(self.pairs).items())
        plural = "s" if len(self.pairs) != 1 else ""
        lines.append(f"{len(self.pairs)} pair{plural} matched{f' ({by})' if by else ''}, "
                     f"{len(self.unmatched)} unmatched")
        counts = {code: count for code, count in self.counts().items() if count}
        lines.append("findings: " + (", ".join(f"{code} {count}" for code, count in counts.items()) or "none"))
        largest = self.largest_effects()
        if largest:
            lines.append(f"\nlargest output effect (unit-normal input, {NORMAL_SAMPLES} samples per channel):")
            for pair in largest:
                effect = pair.output_effect["normal"]  # type: ignore[index]
                lines.append(f"  {pair.label}: |dy| up to {fmt(effect.max_abs_diff)} "
                             f"({fmt(effect.max_ulp, 3)} float32 ulps) at channel {effect.channel}")
        if self.pairs:
            table = [["pair", "matched by", "findings", "zeros |dy|", "normal |dy|", "normal ulps"]]
            for pair in self.pairs:
                effect = pair.output_effect
                table.append([pair.label, pair.matched_by, " ".join(pair.codes),
                              fmt(effect["zeros"].max_abs_diff) if effect else "-",
                              fmt(effect["normal"].max_abs_diff) if effect else "-",
                              fmt(effect["normal"].max_ulp, 3) if effect else "-"])
            lines.append("")
            lines.extend(_table(table))
        details = [(pair.label, line) for pair in self.pairs for line in pair.detail_lines()]
        details += [(item.layer.path, item.finding.message) for item in self.unmatched]
        if details:
            lines.append("\ndetails:")
            lines.extend(f"  {label}: {message}" for label, message in details)
        if counts:
            lines.append("\nwhat the findings usually mean:")
            lines.extend(f"  {code}: {MEANINGS[code]}" for code in counts)
        return "\n".join(lines)


def compare_models(first: ModelInfo, second: ModelInfo) -> ModelComparison:
    """Match the BN layers of two models and describe every difference."""
    matches, only_first, only_second = match_layers(first.layers, second.layers)
    index = _values_index(first.layers)
    pairs = tuple(_compare_pair(a, b, how, index) for a, b, how in matches)
    unmatched = tuple(
        [Unmatched(layer, Finding("only_in_first", f"{layer.channels} channels, no partner in the second file"))
         for layer in only_first]
        + [Unmatched(layer, Finding("only_in_second", f"{layer.channels} channels, no partner in the first file"))
           for layer in only_second]
    )
    return ModelComparison(first, second, pairs, unmatched)


def match_layers(
    first: tuple[BNLayer, ...], second: tuple[BNLayer, ...]
) -> tuple[list[tuple[BNLayer, BNLayer, str]], list[BNLayer], list[BNLayer]]:
    """Pairs ``(a, b, matched_by)`` in the first file's order, then the unmatched of each side.

    By path; then by name where the name is unique among the rest on both sides; then by order
    among the rest with the same channel count.
    """
    partner: dict[int, tuple[BNLayer, str]] = {}
    left_a, left_b = list(first), list(second)

    def pair_up(a: BNLayer, b: BNLayer, how: str) -> None:
        partner[id(a)] = (b, how)
        left_a.remove(a)
        left_b.remove(b)

    by_path = {layer.path: layer for layer in second}
    for a in list(left_a):
        if a.path in by_path and by_path[a.path] in left_b:  # a damaged file may repeat a path
            pair_up(a, by_path[a.path], "path")
    names_a = _unique_names(left_a)
    names_b = _unique_names(left_b)
    for name, a in names_a.items():
        if name in names_b:
            pair_up(a, names_b[name], "name")
    groups_b: dict[int, list[BNLayer]] = defaultdict(list)
    for b in left_b:
        groups_b[b.channels].append(b)
    for a in list(left_a):
        if groups_b[a.channels]:
            pair_up(a, groups_b[a.channels].pop(0), "order")
    matches = [(a, *partner[id(a)]) for a in first if id(a) in partner]
    return matches, left_a, left_b


def _unique_names(layers: list[BNLayer]) -> dict[str, BNLayer]:
    seen: dict[str, list[BNLayer]] = defaultdict(list)
    for layer in layers:
        seen[layer.name].append(layer)
    return {name: found[0] for name, found in seen.items() if len(found) == 1}


def _compare_pair(a: BNLayer, b: BNLayer, matched_by: str, index: dict[bytes, list[str]]) -> LayerPair:
    config_diff = _config_diff(a, b)
    findings = _config_findings(config_diff)
    if a.channels != b.channels:
        return LayerPair(a, b, matched_by, tuple(findings), tuple(config_diff), None, None)
    wa, wb = _weights(a), _weights(b)
    same = {name: _same(wa[name], wb[name]) for name in PARAMETERS}
    parameters = {name: _parameter_diff(name, wa[name], wb[name]) for name in PARAMETERS}
    if not all(same.values()):
        findings = _weight_findings(a, b, wa, wb, same, parameters, index) + findings
    elif not findings:
        findings = [Finding("unchanged", "identical weights and settings")]
    moved = not all(same.values()) or any(change.setting == "epsilon" for change in config_diff)
    effect = _output_effect(a, b) if moved else None
    return LayerPair(a, b, matched_by, tuple(findings), tuple(config_diff), parameters, effect)


def _weight_findings(
    a: BNLayer, b: BNLayer, wa: dict[str, np.ndarray], wb: dict[str, np.ndarray], same: dict[str, bool],
    parameters: dict[str, ParameterDiff], index: dict[bytes, list[str]],
) -> list[Finding]:
    """The findings explaining changed weights: a known pattern if one fits, else the generic ones."""
    if _is_initial(wb) and not _is_initial(wa):
        return [Finding("not_loaded", "the second file holds exactly the initializers")]
    if _is_folded(a, b, wa, wb):
        return [Finding("folded", "gamma and beta are the first file's folded scale and offset; "
                                  f"mean 0, variance {fmt(float(np.max(np.abs(wb['moving_variance'] - 1))), 3)} "
                                  "from 1")]
    if not _is_initial(wb):
        others = [path for path in index.get(_values_key(wb), []) if path != a.path]
        if others:
            more = f" (and {len(others) - 1} more with the same values)" if len(others) > 1 else ""
            return [Finding("weights_from_other_layer",
                            f"the second file's values equal those of {others[0]!r} in the first{more}",
                            other_layer=others[0])]
    found: list[Finding] = []
    statistics_explained = gamma_beta_explained = False
    if _all_equal(wb["moving_mean"], 0) and _all_equal(wb["moving_variance"], 1) and not (
            _all_equal(wa["moving_mean"], 0) and _all_equal(wa["moving_variance"], 1)):
        found.append(Finding("statistics_reset", "moving mean 0 and variance 1 in the second file"))
        statistics_explained = True
    elif (_same(wb["moving_mean"], wa["moving_variance"]) and _same(wb["moving_variance"], wa["moving_mean"])
          and not same["moving_mean"]):
        found.append(Finding("mean_variance_swapped", "the second file's moving mean and variance are the first's, "
                                                      "swapped"))
        statistics_explained = True
    if (a.center and a.scale and _same(wb["gamma"], wa["beta"]) and _same(wb["beta"], wa["gamma"])
            and not same["gamma"]):
        found.append(Finding("gamma_beta_swapped", "the second file's gamma and beta are the first's, swapped"))
        gamma_beta_explained = True
    statistics_changed = not (same["moving_mean"] and same["moving_variance"]) and not statistics_explained
    gamma_beta_changed = not (same["gamma"] and same["beta"]) and not gamma_beta_explained
    if gamma_beta_changed:
        names = PARAMETERS if statistics_changed else ("gamma", "beta")
        found.append(Finding("gamma_beta_changed", _changed_text(parameters, names)))
    elif statistics_changed:
        found.append(Finding("moving_statistics_changed",
                             _changed_text(parameters, ("moving_mean", "moving_variance")) + "; gamma and beta "
                             + ("identical" if not gamma_beta_explained else "swapped")))
    return found


def _changed_text(parameters: dict[str, ParameterDiff], names: tuple[str, ...]) -> str:
    parts = []
    for name in names:
        changed, total = len(parameters[name].channels_changed), parameters[name].abs_diff.size
        if changed:
            parts.append(f"{name} in {changed} of {total} channel{'s' if total != 1 else ''}")
    return "changed: " + ", ".join(parts)


def _config_findings(config_diff: list[ConfigChange]) -> list[Finding]:
    """One finding per code (several settings can give config_changed or dtype_changed)."""
    grouped: dict[str, list[ConfigChange]] = defaultdict(list)
    for change in config_diff:
        if not change.note:
            grouped[_SETTING_CODES[change.setting]].append(change)
    return [Finding(code, "; ".join(change.text() for change in changes)) for code, changes in grouped.items()]


def _config_diff(a: BNLayer, b: BNLayer) -> list[ConfigChange]:
    """The settings known in both files that differ (an axis of another sign may be the same one)."""
    changes = []
    for setting in _SETTING_CODES:
        if not (_known(a, setting) and _known(b, setting)):
            continue
        first, second = _setting(a, setting), _setting(b, setting)
        if first == second:
            continue
        note = ""
        if setting == "axis" and isinstance(first, int) and isinstance(second, int) and (first < 0) != (second < 0):
            note = f"the same axis if the input has rank {max(first, second) - min(first, second)}"
        changes.append(ConfigChange(setting, first, second, note))
    return changes


def _setting(layer: BNLayer, setting: str) -> Any:
    if setting == "channels":
        return layer.channels
    value = getattr(layer, setting)
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _known(layer: BNLayer, setting: str) -> bool:
    """Whether the file states this setting (weights-only files carry no config)."""
    if setting in _ALWAYS_KNOWN:
        return True
    if setting == "dtype_policy":
        return layer.dtype_policy is not None
    if setting in layer.sources:
        return layer.sources[setting] in ("config", "weights")
    return "config" in layer.sources.values()


def _weights(layer: BNLayer) -> dict[str, np.ndarray]:
    """The four per-channel vectors as the formula uses them (gamma 1 and beta 0 when switched off)."""
    return {"gamma": layer.gamma_or_one, "beta": layer.beta_or_zero,
            "moving_mean": layer.moving_mean, "moving_variance": layer.moving_variance}


def _same(x: np.ndarray, y: np.ndarray) -> bool:
    """Identical values (NaN equals NaN); across dtypes, identical once both are in the narrower one,
    so a cast model is reported as ``dtype_changed`` alone."""
    if x.shape != y.shape:
        return False
    if x.dtype != y.dtype:
        narrow = x.dtype if x.dtype.itemsize <= y.dtype.itemsize else y.dtype
        x, y = x.astype(narrow), y.astype(narrow)
    return bool(np.array_equal(x, y, equal_nan=True))


def _all_equal(values: np.ndarray, number: float) -> bool:
    return bool(np.all(values == number))


def _is_initial(w: dict[str, np.ndarray]) -> bool:
    """Exactly Keras' initializers: gamma 1, beta 0, moving mean 0, moving variance 1."""
    return (_all_equal(w["gamma"], 1) and _all_equal(w["beta"], 0) and _all_equal(w["moving_mean"], 0)
            and _all_equal(w["moving_variance"], 1))


def _is_folded(a: BNLayer, b: BNLayer, wa: dict[str, np.ndarray], wb: dict[str, np.ndarray]) -> bool:
    """Second: mean 0, variance 1 within its epsilon (converters write 1 - eps so that var + eps = 1),
    gamma = the first's scale and beta = its offset, within FOLD_TOLERANCE_ULPS float32 ulps."""
    variance = wb["moving_variance"].astype(np.float64)
    if not (_all_equal(wb["moving_mean"], 0) and np.all(np.abs(variance - 1) <= b.epsilon + 1e-6)):
        return False
    if _all_equal(wa["moving_mean"], 0) and np.all(np.abs(wa["moving_variance"].astype(np.float64) - 1) <= 1e-6):
        return False  # the first file is already neutral: nothing was folded
    s = scale_float64(a)
    with np.errstate(all="ignore"):
        mean_term = wa["moving_mean"].astype(np.float64) * s
        offset = wa["beta"].astype(np.float64) - mean_term
        scale_ulps = term_scaled_ulp(wb["gamma"], s)
        offset_ulps = term_scaled_ulp(wb["beta"], offset, np.maximum(np.abs(wa["beta"]), np.abs(mean_term)))
    return bool(np.all(scale_ulps <= FOLD_TOLERANCE_ULPS) and np.all(offset_ulps <= FOLD_TOLERANCE_ULPS))


def _values_key(w: dict[str, np.ndarray]) -> bytes:
    """All four vectors' float64 bytes: equal keys are equal values (float32 widens exactly)."""
    return b"".join(np.ascontiguousarray(w[name], dtype=np.float64).tobytes() for name in PARAMETERS)


def _values_index(layers: tuple[BNLayer, ...]) -> dict[bytes, list[str]]:
    """The first file's layers by their values, to recognise weights that came from another layer."""
    index: dict[bytes, list[str]] = defaultdict(list)
    for layer in layers:
        index[_values_key(_weights(layer))].append(layer.path)
    return index


def _parameter_diff(name: str, x: np.ndarray, y: np.ndarray) -> ParameterDiff:
    first, second = x.astype(np.float64), y.astype(np.float64)
    with np.errstate(all="ignore"):
        absolute = np.abs(second - first)
        larger = np.maximum(np.abs(first), np.abs(second))
        relative = np.where(absolute == 0, 0.0, absolute / larger)
    equal = (first == second) | (np.isnan(first) & np.isnan(second))  # inf - inf would say NaN
    absolute[equal] = 0.0
    relative[equal] = 0.0
    return ParameterDiff(name, absolute, relative)


def _output_effect(a: BNLayer, b: BNLayer) -> dict[str, OutputEffect]:
    """The inference output of both layers (float64) on zeros and on unit-normal samples, and how
    far apart they are: absolute, and in float32 ulps at the largest term summed into an output."""
    a, b = _with_shared_epsilon(a, b)
    effects = {}
    for name, inputs in (("zeros", np.zeros((1, a.channels))), ("normal", _unit_normal(a.channels))):
        y_a, terms_a = _inference(a, inputs)
        y_b, terms_b = _inference(b, inputs)
        with np.errstate(all="ignore"):
            difference = np.abs(y_b - y_a)
            ulps = term_scaled_ulp(y_b, y_a, np.maximum(terms_a, terms_b))
        difference[(y_a == y_b) | (np.isnan(y_a) & np.isnan(y_b))] = 0.0
        per_channel = _column_max(difference)
        channel = int(np.argmax(np.where(np.isnan(per_channel), np.inf, per_channel)))
        effects[name] = OutputEffect(name, _max(difference), _max(ulps), channel)
    return effects


@lru_cache(maxsize=64)
def _unit_normal(channels: int) -> np.ndarray:
    """The unit-normal standard input for this many channels (the same for every layer of that width)."""
    sample = np.random.default_rng(NORMAL_SEED).standard_normal((NORMAL_SAMPLES, channels))
    sample.flags.writeable = False
    return sample


def _inference(layer: BNLayer, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``y = x * s + (beta - mean * s)`` in float64, and the largest term summed into each output."""
    s = scale_float64(layer)
    with np.errstate(all="ignore"):
        mean_term = layer.moving_mean.astype(np.float64) * s
        beta = layer.beta_or_zero.astype(np.float64)
        scaled = x * s
        y = scaled + (beta - mean_term)
        terms = np.maximum(np.abs(scaled), np.maximum(np.abs(beta), np.abs(mean_term)))
    return y, terms


def _with_shared_epsilon(a: BNLayer, b: BNLayer) -> tuple[BNLayer, BNLayer]:
    """A file without epsilon (weights only) takes the other file's, as loading into it would."""
    if _known(a, "epsilon") and not _known(b, "epsilon"):
        return a, dataclasses.replace(b, epsilon=a.epsilon)
    if _known(b, "epsilon") and not _known(a, "epsilon"):
        return dataclasses.replace(a, epsilon=b.epsilon), b
    return a, b


def _column_max(values: np.ndarray) -> np.ndarray:
    """Per-channel maximum, NaN where a channel has NaN."""
    with np.errstate(all="ignore"):
        return np.max(values, axis=0)


def _max(values: np.ndarray) -> float:
    """Largest value (NaN if any is NaN: an unusable output must not hide behind a finite maximum)."""
    return float(np.max(values)) if values.size else 0.0


def _matched_by_counts(pairs: tuple[LayerPair, ...]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for how in ("path", "name", "order"):
        count = sum(pair.matched_by == how for pair in pairs)
        if count:
            counts[how] = count
    return counts


def _file_dict(model: ModelInfo) -> dict[str, Any]:
    return {"file": model.path, "format": model.format, "keras_version": model.keras_version,
            "layers": len(model.layers)}


def _file_text(model: ModelInfo) -> str:
    count = len(model.layers)
    return (f"{model.path} ({model.format}, Keras {model.keras_version or 'unknown'}, "
            f"{count} BN layer{'s' if count != 1 else ''})")


def _value_text(value: Any) -> str:
    return fmt(value) if isinstance(value, float) else str(value)


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1] for row in rows]
