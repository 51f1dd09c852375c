"""Ask what to feed the whole model so bntui can capture the BN layer's real input."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static


class CaptureDialog(ModalScreen[str | None]):
    """Returns a model-input spec (``normal:0``, ``zeros``, ``x.npy``...) or None."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="capture-box"):
            yield Static("Capture this layer's real input by running the whole model (TensorFlow, safe mode).")
            yield Static("Model input: zeros, ones, uniform:SEED, normal:SEED, or a path to a .npy file. "
                         "Enter runs, Esc cancels.")
            yield Input(value="normal:0", id="capture-spec")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
