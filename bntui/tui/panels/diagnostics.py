"""The Diagnostics tab: every finding in the model, grouped by kind, each group saying what it
usually means; Enter on a layer line jumps to that layer's Steps at the channel concerned."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widget import Widget

from bntui.tui.panels.panel import Panel
from bntui.tui.state import Selection
from bntui.tui.widgets.diagnostics_list import DiagnosticsList


class DiagnosticsPanel(Panel):
    """Follows the selected model; the list reports a chosen finding to the screen."""

    TAB_TITLE = "Diagnostics"
    TAB_ID = "diagnostics"
    TAB_KEY = "d"

    def compose(self) -> ComposeResult:
        yield DiagnosticsList(id="diagnostic-list")

    def focus_target(self) -> Widget:
        return self.query_one(DiagnosticsList)

    def watch_selection(self, old: Selection, new: Selection) -> None:
        if new.model is not old.model:
            self.query_one(DiagnosticsList).model = new.model
