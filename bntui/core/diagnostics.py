"""Problems worth pointing at in a BN layer's weights, each with what it usually means.

The checks are cheap vector operations over the weights, so they run on every layer as
soon as a file is opened and the layer list can show a warning mark at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from bntui.core.model import BNLayer

#: Below this |gamma| (with |beta| above BETA_LARGE) a channel outputs about beta, whatever x is.
GAMMA_TINY = 1e-4
BETA_LARGE = 0.1
#: |gamma| / sqrt(var + eps) above this is flagged as an extreme scale factor.
SCALE_EXTREME = 1e3
FLOAT32_TINY = float(np.finfo(np.float32).tiny)
#: Epsilons Keras itself uses: its default, and 1.001e-5 in keras.applications' ResNet,
#: ResNetV2, DenseNet and others (TF 1.x's fused kernel required at least 1.001e-5). Neither
#: is a sign of a ported model.
KERAS_EPSILONS = (1e-3, 1.001e-5)


@dataclass(frozen=True, eq=False)
class Diagnostic:
    """One finding: a short code, the channels it concerns (empty: the whole layer), and why."""

    code: str
    message: str
    explanation: str
    channels: tuple[int, ...] = ()

    def channel_text(self, limit: int = 6) -> str:
        """``channels 1, 4, 7 (+3 more)``, or ``all channels`` for a layer-wide finding."""
        if not self.channels:
            return "layer"
        shown = ", ".join(str(channel) for channel in self.channels[:limit])
        more = f" (+{len(self.channels) - limit} more)" if len(self.channels) > limit else ""
        word = "channel" if len(self.channels) == 1 else "channels"
        return f"{word} {shown}{more}"


def _where(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(index) for index in np.flatnonzero(mask))


@lru_cache(maxsize=4096)
def diagnose(layer: BNLayer) -> tuple[Diagnostic, ...]:
    """Every finding for one layer, layer-wide ones first (cached: layers are immutable and
    the tree, the table and the diagnostics list all ask)."""
    found: list[Diagnostic] = []
    mean = layer.moving_mean.astype(np.float64)
    variance = layer.moving_variance.astype(np.float64)
    gamma = layer.gamma_or_one.astype(np.float64)
    beta = layer.beta_or_zero.astype(np.float64)
    eps = layer.epsilon

    if np.all(mean == 0) and np.all(variance == 1):
        found.append(Diagnostic(
            "never_updated", "moving statistics look never updated (mean 0, variance 1 everywhere)",
            "the model was saved before training, or trained by a loop that never ran the BN updates "
            "(training=False, or a custom loop without the layer's update ops)",
        ))
    elif np.all(variance == 1) and np.any(mean != 0):
        found.append(Diagnostic(
            "half_updated", "moving means moved but every moving variance is still 1",
            "the statistics were only partly updated or partly restored: check how they were trained or loaded",
        ))
    if layer.sources.get("epsilon") == "config" and not any(np.isclose(eps, known, rtol=1e-6, atol=0.0) for known in KERAS_EPSILONS):
        hint = " (PyTorch's default: a ported model?)" if np.isclose(eps, 1e-5, rtol=1e-6, atol=0.0) else ""
        found.append(Diagnostic(
            "epsilon", f"epsilon {eps:g} differs from the Keras default 0.001{hint}",
            "outputs differ from a layer with the default epsilon, most where the variance is small",
        ))

    with np.errstate(all="ignore"):
        weights = {"gamma": gamma, "beta": beta, "moving_mean": mean, "moving_variance": variance}
        for name, values in weights.items():
            bad = ~np.isfinite(values)
            if bad.any():
                found.append(Diagnostic(
                    "not_finite", f"{name} holds NaN or Inf",
                    "every output of these channels will be NaN or Inf: training diverged or the file is damaged",
                    _where(bad),
                ))
        checks = [
            (variance < 0, "negative_variance", "moving variance is negative",
             "a variance can never be negative: the statistics were corrupted or written by hand"),
            (variance == 0, "zero_variance", "moving variance is exactly 0",
             "the channel was constant during training; the output relies on epsilon alone"),
            ((variance != 0) & (np.abs(variance) < FLOAT32_TINY), "denormal_variance", "moving variance is denormal",
             "a denormal float32 is slow on many CPUs and loses precision; it is effectively 0"),
            ((variance > 0) & (variance < eps * 1e-3), "tiny_variance", "moving variance is far below epsilon",
             "epsilon dominates: the layer barely normalises this channel"),
            (variance + eps <= 0, "nan_ahead", "moving_variance + epsilon <= 0",
             "sqrt of a non-positive number: this channel outputs NaN"),
        ]
        for mask, code, message, why in checks:
            if mask.any():
                found.append(Diagnostic(code, message, why, _where(mask)))
        constant = (np.abs(gamma) < GAMMA_TINY) & (np.abs(beta) > BETA_LARGE) if layer.scale else np.zeros_like(gamma, bool)
        if constant.any():
            found.append(Diagnostic(
                "constant_output", "gamma near 0 with a large beta",
                "the channel outputs about beta whatever its input: it has been switched off in training",
                _where(constant),
            ))
        scale = np.abs(gamma) / np.sqrt(variance + eps)
        extreme = np.isfinite(scale) & (scale > SCALE_EXTREME)
        if extreme.any():
            found.append(Diagnostic(
                "extreme_scale", f"scale gamma / sqrt(var + eps) above {SCALE_EXTREME:g}",
                "tiny input differences are blown up: look for a variance that collapsed",
                _where(extreme),
            ))
    return tuple(found)


@dataclass(frozen=True, eq=False)
class DiagnosticGroup:
    """One finding repeated across layers: shown once, with the layers it concerns."""

    code: str
    message: str
    explanation: str
    #: (layer path, channels) for every layer with this finding.
    members: tuple[tuple[str, tuple[int, ...]], ...]

    @property
    def layer_count(self) -> int:
        return len(self.members)

    def summary(self, limit: int = 3) -> str:
        """``53 layers: epsilon 1e-05 differs... (conv1_bn, conv2_bn, … +50)``."""
        paths = [path for path, _ in self.members]
        shown = ", ".join(paths[:limit]) + (f", … (+{len(paths) - limit})" if len(paths) > limit else "")
        count = f"{len(paths)} layer{'s' if len(paths) != 1 else ''}"
        return f"{count}: {self.message} ({shown})"


def group_diagnostics(layers: Sequence[BNLayer]) -> list[DiagnosticGroup]:
    """Findings grouped by code and message across layers, in order of first appearance, so a
    model whose 53 layers share one finding shows one line, not 53."""
    groups: dict[tuple[str, str], list[tuple[str, tuple[int, ...]]]] = {}
    first: dict[tuple[str, str], Diagnostic] = {}
    for layer in layers:
        for diagnostic in diagnose(layer):
            key = (diagnostic.code, diagnostic.message)
            groups.setdefault(key, []).append((layer.path, diagnostic.channels))
            first.setdefault(key, diagnostic)
    return [DiagnosticGroup(code, message, first[(code, message)].explanation, tuple(members))
            for (code, message), members in groups.items()]


def channel_codes(layer: BNLayer, diagnostics: tuple[Diagnostic, ...]) -> list[list[str]]:
    """For each channel, the codes of the findings that name it (layer-wide ones excluded)."""
    codes: list[list[str]] = [[] for _ in range(layer.channels)]
    for diagnostic in diagnostics:
        for channel in diagnostic.channels:
            codes[channel].append(diagnostic.code)
    return codes
