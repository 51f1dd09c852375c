"""One channel at a glance, before any input: its weights, what the layer derives from them,
its warnings, and the inference formula with those numbers in it.

So the Steps tab answers "what does this channel do?" as soon as a layer is chosen; typing an
input then adds the element-by-element steps under it.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from bntui.core.diagnostics import diagnose
from bntui.core.model import BNLayer
from bntui.core.numbers import fmt
from bntui.core.numerics import folded_float32, scale_float64


def _plus(value: float, digits: int = 8) -> str:
    """`` + 0.5`` or `` - 0.5``: a term of a sum as a person writes it."""
    return f" - {fmt(-value, digits)}" if value < 0 else f" + {fmt(value, digits)}"


class ChannelCard(Static):
    """Set ``bn_layer`` and ``channel`` to redraw."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"channel-card--warning", "channel-card--name"}

    bn_layer: reactive[BNLayer | None] = reactive(None, layout=True)
    channel: reactive[int] = reactive(0, layout=True)

    def render(self) -> Text:
        layer = self.bn_layer
        if layer is None or not 0 <= self.channel < layer.channels:
            return Text("")
        k = self.channel
        name_style = self.get_component_rich_style("channel-card--name")
        gamma = None if layer.gamma is None else float(layer.gamma[k])
        beta = None if layer.beta is None else float(layer.beta[k])
        mean, variance = float(layer.moving_mean[k]), float(layer.moving_variance[k])
        with np.errstate(all="ignore"):
            var_eps = float(np.float64(variance) + layer.epsilon)
        s = float(scale_float64(layer)[k])
        s32, offset32 = (float(values[k]) for values in folded_float32(layer))
        text = Text()
        lines = [[("gamma", fmt(gamma) if gamma is not None else "1 (none)"),
                  ("beta", fmt(beta) if beta is not None else "0 (none)"),
                  ("mean", fmt(mean)), ("var", fmt(variance))],
                 [("var + eps", fmt(var_eps)), ("s", fmt(s)), ("offset", fmt(offset32))]]
        for number, line in enumerate(lines):
            for index, (name, value) in enumerate(line):
                text.append(("\n" if number and not index else "  " if index else "") + f"{name} ", style=name_style)
                text.append(value)
        gamma_text = f"{fmt(gamma)} * " if gamma is not None else ""
        beta_text = _plus(beta) if beta is not None else ""
        text.append(f"\ny = {gamma_text}(x{_plus(-mean)}) / sqrt({fmt(var_eps)}){beta_text}", style="dim")
        text.append(f"\n  = x * {fmt(s32, 9)}{_plus(offset32, 9)}  (float32, as TensorFlow folds it)", style="dim")
        warning = self.get_component_rich_style("channel-card--warning")
        for finding in diagnose(layer):
            if not finding.channels or k in finding.channels:
                text.append(f"\n⚠ {finding.message}", style=warning)
        return text
