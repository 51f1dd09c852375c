"""Where the user types input values; a bad value gets an inline message, never a crash."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Input, Label

PLACEHOLDER = "input values, e.g. 1, 5 or [[1], [5]]; Enter computes"


class InputBar(Vertical):
    """An Input and a line under it for what went wrong."""

    class ValuesSubmitted(Message):
        """The user pressed Enter on some text."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    error: reactive[str] = reactive("")

    def compose(self) -> ComposeResult:
        yield Input(placeholder=PLACEHOLDER, id="values")
        yield Label("", id="input-error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.ValuesSubmitted(event.value))

    def watch_error(self, error: str) -> None:
        self.query_one("#input-error", Label).update(error)
        self.query_one("#values", Input).set_class(bool(error), "-invalid")
        self.set_class(bool(error), "-has-error")

    def focus_input(self) -> None:
        """Put the cursor in the input box."""
        self.query_one("#values", Input).focus()
