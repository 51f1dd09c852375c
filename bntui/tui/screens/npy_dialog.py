"""Ask for a ``.npy`` path; returns the path, or None when cancelled."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label


class NpyDialog(ModalScreen[Path | None]):
    """Enter loads the file at the typed path; Escape cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="npy-box"):
            yield Label("Load input values from a .npy file (Enter loads, Esc cancels)")
            yield Input(placeholder="path/to/input.npy", id="npy-path")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(Path(event.value).expanduser() if event.value.strip() else None)

    def action_cancel(self) -> None:
        self.dismiss(None)
