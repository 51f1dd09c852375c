"""Per-channel parameters in a sortable table; DataTable renders only visible rows, so
thousands of channels scroll smoothly."""

from __future__ import annotations

import math

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import DataTable

from bntui.core.diagnostics import channel_codes, diagnose
from bntui.core.model import BNLayer
from bntui.core.numbers import fmt
from bntui.core.report import parameter_rows

COLUMNS = ("channel", "gamma", "beta", "moving mean", "moving var", "var + eps", "scale s", "offset", "warnings")


def _sort_key(cell: object) -> tuple[int, float | str]:
    """Numbers in numeric order, NaN and blanks last, words alphabetically."""
    text = str(cell)
    try:
        number = float(text)
    except ValueError:
        return (2, text) if text not in ("", "-") else (3, "")
    return (1, 0.0) if math.isnan(number) else (0, number)


class ParameterTable(DataTable[object]):
    """Click a column header to sort by it; click again to reverse."""

    bn_layer: reactive[BNLayer | None] = reactive(None, always_update=True)

    def __init__(self, **kwargs: object) -> None:
        super().__init__(zebra_stripes=True, cursor_type="row", **kwargs)  # type: ignore[arg-type]
        self._sorted_by: tuple[str, bool] | None = None

    def on_mount(self) -> None:
        for name in COLUMNS:
            self.add_column(name, key=name)

    def watch_bn_layer(self, layer: BNLayer | None) -> None:
        self.clear()
        self._sorted_by = None
        if layer is None:
            return
        codes = channel_codes(layer, diagnose(layer))
        for row, warnings in zip(parameter_rows(layer)[1:], codes):
            cells: list[object] = [str(row[0])]
            cells += [fmt(float(value)) if value != "" else "-" for value in row[1:]]
            cells.append(Text(" ".join(warnings), style="yellow") if warnings else "")
            self.add_row(*cells, key=str(row[0]))

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        column = str(event.column_key.value)
        reverse = self._sorted_by == (column, False)
        self.sort(column, key=_sort_key, reverse=reverse)
        self._sorted_by = (column, reverse)
