"""A Keras BN layer as PyTorch, ONNX and TFLite (folded) see it, and what changes numbers.

Porting goes wrong in a handful of known ways, each silent:

- **epsilon**: Keras' default is 1e-3, PyTorch's and ONNX's 1e-5. The output moves most
  where the variance is comparable to epsilon; we give the shift per channel at typical
  inputs, ``x = mean ± 3·sqrt(var)``:
  ``3·|gamma|·sqrt(var)·|1/sqrt(var + eps) − 1/sqrt(var + 1e-5)|``;
- **momentum**: PyTorch's is the weight of the *new* batch (``1 − Keras momentum``); ONNX's
  goes the same way as Keras;
- **the running variance**: Keras 3 updates it with the biased batch variance, PyTorch (and
  tf.keras's fused kernel) with the unbiased one: training after the port drifts by
  ``n/(n−1)``, inference is untouched;
- **state_dict order and names**: ``weight, bias, running_mean, running_var``, against
  Keras' ``gamma, beta, moving_mean, moving_variance``.

Pure: numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from bntui.core.numbers import fmt, to_json_value
from bntui.core.numerics import folded_float32

if TYPE_CHECKING:
    from bntui.core.model import BNLayer

#: The epsilon PyTorch and ONNX use when none is given.
TARGET_EPSILON = 1e-5

#: How many channels ``worst_channels`` names.
WORST_COUNT = 5

_TORCH_MODULES = {2: "BatchNorm1d", 3: "BatchNorm1d", 4: "BatchNorm2d", 5: "BatchNorm3d"}


def epsilon_shift(layer: BNLayer, target_epsilon: float = TARGET_EPSILON) -> np.ndarray:
    """Per channel, how far the output moves at ``x = mean ± 3·sqrt(var)`` if the target's
    epsilon replaces the layer's (NaN where the variance is negative)."""
    with np.errstate(all="ignore"):
        var = layer.moving_variance.astype(np.float64)
        gamma = np.abs(layer.gamma_or_one.astype(np.float64))
        change = 1.0 / np.sqrt(var + layer.epsilon) - 1.0 / np.sqrt(var + target_epsilon)
        shift = 3.0 * gamma * np.sqrt(var) * np.abs(change)
    return shift


@dataclass(frozen=True, eq=False)
class LayerPort:
    """One BN layer's equivalents; ``input_rank`` (where the config tells) picks BatchNorm1d/2d/3d."""

    layer: BNLayer
    input_rank: int | None = None

    @property
    def affine(self) -> bool:
        """PyTorch has one switch for both: off only when Keras has neither gamma nor beta."""
        return self.layer.center or self.layer.scale

    @property
    def torch_module(self) -> str | None:
        name = _TORCH_MODULES.get(self.input_rank or 0)
        return f"torch.nn.{name}" if name else None

    @property
    def torch_momentum(self) -> float:
        """``1 - momentum``, rounded off float64's trailing noise (0.01, not 0.010000000000000009)."""
        return round(1.0 - self.layer.momentum, 15)

    @property
    def prefix(self) -> str:
        """The layer path as a PyTorch module path (``encoder/bn_1`` -> ``encoder.bn_1``)."""
        return self.layer.path.replace("/", ".")

    def state_dict_sources(self) -> dict[str, str]:
        """Each PyTorch ``state_dict`` key and the Keras array (or constant) behind it."""
        sources: dict[str, str] = {}
        if self.affine:
            sources["weight"] = "gamma" if self.layer.scale else "constant 1 (scale=False)"
            sources["bias"] = "beta" if self.layer.center else "constant 0 (center=False)"
        sources["running_mean"] = "moving_mean"
        sources["running_var"] = "moving_variance"
        sources["num_batches_tracked"] = "constant 0 (Keras keeps no count)"
        return sources

    def torch_tensors(self) -> dict[str, np.ndarray]:
        """The ``state_dict`` arrays in Keras' stored dtype, keys without the layer prefix."""
        layer = self.layer
        tensors: dict[str, np.ndarray] = {}
        if self.affine:
            tensors["weight"] = layer.gamma_or_one
            tensors["bias"] = layer.beta_or_zero
        tensors["running_mean"] = layer.moving_mean
        tensors["running_var"] = layer.moving_variance
        tensors["num_batches_tracked"] = np.zeros((), dtype=np.int64)
        return tensors

    def layout(self) -> dict[str, Any]:
        """Where the channels are in Keras and in PyTorch (always axis 1: N, C, ...)."""
        axis, rank = self.layer.axis, self.input_rank
        if rank is not None and axis < 0:
            axis += rank
        moves = axis != 1
        if not moves:
            how = "none: channels are already on axis 1"
        elif rank is not None:
            order = [0, axis, *(a for a in range(1, rank) if a != axis)]
            how = f"channels move from axis {axis} to axis 1: x.permute({', '.join(map(str, order))}) before, the inverse after"
        else:
            how = f"channels move from axis {axis} to axis 1 (for inputs of more than 2 dimensions)"
        return {"keras_axis": self.layer.axis, "torch_axis": 1, "input_rank": rank, "moves": moves, "how": how}

    def _momentum_risk(self) -> str:
        """What passing Keras' number unchanged would do: nothing at 0.5, where the conventions meet."""
        momentum = self.layer.momentum
        if momentum == 0.5:
            return "at 0.5 both conventions give the same number"
        effect = "forget almost at once" if momentum > 0.5 else "hardly move"
        return (f"passing {fmt(momentum)} would give the new batch a weight of {fmt(momentum)} instead of "
                f"{fmt(self.torch_momentum)}: the running statistics would {effect}")

    def notes(self) -> list[str]:
        layer = self.layer
        notes = [
            (f"momentum: PyTorch's is the weight of the new batch, 1 - {fmt(layer.momentum)} = {fmt(self.torch_momentum)}; "
             f"{self._momentum_risk()} (ONNX's momentum goes Keras' way)"),
            ("running variance update: biased (divide by n) in Keras 3, unbiased (n - 1) in PyTorch and in "
            "tf.keras's fused kernel; fine-tuning after the port drifts by n/(n-1) (1.03 at n = 32); inference is unaffected"),
        ]
        if self.affine and not (layer.center and layer.scale):
            fixed = "weight (1)" if not layer.scale else "bias (0)"
            notes.append(f"affine=True with a fixed {fixed}: set its requires_grad=False to keep Keras' behaviour in training")
        if layer.epsilon != TARGET_EPSILON:
            notes.append(f"pass eps={layer.epsilon!r}: PyTorch's default is {TARGET_EPSILON:g}")
        if self.input_rank is None:
            notes.append("input rank unknown: BatchNorm1d for (N, C) or (N, C, L), BatchNorm2d for (N, C, H, W), BatchNorm3d for 5-D")
        if layer.renorm:
            notes.append("renorm=True: PyTorch has no batch renormalization; inference (moving statistics only) ports exactly")
        if layer.virtual_batch_size:
            notes.append("virtual_batch_size (ghost BN) has no PyTorch equivalent; inference ports exactly")
        if not layer.trainable:
            notes.append("trainable=False in Keras: call .eval() and freeze the parameters in PyTorch")
        if layer.assumed:
            notes.append(f"assumed Keras defaults (not in the file): {', '.join(layer.assumed)}")
        return notes

    def to_dict(self) -> dict[str, Any]:
        layer = self.layer
        s, offset = folded_float32(layer)
        shift = epsilon_shift(layer)
        return {
            "path": layer.path,
            "pytorch": {
                "module": self.torch_module,
                "num_features": layer.channels,
                "eps": layer.epsilon,
                "momentum": self.torch_momentum,
                "affine": self.affine,
                "track_running_stats": True,
                "state_dict": self.state_dict_sources(),
                "layout": self.layout(),
            },
            "onnx": {
                "op": "BatchNormalization",
                "epsilon": layer.epsilon,
                "momentum": layer.momentum,
                "inputs_opset13": ["X", "scale", "B", "mean", "var"],
                "inputs_opset14": ["X", "scale", "B", "input_mean", "input_var"],
                "training_mode": 0,
                "scale": "gamma" if layer.scale else "constant 1",
                "B": "beta" if layer.center else "constant 0",
            },
            "folded": {"scale": to_json_value(s), "offset": to_json_value(offset)},
            "epsilon_sensitivity": {
                "target_epsilon": TARGET_EPSILON,
                "output_shift": to_json_value(shift),
                "max_output_shift": to_json_value(_nanmax(shift)),
                "worst_channels": worst_channels(shift),
            },
            "notes": self.notes(),
        }


def _nanmax(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.max()) if finite.size else float("nan")


def worst_channels(shift: np.ndarray, count: int = WORST_COUNT) -> list[int]:
    """The channels whose output moves most with the target epsilon (none that do not move)."""
    order = np.argsort(-np.nan_to_num(shift, nan=-1.0), kind="stable")
    return [int(c) for c in order[:count] if shift[c] > 0]


@dataclass(frozen=True, eq=False)
class PortReport:
    """The port view of every BN layer asked for."""

    model_path: str
    layers: tuple[LayerPort, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.model_path, "layers": [port.to_dict() for port in self.layers]}

    def rows(self) -> list[list[Any]]:
        """One row per layer and channel: the arrays PyTorch gets, the folded form, the epsilon shift."""
        rows: list[list[Any]] = [["path", "channel", "weight", "bias", "running_mean", "running_var",
                                  "folded_scale", "folded_offset", "epsilon_output_shift"]]
        for port in self.layers:
            layer = port.layer
            s, offset = folded_float32(layer)
            shift = epsilon_shift(layer)
            for c in range(layer.channels):
                rows.append([layer.path, c, float(layer.gamma_or_one[c]), float(layer.beta_or_zero[c]),
                             float(layer.moving_mean[c]), float(layer.moving_variance[c]), float(s[c]),
                             float(offset[c]), float(shift[c])])
        return rows

    def to_text(self) -> str:
        lines = [f"{self.model_path}: porting {len(self.layers)} BatchNormalization layer{'s' if len(self.layers) != 1 else ''}"]
        for port in self.layers:
            layer = port.layer
            data = port.to_dict()
            module = (port.torch_module or "torch.nn.BatchNorm?d").removeprefix("torch.")
            eps_text = f"{layer.epsilon!r}"
            lines += [
                "",
                f"{layer.path}",
                (f"  PyTorch  {module}({layer.channels}, eps={eps_text}, momentum={fmt(port.torch_momentum)}, "
                f"affine={port.affine}, track_running_stats=True)"),
                "           " + ", ".join(f"{key} <- {source}" for key, source in port.state_dict_sources().items()),
                f"           layout: {data['pytorch']['layout']['how']}",
                (f"  ONNX     BatchNormalization(epsilon={eps_text}, momentum={fmt(layer.momentum)}, training_mode=0); "
                "inputs X, scale, B, mean, var (opset < 14) / input_mean, input_var (opset >= 14)"),
                "  TFLite   MUL by folded scale, ADD folded offset (float32)",
            ]
            shift = epsilon_shift(layer)
            worst = data["epsilon_sensitivity"]["worst_channels"]
            if worst:
                lines.append(f"  eps {TARGET_EPSILON:g} instead of {fmt(layer.epsilon)} moves the output by up to "
                             f"{fmt(_nanmax(shift))} at mean ± 3·std; worst channels: "
                             + ", ".join(f"{c} ({fmt(shift[c], 3)})" for c in worst))
            lines.extend(f"  note: {note}" for note in port.notes())
        return "\n".join(lines)


def port_layers(model_path: str, layers: list[BNLayer], input_ranks: dict[str, int | None]) -> PortReport:
    """The port view of ``layers``; ``input_ranks`` maps a path to its input rank where known."""
    return PortReport(model_path, tuple(LayerPort(layer, input_ranks.get(layer.path)) for layer in layers))
