"""A sparkline per parameter of how much each channel changed between the two files, so the
channels that moved (or the one that broke) stand out before reading any number."""

from __future__ import annotations

import numpy as np
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Sparkline

from bntui.core.analysis.compare import LayerPair
from bntui.core.numbers import fmt
from bntui.tui.widgets.channel_diff_table import PARAMETERS


class DiffSparklines(Vertical):
    """Call :meth:`show` with a pair: |Δ| of gamma, beta, moving mean and variance over the channels."""

    def compose(self) -> ComposeResult:
        for name, heading in PARAMETERS:
            with Horizontal(classes="diff-row"):
                yield Label(f"|Δ| {heading}", classes="diff-name")
                yield Sparkline([], id=f"diff-spark-{name}")
                yield Label("", id=f"diff-range-{name}", classes="diff-range")

    def show(self, pair: LayerPair | None) -> None:
        """Draw ``pair``'s differences (blank for None, or when the channel counts differ)."""
        for name, _heading in PARAMETERS:
            spark = self.query_one(f"#diff-spark-{name}", Sparkline)
            label = self.query_one(f"#diff-range-{name}", Label)
            if pair is None or pair.parameters is None:
                spark.data = []
                label.update("")
                continue
            diff = pair.parameters[name]
            spark.data = self.bar_heights(diff.abs_diff)
            changed = len(diff.channels_changed)
            label.update(f"max {fmt(diff.max_abs_diff, 4)} · {changed} of {diff.abs_diff.size} changed"
                         if changed else "identical")

    @staticmethod
    def bar_heights(abs_diff: np.ndarray) -> list[float]:
        """One bar per channel; a NaN or infinite difference (an unusable value on one side) is
        drawn as tall as the largest finite one, so it is seen and not dropped."""
        finite = abs_diff[np.isfinite(abs_diff)]
        top = float(finite.max()) if finite.size else 1.0
        return np.where(np.isfinite(abs_diff), abs_diff, top).tolist()
