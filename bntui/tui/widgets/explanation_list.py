"""The ranked explanations of the Why panel, one row each, best first.

A row says the code, whether it reproduces the values given, the largest difference (with
the values NaN or infinite on one side only counted after it, e.g. ``0.0012 +1 NaN``), and the
title; the panel shows the highlighted row's explanation and computation under the list.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.widgets import DataTable

from bntui.core.analysis.explain import ExplainResult

COLUMNS = ("#", "reproduces", "max |diff|", "code", "what it is")


class ExplanationList(DataTable[Text | str]):
    """Set :attr:`result`-like content with :meth:`show`; the cursor row is the one detailed."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"explanation-list--yes", "explanation-list--no"}

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self.add_columns(*COLUMNS)

    def show(self, result: ExplainResult | None) -> None:
        """One row per explanation (none for ``None``); the cursor goes back to the best."""
        self.clear()
        if result is None:
            return
        yes = self.get_component_rich_style("explanation-list--yes")
        no = self.get_component_rich_style("explanation-list--no")
        for rank, entry in enumerate(result.explanations, start=1):
            verdict = Text("yes", style=yes) if entry.reproduces else Text("no", style=no)
            self.add_row(str(rank), verdict, entry.difference.short(4), entry.code, entry.title, key=str(rank - 1))
        self.move_cursor(row=0)
