"""Per-channel parameters as a virtual table: only the visible lines are ever drawn.

Textual's DataTable measures every cell when rows are added, which took over a second for a
4096-channel layer; this widget formats a line only when it is on screen, so any number of
channels opens and scrolls at once. Click a header, or press 1-9, to sort by a column
(again to reverse); left/right scroll by whole columns while the channel column stays in place;
Enter chooses the channel under the cursor. Below 100 columns the numbers get 5 significant
digits instead of 8, so more columns fit.

Columns are taken by name from :func:`bntui.core.report.parameter_rows`, so a column the
core adds or reorders never shifts what a heading here says.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from bntui.core.diagnostics import channel_codes, diagnose
from bntui.core.model import BNLayer
from bntui.core.numbers import fmt
from bntui.core.report import parameter_rows

#: (name in parameter_rows, heading) of the numeric columns shown, in order.
NUMERIC = (("gamma", "gamma"), ("beta", "beta"), ("moving_mean", "moving mean"), ("moving_variance", "moving var"),
           ("var_plus_eps", "var + eps"), ("scale", "scale s"), ("offset", "offset"))
COLUMNS = ("channel", *(heading for _name, heading in NUMERIC), "warnings")
CHANNEL_WIDTH = 8
WARNINGS_WIDTH = 40
#: Below this width (in cells) numbers get NARROW_DIGITS significant digits.
NARROW = 100
WIDE_DIGITS, NARROW_DIGITS = 8, 5

Cell = float | str | None


def _number(text: object) -> float | None:
    return float(text) if text not in ("", None, "-") else None  # type: ignore[arg-type]


def _sort_key(value: Cell) -> tuple[int, float | str]:
    """Numbers in numeric order, NaN and blanks last, words alphabetically."""
    if isinstance(value, float):
        return (1, 0.0) if math.isnan(value) else (0, value)
    return (2, value) if value else (3, "")


class ParameterTable(ScrollView, can_focus=True):
    """One line per channel; ``order`` holds the channels in the displayed order."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"parameter-table--warning"}

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "cursor(-20)", "Page up", show=False),
        Binding("pagedown", "cursor(20)", "Page down", show=False),
        Binding("home", "cursor(-1000000000)", "First", show=False),
        Binding("end", "cursor(1000000000)", "Last", show=False),
        Binding("left", "column(-1)", "Scroll a column left", show=False),
        Binding("right", "column(1)", "Scroll a column right", show=False),
        Binding("enter", "choose", "Go to channel"),
        *[Binding(str(n), f"sort_column({n - 1})", f"Sort by column {n}", show=False) for n in range(1, 10)],
    ]

    class ChannelChosen(Message):
        """Enter (or a click) on a row: show this channel."""

        def __init__(self, channel: int) -> None:
            super().__init__()
            self.channel = channel

    bn_layer: reactive[BNLayer | None] = reactive(None, always_update=True)
    cursor: reactive[int] = reactive(0)

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._rows: list[list[Cell]] = []
        self.order: list[int] = []
        self.sorted_by: tuple[int, bool] | None = None

    @property
    def row_count(self) -> int:
        return len(self.order)

    @property
    def digits(self) -> int:
        """Significant digits shown at the current width."""
        return NARROW_DIGITS if self.size.width < NARROW else WIDE_DIGITS

    @property
    def widths(self) -> tuple[int, ...]:
        number = self.digits + 7  # sign, point, "e-05" and a space between columns
        return (CHANNEL_WIDTH, *(number,) * len(NUMERIC), WARNINGS_WIDTH)

    def watch_bn_layer(self, layer: BNLayer | None) -> None:
        self._rows = []
        if layer is not None:
            header, *body = parameter_rows(layer)
            positions = [header.index(name) for name, _heading in NUMERIC]
            codes = channel_codes(layer, diagnose(layer))
            for row, warnings in zip(body, codes):
                self._rows.append([float(row[0]), *(_number(row[p]) for p in positions), " ".join(warnings)])
        self.order = list(range(len(self._rows)))
        self.sorted_by = None
        self.cursor = 0
        self._resize_virtual()
        self.scroll_to(0, 0, animate=False)
        self.refresh()

    def _resize_virtual(self) -> None:
        self.virtual_size = Size(sum(self.widths), len(self._rows) + 1)

    def on_resize(self, _event: events.Resize) -> None:
        self._resize_virtual()

    def row_cells(self, position: int) -> list[str]:
        """The cells shown at ``position`` (0 is the first row under the header), as text."""
        row = self._rows[self.order[position]]
        return [str(int(row[0])), *(fmt(value, self.digits) for value in row[1:-1]), str(row[-1])]  # type: ignore[arg-type]

    def channel_at(self, position: int) -> int:
        return self.order[position]

    def sort_by(self, column: int, reverse: bool | None = None) -> None:
        """Sort by a column index; without ``reverse``, a second sort by the same column reverses."""
        if reverse is None:
            reverse = self.sorted_by == (column, False)
        keys = [_sort_key(row[column]) for row in self._rows]
        self.order = sorted(range(len(self._rows)), key=lambda index: keys[index], reverse=reverse)
        self.sorted_by = (column, reverse)
        self.refresh()

    def show_channel(self, channel: int) -> None:
        """Put the cursor on a channel's row and scroll it into view."""
        if 0 <= channel < len(self._rows):
            self.cursor = self.order.index(channel)

    def watch_cursor(self, cursor: int) -> None:
        height = max(1, self.scrollable_content_region.height - 1)
        if cursor < self.scroll_y:
            self.scroll_to(y=cursor, animate=False)
        elif cursor >= self.scroll_y + height:
            self.scroll_to(y=cursor - height + 1, animate=False)
        self.refresh()

    def action_cursor(self, step: int) -> None:
        if self._rows:
            self.cursor = int(np.clip(self.cursor + step, 0, len(self._rows) - 1))

    def action_sort_column(self, column: int) -> None:
        if column < len(COLUMNS):
            self.sort_by(column)

    def action_column(self, step: int) -> None:
        """Scroll by whole columns, so no number is shown cut in half."""
        edges = [0, *np.cumsum(self.widths[1:]).tolist()]
        limit = max(0, self.virtual_size.width - self.size.width)
        current = int(self.scroll_x)
        if step > 0:
            target = next((edge for edge in edges if edge > current), limit)
        else:
            target = next((edge for edge in reversed(edges) if edge < current), 0)
        self.scroll_to(x=min(target, limit), animate=False)

    def action_choose(self) -> None:
        if self._rows:
            self.post_message(self.ChannelChosen(self.channel_at(self.cursor)))

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:
            x = event.x if event.x < CHANNEL_WIDTH else event.x + int(self.scroll_x)
            column = int(np.searchsorted(np.cumsum(self.widths), x, side="right"))
            if column < len(COLUMNS):
                self.sort_by(column)
        elif self._rows:
            self.cursor = int(np.clip(int(self.scroll_y) + event.y - 1, 0, len(self._rows) - 1))

    def _cells(self, cells: list[str]) -> tuple[str, str]:
        """The fixed channel cell and the scrolling rest of a line."""
        widths = self.widths
        fixed = cells[0][: widths[0] - 1].ljust(widths[0])
        rest = "".join(cell[: width - 1].ljust(width) for cell, width in zip(cells[1:-1], widths[1:-1]))
        return fixed, rest

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        room = max(0, width - CHANNEL_WIDTH)
        if y == 0:
            labels = list(COLUMNS)
            if self.sorted_by is not None:
                column, reverse = self.sorted_by
                labels[column] += " ▼" if reverse else " ▲"
            fixed, rest = self._cells(labels)
            header = Style(bold=True, underline=True)
            rest += labels[-1].ljust(WARNINGS_WIDTH)
            segments = [Segment(fixed, header), *Strip([Segment(rest, header)]).crop(scroll_x, scroll_x + room)]
            return Strip(segments).extend_cell_length(width)
        position = scroll_y + y - 1
        if position >= len(self.order):
            return Strip.blank(width)
        cells = self.row_cells(position)
        base = Style(reverse=True) if position == self.cursor and self.has_focus else (
            Style(bold=True) if position == self.cursor else Style())
        warning = self.get_component_rich_style("parameter-table--warning", partial=True)
        fixed, rest = self._cells(cells)
        scrolled = Strip([Segment(rest, base), Segment(cells[-1].ljust(WARNINGS_WIDTH), base + warning)])
        return Strip([Segment(fixed, base + Style(bold=True)), *scrolled.crop(scroll_x, scroll_x + room)]
                     ).extend_cell_length(width)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()
