"""The formula for one channel, every element with its numbers substituted, inference and
training side by side so the difference between the two is visible row by row.

The values come from :meth:`Computation.steps` and :meth:`Computation.float32_steps`;
this widget only lays them out.
"""

from __future__ import annotations

import numpy as np
from rich.console import Group
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from bntui.core.numbers import fmt
from bntui.core.steps import Computation, Step

#: Elements shown per channel; the rest are counted, and exported in full.
MAX_ELEMENTS = 12
TITLES = {"inference": "INFERENCE (moving stats)", "training": "TRAINING (batch stats)"}


class StepTable(Static):
    """Set ``computation``, ``channel`` and ``mode`` ("both", "inference", "training") to redraw."""

    COMPONENT_CLASSES = {"step-table--output", "step-table--float32", "step-table--error"}

    computation: reactive[Computation | None] = reactive(None, layout=True)
    channel: reactive[int] = reactive(0, layout=True)
    mode: reactive[str] = reactive("both", layout=True)

    def render(self) -> Group | Text:
        computation = self.computation
        if computation is None:
            return Text("Type input values below and press Enter (for example 1, 5), "
                        "or press o to load a .npy file.", style="dim")
        modes = ["inference", "training"] if self.mode == "both" else [self.mode]
        channel = min(self.channel, computation.layer.channels - 1)
        table = Table(box=None, pad_edge=False, expand=True, show_edge=False, padding=(0, 1))
        table.add_column("step", style="dim", no_wrap=True, ratio=None)
        for mode in modes:
            table.add_column(TITLES[mode], header_style="bold", ratio=1)
        styles = {name: self.get_component_rich_style(f"step-table--{name}") for name in ("output", "float32")}
        columns = {mode: _Column(computation, channel, mode, styles) for mode in modes}
        for label, getter in _STAT_ROWS:
            table.add_row(label, *(getter(columns[mode]) for mode in modes))
        size = columns[modes[0]].x.size
        for index in range(min(size, MAX_ELEMENTS)):
            table.add_row("", *("" for _ in modes))
            table.add_row(Text(f"x[{index}]", style="bold"), *(Text(fmt(columns[m].x[index]), style="bold") for m in modes))
            for label, getter in _ELEMENT_ROWS:
                cells = [getter(columns[mode], index) for mode in modes]
                if any(cell is not None for cell in cells):
                    table.add_row(label, *(cell if cell is not None else "" for cell in cells))
        parts: list[Table | Text] = [table]
        if size > MAX_ELEMENTS:
            parts.append(Text(f"\n… {size - MAX_ELEMENTS} more elements in this channel (press e to export all)",
                              style="dim"))
        if "training" in modes:
            parts.extend(Text(f"\n{note}", style="dim italic") for note in computation.notes())
        if "inference" in modes:
            parts.append(Text(f"\nfloat32 (TF): largest distance from float64 over the whole input "
                              f"{fmt(computation.max_ulp, 3)} ulp", style="dim"))
        if not np.all(np.isfinite(columns[modes[0]].y)):
            parts.append(Text("\nsome outputs are NaN or Inf: see the Diagnostics tab",
                              style=self.get_component_rich_style("step-table--error")))
        return Group(*parts)


class _Column:
    """The steps of one mode for one channel, unpacked for the rows below."""

    def __init__(self, computation: Computation, channel: int, mode: str, styles: dict[str, Style]) -> None:
        layer = computation.layer
        self.styles = styles
        steps: list[Step] = computation.steps(channel, mode)
        self.x, self.centred, var_eps, root, self.x_hat, self.scaled, self.y = (s.values for s in steps)
        self.var_eps, self.root = float(var_eps[0]), float(root[0])
        result = computation.result(mode)
        self.mean, self.variance = float(result.mean[channel]), float(result.variance[channel])
        self.epsilon = layer.epsilon
        self.gamma = float(layer.gamma[channel]) if layer.gamma is not None else None
        self.beta = float(layer.beta[channel]) if layer.beta is not None else None
        self.n = computation.samples_per_channel
        self.mode = mode
        self.float32 = computation.float32_steps(channel) if mode == "inference" else []


_STAT_ROWS = [
    ("mean", lambda c: fmt(c.mean)),
    ("variance", lambda c: fmt(c.variance)),
    ("var + eps", lambda c: f"{fmt(c.variance)} + {fmt(c.epsilon)} = {fmt(c.var_eps)}"),
    ("sqrt", lambda c: f"sqrt({fmt(c.var_eps)}) = {fmt(c.root)}"),
]


def _y_cell(c: _Column, i: int) -> Text:
    text = Text()
    if c.beta is not None:
        text.append(f"{fmt(c.scaled[i])} + {fmt(c.beta)} = ")
    text.append(fmt(c.y[i]), style=c.styles["output"])
    return text


def _float32_cell(c: _Column, i: int) -> Text | None:
    if not c.float32:
        return None
    s, offset = float(c.float32[0].values[0]), float(c.float32[1].values[0])
    text = Text(f"{fmt(c.x[i])} * {fmt(s, 9)} + {fmt(offset, 9)} = ")
    text.append(fmt(c.float32[2].values[i], 9), style=c.styles["float32"])
    text.append(f" ({fmt(c.float32[3].values[i], 2)} ulp)", style="dim")
    return text


_ELEMENT_ROWS = [
    ("x - mean", lambda c, i: f"{fmt(c.x[i])} - {fmt(c.mean)} = {fmt(c.centred[i])}"),
    ("/ sqrt", lambda c, i: f"{fmt(c.centred[i])} / {fmt(c.root)} = {fmt(c.x_hat[i])}"),
    ("* gamma", lambda c, i: f"{fmt(c.x_hat[i])} * {fmt(c.gamma)} = {fmt(c.scaled[i])}" if c.gamma is not None else "no gamma (scale=False)"),
    ("+ beta = y", _y_cell),
    ("float32 (TF)", _float32_cell),
]
