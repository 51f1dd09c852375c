"""A BN layer as PyTorch, ONNX and TFLite see it: the module and its arguments, which Keras
array fills each ``state_dict`` key, the layout change, the ONNX node's inputs by opset, and
what the target's default epsilon would do. Read from :class:`bntui.core.analysis.port.LayerPort`."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from bntui.core.analysis.port import TARGET_EPSILON, LayerPort, epsilon_shift, worst_channels
from bntui.core.numbers import fmt


class PortSummary(Static):
    """Call :meth:`show` with the layer's port (``rank_note`` says whether the input rank is known yet)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"port-summary--title", "port-summary--warning"}

    def show(self, port: LayerPort | None, rank_note: str = "") -> None:
        self.update(self._render_port(port, rank_note) if port is not None else "")

    def _render_port(self, port: LayerPort, rank_note: str) -> RenderableType:
        title = self.get_component_rich_style("port-summary--title")
        warning = self.get_component_rich_style("port-summary--warning")
        layer = port.layer
        module = (port.torch_module or "torch.nn.BatchNorm?d").removeprefix("torch.")
        lines: list[RenderableType] = [
            Text("PyTorch", style=title),
            Text(f"{module}({layer.channels}, eps={layer.epsilon!r}, momentum={fmt(port.torch_momentum)}, "
                 f"affine={port.affine}, track_running_stats=True)" + (f"  ({rank_note})" if rank_note else "")),
        ]
        keys = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        keys.add_column("state_dict key")
        keys.add_column("from Keras")
        for key, source in port.state_dict_sources().items():
            keys.add_row(f"{port.prefix}.{key}", source)
        lines += [keys, Text(f"layout: {port.layout()['how']}")]
        onnx = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        onnx.add_column("ONNX input")
        onnx.add_column("opset ≤ 13")
        onnx.add_column("opset ≥ 14")
        onnx.add_column("from Keras")
        sources = ("input", "gamma" if layer.scale else "constant 1", "beta" if layer.center else "constant 0",
                   "moving_mean", "moving_variance")
        for index, (old, new) in enumerate(zip(("X", "scale", "B", "mean", "var"),
                                               ("X", "scale", "B", "input_mean", "input_var"))):
            onnx.add_row(str(index), old, new, sources[index])
        lines += [
            Text("ONNX", style=title),
            Text(f"BatchNormalization(epsilon={layer.epsilon!r}, momentum={fmt(layer.momentum)}, training_mode=0)"),
            onnx,
            Text("TFLite", style=title),
            Text("MUL by the folded scale, then ADD the folded offset, both float32 (per channel, below)"),
            Text("Epsilon", style=title),
        ]
        shift = epsilon_shift(layer)
        worst = worst_channels(shift)
        if worst:
            lines.append(Text(f"PyTorch's default eps={TARGET_EPSILON:g} instead of {fmt(layer.epsilon)} moves the "
                              f"output by up to {fmt(float(np.nanmax(shift)))} at mean ± 3·std; worst channels: "
                              + ", ".join(f"{c} ({fmt(shift[c], 3)})" for c in worst), style=warning))
        else:
            lines.append(Text(f"the layer's epsilon is PyTorch's default ({TARGET_EPSILON:g}): nothing moves"))
        lines.append(Text("Notes", style=title))
        lines += [Text(f"· {note}") for note in port.notes()]
        return Group(*lines)
