"""Plain data (dicts and rows) for JSON and CSV output, shared by the CLI and the TUI's export.

Values keep full precision here; NaN and infinities are written as strings because JSON has
no spelling for them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bntui.core.diagnostics import diagnose
from bntui.core.model import BNLayer, ModelInfo
from bntui.core.numbers import fmt, to_json_value
from bntui.core.numerics import folded_float32
from bntui.core.output import to_csv, to_json
from bntui.core.steps import Computation, Step

__all__ = ["MODES", "computation_dict", "layer_dict", "model_dict", "parameter_rows", "step_rows", "to_csv", "to_json"]

MODES = ("inference", "training")


def layer_dict(layer: BNLayer) -> dict[str, Any]:
    """Everything known about one layer: settings, their sources, weights and warnings."""
    return {
        "name": layer.name,
        "path": layer.path,
        "channels": layer.channels,
        "axis": layer.axis,
        "epsilon": layer.epsilon,
        "momentum": layer.momentum,
        "center": layer.center,
        "scale": layer.scale,
        "dtype": layer.dtype,
        "inbound": layer.inbound,
        "gamma": to_json_value(layer.gamma),
        "beta": to_json_value(layer.beta),
        "moving_mean": to_json_value(layer.moving_mean),
        "moving_variance": to_json_value(layer.moving_variance),
        "assumed": layer.assumed,
        "sources": dict(layer.sources),
        "notes": list(layer.notes),
        "warnings": [
            {"code": d.code, "message": d.message, "explanation": d.explanation, "channels": list(d.channels)}
            for d in diagnose(layer)
        ],
    }


def model_dict(model: ModelInfo) -> dict[str, Any]:
    """The ``--list --json`` object."""
    return {
        "file": model.path,
        "format": model.format,
        "keras_version": model.keras_version,
        "model": model.model_name,
        "layers": [layer_dict(layer) for layer in model.layers],
    }


def _steps(steps: list[Step]) -> list[dict[str, Any]]:
    return [{"name": s.name, "formula": s.formula, "values": to_json_value(s.values)} for s in steps]


def computation_dict(computation: Computation, channels: list[int], modes: tuple[str, ...] = MODES) -> dict[str, Any]:
    """The computation JSON object; ``steps`` maps each requested channel to its steps."""
    out: dict[str, Any] = {
        "layer": layer_dict(computation.layer),
        "input": {"shape": list(computation.x.shape), "values": to_json_value(computation.x)},
        "channels": channels,
    }
    if "inference" in modes:
        out["inference"] = {
            "output": to_json_value(computation.inference.output),
            "output_float32": to_json_value(computation.output_float32),
            "max_ulp": computation.max_ulp,
            "scale_float32": to_json_value(computation.scale_float32),
            "offset_float32": to_json_value(computation.offset_float32),
            "steps": {str(c): _steps(computation.steps(c, "inference")) for c in channels},
            "float32_steps": {str(c): _steps(computation.float32_steps(c)) for c in channels},
        }
    if "training" in modes:
        out["training"] = {
            "batch_mean": to_json_value(computation.training.mean),
            "batch_variance": to_json_value(computation.training.variance),
            "output": to_json_value(computation.training.output),
            "notes": computation.notes(),
            "steps": {str(c): _steps(computation.steps(c, "training")) for c in channels},
        }
    return out


def step_rows(computation: Computation, channels: list[int], modes: tuple[str, ...] = MODES) -> list[list[Any]]:
    """Long-format rows (mode, channel, step, formula, element, value) for CSV export."""
    rows: list[list[Any]] = [["mode", "channel", "step", "formula", "element", "value"]]
    for mode in modes:
        for channel in channels:
            steps = computation.steps(channel, mode)
            if mode == "inference":
                steps = steps + computation.float32_steps(channel)
            for step in steps:
                for index, value in enumerate(np.asarray(step.values).ravel()):
                    rows.append([mode, channel, step.name, step.formula, index, repr(float(value))])
    return rows


def parameter_rows(layer: BNLayer, *, readable: bool = False) -> list[list[Any]]:
    """One row per channel: the weights and what the layer derives from them.

    Full precision (``repr``, blank for an absent weight) for CSV; with ``readable``, the
    8 significant digits people read and ``-`` for an absent weight."""
    s, offset = folded_float32(layer)
    header = ["channel", "gamma", "beta", "moving_mean", "moving_variance", "var_plus_eps", "scale", "offset"]
    with np.errstate(all="ignore"):
        var_eps = layer.moving_variance.astype(np.float64) + layer.epsilon
    columns = [layer.gamma, layer.beta, layer.moving_mean, layer.moving_variance, var_eps, s, offset]
    text = fmt if readable else (lambda value: repr(float(value)))
    absent = "-" if readable else ""
    rows: list[list[Any]] = [header]
    for channel in range(layer.channels):
        rows.append([channel, *(text(c[channel]) if c is not None else absent for c in columns)])
    return rows
