"""A layer's settings, saying which ones the file did not hold and were assumed."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from bntui.core.model import BNLayer
from bntui.core.numbers import fmt


class LayerSettings(Static):
    """axis, epsilon, momentum, center, scale, dtype and the feeding layer of one BN layer."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"layer-settings--assumed"}

    bn_layer: reactive[BNLayer | None] = reactive(None, layout=True)

    def render(self) -> Text:
        layer = self.bn_layer
        if layer is None:
            return Text("")
        warn = self.get_component_rich_style("layer-settings--assumed")
        text = Text()
        text.append(layer.path, style="bold")
        settings = [
            ("axis", str(layer.axis)), ("epsilon", fmt(layer.epsilon)), ("momentum", fmt(layer.momentum)),
            ("center", str(layer.center)), ("scale", str(layer.scale)),
        ]
        for name, value in settings:
            text.append(f"  {name} ", style="dim")
            text.append(value, style="italic" if name in layer.assumed else "")
            if layer.sources.get(name) == "default":
                text.append(" (assumed)", style=warn)
        text.append(f"\n{layer.channels} channel{'s' if layer.channels != 1 else ''} · {layer.dtype}", style="dim")
        if layer.inbound:
            text.append(f" · fed by {layer.inbound}", style="dim")
        if layer.gamma is None:
            text.append(" · no gamma (scale=False: taken as 1)", style="dim")
        if layer.beta is None:
            text.append(" · no beta (center=False: taken as 0)", style="dim")
        for note in layer.notes:
            text.append(f"\nnote: {note}", style=warn)
        return text
