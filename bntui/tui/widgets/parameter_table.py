"""Per-channel parameters as a virtual table: only the visible lines are ever drawn.

Textual's DataTable measures every cell when rows are added, which took over a second for a
4096-channel layer; this widget formats a line only when it is on screen, so any number of
channels opens and scrolls at once. Click a header, or press 1-9, to sort by a column
(again to reverse).
"""

from __future__ import annotations

import math

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from bntui.core.diagnostics import channel_codes, diagnose
from bntui.core.model import BNLayer
from bntui.core.report import parameter_rows

COLUMNS = ("channel", "gamma", "beta", "moving mean", "moving var", "var + eps", "scale s", "offset", "warnings")
WIDTHS = (8, 15, 15, 15, 15, 15, 15, 15, 40)


def _sort_value(text: str) -> tuple[int, float | str]:
    """Numbers in numeric order, NaN and blanks last, words alphabetically."""
    try:
        number = float(text)
    except ValueError:
        return (2, text) if text not in ("", "-") else (3, "")
    return (1, 0.0) if math.isnan(number) else (0, number)


class ParameterTable(ScrollView, can_focus=True):
    """One line per channel; ``order`` holds the channels in the displayed order."""

    COMPONENT_CLASSES = {"parameter-table--warning"}

    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "cursor(-20)", "Page up", show=False),
        Binding("pagedown", "cursor(20)", "Page down", show=False),
        Binding("home", "cursor(-1000000000)", "First", show=False),
        Binding("end", "cursor(1000000000)", "Last", show=False),
        Binding("left", "scroll_left", "Scroll left", show=False),
        Binding("right", "scroll_right", "Scroll right", show=False),
        *[Binding(str(n), f"sort_column({n - 1})", f"Sort by column {n}", show=False) for n in range(1, 10)],
    ]

    bn_layer: reactive[BNLayer | None] = reactive(None, always_update=True)
    cursor: reactive[int] = reactive(0)

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._cells: list[list[str]] = []
        self.order: list[int] = []
        self.sorted_by: tuple[int, bool] | None = None

    @property
    def row_count(self) -> int:
        return len(self.order)

    def watch_bn_layer(self, layer: BNLayer | None) -> None:
        self._cells = []
        if layer is not None:
            codes = channel_codes(layer, diagnose(layer))
            for row, warnings in zip(parameter_rows(layer, readable=True)[1:], codes):
                self._cells.append([str(row[0]), *row[1:], " ".join(warnings)])
        self.order = list(range(len(self._cells)))
        self.sorted_by = None
        self.cursor = 0
        self.virtual_size = Size(sum(WIDTHS), len(self._cells) + 1)
        self.scroll_to(0, 0, animate=False)
        self.refresh()

    def row_cells(self, position: int) -> list[str]:
        """The cells shown at ``position`` (0 is the first row under the header)."""
        return self._cells[self.order[position]]

    def sort_by(self, column: int, reverse: bool | None = None) -> None:
        """Sort by a column index; without ``reverse``, a second sort by the same column reverses."""
        if reverse is None:
            reverse = self.sorted_by == (column, False)
        values = [_sort_value(cells[column]) for cells in self._cells]
        self.order = sorted(range(len(self._cells)), key=lambda index: values[index], reverse=reverse)
        self.sorted_by = (column, reverse)
        self.refresh()

    def show_channel(self, channel: int) -> None:
        """Put the cursor on a channel's row and scroll it into view."""
        if 0 <= channel < len(self._cells):
            self.cursor = self.order.index(channel)

    def watch_cursor(self, cursor: int) -> None:
        height = max(1, self.size.height - 1)
        if cursor < self.scroll_y:
            self.scroll_to(y=cursor, animate=False)
        elif cursor >= self.scroll_y + height:
            self.scroll_to(y=cursor - height + 1, animate=False)
        self.refresh()

    def action_cursor(self, step: int) -> None:
        if self._cells:
            self.cursor = int(np.clip(self.cursor + step, 0, len(self._cells) - 1))

    def action_sort_column(self, column: int) -> None:
        if column < len(COLUMNS):
            self.sort_by(column)

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:
            x = event.x + int(self.scroll_x)
            edges = np.cumsum(WIDTHS)
            column = int(np.searchsorted(edges, x, side="right"))
            if column < len(COLUMNS):
                self.sort_by(column)
        elif self._cells:
            self.cursor = int(np.clip(int(self.scroll_y) + event.y - 1, 0, len(self._cells) - 1))

    def _line(self, cells: list[str]) -> str:
        return "".join(cell[: width - 1].ljust(width) for cell, width in zip(cells, WIDTHS))

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        if y == 0:
            labels = list(COLUMNS)
            if self.sorted_by is not None:
                column, reverse = self.sorted_by
                labels[column] += " ▼" if reverse else " ▲"
            strip = Strip([Segment(self._line(labels), Style(bold=True, underline=True))])
        else:
            position = scroll_y + y - 1
            if position >= len(self.order):
                return Strip.blank(width)
            cells = self.row_cells(position)
            base = Style(reverse=True) if position == self.cursor and self.has_focus else (
                Style(bold=True) if position == self.cursor else Style())
            head = self._line(cells[:-1])
            warning = self.get_component_rich_style("parameter-table--warning", partial=True)
            segments = [Segment(head, base), Segment(cells[-1].ljust(WIDTHS[-1]), base + warning)]
            strip = Strip(segments)
        return strip.crop(scroll_x, scroll_x + width).extend_cell_length(width)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()
