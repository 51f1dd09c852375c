"""One parameter of a matched pair, per channel: the first file's value (A), the second's (B), and their
absolute and relative difference as :mod:`bntui.core.analysis.compare` measured them.

Values keep 8 significant digits, enough to tell a float32 rounding from a real change. Sorting
(keys 1-5 or a click on a header, again to reverse) puts NaN and blanks last, so sorting by
``|Δ|`` brings the channels that moved most to the top.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.coordinate import Coordinate
from textual.message import Message
from textual.widgets import DataTable

from bntui.core.analysis.compare import LayerPair
from bntui.core.model import BNLayer
from bntui.core.numbers import fmt

#: The compared parameters: (name in the core, heading).
PARAMETERS = (("gamma", "gamma"), ("beta", "beta"), ("moving_mean", "moving mean"),
              ("moving_variance", "moving var"))
COLUMNS = ("channel", "A", "B", "|Δ|", "rel Δ")
#: Cells per column: a channel number, then numbers of 8 significant digits ("-1.2345678e-05").
WIDTHS = (7, 14, 14, 14, 14)


def parameter_values(pair: LayerPair, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Both files' values of a parameter as the formula uses them (gamma 1 and beta 0 when off),
    as the comparison itself took them."""
    attribute = {"gamma": "gamma_or_one", "beta": "beta_or_zero"}.get(name, name)

    def values(layer: BNLayer) -> np.ndarray:
        return np.asarray(getattr(layer, attribute), dtype=np.float64)

    return values(pair.first), values(pair.second)


def _heading(index: int, text: str) -> Text:
    """Headings of number columns are right-aligned, over the numbers' last digits."""
    return Text(text, justify="right" if index else "left")


def _sort_key(value: float) -> tuple[int, float]:
    return (1, 0.0) if math.isnan(value) else (0, value)


class ChannelDiffTable(DataTable[Text]):
    """Call :meth:`show` with a pair and a parameter name; ``order`` is the shown channel order."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "choose", "Steps of channel"),
        *[Binding(str(n), f"sort_column({n - 1})", f"Sort by column {n}", show=False)
          for n in range(1, len(COLUMNS) + 1)],
    ]

    class ChannelHighlighted(Message):
        """The cursor moved to a channel's row."""

        def __init__(self, channel: int) -> None:
            super().__init__()
            self.channel = channel

    class ChannelChosen(Message):
        """Enter on a row: show this channel's steps."""

        def __init__(self, channel: int) -> None:
            super().__init__()
            self.channel = channel

    def __init__(self, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)  # type: ignore[arg-type]
        self._columns: list[np.ndarray] = []
        self.sorted_by: tuple[int, bool] | None = None

    def show(self, pair: LayerPair | None, name: str) -> None:
        """Fill the table with ``name`` of ``pair`` (empty for None or different channel counts),
        sorted as it was: sorting by |Δ| and moving to the next parameter or pair keeps the order."""
        sorted_by, self.sorted_by = self.sorted_by, None
        self.clear(columns=True)
        self._columns = []
        # Fixed widths: DataTable would otherwise measure every cell (seconds for 4096 channels).
        for index, (heading, width) in enumerate(zip(COLUMNS, WIDTHS)):
            self.add_column(_heading(index, heading), key=str(index), width=width)
        if pair is None or pair.parameters is None:
            self.sorted_by = sorted_by  # remembered for the next pair that has channels to sort
            return
        first, second = parameter_values(pair, name)
        diff = pair.parameters[name]
        channels = np.arange(first.size, dtype=np.float64)
        self._columns = [channels, first, second, diff.abs_diff, diff.rel_diff]
        for channel in range(first.size):  # keyed by channel: found again at once after sorting
            self.add_row(Text(str(channel), style="bold"),
                         *(Text(fmt(column[channel]), justify="right") for column in self._columns[1:]),
                         key=str(channel))
        if sorted_by is not None:
            self.sort_by(*sorted_by)

    def channel_at(self, row: int) -> int:
        """The channel shown in ``row``."""
        return int(str(self.coordinate_to_cell_key(Coordinate(row, 0)).row_key.value))

    def row_of(self, channel: int) -> int:
        """The row showing ``channel``."""
        return self.get_row_index(str(channel))

    @property
    def order(self) -> list[int]:
        """Channels in the order shown."""
        return [self.channel_at(row) for row in range(self.row_count)]

    def sort_by(self, column: int, reverse: bool | None = None) -> None:
        """Sort by a column; without ``reverse``, sorting the same column again reverses.
        NaN stays last either way."""
        if not self._columns or not 0 <= column < len(COLUMNS):
            return
        if reverse is None:
            reverse = self.sorted_by == (column, False)
        values = self._columns[column]
        sign = -1.0 if reverse else 1.0

        def key(cell: Text) -> tuple[int, float]:
            nan, value = _sort_key(float(values[int(str(cell))]))
            return nan, sign * value

        self.sort("0", key=key)
        self.sorted_by = (column, reverse)
        for index, (column_key, heading) in enumerate(zip(self.columns, COLUMNS)):
            mark = (" ▼" if reverse else " ▲") if index == column else ""
            self.columns[column_key].label = _heading(index, heading + mark)
        self.refresh()

    def action_sort_column(self, column: int) -> None:
        self.sort_by(column)

    def action_choose(self) -> None:
        if self.row_count:
            self.post_message(self.ChannelChosen(self.channel_at(self.cursor_row)))

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.sort_by(event.column_index)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        if 0 <= event.cursor_row < self.row_count:
            self.post_message(self.ChannelHighlighted(self.channel_at(event.cursor_row)))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
