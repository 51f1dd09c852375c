"""The Fold tab: the selected BN layer folded into the conv or dense before it, or the reason
it cannot be; the folded kernel and bias; per channel, the scale, the folded bias and what a
per-tensor int8 scale leaves of its 8 bits, the dominating channels first.

The feeding layer's config and kernel are read from the file in a guarded child (see
:mod:`bntui.tui.panels.feeding`) and folded by :func:`bntui.core.analysis.fold.fold_layer`
in the same worker. TensorFlow's check of the fold (folded against unfolded on a random
input, in term-scaled ulps) then runs in the TUI's TensorFlow process, in a worker of its own.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from textual import on, work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static

from bntui.core.analysis.fold import FoldReport, LayerFold, fold_layer, folded_arrays
from bntui.core.errors import BntuiError
from bntui.core.export import free_path
from bntui.core.model import BNLayer, FeedingLayer
from bntui.core.numbers import fmt
from bntui.core.numerics import scale_float64
from bntui.tui.panels.feeding import FeedingPanel
from bntui.tui.panels.panel import PanelCommand, PanelContext
from bntui.tui.widgets.channel_rows_table import ChannelRowsTable
from bntui.tui.widgets.fold_summary import FoldSummary

COLUMNS = ("channel", "range |W'|", "bits lost (per-tensor)", "before folding", "s", "b'")


@dataclass(frozen=True, eq=False)
class FoldView:
    """The fold of one layer and its per-channel rows, prepared off the UI thread."""

    fold: LayerFold
    rows: list[list[str]]
    feeding: FeedingLayer


def channel_rows(layer: BNLayer, fold: LayerFold) -> list[list[str]]:
    """Per channel: folded weight range, bits lost under a per-tensor scale (after and before
    folding), s and the folded bias; widest range (the channels setting the scale) first."""
    q = fold.quantization
    if q is None or fold.folded is None:
        return []
    s = scale_float64(layer)
    bias = fold.folded["bias"]
    order = np.argsort(-q.channel_ranges, kind="stable")
    return [[str(c), fmt(q.channel_ranges[c]), fmt(q.bits_lost[c], 3), fmt(q.bits_lost_before_fold[c], 3), fmt(s[c]),
             fmt(bias[c])] for c in (int(i) for i in order)]


def write_folded(fold: LayerFold, directory: Path) -> Path:
    """The folded weights in a new ``.npz``, each under ``<feeding layer path>/<role>``, as
    ``--fold-export`` writes them; never over an existing file."""
    arrays: dict[str, Any] = folded_arrays(FoldReport("", (fold,)))  # Any: numpy's savez stub types **kwds as bool
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    while True:
        path = free_path(directory, f"{fold.path.replace('/', '_')}-folded", ".npz")
        try:
            with open(path, "xb") as handle:
                handle.write(buffer.getvalue())
        except FileExistsError:  # taken between the check and the open: try the next name
            continue
        return path


class FoldPanel(FeedingPanel[FoldView]):
    """Follows the selected layer."""

    TAB_TITLE = "Fold"
    TAB_ID = "fold"
    TAB_KEY = "f"
    WITH_WEIGHTS = True

    def __init__(self, context: PanelContext, *, id: str | None = None) -> None:
        super().__init__(context, id=id)
        self._checks: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="fold-scroll"):
            yield FoldSummary(id="fold-summary")
        yield Static("", id="fold-caption")
        yield ChannelRowsTable(id="fold-table")

    def focus_target(self) -> Widget:
        return self.query_one("#fold-scroll")

    def prepare(self, layer: BNLayer, feeding: FeedingLayer) -> FoldView:
        fold = fold_layer(layer, feeding)
        return FoldView(fold, channel_rows(layer, fold), feeding)

    def show_layer(self, layer: BNLayer | None) -> None:
        status = f"{layer.path}: reading the layer that feeds it…" if layer is not None else ""
        self.query_one(FoldSummary).show(None, status)
        self.query_one(ChannelRowsTable).show(COLUMNS, [])
        self.query_one("#fold-caption", Static).update("")

    def show_prepared(self, layer: BNLayer, prepared: FoldView | None, reason: str) -> None:
        summary = self.query_one(FoldSummary)
        if prepared is None:
            summary.show(None, f"{layer.path}: cannot read the layer feeding it: {reason}")
            return
        summary.show(prepared.fold, check=self._check_line(layer, prepared))
        left = self.query_one(ChannelRowsTable).show(COLUMNS, prepared.rows)
        more = f" (+{left} narrower channels not listed)" if left else ""
        caption = (f"per output channel, widest folded weights first: they set a per-tensor int8 scale{more}"
                   if prepared.rows else "")
        self.query_one("#fold-caption", Static).update(caption)

    def export_folded(self, directory: Path | None = None) -> Path | None:
        """Write the shown layer's folded kernel and bias (None when there is nothing folded)."""
        layer = self.selection.layer
        view = self._cache.get(layer.path) if layer is not None else None
        if view is None or not view.fold.foldable:
            self.notify("Nothing to export: this layer is not folded (see the Fold tab).", severity="warning")
            return None
        fold = view.fold
        return self.write_file(lambda folder: write_folded(fold, folder), directory)

    def commands(self) -> Iterable[PanelCommand]:
        yield PanelCommand("Fold: export the folded kernel and bias (.npz)",
                           "The feeding layer's weights with this BN folded in, in a new .npz file", self.export_folded)

    class Checked(Message):
        """Worker: TensorFlow's check of one layer's fold, or why it could not run."""

        def __init__(self, layer: BNLayer, line: str) -> None:
            super().__init__()
            self.layer, self.line = layer, line

    def _check_line(self, layer: BNLayer, view: FoldView) -> str:
        if not self.context.verify:
            return "TensorFlow check of the fold: off"
        if not view.fold.foldable:
            return ""
        if layer.path in self._checks:
            return self._checks[layer.path]
        self.run_fold_check(layer, view)
        return "TensorFlow check of the fold: running (folded against unfolded, on a random input)…"

    @work(thread=True, exclusive=True, group="fold-check", name="fold-check")
    def run_fold_check(self, layer: BNLayer, view: FoldView) -> None:
        try:
            check = self.context.tensorflow.fold_check(layer, view.feeding, view.fold)
            line = (f"TensorFlow: folding changes this output by at most {fmt(check.max_ulp, 3)} ulps "
                    f"(of the sum of |terms|; max |diff| {fmt(check.max_abs_diff, 3)}, random input "
                    f"{'x'.join(map(str, check.input_shape))})")
        except BntuiError as err:
            line = f"TensorFlow check of the fold unavailable: {err}"
        self.post_message(self.Checked(layer, line))

    @on(Checked)
    def _checked(self, message: FoldPanel.Checked) -> None:
        self._checks[message.layer.path] = message.line
        view = self._cache.get(message.layer.path)
        if message.layer is self.selection.layer and view is not None:
            self.query_one(FoldSummary).show(view.fold, check=message.line)
