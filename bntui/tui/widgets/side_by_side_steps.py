"""The same input through both layers of a pair, each file's steps in its own column, so a
changed mean or epsilon shows as the row where the two columns part.

Each side is the project's :class:`StepTable` (the computation comes from
:func:`bntui.core.steps.compute`); a side whose layer refuses the input (another channel
count) or does not exist (an unmatched layer) says why in its status line instead.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Label, Static

from bntui.core.steps import Computation
from bntui.tui.widgets.step_table import StepTable

SIDES = ("first", "second")


class SideBySideSteps(Horizontal):
    """Two step columns; set each side with :meth:`show_side`, and :meth:`set_view` for both."""

    def compose(self) -> ComposeResult:
        for side in SIDES:
            with Vertical(classes="steps-side", id=f"steps-{side}"):
                yield Label("", classes="steps-side-title", id=f"steps-title-{side}")
                yield Static("", classes="steps-side-status", id=f"steps-status-{side}")
                with VerticalScroll(classes="steps-side-scroll", id=f"steps-scroll-{side}"):
                    yield StepTable(id=f"step-table-{side}")

    def table(self, side: str) -> StepTable:
        return self.query_one(f"#step-table-{side}", StepTable)

    def show_side(self, side: str, title: str, computation: Computation | None, status: str = "") -> None:
        """One column: its title (file and layer), its steps, or a line saying why there are none."""
        self.query_one(f"#steps-title-{side}", Label).update(title)
        status_line = self.query_one(f"#steps-status-{side}", Static)
        status_line.update(status)
        status_line.display = bool(status)
        self.table(side).computation = computation

    def set_view(self, channel: int, mode: str) -> None:
        """The channel and the mode ("inference", "training" or "both") of both columns."""
        for side in SIDES:
            table = self.table(side)
            table.channel, table.mode = channel, mode
