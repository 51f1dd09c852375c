"""Per-channel parameters as a virtual table: only the visible lines are ever drawn.

Textual's DataTable measures every cell when rows are added, which took over a second for a
4096-channel layer; this widget, a :class:`~bntui.tui.widgets.channel_lines.ChannelLines`,
formats a line only when it is on screen, so any number of channels opens and scrolls at once.
Click a header, or press 1-9, to sort by a column (again to reverse); left/right scroll by whole
columns while the channel column stays in place; Enter chooses the channel under the cursor.
Below 100 columns the numbers get 5 significant digits instead of 8, so more columns fit.

Columns are taken by name from :func:`bntui.core.report.parameter_rows`, so a column the
core adds or reorders never shifts what a heading here says.
"""

from __future__ import annotations

import math
from typing import ClassVar

from rich.style import Style
from textual.binding import Binding, BindingType
from textual.reactive import reactive

from bntui.core.diagnostics import channel_codes, diagnose
from bntui.core.model import BNLayer
from bntui.core.numbers import fmt
from bntui.core.report import parameter_rows
from bntui.tui.widgets.channel_lines import ChannelLines, sort_bindings

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


class ParameterTable(ChannelLines):
    """One line per channel; ``order`` holds the channels in the displayed order."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"parameter-table--warning"}

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "choose", "Go to channel"),
        *sort_bindings(len(COLUMNS)),
    ]

    COLUMNS = COLUMNS

    class ChannelChosen(ChannelLines.ChannelChosen):
        """Enter on a row: show this channel."""

    bn_layer: reactive[BNLayer | None] = reactive(None, always_update=True)

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._rows: list[list[Cell]] = []

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
        self.sorted_by = None
        self.set_rows(len(self._rows))

    def row_cells(self, position: int) -> list[str]:
        """The cells shown at ``position`` (0 is the first row under the header), as text."""
        row = self._rows[self.order[position]]
        return [str(int(row[0])), *(fmt(value, self.digits) for value in row[1:-1]), str(row[-1])]  # type: ignore[arg-type]

    def sorted_order(self, column: int, reverse: bool) -> list[int]:
        """Numbers, then NaN, words and blanks; reversed, all of it reversed (NaN first), as this
        tab always has (the compare view keeps NaN last both ways)."""
        keys = [_sort_key(row[column]) for row in self._rows]
        return sorted(range(len(self._rows)), key=lambda index: keys[index], reverse=reverse)

    def cell_style(self, column: int) -> Style:
        """Warnings in the warning colour."""
        if column == len(COLUMNS) - 1:
            return self.get_component_rich_style("parameter-table--warning", partial=True)
        return Style()
