"""The Port tab: the selected BN layer as PyTorch, ONNX and TFLite see it, what changes the
numbers when it moves (epsilon, per channel, worst first), and exports of the layer to a
PyTorch ``state_dict`` (safetensors) and an ONNX node, never overwriting a file.

The analysis is :mod:`bntui.core.analysis.port`. Only PyTorch's BatchNorm1d/2d/3d needs the
input rank, which the config of the layer feeding the BN tells: the view is drawn at once,
and redrawn when that read (see :mod:`bntui.tui.panels.feeding`) comes back.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from textual import on, work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static

from bntui.core.analysis.port import LayerPort, epsilon_shift
from bntui.core.errors import BntuiError
from bntui.core.export import free_path
from bntui.core.model import BNLayer, FeedingLayer
from bntui.core.numbers import fmt
from bntui.core.numerics import folded_float32
from bntui.tui.panels.feeding import FeedingPanel
from bntui.tui.panels.panel import PanelCommand
from bntui.tui.widgets.channel_rows_table import ChannelRowsTable
from bntui.tui.widgets.port_summary import PortSummary

COLUMNS = ("channel", "eps 1e-5 shift", "MUL (float32)", "ADD (float32)", "weight", "bias", "running_mean",
           "running_var")


def channel_rows(layer: BNLayer) -> list[list[str]]:
    """Every channel's state_dict values and folded constants, largest epsilon shift first."""
    shift = epsilon_shift(layer)
    s, offset = folded_float32(layer)
    order = np.argsort(-np.nan_to_num(shift, nan=-1.0), kind="stable")
    gamma, beta = layer.gamma_or_one, layer.beta_or_zero
    return [[str(c), fmt(shift[c], 4), fmt(s[c]), fmt(offset[c]), fmt(gamma[c]), fmt(beta[c]),
             fmt(layer.moving_mean[c]), fmt(layer.moving_variance[c])] for c in (int(i) for i in order)]


def export_path(directory: Path, layer: BNLayer, suffix: str, *, sidecar: bool = False) -> Path:
    """A new file name for the layer's export (and, for safetensors, a free ``.json`` beside it)."""
    stem = layer.path.replace("/", "_")
    number = 0
    while True:
        path = free_path(directory, stem if not number else f"{stem}-{number}", suffix)
        if not sidecar or not path.with_name(path.name + ".json").exists():
            return path
        number += 1


def export_layer(port: LayerPort, kind: str, directory: Path, source: str) -> list[Path]:
    """Write the layer as a PyTorch state_dict (``torch``) or an ONNX node (``onnx``)."""
    if kind == "torch":
        from bntui.core.export_torch import export_torch

        return export_torch([port], export_path(directory, port.layer, ".safetensors", sidecar=True), source)
    from bntui.core.export_onnx import export_onnx

    return [export_onnx([port], export_path(directory, port.layer, ".onnx"))]


class PortPanel(FeedingPanel[LayerPort]):
    """Follows the selected layer; the palette exports it."""

    TAB_TITLE = "Port"
    TAB_ID = "port"
    TAB_KEY = "t"

    class Exported(Message):
        """Worker: the files written, or why none were."""

        def __init__(self, paths: list[Path], reason: str = "") -> None:
            super().__init__()
            self.paths, self.reason = paths, reason

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="port-scroll"):
            yield PortSummary(id="port-summary")
        yield Static("", id="port-caption")
        yield ChannelRowsTable(id="port-table")

    def focus_target(self) -> Widget:
        return self.query_one("#port-scroll")

    @property
    def port(self) -> LayerPort | None:
        """The port shown: with the input rank once it is read, without it until then."""
        layer = self.selection.layer
        if layer is None:
            return None
        return self._cache.get(layer.path) or LayerPort(layer)

    def prepare(self, layer: BNLayer, feeding: FeedingLayer) -> LayerPort:
        return LayerPort(layer, feeding.bn_input_rank)

    def show_layer(self, layer: BNLayer | None) -> None:
        if layer is None:
            self.query_one(PortSummary).show(None)
            return
        self.query_one(PortSummary).show(LayerPort(layer), "input rank: reading the config…")
        left = self.query_one(ChannelRowsTable).show(COLUMNS, channel_rows(layer))
        more = f" (+{left} channels with smaller shifts not listed)" if left else ""
        self.query_one("#port-caption", Static).update(
            f"per channel, largest output shift with PyTorch's eps first; MUL and ADD are TFLite's folded constants{more}")

    def show_prepared(self, layer: BNLayer, prepared: LayerPort | None, reason: str) -> None:
        if prepared is None:
            self.query_one(PortSummary).show(LayerPort(layer), f"input rank unknown: {reason}")
        else:
            note = "" if prepared.input_rank is not None else "input rank not in the config"
            self.query_one(PortSummary).show(prepared, note)

    # -- exports -----------------------------------------------------------------------------

    def export_to(self, kind: str, directory: Path | None = None) -> None:
        """Write the layer as ``torch`` (safetensors + JSON sidecar) or ``onnx`` in a worker."""
        port = self.port
        if port is None:
            self.notify("Nothing to export: no layer is shown.", severity="warning")
            return
        self.run_export(port, kind, directory or Path.cwd(), self.selection.model.path if self.selection.model else "")

    @work(thread=True, exclusive=True, group="port-export", name="port-export")
    def run_export(self, port: LayerPort, kind: str, directory: Path, source: str) -> None:
        """The writers import safetensors or onnx, which takes a moment."""
        try:
            self.post_message(self.Exported(export_layer(port, kind, directory, source)))
        except BntuiError as err:
            self.post_message(self.Exported([], str(err)))

    @on(Exported)
    def _exported(self, message: Exported) -> None:
        if not message.paths:
            self.notify(f"Export failed: {message.reason}", severity="error")
            return
        names = " and ".join(path.name for path in message.paths)
        self.notify(f"Wrote {names} in {message.paths[0].parent}", title="Exported")

    def commands(self) -> Iterable[PanelCommand]:
        yield PanelCommand("Port: export this layer as PyTorch safetensors",
                           "Its state_dict in a new .safetensors file, eps, momentum and affine in a .json beside it",
                           lambda: self.export_to("torch"))
        yield PanelCommand("Port: export this layer as ONNX",
                           "One BatchNormalization node (opset 15) in a new .onnx file",
                           lambda: self.export_to("onnx"))
