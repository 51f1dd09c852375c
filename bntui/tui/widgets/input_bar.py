"""Where the user types input values; a bad value gets an inline message, never a crash.

Escape leaves the box (the footer says so while it has the keyboard), so a user who pressed
``i`` by mistake is never stuck typing letters into it.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Input, Label

PLACEHOLDER = "input values, e.g. 1, 5 or [[1], [5]]; Enter computes, Esc leaves"


class InputBar(Vertical):
    """An Input and a line under it for what went wrong."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "leave", "Leave input")]

    class ValuesSubmitted(Message):
        """The user pressed Enter on some text."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class Left(Message):
        """The user pressed Escape in the box: the keyboard should go back to the layers."""

    error: reactive[str] = reactive("")

    def compose(self) -> ComposeResult:
        yield Input(placeholder=PLACEHOLDER, id="values")
        yield Label("", id="input-error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.ValuesSubmitted(event.value))

    def action_leave(self) -> None:
        self.post_message(self.Left())

    def watch_error(self, error: str) -> None:
        self.query_one("#input-error", Label).update(error)
        self.query_one("#values", Input).set_class(bool(error), "-invalid")
        self.set_class(bool(error), "-has-error")

    @property
    def input(self) -> Input:
        """The text box (the screen moves the keyboard to it at once with ``set_focus``)."""
        return self.query_one("#values", Input)
