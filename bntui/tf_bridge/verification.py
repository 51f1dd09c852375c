"""Run a standalone Keras BatchNormalization on the user's input and judge the core against it.

The check layer is built from the file's settings and weights, so it works for every file the
core opens: with the layer's ``trainable`` flag (a frozen layer ignores ``training=True``), its
dtype policy, renorm's seven variables, and (through tf_keras, the only Keras that has it)
``virtual_batch_size``. Each element is judged against a tolerance derived from the arithmetic
in :mod:`bntui.core.agreement`, never a fixed number of ulps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bntui.core.agreement import Check, judge
from bntui.core.model import BNLayer
from bntui.core.numbers import to_json_value
from bntui.core.numerics import term_scaled_ulp
from bntui.core.steps import Computation, compute
from bntui.tf_bridge.keras_loader import import_keras


@dataclass(frozen=True, eq=False)
class ModeCheck:
    """TensorFlow against the core for one mode, in float32, float64 and the layer's policy."""

    mode: str
    #: TensorFlow's float32 output (what a float32 model gives).
    tensorflow_output: np.ndarray
    #: TensorFlow's output computed in float64.
    tensorflow_output_float64: np.ndarray
    float32: Check
    float64: Check
    #: TensorFlow's float32 output against the exact one, in term-scaled float32 ulps.
    tensorflow_ulp: np.ndarray
    #: Under a 16-bit dtype policy: what the layer returns, and its check.
    policy_output: np.ndarray | None = None
    policy: Check | None = None

    @property
    def checks(self) -> list[Check]:
        return [check for check in (self.float32, self.float64, self.policy) if check is not None]

    @property
    def agrees(self) -> bool:
        return all(check.agrees for check in self.checks)

    @property
    def max_abs_diff(self) -> float:
        return self.float32.max_abs_diff

    @property
    def max_ulp(self) -> float:
        finite = self.tensorflow_ulp[np.isfinite(self.tensorflow_ulp)]
        return float(finite.max()) if finite.size else 0.0


@dataclass(frozen=True, eq=False)
class Verification:
    """Both modes checked, and what could not be checked, with why."""

    inference: ModeCheck
    training: ModeCheck | None
    unavailable: tuple[str, ...] = field(default=())

    @property
    def agrees(self) -> bool:
        return self.inference.agrees and (self.training is None or self.training.agrees)

    @property
    def disagreements(self) -> list[str]:
        """One line per failed check: mode, precision, channel, element and by how much."""
        modes = [m for m in (self.inference, self.training) if m is not None]
        return [check.worst.describe() for m in modes for check in m.checks if check.worst is not None]

    def summary(self) -> str:
        """One line for the TUI and the CLI's text output."""
        if not self.agrees:
            return "TensorFlow DISAGREES: " + "; ".join(self.disagreements)
        parts = [(f"inference within tolerance (TF float32 {self.inference.max_ulp:.3g} ulp from exact, "
                  f"{self.inference.float32.max_ratio:.2g} of the derived bound)")]
        if self.training is not None:
            parts.append(f"training within tolerance ({self.training.float32.max_ratio:.2g} of the bound)")
        parts.extend(self.unavailable)
        return "TensorFlow agrees: " + "; ".join(parts)


def _standalone(layer: BNLayer, shape: tuple[int, ...], dtype: str):  # type: ignore[no-untyped-def]
    """A fresh Keras BN layer with the file's settings and weights (tf_keras for ghost batches)."""
    settings: dict[str, object] = {"axis": layer.axis, "epsilon": layer.epsilon, "momentum": layer.momentum,
                                   "center": layer.center, "scale": layer.scale, "dtype": dtype}
    if layer.virtual_batch_size:
        import tf_keras as keras_module  # only tf_keras has ghost batches

        settings["virtual_batch_size"] = layer.virtual_batch_size
    else:
        keras_module = import_keras()
    if layer.renorm:
        settings.update(renorm=True, renorm_clipping=layer.renorm_clipping, renorm_momentum=layer.renorm_momentum)
    bn = keras_module.layers.BatchNormalization(**settings)
    bn.build(shape)
    bn.trainable = layer.trainable
    arrays = [w for w in (layer.gamma, layer.beta) if w is not None] + [layer.moving_mean, layer.moving_variance]
    if layer.renorm:
        arrays += [w for w in (layer.moving_stddev, layer.renorm_mean, layer.renorm_stddev) if w is not None]
    targets = bn.get_weights()
    if len(targets) != len(arrays):
        raise ValueError(f"the check layer has {len(targets)} weights, the file {len(arrays)}")
    bn.set_weights([np.asarray(a, dtype=np.float64).reshape(t.shape).astype(t.dtype) for a, t in zip(arrays, targets)])
    return bn


def _run(layer: BNLayer, x: np.ndarray, dtype: str, training: bool) -> np.ndarray:
    # A fresh layer per call: training=True updates moving statistics, which must never leak.
    bn = _standalone(layer, x.shape, dtype)
    input_dtype = "float64" if dtype == "float64" else "float32"
    return np.asarray(bn(x.astype(input_dtype), training=training)).astype(np.float64)


def verify(computation: Computation) -> Verification:
    """Run the real Keras layer on the same input in both modes (and under the layer's dtype
    policy) and judge each output against its derived tolerance."""
    layer, x = computation.layer, computation.x
    policy = layer.dtype_policy if layer.compute_dtype in ("float16", "bfloat16") else None
    keras_view = compute(layer, computation.x_keras) if policy and computation.x_keras is not None else None
    unavailable: list[str] = []
    checks: dict[str, ModeCheck] = {}
    for mode in ("inference", "training"):
        training = mode == "training"
        try:
            out32 = _run(layer, x, "float32", training)
            out64 = _run(layer, x, "float64", training)
        except ValueError as err:  # Keras refuses this input for this mode (ghost batch size...)
            unavailable.append(f"{mode} not checked: Keras refuses it ({str(err).splitlines()[0][:120]})")
            continue
        policy_out = _run(layer, x, policy, training) if policy else None
        checks[mode] = ModeCheck(
            mode=mode,
            tensorflow_output=out32.astype(np.float32),
            tensorflow_output_float64=out64,
            float32=judge(computation, mode, out32, "float32"),
            float64=judge(computation, mode, out64, "float64"),
            tensorflow_ulp=term_scaled_ulp(out32, computation.result(mode).output, computation.folded_terms()),
            policy_output=policy_out,
            policy=judge(keras_view, mode, policy_out, "policy") if keras_view is not None and policy_out is not None else None,
        )
    if "inference" not in checks:
        raise ValueError("; ".join(unavailable))
    return Verification(checks["inference"], checks.get("training"), tuple(unavailable))


def verification_dict(check: Verification) -> dict[str, object]:
    """The ``verification`` JSON object (full precision)."""
    def judged(c: Check | None) -> dict[str, object] | None:
        if c is None:
            return None
        return {"agrees": c.agrees, "max_abs_diff": c.max_abs_diff, "max_tolerance_ratio": c.max_ratio,
                "worst": None if c.worst is None else {**c.worst.__dict__, "index": list(c.worst.index)}}

    def mode(m: ModeCheck | None) -> dict[str, object] | None:
        if m is None:
            return None
        return {
            "tensorflow_output": to_json_value(m.tensorflow_output),
            "tensorflow_output_float64": to_json_value(m.tensorflow_output_float64),
            "tensorflow_output_policy": to_json_value(m.policy_output),
            "tensorflow_ulp": to_json_value(m.tensorflow_ulp),
            "max_abs_diff": m.max_abs_diff,
            "max_ulp": m.max_ulp,
            "float32": judged(m.float32),
            "float64": judged(m.float64),
            "policy": judged(m.policy),
            "agrees": m.agrees,
        }

    return {"agrees": check.agrees, "summary": check.summary(), "disagreements": check.disagreements,
            "unavailable": list(check.unavailable), "inference": mode(check.inference),
            "training": mode(check.training)}
