"""The formula for one channel, every element with its numbers substituted, inference and
training side by side so the difference between the two is visible row by row.

The values come from :meth:`Computation.channel_steps` (named quantities) and
:meth:`Computation.float32_steps` (steps keyed ``x_cast``, ``s``, ``offset``, ``y32``,
``y_cast``, ``ulp``); this widget only lays them out. A frozen layer's training column is what
Keras returns (moving statistics); its batch-statistics result follows as a third column
labelled "if unfrozen". When TensorFlow has run, its own float32 output and distance show
next to the folded form.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
from rich.console import Group
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from bntui.core.numbers import fmt
from bntui.core.steps import BATCH, Computation, Step

#: Elements shown per channel; the rest are counted, and exported in full.
MAX_ELEMENTS = 12
TITLES = {"inference": "INFERENCE (moving stats)", "training": "TRAINING (batch stats)",
          "training-frozen": "TRAINING (frozen: moving stats)", "unfrozen": "IF UNFROZEN (batch stats)"}


class StepTable(Static):
    """Set ``computation``, ``channel`` and ``mode`` ("both", "inference", "training") to redraw."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"step-table--output", "step-table--float32", "step-table--error"}

    computation: reactive[Computation | None] = reactive(None, layout=True)
    channel: reactive[int] = reactive(0, layout=True)
    mode: reactive[str] = reactive("both", layout=True)
    #: TensorFlow's verdict for ``computation`` (a ``tf_bridge.Verification``), once it ran.
    verification: reactive[Any | None] = reactive(None, layout=True)

    def watch_computation(self) -> None:
        self.verification = None

    def render(self) -> Group | Text:
        computation = self.computation
        if computation is None:
            return Text("Press i, type input values and press Enter (a value per channel for each sample: "
                        "1, 5 is two samples of a one-channel layer), or press o to load a .npy file.", style="dim")
        modes = ["inference", "training"] if self.mode == "both" else [self.mode]
        if "training" in modes and computation.training.unfrozen is not None:
            modes.append("unfrozen")
        channel = min(self.channel, computation.layer.channels - 1)
        table = Table(box=None, pad_edge=False, expand=True, show_edge=False, padding=(0, 1))
        table.add_column("step", style="dim", no_wrap=True, ratio=None)
        for mode in modes:
            frozen = mode == "training" and computation.training.uses != BATCH
            table.add_column(TITLES["training-frozen" if frozen else mode], header_style="bold", ratio=1)
        styles = {name: self.get_component_rich_style(f"step-table--{name}") for name in ("output", "float32")}
        columns = {mode: _Column(computation, channel, mode, styles, self.verification) for mode in modes}
        for label, getter in _STAT_ROWS:
            table.add_row(label, *(getter(columns[mode]) for mode in modes))
        size = columns[modes[0]].x.size
        for index in range(min(size, MAX_ELEMENTS)):
            table.add_row("", *("" for _ in modes))
            table.add_row(Text(f"x[{index}]", style="bold"), *(Text(fmt(columns[m].x[index]), style="bold") for m in modes))
            for label, element in _ELEMENT_ROWS:
                cells = [element(columns[mode], index) for mode in modes]
                if any(cell is not None for cell in cells):
                    table.add_row(label, *(cell if cell is not None else "" for cell in cells))
        parts: list[Table | Text] = [table]
        if size > MAX_ELEMENTS:
            parts.append(Text(f"\n… {size - MAX_ELEMENTS} more elements in this channel (press e to export all)",
                              style="dim"))
        if "training" in modes:
            if computation.training.reason:
                parts.append(Text(f"\ntraining mode: {computation.training.reason}", style="dim italic"))
            parts.extend(Text(f"\n{note}", style="dim italic") for note in computation.notes())
        if "inference" in modes:
            parts.append(Text(f"\nfloat32 folded form: largest distance from float64 over the whole input "
                              f"{fmt(computation.max_ulp, 3)} ulp of the largest term summed", style="dim"))
        if not np.all(np.isfinite(columns[modes[0]].y)):
            parts.append(Text("\nsome outputs are NaN or Inf: the input holds NaN or Inf, or the weights do, or "
                              "var + eps <= 0 (the Diagnostics tab lists the weights' problems)",
                              style=self.get_component_rich_style("step-table--error")))
        return Group(*parts)


class _Column:
    """The steps of one mode for one channel, unpacked for the rows below."""

    def __init__(self, computation: Computation, channel: int, mode: str, styles: dict[str, Style],
                 verification: Any | None = None) -> None:
        layer = computation.layer
        self.styles = styles
        unfrozen = mode == "unfrozen"
        named = computation.channel_steps(channel, "training" if unfrozen else mode, unfrozen=unfrozen)
        self.x, self.centred, self.x_hat, self.scaled, self.y = named.x, named.centred, named.x_hat, named.scaled, named.y
        self.var_eps, self.root = float(named.var_eps[0]), float(named.root[0])
        self.mean, self.variance = float(named.mean[0]), float(named.variance[0])
        self.means = named.mean  # one per element for ghost batches, else one
        self.epsilon = layer.epsilon
        self.gamma, self.beta = named.gamma, named.beta
        self.renorm = (named.renorm_r, named.renorm_d) if named.renorm_r is not None else None
        self.n = computation.samples_per_channel
        self.mode = mode
        self.float32: dict[str, Step] = {s.key: s for s in computation.float32_steps(channel)} if mode == "inference" else {}
        self.tensorflow: np.ndarray | None = None
        self.tensorflow_ulp: np.ndarray | None = None
        check = getattr(verification, mode, None) if verification is not None and not unfrozen else None
        if check is not None:
            self.tensorflow = computation.channel_values(check.tensorflow_output, channel)
            self.tensorflow_ulp = computation.channel_values(check.tensorflow_ulp, channel)


_STAT_ROWS: list[tuple[str, Callable[[_Column], str]]] = [
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
    s, offset = float(c.float32["s"].values[0]), float(c.float32["offset"].values[0])
    x = c.float32["x_cast"].values[i] if "x_cast" in c.float32 else c.x[i]
    text = Text(f"{fmt(x, 9)} * {fmt(s, 9)} + {fmt(offset, 9)} = ")
    text.append(fmt(c.float32["y32"].values[i], 9), style=c.styles["float32"])
    text.append(f" ({fmt(c.float32['ulp'].values[i], 2)} ulp)", style="dim")
    return text


def _cast_in_cell(c: _Column, i: int) -> Text | None:
    step = c.float32.get("x_cast")
    return None if step is None else Text(f"{fmt(c.x[i])} -> {fmt(step.values[i], 9)}  ({step.precision})")


def _cast_out_cell(c: _Column, i: int) -> Text | None:
    step = c.float32.get("y_cast")
    if step is None:
        return None
    text = Text(f"{fmt(c.float32['y32'].values[i], 9)} -> ")
    text.append(fmt(step.values[i], 9), style=c.styles["output"])
    return text.append(f"  (what Keras returns, {step.precision})", style="dim")


def _tensorflow_cell(c: _Column, i: int) -> Text | None:
    if c.tensorflow is None or c.tensorflow_ulp is None:
        return None
    text = Text(fmt(c.tensorflow[i], 9), style=c.styles["float32"])
    return text.append(f" ({fmt(c.tensorflow_ulp[i], 2)} ulp from exact)", style="dim")


def _renorm_cell(c: _Column, i: int) -> Text | None:
    if c.renorm is None:
        return None
    r, d = c.renorm
    return Text(f"{fmt(c.x_hat[i])} * {fmt(r)} + {fmt(d)} = {fmt(c.x_hat[i] * r + d)}")


_ELEMENT_ROWS: list[tuple[str, Callable[[_Column, int], str | Text | None]]] = [
    ("x - mean", lambda c, i: f"{fmt(c.x[i])} - {fmt(c.means[i] if c.means.size > 1 else c.mean)} = {fmt(c.centred[i])}"),
    ("/ sqrt", lambda c, i: f"{fmt(c.centred[i])} / {fmt(c.root)} = {fmt(c.x_hat[i])}"),
    ("* r + d", _renorm_cell),
    ("* gamma", lambda c, i: f"{fmt(c.scaled[i] / c.gamma if c.gamma else c.x_hat[i])} * {fmt(c.gamma)} = {fmt(c.scaled[i])}"
     if c.gamma is not None else "no gamma (scale=False)"),
    ("+ beta = y", _y_cell),
    ("x cast", _cast_in_cell),
    ("float32 folded", _float32_cell),
    ("y cast", _cast_out_cell),
    ("TF float32", _tensorflow_cell),
]
