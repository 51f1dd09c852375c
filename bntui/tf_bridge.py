"""The only module that imports TensorFlow / Keras, and only inside its functions.

Importing TensorFlow takes seconds, so nothing on the start-up path touches this module's
imports; the TUI calls it from a worker thread and the CLI only for ``--verify`` and
``--model-input``.

- :func:`verify` runs a standalone ``keras.layers.BatchNormalization`` built from the
  layer's settings and weights (so it works for every file the core opens, weights-only
  files included) and compares TensorFlow's outputs with the core's.
- :func:`capture` loads the whole model with ``safe_mode=True`` and records the tensor that
  really reaches a BN layer, nested layers included.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bntui.core.errors import BntuiError
from bntui.core.model import BNLayer
from bntui.core.steps import Computation

#: Agreement threshold, in ulps (see :func:`scaled_ulp`).
AGREE_ULP = 4.0


class CaptureUnavailable(BntuiError):
    """The model cannot be run safely (or at all) by Keras, so its real input is unknown."""


class TensorFlowUnavailable(BntuiError):
    """TensorFlow or Keras 3 is not installed (or fails to import)."""


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 while TensorFlow starts: its C++ start-up log lines ignore
    TF_CPP_MIN_LOG_LEVEL and would otherwise land in the middle of the TUI or of the CLI's
    one-line error messages."""
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def silence_stderr() -> None:
    """Point this process's fd 2 at the null device for good (the TUI's TensorFlow process)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)


def _keras():  # type: ignore[no-untyped-def]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        if "keras" in sys.modules:
            import keras
        else:
            with _quiet_stderr():
                import keras
                import tensorflow  # noqa: F401 - its start-up logging happens here, silenced
    except Exception as err:  # noqa: BLE001 - a broken TF install raises anything
        raise TensorFlowUnavailable(
            f"TensorFlow/Keras cannot be imported ({type(err).__name__}: {str(err)[:120]}); "
            "install it with: pip install tensorflow-cpu"
        ) from None
    return keras


@dataclass(frozen=True, eq=False)
class ModeCheck:
    """TensorFlow against the core for one mode."""

    mode: str
    #: TensorFlow's float32 output (what a float32 model gives).
    tensorflow_output: np.ndarray
    #: TensorFlow's output computed in float64.
    tensorflow_output_float64: np.ndarray
    #: max |TF float32 - core|, the core being its float32 form (inference) or float64 (training).
    max_abs_diff: float
    #: the same distance in float32 ulps.
    max_ulp: float
    #: TF float64 against the core's float64 reference, in float64 ulps.
    float64_max_ulp: float

    @property
    def agrees(self) -> bool:
        """Inference must match in float32 and float64; training in float64 (float32 batch
        statistics legitimately drift from the exact ones)."""
        if self.mode == "inference":
            return self.max_ulp <= AGREE_ULP and self.float64_max_ulp <= AGREE_ULP
        return self.float64_max_ulp <= AGREE_ULP


@dataclass(frozen=True, eq=False)
class Verification:
    """Both modes checked."""

    inference: ModeCheck
    training: ModeCheck

    @property
    def agrees(self) -> bool:
        return self.inference.agrees and self.training.agrees

    def summary(self) -> str:
        """One line for the TUI and the CLI's text output."""
        inf, tr = self.inference, self.training
        verdict = "TensorFlow agrees" if self.agrees else "TensorFlow DISAGREES"
        return (f"{verdict}: inference max |diff| = {inf.max_abs_diff:.3g}, max ulp = {inf.max_ulp:.3g} "
                f"(float64: {inf.float64_max_ulp:.3g}); training float64 max ulp = {tr.float64_max_ulp:.3g}, "
                f"float32 max ulp = {tr.max_ulp:.3g}")


def scaled_ulp(approx: np.ndarray, exact: np.ndarray, scale: np.ndarray, dtype: type) -> np.ndarray:
    """|approx - exact| in ulps of ``dtype`` at ``max(|exact|, scale)``.

    ``scale`` is the magnitude of the terms summed into the output (gamma * x_hat and beta):
    a sum cannot be more exact than its largest term, so an output that nearly cancels to 0
    is not blamed for many "ulps" of its own tiny size.
    """
    with np.errstate(invalid="ignore", over="ignore"):
        magnitude = np.maximum(np.abs(exact), scale).astype(dtype)
        spacing = np.spacing(magnitude).astype(np.float64)
        distance = np.abs(approx.astype(np.float64) - exact.astype(np.float64)) / spacing
    same = (approx.astype(np.float64) == exact.astype(np.float64)) | (np.isnan(approx) & np.isnan(exact))
    distance[same] = 0.0
    return distance


def _standalone(layer: BNLayer, shape: tuple[int, ...], dtype: str):  # type: ignore[no-untyped-def]
    keras = _keras()
    bn = keras.layers.BatchNormalization(
        axis=layer.axis, epsilon=layer.epsilon, momentum=layer.momentum,
        center=layer.center, scale=layer.scale, dtype=dtype,
    )
    bn.build(shape)
    weights = [w for w in (layer.gamma, layer.beta) if w is not None]
    bn.set_weights([*weights, layer.moving_mean, layer.moving_variance])
    return bn


def _run(layer: BNLayer, x: np.ndarray, dtype: str, training: bool) -> np.ndarray:
    # A fresh layer per call: training=True updates moving statistics, which must never leak.
    bn = _standalone(layer, x.shape, dtype)
    return np.asarray(bn(x.astype(dtype), training=training))


def _term_scale(computation: Computation, mode: str) -> np.ndarray:
    """The largest term each output is summed from, in the direct and in TensorFlow's folded
    form (``x * s`` and ``beta - mean * s``), so cancellation is measured fairly.

    A result that cancels to nearly 0 cannot be more exact than the terms it came from;
    measuring its error in ulps of its own tiny size would report hundreds of "ulps" for a
    rounding in the last bit of a large term."""
    layer = computation.layer
    result = computation.result(mode)
    shape = [1] * computation.x.ndim
    shape[computation.axis] = -1
    gamma = layer.gamma_or_one.astype(np.float64).reshape(shape)
    beta = np.abs(layer.beta_or_zero.astype(np.float64)).reshape(shape)
    mean = result.mean.reshape(shape)
    with np.errstate(all="ignore"):
        s = gamma / np.sqrt(result.variance.reshape(shape) + layer.epsilon)
        terms = [np.abs(s * (computation.x - mean)), beta, np.abs(computation.x * s), np.abs(mean * s)]
        if mode == "training":
            # A batch mean summed in another order is off by rounding of the values' sizes,
            # not of the (possibly tiny) mean itself.
            reduce_axes = tuple(i for i in range(computation.x.ndim) if i != computation.axis)
            terms.append(np.abs(s) * np.abs(computation.x).mean(axis=reduce_axes, keepdims=True))
        return np.maximum.reduce([np.broadcast_to(t, computation.x.shape) for t in terms])


def verify(computation: Computation) -> Verification:
    """Run the real Keras layer on the same input in both modes and compare."""
    layer, x = computation.layer, computation.x
    checks = {}
    for mode in ("inference", "training"):
        training = mode == "training"
        out32 = _run(layer, x, "float32", training)
        out64 = _run(layer, x, "float64", training)
        exact = computation.result(mode).output
        scale = _term_scale(computation, mode)
        core32 = computation.output_float32 if mode == "inference" else exact
        with np.errstate(invalid="ignore"):
            diff = np.abs(out32.astype(np.float64) - core32.astype(np.float64))
        checks[mode] = ModeCheck(
            mode=mode,
            tensorflow_output=out32,
            tensorflow_output_float64=out64,
            max_abs_diff=float(np.nanmax(diff)) if diff.size else 0.0,
            max_ulp=float(np.nanmax(scaled_ulp(out32, core32, scale, np.float32))),
            float64_max_ulp=float(np.nanmax(scaled_ulp(out64, exact, scale, np.float64))),
        )
    return Verification(checks["inference"], checks["training"])


# -- capture ---------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Capture:
    """What really reached a BN layer, and what the real layer gave back."""

    model_input: np.ndarray
    layer_input: np.ndarray
    layer_output: np.ndarray


def load_for_capture(model_path: str | Path, *, unsafe: bool = False):  # type: ignore[no-untyped-def]
    """Load the whole model with Keras, refusing Lambda bytecode unless ``unsafe``."""
    keras = _keras()
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


def verification_dict(check: Verification) -> dict[str, object]:
    """The ``verification`` JSON object (full precision)."""
    from bntui.core.numbers import to_json_value

    def mode(m: ModeCheck) -> dict[str, object]:
        return {
            "tensorflow_output": to_json_value(m.tensorflow_output),
            "tensorflow_output_float64": to_json_value(m.tensorflow_output_float64),
            "max_abs_diff": m.max_abs_diff,
            "max_ulp": m.max_ulp,
            "float64_max_ulp": m.float64_max_ulp,
            "agrees": m.agrees,
        }

    return {"agrees": check.agrees, "inference": mode(check.inference), "training": mode(check.training)}


def capture_dict(result: Capture, computation: Computation, spec: str) -> dict[str, object]:
    """The ``capture`` JSON object: where the input came from and how the real layer compares."""
    from bntui.core.numbers import to_json_value

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
