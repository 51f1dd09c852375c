"""Run a standalone Keras BatchNormalization on the user's input and compare with the core."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bntui.core.model import BNLayer
from bntui.core.numbers import to_json_value
from bntui.core.steps import Computation
from bntui.tf_bridge.keras_loader import import_keras

#: Agreement threshold, in ulps (see :func:`scaled_ulp`).
AGREE_ULP = 4.0


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
    keras = import_keras()
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


def verification_dict(check: Verification) -> dict[str, object]:
    """The ``verification`` JSON object (full precision)."""
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
