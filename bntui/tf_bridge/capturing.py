"""Run the whole model (Keras safe mode) and record what really reaches one BN layer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bntui.core.numbers import to_json_value
from bntui.core.steps import Computation
from bntui.tf_bridge.keras_loader import CaptureUnavailable, import_keras


@dataclass(frozen=True, eq=False)
class Capture:
    """What really reached a BN layer, and what the real layer gave back."""

    model_input: np.ndarray
    layer_input: np.ndarray
    layer_output: np.ndarray


def load_for_capture(model_path: str | Path, *, unsafe: bool = False):  # type: ignore[no-untyped-def]
    """Load the whole model with Keras, refusing Lambda bytecode unless ``unsafe``."""
    keras = import_keras()
    try:
        return keras.models.load_model(model_path, compile=False, safe_mode=not unsafe)
    except Exception as err:  # noqa: BLE001 - Keras raises many types; all mean "cannot load"
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if "safe_mode" in str(err) or "lambda" in str(err).lower():
            reason = "it holds Lambda code, which is not run without --unsafe"
        reason = reason if len(reason) <= 160 else reason[:160] + "…"
        raise CaptureUnavailable(f"capture unavailable: Keras cannot load this model ({reason})") from None


def make_model_input(model, spec: str) -> np.ndarray:  # type: ignore[no-untyped-def]
    """A model input from ``zeros``, ``ones``, ``uniform[:SEED]``, ``normal[:SEED]``,
    ``random[:SEED]`` (same as normal) or a ``.npy`` path."""
    from bntui.core.input_parse import load_npy

    kind, _, seed_text = spec.partition(":")
    if kind not in ("zeros", "ones", "uniform", "normal", "random"):
        return load_npy(spec)
    inputs = model.inputs if hasattr(model, "inputs") and model.inputs else None
    if not inputs or len(inputs) != 1:
        raise CaptureUnavailable("capture needs a model with exactly one input")
    shape = tuple(1 if dim is None else int(dim) for dim in inputs[0].shape)
    try:
        seed = int(seed_text) if seed_text else 0
    except ValueError:
        raise CaptureUnavailable(f"{spec!r}: the seed after ':' must be a whole number") from None
    rng = np.random.default_rng(seed)
    generated = {
        "zeros": lambda: np.zeros(shape),
        "ones": lambda: np.ones(shape),
        "uniform": lambda: rng.uniform(-1.0, 1.0, shape),
        "normal": lambda: rng.normal(0.0, 1.0, shape),
        "random": lambda: rng.normal(0.0, 1.0, shape),
    }
    return generated[kind]()


def _find(model, path: str):  # type: ignore[no-untyped-def]
    layer = model
    for part in path.split("/"):
        try:
            layer = layer.get_layer(part)
        except (ValueError, AttributeError):
            raise CaptureUnavailable(f"capture unavailable: Keras' model has no layer {path!r}") from None
    return layer


def capture(model_path: str | Path, layer_path: str, spec: str, *, unsafe: bool = False) -> Capture:
    """Run the model on a generated or loaded input and record the BN layer's real input."""
    model = load_for_capture(model_path, unsafe=unsafe)
    target = _find(model, layer_path)
    x = make_model_input(model, spec)
    seen: dict[str, np.ndarray] = {}
    original = target.call

    def recording_call(inputs, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen["input"] = np.asarray(inputs)
        outputs = original(inputs, *args, **kwargs)
        seen["output"] = np.asarray(outputs)
        return outputs

    target.call = recording_call
    try:
        dtype = model.inputs[0].dtype if getattr(model, "inputs", None) else "float32"
        model(x.astype(str(dtype) if "float" in str(dtype) else "float32"), training=False)
    except CaptureUnavailable:
        raise
    except Exception as err:  # noqa: BLE001 - whatever the model raises, the user needs one line
        raise CaptureUnavailable(f"capture failed: the model did not run on this input ({str(err)[:200]})") from None
    finally:
        target.call = original
    if "input" not in seen:
        raise CaptureUnavailable(f"capture failed: layer {layer_path!r} was not reached by this input")
    return Capture(model_input=x, layer_input=seen["input"].astype(np.float64), layer_output=seen["output"])


def capture_dict(result: Capture, computation: Computation, spec: str) -> dict[str, object]:
    """The ``capture`` JSON object: where the input came from and how the real layer compares."""
    real = result.layer_output
    ours = computation.output_float32 if real.dtype == np.float32 else computation.inference.output
    with np.errstate(invalid="ignore"):
        diff = np.abs(real.astype(np.float64) - ours.astype(np.float64))
    return {
        "model_input": spec,
        "model_input_shape": list(result.model_input.shape),
        "layer_input_shape": list(result.layer_input.shape),
        "layer_output": to_json_value(real),
        "max_abs_diff": float(np.nanmax(diff)) if diff.size else 0.0,
    }
