"""One layer call's drift per channel, drawn by Plotext (through ``textual-plotext``): z as
bars (scattered points past :data:`BARS_UP_TO` channels) with the ±3 limits, or the variance
ratio on a log scale with the 1/4 and 4 limits, as horizontal lines: what lies beyond them is
a drifted channel. The selected channel is a vertical line. Titles stay short, so they fit
the 30 columns a plot has on an 80-column terminal.

Non-finite values (a broken stored variance gives NaN, a zero one infinity) cannot be drawn;
the title counts them so they are never silently missing. Limits and the channel line take
the app theme's error and accent colours.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from textual.color import Color
from textual.reactive import reactive
from textual.visual import VisualType
from textual_plotext import PlotextPlot

from bntui.core.analysis.drift import RATIO_LIMIT, Z_LIMIT, LayerDrift

Quantity = Literal["z", "ratio"]
#: Above this many channels, points instead of bars (bars narrower than a cell say nothing).
BARS_UP_TO = 48
#: Up to this many channels, every channel has its tick (channels are whole numbers).
TICKS_UP_TO = 16


class ChannelDriftPlot(PlotextPlot):
    """Set ``entry`` (and ``channel``); ``quantity`` is fixed at construction."""

    entry: reactive[LayerDrift | None] = reactive(None)
    channel: reactive[int | None] = reactive(None)

    def __init__(self, quantity: Quantity, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.quantity = quantity

    def values(self) -> np.ndarray:
        """The plotted quantity of every channel (empty without an entry)."""
        if self.entry is None:
            return np.zeros(0)
        return self.entry.z if self.quantity == "z" else self.entry.variance_ratio

    def _colour(self, variable: str) -> tuple[int, int, int]:
        """A theme colour as Plotext's RGB, so the limits follow the app's theme."""
        return Color.parse(self.app.theme_variables[variable]).rgb

    def render(self) -> VisualType:
        plt = self.plt
        plt.clear_figure()
        plt.xlabel("channel")
        values = self.values()
        if self.entry is None:
            plt.title("z per channel" if self.quantity == "z" else "variance ratio per channel")
            return super().render()
        channels = np.arange(values.size)
        drawable = np.isfinite(values) & ((values > 0) if self.quantity == "ratio" else True)
        hidden = int(values.size - drawable.sum())
        xs, ys = channels[drawable].tolist(), values[drawable].tolist()
        if self.quantity == "z":
            title = f"z of {self.entry.label}"
            if xs and values.size <= BARS_UP_TO:
                plt.bar(xs, ys, width=0.6)
            elif xs:
                plt.scatter(xs, ys, marker="dot")
            for limit in (-Z_LIMIT, Z_LIMIT):
                plt.hline(limit, self._colour("error"))
        else:
            title = "variance ratio, data/moving"
            plt.yscale("log")
            if xs:
                plt.scatter(xs, ys, marker="dot" if values.size > BARS_UP_TO else "●")
            for limit in (1.0 / RATIO_LIMIT, RATIO_LIMIT):
                plt.hline(limit, self._colour("error"))
        if hidden:
            title += f" ({hidden} not drawn: nan, inf{', 0' if self.quantity == 'ratio' else ''})"
        if self.channel is not None and 0 <= self.channel < values.size:
            plt.vline(self.channel, self._colour("accent"))
            plt.xlabel(f"channel (line: {self.channel}, the one the Steps tab shows)")
        plt.xlim(-0.5, max(values.size - 0.5, 0.5))
        # Channels are whole numbers: every one while they fit, else five spread over the range
        # (plotext's own choice fell between them: -0.5, 15.5, 31.5 for 64 channels).
        ticks = channels if values.size <= TICKS_UP_TO else np.unique(np.linspace(0, values.size - 1, 5).round())
        plt.xticks([float(channel) for channel in ticks], [str(int(channel)) for channel in ticks])
        if self.quantity == "z" and ys:
            # The limits and zero get labels of their own, and the extremes in whole numbers.
            low, high = math.floor(min(min(ys), -Z_LIMIT)), math.ceil(max(max(ys), Z_LIMIT))
            marks = sorted({low, -Z_LIMIT, 0.0, Z_LIMIT, high})
            plt.ylim(low, high)
            plt.yticks([float(mark) for mark in marks], [f"{mark:g}" for mark in marks])
        plt.title(title)
        return super().render()
