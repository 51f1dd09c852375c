"""The BN layer calls ranked by drift (largest |z| first, as the analysis ranks them): one row
each with its worst |z|, drifted channel count, largest output shift, the updates it would take
to fit, and its flags. Moving the cursor reports the row's entry; Enter chooses it."""

from __future__ import annotations

from textual import on
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable

from bntui.core.analysis.drift import DriftResult, LayerDrift
from bntui.core.numbers import fmt

COLUMNS = ("#", "layer", "channels", "max |z|", "drifted", "max output shift", "fit after", "flags")
FLAG_TEXT = {"initial_statistics": "initial", "half_updated": "half-updated", "dead_channels": "dead"}


def flags_text(entry: LayerDrift) -> str:
    parts = []
    for flag in entry.flags:
        name = FLAG_TEXT.get(flag.code, flag.code)
        parts.append(f"{name} {len(flag.channels)}" if flag.code == "dead_channels" else name)
    return ", ".join(parts) or "-"


class DriftTable(DataTable[str]):
    """Set ``result``; the rows follow its ranking."""

    class EntryHighlighted(Message):
        """The cursor is on this layer call."""

        def __init__(self, entry: LayerDrift) -> None:
            super().__init__()
            self.entry = entry

    class EntryChosen(Message):
        """Enter on this layer call: show its steps with its real input."""

        def __init__(self, entry: LayerDrift) -> None:
            super().__init__()
            self.entry = entry

    result: reactive[DriftResult | None] = reactive(None, always_update=True)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.add_columns(*COLUMNS)

    def watch_result(self, result: DriftResult | None) -> None:
        self.clear()
        for rank, entry in enumerate(result.layers if result is not None else (), start=1):
            self.add_row(str(rank), entry.label, str(entry.layer.channels), fmt(entry.max_abs_z),
                         f"{entry.drifted_channels}", fmt(entry.max_output_shift), entry.fit_after,
                         flags_text(entry), key=str(rank - 1))

    def show_path(self, path: str) -> None:
        """Put the cursor on the layer's first call, if the result has it."""
        if self.result is None:
            return
        for index, entry in enumerate(self.result.layers):
            if entry.path == path:
                if self.cursor_row != index:
                    self.move_cursor(row=index)
                return

    @property
    def current(self) -> LayerDrift | None:
        """The entry under the cursor."""
        if self.result is None or not self.result.layers or self.row_count == 0:
            return None
        return self.result.layers[min(self.cursor_row, len(self.result.layers) - 1)]

    def _entry(self, key: str | None) -> LayerDrift | None:
        if self.result is None or key is None:
            return None
        return self.result.layers[int(key)]

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        entry = self._entry(event.row_key.value)
        if entry is not None:
            self.post_message(self.EntryHighlighted(entry))

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        entry = self._entry(event.row_key.value)
        if entry is not None:
            self.post_message(self.EntryChosen(entry))
