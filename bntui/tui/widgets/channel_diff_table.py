"""One parameter of a matched pair, per channel: the first file's value (A), the second's (B), and their
absolute and relative difference as :mod:`bntui.core.analysis.compare` measured them.

Values keep 8 significant digits, enough to tell a float32 rounding from a real change. Sorting
(keys 1-5 or a click on a header, again to reverse) puts NaN last, so sorting by ``|Δ|`` brings
the channels that moved most to the top.

It is a :class:`~bntui.tui.widgets.channel_lines.ChannelLines`: the values stay in numpy arrays
and a line is formatted only while it is on screen. Textual's DataTable, used before, built and
measured every cell, which made each switch of parameter cost seconds on 4096 channels.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from textual.binding import Binding, BindingType
from textual.message import Message

from bntui.core.analysis.compare import LayerPair
from bntui.core.model import BNLayer
from bntui.core.numbers import fmt
from bntui.tui.widgets.channel_lines import ChannelLines, sort_bindings

#: The compared parameters: (name in the core, heading).
PARAMETERS = (("gamma", "gamma"), ("beta", "beta"), ("moving_mean", "moving mean"),
              ("moving_variance", "moving var"))
COLUMNS = ("channel", "A", "B", "|Δ|", "rel Δ")
#: Cells per column, each with a space between columns: the heading "channel", then numbers of
#: 8 significant digits ("-1.2345678e-05").
WIDTHS = (8, 15, 15, 15, 15)


def parameter_values(pair: LayerPair, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Both files' values of a parameter as the formula uses them (gamma 1 and beta 0 when off),
    as the comparison itself took them."""
    attribute = {"gamma": "gamma_or_one", "beta": "beta_or_zero"}.get(name, name)

    def values(layer: BNLayer) -> np.ndarray:
        return np.asarray(getattr(layer, attribute), dtype=np.float64)

    return values(pair.first), values(pair.second)


class ChannelDiffTable(ChannelLines):
    """Call :meth:`show` with a pair and a parameter name; ``order`` is the shown channel order."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "choose", "Steps of channel"),
        *sort_bindings(len(COLUMNS)),
    ]

    COLUMNS = COLUMNS
    RIGHT = frozenset(range(1, len(COLUMNS)))

    class ChannelHighlighted(Message):
        """The cursor moved to a channel's row (a key or a click)."""

        def __init__(self, channel: int) -> None:
            super().__init__()
            self.channel = channel

    class ChannelChosen(ChannelLines.ChannelChosen):
        """Enter on a row: show this channel's steps."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        #: Per column: the channel numbers, A, B, |Δ| and rel Δ (empty without a comparable pair).
        self._columns: list[np.ndarray] = []

    @property
    def widths(self) -> tuple[int, ...]:
        return WIDTHS

    def show(self, pair: LayerPair | None, name: str) -> None:
        """Show ``name`` of ``pair`` (nothing for None or different channel counts), sorted as it
        was: sorting by |Δ| and moving to the next parameter or pair keeps the order. The cursor
        keeps its line; the caller puts it on the channel it shows (:meth:`show_channel`)."""
        sorted_by = self.sorted_by
        self._columns = []
        if pair is not None and pair.parameters is not None:
            first, second = parameter_values(pair, name)
            diff = pair.parameters[name]
            self._columns = [np.arange(first.size, dtype=np.float64), first, second,
                             np.asarray(diff.abs_diff, dtype=np.float64), np.asarray(diff.rel_diff, dtype=np.float64)]
        self.set_rows(len(self._columns[0]) if self._columns else 0, self.cursor)
        if sorted_by is not None and self._columns:
            self.sort_by(*sorted_by)
        # Without channels the order is remembered for the next pair that has some.

    def row_cells(self, position: int) -> list[str]:
        channel = self.order[position]
        return [str(channel), *(fmt(column[channel]) for column in self._columns[1:])]

    def sorted_order(self, column: int, reverse: bool) -> list[int]:
        """Channels by value, NaN last either way; equal values in channel order."""
        values = self._columns[column]
        nan = np.isnan(values)
        keys = np.where(nan, 0.0, -values if reverse else values)
        return list(np.lexsort((keys, nan)).tolist())

    def cursor_moved(self) -> None:
        self.post_message(self.ChannelHighlighted(self.channel_at(self.cursor)))
