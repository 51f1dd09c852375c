"""A table with one line per channel under a fixed header, drawn only where it is visible.

Textual's DataTable builds and measures every cell when rows are added: seconds for a
4096-channel layer. A subclass here says what its columns are, how wide, and what a row shows
(:meth:`ChannelLines.row_cells`); this class formats only the lines on screen, so any number of
channels opens, sorts and scrolls at once. It keeps the cursor, the sort order, the header's
sort mark, clicks (a header sorts, a row moves the cursor) and sideways scrolling by whole
columns with the channel column held in place. The parameters tab and the compare view share it.

Looks come from the stylesheet through the component classes ``channel-lines--row`` (every
line), ``--header``, ``--channel`` (the first column), ``--cursor`` and ``--stripe`` (every other
row). Each adds only what its rules set: a table whose stylesheet sets nothing draws in the
terminal's own colours, as the parameters tab always has.
"""

from __future__ import annotations

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


def sort_bindings(columns: int) -> list[BindingType]:
    """Keys 1 to ``columns`` (at most 9): sort by that column, again to reverse."""
    return [Binding(str(n), f"sort_column({n - 1})", f"Sort by column {n}", show=False)
            for n in range(1, min(columns, 9) + 1)]


class ChannelLines(ScrollView, can_focus=True):
    """Line 0 is the header; line ``1 + k`` shows the channel ``order[k]`` (k is its position).

    Subclasses set :attr:`COLUMNS` (and :attr:`RIGHT`), and implement :attr:`widths`,
    :meth:`row_cells` and :meth:`sorted_order`; after changing their data they call
    :meth:`set_rows`.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "channel-lines--row", "channel-lines--header", "channel-lines--channel", "channel-lines--cursor",
        "channel-lines--stripe"}

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "cursor(-20)", "Page up", show=False),
        Binding("pagedown", "cursor(20)", "Page down", show=False),
        Binding("home", "cursor(-1000000000)", "First", show=False),
        Binding("end", "cursor(1000000000)", "Last", show=False),
        Binding("left", "column(-1)", "Scroll a column left", show=False),
        Binding("right", "column(1)", "Scroll a column right", show=False),
    ]

    #: Headings, in order; the first (the channel) stays in place when the rest scrolls sideways.
    COLUMNS: ClassVar[tuple[str, ...]] = ()
    #: Right-aligned columns: numbers end under the end of their heading.
    RIGHT: ClassVar[frozenset[int]] = frozenset()

    class ChannelChosen(Message):
        """Enter on a row: show this channel."""

        def __init__(self, channel: int) -> None:
            super().__init__()
            self.channel = channel

    #: Position of the cursor's line among the channels (0 is the first line under the header).
    cursor: reactive[int] = reactive(0)

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        #: Channels in the order shown.
        self.order: list[int] = []
        #: (column, reversed) of the last sort, None while in channel order.
        self.sorted_by: tuple[int, bool] | None = None
        self._styles: dict[str, Style] = {}

    # -- what a subclass provides ----------------------------------------------------------------

    @property
    def widths(self) -> tuple[int, ...]:
        """Cells per column, one of them the space between columns."""
        raise NotImplementedError

    def row_cells(self, position: int) -> list[str]:
        """The texts shown at ``position``, one per column."""
        raise NotImplementedError

    def sorted_order(self, column: int, reverse: bool) -> list[int]:
        """The channels sorted by ``column``."""
        raise NotImplementedError

    def cell_style(self, column: int) -> Style:
        """An extra style for the cells of ``column`` under the header (none by default)."""
        return Style()

    def cursor_moved(self) -> None:
        """A key or a click moved the cursor (nothing by default; the compare view announces it)."""

    # -- rows, order and cursor -----------------------------------------------------------------

    @property
    def row_count(self) -> int:
        return len(self.order)

    def channel_at(self, position: int) -> int:
        """The channel shown at ``position``."""
        return self.order[position]

    def row_of(self, channel: int) -> int:
        """The position showing ``channel``."""
        return self.order.index(channel)

    def set_rows(self, count: int, cursor: int = 0) -> None:
        """New data of ``count`` channels, in channel order, the cursor at ``cursor`` (no message)."""
        self.order = list(range(count))
        self.set_reactive(ChannelLines.cursor, int(np.clip(cursor, 0, max(count - 1, 0))))
        self._resize_virtual()
        self.scroll_to(0, 0, animate=False)
        self._scroll_to_cursor()
        self.refresh()

    def sort_by(self, column: int, reverse: bool | None = None) -> None:
        """Sort by a column; without ``reverse``, sorting the same column again reverses it.
        The cursor keeps its position, as a spreadsheet's does: after sorting it is on the top
        value if it was on the first line."""
        if not self.order or not 0 <= column < len(self.COLUMNS):
            return
        if reverse is None:
            reverse = self.sorted_by == (column, False)
        self.order = self.sorted_order(column, reverse)
        self.sorted_by = (column, reverse)
        self.refresh()

    def show_channel(self, channel: int) -> None:
        """Put the cursor on a channel's line and scroll it into view (no message: the caller knows)."""
        if 0 <= channel < self.row_count:
            self.cursor = self.row_of(channel)
            self._scroll_to_cursor()  # also when the cursor was there already, but scrolled away

    def _move_cursor(self, position: int) -> None:
        """The user moved the cursor: clamp, move, and let the subclass tell whoever listens."""
        if self.order:
            self.cursor = int(np.clip(position, 0, self.row_count - 1))
            self.cursor_moved()

    def watch_cursor(self) -> None:
        self._scroll_to_cursor()
        self.refresh()

    def _scroll_to_cursor(self) -> None:
        """Scroll just enough for the cursor's line to show under the header."""
        height = max(1, self.scrollable_content_region.height - 1)
        if self.cursor < self.scroll_y:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= self.scroll_y + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False)

    # -- keys and mouse ----------------------------------------------------------------------------

    def action_cursor(self, step: int) -> None:
        self._move_cursor(self.cursor + step)

    def action_sort_column(self, column: int) -> None:
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
        if self.order:
            self.post_message(self.ChannelChosen(self.channel_at(self.cursor)))

    def on_click(self, event: events.Click) -> None:
        """A header sorts by its column; a line gets the cursor."""
        if event.y == 0:
            first = self.widths[0]
            x = event.x if event.x < first else event.x + int(self.scroll_x)
            column = int(np.searchsorted(np.cumsum(self.widths), x, side="right"))
            if column < len(self.COLUMNS):
                self.sort_by(column)
        else:
            self._move_cursor(int(self.scroll_y) + event.y - 1)

    def notify_style_update(self) -> None:
        self._styles.clear()  # focus, theme or stylesheet changed
        super().notify_style_update()

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def on_resize(self, _event: events.Resize) -> None:
        self._resize_virtual()

    def _resize_virtual(self) -> None:
        self.virtual_size = Size(sum(self.widths), self.row_count + 1)

    # -- drawing ---------------------------------------------------------------------------------

    def header_cells(self) -> list[str]:
        """The headings, the sorted one marked ▲ (ascending) or ▼."""
        labels = list(self.COLUMNS)
        if self.sorted_by is not None:
            column, reverse = self.sorted_by
            labels[column] += " ▼" if reverse else " ▲"
        return labels

    def _fit(self, column: int, text: str, width: int) -> str:
        """A cell's text in its width: cut to leave the space between columns, left or right aligned;
        the last column is not cut, nothing follows it."""
        if column in self.RIGHT:
            return " " + text[: width - 1].rjust(width - 1)
        if column == len(self.COLUMNS) - 1:
            return text.ljust(width)
        return text[: width - 1].ljust(width)

    def component_style(self, name: str) -> Style:
        """What the stylesheet sets for a component class, and nothing else. Unlike Textual's
        partial style, a translucent background (``$primary 30%``) is blended over this widget's
        instead of losing its transparency."""
        style = self._styles.get(name)
        if style is None:
            styles = self.get_component_styles(name)
            style = styles.partial_rich_style
            _, background = self.background_colors
            if styles.has_rule("background") and styles.background.a > 0:
                background += styles.background
                style += Style(bgcolor=background.rich_color)
            if styles.has_rule("color") and styles.color.a > 0:
                style += Style(color=(background + styles.color).rich_color)
            self._styles[name] = style
        return style

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        widths = self.widths
        style = self.component_style("channel-lines--row")
        if y == 0:
            cells = self.header_cells()
            style += self.component_style("channel-lines--header")
            cell_styles = [Style()] * len(cells)
        else:
            position = scroll_y + y - 1
            if position >= self.row_count:
                return Strip.blank(width, Style(bgcolor=style.bgcolor))
            cells = self.row_cells(position)
            if position == self.cursor:
                style += self.component_style("channel-lines--cursor")
            elif position % 2:
                style += self.component_style("channel-lines--stripe")
            cell_styles = [self.cell_style(column) for column in range(len(cells))]
        fixed = Segment(self._fit(0, cells[0], widths[0]), style + self.component_style("channel-lines--channel"))
        rest = Strip([Segment(self._fit(column, cells[column], widths[column]), style + cell_styles[column])
                      for column in range(1, len(cells))])
        room = max(0, width - widths[0])
        # Past the last column only the line's background continues (an underline or reverse would not).
        return Strip([fixed, *rest.crop(scroll_x, scroll_x + room)]).extend_cell_length(
            width, Style(bgcolor=style.bgcolor))
