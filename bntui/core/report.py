"""Plain data (dicts and rows) for JSON and CSV output, shared by the CLI and the TUI's export.

Values keep full precision here; NaN and infinities are written as strings because JSON has
no spelling for them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bntui.core.analysis.explain_modes import audit_modes
from bntui.core.diagnostics import channel_codes, diagnose, group_diagnostics
from bntui.core.model import BNLayer, ModelInfo
from bntui.core.numbers import fmt, to_json_value
from bntui.core.numerics import folded_float32
from bntui.core.steps import Computation, Step

__all__ = ["MODES", "computation_arrays", "computation_dict", "layer_dict", "model_dict", "parameter_rows", "step_rows", "tensor_json"]

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
        "dtype_policy": layer.dtype_policy,
        "trainable": layer.trainable,
        "renorm": layer.renorm,
        "renorm_clipping": layer.renorm_clipping,
        "renorm_momentum": layer.renorm_momentum if layer.renorm else None,
        "moving_stddev": to_json_value(layer.moving_stddev),
        "renorm_mean": to_json_value(layer.renorm_mean),
        "renorm_stddev": to_json_value(layer.renorm_stddev),
        "virtual_batch_size": layer.virtual_batch_size,
        "inbound": layer.inbound,
        "gamma": to_json_value(layer.gamma),
        "beta": to_json_value(layer.beta),
        "moving_mean": to_json_value(layer.moving_mean),
        "moving_variance": to_json_value(layer.moving_variance),
        "assumed": layer.assumed,
        "sources": dict(layer.sources),
        "notes": list(layer.notes),
        "call_training": layer.call_training,
        **_behaviour(layer),
        "warnings": [
            {"code": d.code, "message": d.message, "explanation": d.explanation, "channels": list(d.channels)}
            for d in diagnose(layer)
        ],
    }


def _behaviour(layer: BNLayer) -> dict[str, Any]:
    """The mode audit's ``behaviour`` (today's Keras), ``behaviour_when_written`` where the Keras
    that wrote the file differed, and its notes as ``behaviour_notes``."""
    audit = audit_modes(layer, layer.call_training).to_dict()
    out = {"behaviour": audit["behaviour"], "behaviour_notes": audit.get("notes", [])}
    if audit.get("behaviour_when_written") is not None:
        out["behaviour_when_written"] = audit["behaviour_when_written"]
        out["written_by"] = audit.get("written_by")
    return out


def model_dict(model: ModelInfo) -> dict[str, Any]:
    """The ``--list --json`` object."""
    return {
        "file": model.path,
        "format": model.format,
        "keras_version": model.keras_version,
        "model": model.model_name,
        "notes": list(model.notes),
        "layers": [layer_dict(layer) for layer in model.layers],
        "findings": [
            {"code": group.code, "message": group.message, "explanation": group.explanation,
             "summary": group.summary(), "layers": [{"path": path, "channels": list(channels)}
                                                    for path, channels in group.members]}
            for group in group_diagnostics(model.layers)
        ],
    }


#: Whole tensors up to this many values are written into JSON; larger ones are summarised
#: (``--full`` writes them anyway, ``--output x.npz`` saves them as arrays).
FULL_TENSOR_LIMIT = 65_536
#: Values per step and channel written into JSON for inputs larger than FULL_TENSOR_LIMIT.
STEP_ELEMENT_LIMIT = 64


def tensor_json(array: np.ndarray | None, *, full: bool) -> object:
    """A whole tensor (full precision), or for a large one its shape and summary, saying so."""
    if array is None:
        return None
    data = np.asarray(array)
    if full or data.size <= FULL_TENSOR_LIMIT:
        return to_json_value(data)
    with np.errstate(all="ignore"):
        finite = data[np.isfinite(data)]
    return {
        "shape": list(data.shape),
        "min": to_json_value(finite.min()) if finite.size else None,
        "max": to_json_value(finite.max()) if finite.size else None,
        "mean": to_json_value(finite.mean()) if finite.size else None,
        "omitted": f"{data.size} values, more than {FULL_TENSOR_LIMIT}: use --full, or --output FILE.npz for arrays",
    }


def _steps(steps: list[Step], *, full: bool) -> list[dict[str, Any]]:
    out = []
    for step in steps:
        values = np.asarray(step.values).ravel()
        shown = values if full or values.size <= STEP_ELEMENT_LIMIT else values[:STEP_ELEMENT_LIMIT]
        item: dict[str, Any] = {"name": step.name, "key": step.key, "precision": step.precision,
                                "formula": step.formula, "values": to_json_value(shown)}
        if shown.size < values.size:
            item["elements_shown"], item["elements_total"] = int(shown.size), int(values.size)
        out.append(item)
    return out


def computation_dict(computation: Computation, channels: list[int], modes: tuple[str, ...] = MODES,
                     *, full: bool | None = None) -> dict[str, Any]:
    """The computation JSON object; ``steps`` maps each requested channel to its steps.

    Small inputs are written whole; beyond FULL_TENSOR_LIMIT values tensors are summarised and
    each step shows its first STEP_ELEMENT_LIMIT values per channel, with the counts said
    (``full=True`` writes everything)."""
    whole = computation.x.size <= FULL_TENSOR_LIMIT if full is None else full
    out: dict[str, Any] = {
        "layer": layer_dict(computation.layer),
        "input": {"shape": list(computation.x.shape), "values": tensor_json(computation.x, full=whole),
                  "as_keras": tensor_json(computation.x_keras, full=whole)},
        "channels": channels,
    }
    if "inference" in modes:
        inference = computation.inference
        out["inference"] = {
            "uses": inference.uses,
            "output": tensor_json(inference.output, full=whole),
            "output_float32": tensor_json(computation.output_float32, full=whole),
            "output_as_keras": tensor_json(inference.output_as_keras, full=whole),
            "max_ulp": computation.max_ulp,
            "ulp_measured_against": "the largest term summed into each output (|x * s|, |offset|, |beta|), in float32",
            "scale_float32": to_json_value(computation.scale_float32),
            "offset_float32": to_json_value(computation.offset_float32),
            "steps": {str(c): _steps(computation.steps(c, "inference"), full=whole) for c in channels},
            "float32_steps": {str(c): _steps(computation.float32_steps(c), full=whole) for c in channels},
        }
    if "training" in modes:
        training = computation.training
        statistics = training.unfrozen if training.unfrozen is not None else training
        out["training"] = {
            "uses": training.uses,
            "reason": training.reason,
            "output": tensor_json(training.output, full=whole),
            "output_as_keras": tensor_json(training.output_as_keras, full=whole),
            "unfrozen_output": tensor_json(training.unfrozen.output, full=whole) if training.unfrozen else None,
            "batch_mean": to_json_value(statistics.mean),
            "batch_variance": to_json_value(statistics.variance),
            "renorm_r": to_json_value(statistics.renorm_r),
            "renorm_d": to_json_value(statistics.renorm_d),
            "notes": computation.notes(),
            "steps": {str(c): _steps(computation.steps(c, "training"), full=whole) for c in channels},
        }
        if training.unfrozen is not None:
            out["training"]["unfrozen_steps"] = {
                str(c): _steps(list(computation.channel_steps(c, "training", unfrozen=True).steps), full=whole)
                for c in channels
            }
    return out


def computation_arrays(computation: Computation) -> dict[str, np.ndarray]:
    """Every whole tensor of a computation, for ``--output FILE.npz``."""
    arrays = {
        "input": computation.x,
        "inference_output": computation.inference.output,
        "inference_output_float32": computation.output_float32,
        "training_output": computation.training.output,
        "ulp": computation.ulp,
    }
    optional = {
        "input_as_keras": computation.x_keras,
        "inference_output_as_keras": computation.inference.output_as_keras,
        "training_output_as_keras": computation.training.output_as_keras,
        "training_unfrozen_output": computation.training.unfrozen.output if computation.training.unfrozen else None,
    }
    arrays.update({key: value for key, value in optional.items() if value is not None})
    return {key: np.asarray(value) for key, value in arrays.items()}


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
    if layer.renorm:
        header += ["moving_stddev", "renorm_mean", "renorm_stddev"]
        columns += [layer.moving_stddev, layer.renorm_mean, layer.renorm_stddev]
    header += ["epsilon", "warnings"]
    codes = channel_codes(layer, diagnose(layer))
    layer_codes = [d.code for d in diagnose(layer) if not d.channels]
    text = fmt if readable else (lambda value: repr(float(value)))
    absent = "-" if readable else ""
    rows: list[list[Any]] = [header]
    for channel in range(layer.channels):
        warnings = " ".join(layer_codes + codes[channel]) or ("-" if readable else "")
        rows.append([channel, *(text(c[channel]) if c is not None else absent for c in columns),
                     text(layer.epsilon), warnings])
    return rows
