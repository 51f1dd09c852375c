"""A sparkline per parameter across channels, so an outlier channel stands out at a glance."""

from __future__ import annotations

import numpy as np
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Label, Sparkline

from bntui.core.model import BNLayer
from bntui.core.numbers import fmt

PARAMETERS = ("gamma", "beta", "moving_mean", "moving_variance")


class ParameterOverview(Vertical):
    """gamma, beta, moving mean and moving variance over the channels, with their range."""

    bn_layer: reactive[BNLayer | None] = reactive(None)

    def compose(self) -> ComposeResult:
        for name in PARAMETERS:
            with Horizontal(classes="overview-row"):
                yield Label(name.replace("_", " "), classes="overview-name")
                yield Sparkline([], id=f"spark-{name}")
                yield Label("", id=f"range-{name}", classes="overview-range")

    def watch_bn_layer(self, layer: BNLayer | None) -> None:
        if not self.is_mounted:
            return
        for name in PARAMETERS:
            values = getattr(layer, name) if layer is not None else None
            spark = self.query_one(f"#spark-{name}", Sparkline)
            label = self.query_one(f"#range-{name}", Label)
            if values is None:
                spark.data = []
                label.update("absent" if layer is not None else "")
                continue
            finite = np.asarray(values, dtype=np.float64)
            finite = finite[np.isfinite(finite)]
            spark.data = finite.tolist()
            label.update(f"{fmt(finite.min(), 4)} … {fmt(finite.max(), 4)}" if finite.size else "no finite values")

    def on_mount(self) -> None:
        self.watch_bn_layer(self.bn_layer)
