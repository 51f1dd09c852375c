"""A clear screen for a file that cannot be opened: the message, and how to leave.

Leaving it ends the app with exit code 1, as the CLI does for a file it cannot read, so a
script that starts ``bntui MODEL`` can tell that the file did not open.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Label, Static

EXIT_CODE = 1


class ErrorScreen(Screen[None]):
    """Shows one message; q or Escape quits with exit code 1."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("q,escape", "quit", "Quit")]

    def __init__(self, title: str, message: str) -> None:
        super().__init__()
        self.title_text = title
        self.message = message

    def compose(self) -> ComposeResult:
        with Vertical(id="error-box"):
            yield Label(self.title_text, id="error-title")
            yield Static(self.message, id="error-message")
            yield Label("Press q to quit.", id="error-hint")
        yield Footer()

    def action_quit(self) -> None:
        self.app.exit(EXIT_CODE, return_code=EXIT_CODE)
