"""A clear screen for a file that cannot be opened: the message, and how to leave."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Label, Static


class ErrorScreen(Screen[None]):
    """Shows one message; q quits."""

    BINDINGS = [Binding("q,escape", "app.quit", "Quit")]

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
