"""The mode audit: what each way of calling a BN layer really does, from its config alone.

For ``predict`` / ``evaluate``, ``fit``, ``model(x, training=True)`` and a plain ``model(x)``:
which statistics the layer normalises with, whether the call updates the moving statistics,
and with which variance. The rules below were observed with Keras 3.15 and tf_keras 2.21
(see ``tests/test_explain_modes.py``, which checks each against the real libraries):

- a frozen layer (``trainable: false``) uses its moving statistics in every call and never
  updates them (Keras 3; tf.keras since TF 2.0). Standalone Keras 2.0 to 2.3 still normalised
  it with the batch's statistics in training mode;
- ``training=True`` hard-coded at the call site: in Keras 3, ``predict``'s own
  ``training=False`` wins, but a plain ``model(x)`` runs the layer in training mode and updates
  its statistics. In tf.keras 2.x the call-site value wins everywhere: even ``predict`` uses the
  batch's statistics and updates the moving ones. ``training=False`` hard-coded: Keras 3's
  ``fit`` and ``training=True`` still override it; tf.keras never trains the layer;
- Keras 3 updates the moving variance with the biased batch variance; tf.keras' fused kernel
  (4D input, channel axis 1 or 3) with n / (n - 1); standalone Keras 2.1.3 to 2.3 with
  n / (n - 1 - epsilon).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bntui.core.keras_config import call_training_from_config  # noqa: F401 - re-exported
from bntui.core.model import BNLayer

#: The calls the audit describes, as keys of ``behaviour``.
CALLS = ("predict", "fit", "call_training_true", "call")


@dataclass(frozen=True)
class CallBehaviour:
    """What one way of calling the layer does."""

    statistics: str  # "moving" or "batch"
    updates_moving_statistics: bool
    variance_update: str | None  # "biased", "unbiased" or None when nothing is updated

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of one call."""
        return {"statistics": self.statistics, "updates_moving_statistics": self.updates_moving_statistics,
                "variance_update": self.variance_update}


MOVING = CallBehaviour("moving", False, None)


@dataclass(frozen=True)
class ModeAudit:
    """The audit of one layer: today's Keras 3, and the Keras that wrote the file where it differed."""

    trainable: bool
    call_training: bool | None
    behaviour: dict[str, CallBehaviour]
    behaviour_when_written: dict[str, CallBehaviour] | None
    written_by: str | None
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """``trainable``, ``call_training``, ``behaviour`` (and ``behaviour_when_written``), ``notes``."""
        out: dict[str, Any] = {
            "trainable": self.trainable,
            "call_training": self.call_training,
            "behaviour": {call: b.to_dict() for call, b in self.behaviour.items()},
        }
        if self.behaviour_when_written is not None:
            out["behaviour_when_written"] = {call: b.to_dict() for call, b in self.behaviour_when_written.items()}
            out["written_by"] = self.written_by
        out["notes"] = list(self.notes)
        return out


def audit_modes(layer: BNLayer, call_training: bool | None = None, input_rank: int | None = None) -> ModeAudit:
    """What each call does for ``layer``; ``call_training`` is a ``training`` argument
    hard-coded at the call site (see :func:`call_training_from_config`), ``input_rank`` the
    rank of the layer's input where known (it decides whether tf.keras used its fused kernel)."""
    today = _keras3(layer.trainable, call_training)
    family = _writer(layer.keras_version)
    written: dict[str, CallBehaviour] | None = None
    if family == "tf.keras":
        written = _tf_keras(layer.trainable, call_training, _fused(layer, input_rank))
    elif family == "keras":
        written = _standalone_keras(layer, call_training)
    if written == today:
        written = None
    notes = _notes(layer, call_training, today, written, family, input_rank)
    return ModeAudit(layer.trainable, call_training, today, written,
                     f"{family} {layer.keras_version}" if written is not None else None, tuple(notes))


def _batch(variance: str) -> CallBehaviour:
    return CallBehaviour("batch", True, variance)


def _keras3(trainable: bool, call_training: bool | None) -> dict[str, CallBehaviour]:
    if not trainable:
        return dict.fromkeys(CALLS, MOVING)
    batch = _batch("biased")
    return {"predict": MOVING, "fit": batch, "call_training_true": batch,
            "call": batch if call_training is True else MOVING}


def _tf_keras(trainable: bool, call_training: bool | None, fused: bool) -> dict[str, CallBehaviour]:
    if not trainable or call_training is False:
        return dict.fromkeys(CALLS, MOVING)
    batch = _batch("unbiased" if fused else "biased")
    if call_training is True:
        return dict.fromkeys(CALLS, batch)
    return {"predict": MOVING, "fit": batch, "call_training_true": batch, "call": MOVING}


def _standalone_keras(layer: BNLayer, call_training: bool | None) -> dict[str, CallBehaviour]:
    """Standalone Keras 2.0 to 2.3: frozen layers still used the batch's statistics in training
    mode (their updates were dropped: ``Layer.updates`` was empty for a non-trainable layer), and
    from 2.1.3 the update used n / (n - 1 - epsilon), counted here as unbiased."""
    variance = "unbiased" if _version(layer.keras_version) >= (2, 1, 3) else "biased"
    if call_training is False:
        return dict.fromkeys(CALLS, MOVING)
    training = _batch(variance) if layer.trainable else CallBehaviour("batch", False, None)
    if call_training is True:
        return dict.fromkeys(CALLS, training)
    return {"predict": MOVING, "fit": training, "call_training_true": training, "call": MOVING}


def _writer(version: str | None) -> str | None:
    """Which Keras wrote a file: ``keras`` (standalone 2.0 to 2.3), ``tf.keras`` (2.4 and later,
    tf_keras, or a ``-tf`` version) or None (Keras 3, or unknown)."""
    if not version:
        return None
    if "tf" in version:
        return "tf.keras"
    parts = _version(version)
    if parts[0] != 2:
        return None
    return "keras" if parts < (2, 4) else "tf.keras"


def _version(version: str | None) -> tuple[int, ...]:
    numbers = [int(n) for n in re.findall(r"\d+", version or "")[:3]]
    return tuple(numbers + [0] * (3 - len(numbers)))


def _fused(layer: BNLayer, input_rank: int | None) -> bool:
    """Whether tf.keras would have used its fused kernel: a 4D input on axis 1 or 3, no renorm
    and no ghost batches. tf.keras stores the axis as a positive number, so axis 3 alone says
    the input was 4D."""
    if layer.renorm or layer.virtual_batch_size:
        return False
    rank = input_rank if input_rank is not None else (4 if layer.axis == 3 else None)
    position = layer.axis % rank if rank else None
    return rank == 4 and position in (1, 3)


def _notes(layer: BNLayer, call_training: bool | None, today: dict[str, CallBehaviour],
           written: dict[str, CallBehaviour] | None, family: str | None, input_rank: int | None) -> list[str]:
    notes = []
    if call_training is True:
        notes.append("WARNING: training=True is hard-coded where the model calls this layer. In Keras 3 a plain "
                     "model(x) runs it in training mode and updates its moving statistics (predict does not); "
                     "in tf.keras 2.x even predict used the batch's statistics and updated them.")
    elif call_training is False:
        notes.append("WARNING: training=False is hard-coded where the model calls this layer. Keras 3's fit "
                     "and training=True override it; tf.keras 2.x never trained this layer's statistics.")
    if not layer.trainable:
        notes.append("The layer is frozen (trainable=False): Keras 3, and tf.keras since TF 2.0, normalise it with "
                     "its moving statistics in every call and never update them.")
    if any(b.statistics == "batch" for b in today.values()):
        notes.append("In training mode a batch with one value per channel normalises every output to beta; "
                     "TF's fused GPU kernel and PyTorch give NaN or an error for it.")
    if family == "tf.keras" and input_rank is None and layer.axis == 1 and not layer.renorm:
        notes.append("If this layer saw 4D input (channels first), tf.keras' fused kernel updated its moving "
                     "variance with n / (n - 1), not the biased variance shown.")
    if written is not None:
        notes.append(f"The Keras that wrote this file ({family} {layer.keras_version}) behaved differently: "
                     "see behaviour_when_written.")
    return notes
