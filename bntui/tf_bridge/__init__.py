"""The only package that imports TensorFlow / Keras, and only inside its functions.

Importing TensorFlow takes seconds, so nothing on the start-up path imports it: the TUI calls
this package in a separate process, the CLI only for ``--verify`` and ``--model-input``.

- :func:`verify` runs a standalone ``keras.layers.BatchNormalization`` built from the
  layer's settings and weights (so it works for every file the core opens, weights-only
  files included) and compares TensorFlow's outputs with the core's.
- :func:`capture` loads the whole model with ``safe_mode=True`` and records the tensor that
  really reaches a BN layer, nested layers included.
"""

from bntui.tf_bridge.capturing import Capture, capture, capture_dict, load_for_capture, make_model_input
from bntui.tf_bridge.drift import DriftCancelled, measure_drift
from bntui.tf_bridge.keras_loader import (
    CaptureUnavailable,
    TensorFlowUnavailable,
    load_whole_model,
    one_line,
    silence_stderr,
)
from bntui.tf_bridge.verification import ModeCheck, Verification, verification_dict, verify

__all__ = [
    "Capture",
    "CaptureUnavailable",
    "DriftCancelled",
    "ModeCheck",
    "TensorFlowUnavailable",
    "Verification",
    "capture",
    "capture_dict",
    "load_for_capture",
    "load_whole_model",
    "make_model_input",
    "measure_drift",
    "one_line",
    "silence_stderr",
    "verification_dict",
    "verify",
]
