"""Where the user pastes the numbers they got (or expected) for the Why panel.

A Select says which ("I got" or "I expected": the explainer words its answer differently;
ctrl+t switches it from the box), the Input holds the numbers as printed; Enter explains
them, Escape leaves the box. Nothing
typed is evaluated: the panel hands the text to the core's tokenizer.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, Select

PLACEHOLDERS = {"got": "the numbers you got, as printed, e.g. 0.795, 4.175; Enter explains, Esc leaves",
                "expected": "the numbers you expected, e.g. -1, 1; Enter explains, Esc leaves"}
KINDS: tuple[tuple[str, str], ...] = (("I got", "got"), ("I expected", "expected"))


class GivenValuesBar(Horizontal):
    """A got/expected choice and a box for the values."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "leave", "Leave box"),
                                             Binding("ctrl+t", "toggle_kind", "Got/expected")]

    class ValuesSubmitted(Message):
        """Enter in the box: explain ``text`` as the values the user ``kind`` ("got"/"expected")."""

        def __init__(self, text: str, kind: str) -> None:
            super().__init__()
            self.text, self.kind = text, kind

    class Left(Message):
        """Escape in the box: the keyboard should go to the explanations."""

    def compose(self) -> ComposeResult:
        yield Select(KINDS, value="got", allow_blank=False, id="why-kind")
        yield Input(placeholder=PLACEHOLDERS["got"], id="why-values")

    @property
    def input(self) -> Input:
        return self.query_one("#why-values", Input)

    @property
    def kind(self) -> str:
        return str(self.query_one("#why-kind", Select).value)

    @kind.setter
    def kind(self, kind: str) -> None:
        self.query_one("#why-kind", Select).value = kind

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        self.input.placeholder = PLACEHOLDERS[self.kind]

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.ValuesSubmitted(event.value, self.kind))

    def action_toggle_kind(self) -> None:
        self.kind = "expected" if self.kind == "got" else "got"

    def action_leave(self) -> None:
        self.post_message(self.Left())
