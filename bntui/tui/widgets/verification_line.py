"""What TensorFlow says about the numbers on screen, and where the input came from."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static


class VerificationLine(Static):
    """A status (``checking``), a verdict, or a reason TensorFlow is unavailable."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"verification--agrees", "verification--disagrees", "verification--pending"}

    status: reactive[str] = reactive("", layout=True)
    agrees: reactive[bool | None] = reactive(None)
    capture_note: reactive[str] = reactive("", layout=True)

    def render(self) -> Text:
        text = Text()
        if self.capture_note:
            text.append(self.capture_note + "\n", style="italic")
        name = {True: "agrees", False: "disagrees", None: "pending"}[self.agrees]
        text.append(self.status, style=self.get_component_rich_style(f"verification--{name}"))
        return text
