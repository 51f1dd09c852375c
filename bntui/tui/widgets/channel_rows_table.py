"""Per-channel numbers ranked worst first (the Port and Fold tabs), capped so that a layer
of thousands of channels still opens at once: the channels that matter are at the top."""

from __future__ import annotations

from collections.abc import Sequence

from textual.widgets import DataTable

#: Rows shown at most; the caption under the table says how many were left out.
MAX_ROWS = 256


class ChannelRowsTable(DataTable[str]):
    """Call :meth:`show` with the column headings and every channel's cells, in display order."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True

    def show(self, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> int:
        """Replace the table; returns how many rows were left out."""
        self.clear(columns=True)
        if not rows:
            return 0
        self.add_columns(*columns)
        for row in rows[:MAX_ROWS]:
            self.add_row(*row)
        return max(0, len(rows) - MAX_ROWS)
