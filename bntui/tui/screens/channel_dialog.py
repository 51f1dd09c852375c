"""``g``: go straight to channel K instead of pressing ``n`` K times."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label


class ChannelDialog(ModalScreen[int | None]):
    """Returns a channel number in ``0..channels-1``, or None when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels

    def compose(self) -> ComposeResult:
        with Vertical(id="channel-box"):
            yield Label(f"Go to channel (0 to {self.channels - 1}); Enter goes, Esc cancels")
            yield Input(placeholder="channel number", type="integer", id="channel-number")
            yield Label("", id="channel-error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if not text:
            self.dismiss(None)
            return
        channel = int(text)
        if not 0 <= channel < self.channels:
            self.query_one("#channel-error", Label).update(f"no channel {channel}: this layer has 0 to {self.channels - 1}")
            return
        self.dismiss(channel)

    def action_cancel(self) -> None:
        self.dismiss(None)
