"""Folding a BN layer into the conv or dense layer that feeds it, and what that costs.

Deployment tools replace ``BN(conv(x))`` by one conv with

    W' = W · s   (per output channel),    b' = (b − mean) · s + beta,    s = gamma / sqrt(var + eps)

That is exact only when nothing sits between the two layers: an activation inside the conv
(``activation="relu"``), an Add, a second reader of the conv's output. Each tool checks some
of this silently; here every refusal says why. For a fold that is valid, the folded kernel is
examined for int8 quantization: one channel with a tiny variance gets a huge ``s``, and its
weights then set the per-tensor scale that every other channel has to share.

Pure: numpy only. The feeding layer's config and weights come in a
:class:`bntui.core.model.FeedingLayer`; the TensorFlow check of the folded layer
lives in :mod:`bntui.tf_bridge.fold_check` and is attached with :func:`with_checks`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from bntui.core.numbers import fmt, to_json_value

if TYPE_CHECKING:
    from bntui.core.model import BNLayer, FeedingLayer

#: Spatial rank of each foldable class (None: Dense, whose input rank the config may not say).
_SPATIAL: dict[str, int | None] = {
    "Conv1D": 1, "Conv2D": 2, "Conv3D": 3, "Conv1DTranspose": 1, "Conv2DTranspose": 2, "Conv3DTranspose": 3,
    "DepthwiseConv1D": 1, "DepthwiseConv2D": 2, "SeparableConv1D": 1, "SeparableConv2D": 2, "Dense": None,
}

#: A channel whose weight range is this many times the median channel's dominates the
#: per-tensor int8 scale: the median channel loses log2(4) = 2 bits of its 8.
DOMINANCE_FACTOR = 4.0


def scaled_role(class_name: str) -> str:
    """The weight that the BN scale multiplies: the one producing the output channels."""
    if class_name.startswith("Depthwise"):
        return "depthwise_kernel"
    if class_name.startswith("Separable"):
        return "pointwise_kernel"
    return "kernel"


def output_channels_view(kernel: np.ndarray, class_name: str) -> np.ndarray:
    """The kernel as (weights per channel, output channels): Keras keeps output channels last,
    except Conv*Transpose (``(..., out, in)``) and depthwise (``(..., in, multiplier)``, output
    channel ``i * multiplier + m``)."""
    if class_name.endswith("Transpose"):
        kernel = np.moveaxis(kernel, -2, -1)
    if class_name.startswith("Depthwise"):
        return kernel.reshape(-1, kernel.shape[-2] * kernel.shape[-1])
    return kernel.reshape(-1, kernel.shape[-1])


def _scale_kernel(kernel: np.ndarray, s: np.ndarray, class_name: str) -> np.ndarray:
    """``W · s`` along the output channels (``s`` in float64; the result in the kernel's dtype)."""
    w = kernel.astype(np.float64)
    if class_name.endswith("Transpose"):
        scaled = w * s[:, None]
    elif class_name.startswith("Depthwise"):
        scaled = w * s.reshape(w.shape[-2], w.shape[-1])
    else:
        scaled = w * s
    return scaled.astype(kernel.dtype)


@dataclass(frozen=True, eq=False)
class Quantization:
    """Per-tensor against per-channel symmetric int8 for the folded kernel.

    With one scale for the tensor, channel ``c`` uses ``127 · range_c / per_tensor_range``
    of the 127 levels, i.e. it loses ``log2(per_tensor_range / range_c)`` bits.
    """

    per_tensor_range: float
    channel_ranges: np.ndarray
    bits_lost: np.ndarray
    #: The same loss for the kernel before folding: what folding itself did.
    bits_lost_before_fold: np.ndarray
    worst_channels: tuple[int, ...]

    @property
    def median_bits_lost(self) -> float:
        finite = self.bits_lost[np.isfinite(self.bits_lost)]
        return float(np.median(finite)) if finite.size else 0.0

    @property
    def per_channel_fixes(self) -> bool:
        """Per-channel scales give every channel its full 8 bits, removing a loss of a bit or more."""
        return self.median_bits_lost >= 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "per_tensor_range": to_json_value(self.per_tensor_range),
            "worst_channels": list(self.worst_channels),
            "bits_lost": to_json_value(self.bits_lost),
            "median_bits_lost": self.median_bits_lost,
            "bits_lost_before_fold": to_json_value(self.bits_lost_before_fold),
            "channel_ranges": to_json_value(self.channel_ranges),
            "per_channel_fixes": self.per_channel_fixes,
        }


def quantization(folded_kernel: np.ndarray, kernel: np.ndarray, class_name: str) -> Quantization:
    """Each channel's range against the per-tensor range, after and before folding."""
    ranges = np.abs(output_channels_view(folded_kernel, class_name).astype(np.float64)).max(axis=0)
    before = np.abs(output_channels_view(kernel, class_name).astype(np.float64)).max(axis=0)
    top = float(ranges.max()) if ranges.size else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        lost = np.log2(top / ranges)
        lost_before = np.log2(before.max() / before) if before.size else before
    median = float(np.median(ranges)) if ranges.size else 0.0
    order = np.argsort(-ranges, kind="stable")
    worst = tuple(int(c) for c in order if median > 0 and ranges[c] > DOMINANCE_FACTOR * median)
    return Quantization(top, ranges, lost, lost_before, worst)


@dataclass(frozen=True, eq=False)
class LayerFold:
    """One BN layer: folded into its feeding layer, or the reason it cannot be."""

    path: str
    foldable: bool
    reason: str | None
    feeding_layer: str | None
    feeding_class: str | None
    #: The feeding layer's weights with the BN folded in (role -> array), when foldable.
    folded: dict[str, np.ndarray] | None = None
    quantization: Quantization | None = None
    notes: tuple[str, ...] = ()
    #: From the TensorFlow check: folded against unfolded, in term-scaled float32 ulps.
    max_ulp: float | None = None
    max_abs_diff: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "foldable": self.foldable,
            "reason": self.reason,
            "feeding_layer": self.feeding_layer,
            "feeding_class": self.feeding_class,
            "max_ulp": self.max_ulp,
            "max_abs_diff": self.max_abs_diff,
            "quantization": self.quantization.to_dict() if self.quantization else None,
            "notes": list(self.notes),
        }


def fold_layer(layer: BNLayer, feeding: FeedingLayer) -> LayerFold:
    """Fold ``layer`` into ``feeding`` if the config allows it; otherwise say why not."""
    reason = _refusal(layer, feeding)
    base = LayerFold(layer.path, False, reason, feeding.path, feeding.class_name)
    if reason is not None or feeding.class_name is None:
        return base
    class_name = feeding.class_name
    role = scaled_role(class_name)
    kernel = feeding.weights[role]
    channels = output_channels_view(kernel, class_name).shape[1]
    if channels != layer.channels:
        return replace(base, reason=f"{feeding.path} has {channels} output channels but the BN has {layer.channels}")
    with np.errstate(all="ignore"):
        variance = layer.moving_variance.astype(np.float64) + layer.epsilon
        s = layer.gamma_or_one.astype(np.float64) / np.sqrt(variance)
    bad = np.flatnonzero(~(variance > 0) | ~np.isfinite(s))
    if bad.size:
        return replace(base, reason=f"var + eps <= 0 or not finite in channels {_channel_list(bad)}: s = gamma / sqrt(var + eps) is not a real number")
    bias = feeding.weights.get("bias")
    b = np.zeros(layer.channels) if bias is None else bias.astype(np.float64)
    new_bias = (b - layer.moving_mean.astype(np.float64)) * s + layer.beta_or_zero.astype(np.float64)
    folded = dict(feeding.weights)
    folded[role] = _scale_kernel(kernel, s, class_name)
    folded["bias"] = new_bias.astype(kernel.dtype)
    notes = list(_gamma_notes(layer))
    if bias is None:
        notes.append(f"{feeding.path} has no bias (use_bias=False): the folded layer needs one")
    return replace(base, foldable=True, folded=folded, quantization=quantization(folded[role], kernel, class_name),
                   notes=tuple(notes))


def _channel_list(channels: np.ndarray, limit: int = 8) -> str:
    shown = ", ".join(str(int(c)) for c in channels[:limit])
    return shown + (f" (+{channels.size - limit} more)" if channels.size > limit else "")


def _gamma_notes(layer: BNLayer) -> list[str]:
    """Zero and negative gamma fold correctly, but change what the folded weights look like."""
    if layer.gamma is None:
        return []
    notes = []
    zero = np.flatnonzero(layer.gamma == 0)
    negative = np.flatnonzero(layer.gamma < 0)
    if zero.size:
        notes.append(f"gamma is 0 in channels {_channel_list(zero)}: their folded weights are all 0 and their output is the constant bias")
    if negative.size:
        notes.append(f"gamma is negative in channels {_channel_list(negative)}: their folded weights change sign")
    return notes


def _refusal(layer: BNLayer, feeding: FeedingLayer) -> str | None:
    """Why the BN cannot be folded into what feeds it, or None."""
    if feeding.problem is not None:
        return feeding.problem
    name, class_name, config = feeding.path, feeding.class_name, feeding.config
    if class_name == "InputLayer":
        return f"the BN's input is the model input {name!r}: there is no layer to fold into"
    if class_name not in _SPATIAL:
        return (f"the BN follows {class_name} {name!r}, which has no kernel to fold into"
                + (" (a pre-activation ResNet pattern)" if class_name in ("Add", "Concatenate", "Activation", "ReLU") else ""))
    activation = config.get("activation", "linear")
    if activation not in ("linear", None):
        shown = activation if isinstance(activation, str) else "a custom"
        return f"{name!r} applies a {shown} activation before the BN: folding would move the BN inside it"
    others = [c for c in feeding.consumers if c != layer.name]
    if others:
        return f"the output of {name!r} also feeds {', '.join(others)}: folding would change what they see"
    if feeding.calls > 1:
        return f"{name!r} is shared (called {feeding.calls} times): folding would change its other uses"
    if feeding.is_model_output:
        return f"the output of {name!r} is also a model output: folding would change it"
    return _axis_refusal(layer, feeding)


def _axis_refusal(layer: BNLayer, feeding: FeedingLayer) -> str | None:
    """The BN must normalise the axis on which the feeding layer writes its output channels."""
    config, class_name = feeding.config, str(feeding.class_name)
    spatial = _SPATIAL[class_name]
    build = config.get("build_config") if isinstance(config.get("build_config"), dict) else None
    shape = build.get("input_shape") if build else None
    rank = spatial + 2 if spatial is not None else (len(shape) if isinstance(shape, list) else None)
    channels_first = config.get("data_format") == "channels_first"
    axis = layer.axis
    if rank is not None and axis < 0:
        axis += rank
    if channels_first:
        wanted = 1
    elif rank is not None:
        wanted = rank - 1
    else:  # Dense of unknown input rank: its channels are last; tf.keras writes axis=[1] for 2-D
        wanted = axis if axis in (-1, 1) else -1
    if axis != wanted:
        where = "1 (channels_first)" if channels_first else "the last axis"
        return f"the BN normalises axis {layer.axis}, but {feeding.path!r} writes its channels on {where}"
    return None


@dataclass(frozen=True, eq=False)
class FoldReport:
    """Every BN layer of a model (or the one asked for), folded or refused."""

    model_path: str
    layers: tuple[LayerFold, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.model_path, "layers": [layer.to_dict() for layer in self.layers]}

    def rows(self) -> list[list[Any]]:
        rows: list[list[Any]] = [["path", "foldable", "reason", "feeding_layer", "feeding_class", "max_ulp",
                                  "max_abs_diff", "per_tensor_range", "worst_channels", "median_bits_lost",
                                  "per_channel_fixes"]]
        for layer in self.layers:
            q = layer.quantization
            rows.append([layer.path, layer.foldable, layer.reason or "", layer.feeding_layer or "",
                         layer.feeding_class or "", "" if layer.max_ulp is None else layer.max_ulp,
                         "" if layer.max_abs_diff is None else layer.max_abs_diff,
                         q.per_tensor_range if q else "", " ".join(map(str, q.worst_channels)) if q else "",
                         q.median_bits_lost if q else "", q.per_channel_fixes if q else ""])
        return rows

    def to_text(self) -> str:
        lines = [f"{self.model_path}: folding {len(self.layers)} BatchNormalization layer{'s' if len(self.layers) != 1 else ''}"]
        for layer in self.layers:
            lines.append("")
            if not layer.foldable:
                lines.append(f"{layer.path}: NOT foldable: {layer.reason}")
                continue
            lines.append(f"{layer.path}: foldable into {layer.feeding_class} {layer.feeding_layer!r}")
            lines.append("  W' = W * s per output channel, b' = (b - mean) * s + beta, s = gamma / sqrt(var + eps)")
            if layer.max_ulp is not None:
                lines.append(f"  folding changes the output by at most {fmt(layer.max_ulp, 3)} ulps "
                             f"(|diff| {fmt(layer.max_abs_diff, 3)}), ulps counted at the sum of |terms|")
            q = layer.quantization
            if q is not None:
                lines.append(f"  int8 per-tensor range {fmt(q.per_tensor_range)}; median channel loses "
                             f"{fmt(q.median_bits_lost, 3)} bits (before folding: {fmt(_median(q.bits_lost_before_fold), 3)})")
                if q.worst_channels:
                    lines.append(f"  channels dominating the per-tensor scale: {_channel_list(np.array(q.worst_channels))}")
                lines.append("  per-channel quantization removes this loss" if q.per_channel_fixes
                             else "  per-tensor int8 is fine here")
            lines.extend(f"  note: {note}" for note in layer.notes)
        return "\n".join(lines)


def _median(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else math.nan


def fold_layers(model_path: str, layers: list[BNLayer], feeding: dict[str, FeedingLayer]) -> FoldReport:
    """Fold each layer into the feeding layer found for its path."""
    return FoldReport(model_path, tuple(fold_layer(layer, feeding[layer.path]) for layer in layers))


def with_checks(report: FoldReport, checks: dict[str, tuple[float, float]]) -> FoldReport:
    """The report with TensorFlow's (max_ulp, max_abs_diff) attached to the checked layers."""
    layers = tuple(replace(layer, max_ulp=checks[layer.path][0], max_abs_diff=checks[layer.path][1])
                   if layer.path in checks else layer for layer in report.layers)
    return replace(report, layers=layers)


def folded_arrays(report: FoldReport) -> dict[str, np.ndarray]:
    """Every folded weight under ``<feeding layer path>/<role>``, for ``--fold-export``."""
    arrays: dict[str, np.ndarray] = {}
    for layer in report.layers:
        for role, array in (layer.folded or {}).items():
            arrays[f"{layer.feeding_layer}/{role}"] = np.ascontiguousarray(array)
    return arrays
