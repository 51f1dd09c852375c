"""Every finding in the model, grouped by kind: one heading per kind (what it is, what it
usually means, how many layers), then one line per layer with the channels concerned.
Choosing a line (or a heading: its first layer) jumps to that layer and channel.

The first line is highlighted as soon as the list is filled, so Enter works at once.
"""

from __future__ import annotations

from rich.text import Text
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from bntui.core.diagnostics import group_diagnostics
from bntui.core.model import ModelInfo

#: Channels named on a layer's line; the rest are counted.
CHANNELS_SHOWN = 8


def _channels(channels: tuple[int, ...]) -> str:
    if not channels:
        return "whole layer"
    shown = ", ".join(str(channel) for channel in channels[:CHANNELS_SHOWN])
    more = f" (+{len(channels) - CHANNELS_SHOWN} more)" if len(channels) > CHANNELS_SHOWN else ""
    return f"channel{'s' if len(channels) > 1 else ''} {shown}{more}"


class DiagnosticsList(OptionList):
    """Headings and layer lines; ``model`` fills it."""

    COMPONENT_CLASSES = OptionList.COMPONENT_CLASSES | {"diagnostics-list--warning", "diagnostics-list--clean"}

    class DiagnosticChosen(Message):
        """The user picked a finding: go to this layer (and channel, if it names one)."""

        def __init__(self, path: str, channel: int | None) -> None:
            super().__init__()
            self.path = path
            self.channel = channel

    model: reactive[ModelInfo | None] = reactive(None)

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._targets: list[tuple[str, int | None]] = []

    def watch_model(self, model: ModelInfo | None) -> None:
        self.clear_options()
        self._targets = []
        if model is None:
            return
        warning = self.get_component_rich_style("diagnostics-list--warning")
        for group in group_diagnostics(model.layers):
            heading = Text()
            count = f"{group.layer_count} layer{'s' if group.layer_count != 1 else ''}"
            heading.append(f"⚠ {count}: {group.message}\n", style=warning)  # the layers are listed below
            heading.append(f"  {group.explanation}", style="dim")
            self.add_option(Option(heading))
            first_path, first_channels = group.members[0]
            self._targets.append((first_path, first_channels[0] if first_channels else None))
            for path, channels in group.members:
                line = Text("    ")
                line.append(path, style="bold")
                line.append(f"  {_channels(channels)}", style="dim")
                self.add_option(Option(line))
                self._targets.append((path, channels[0] if channels else None))
        if not self._targets:
            clean = self.get_component_rich_style("diagnostics-list--clean")
            self.add_option(Option(Text("No findings: every layer's statistics look plausible.", style=clean),
                                   disabled=True))
            return
        self.highlighted = 0

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option_index < len(self._targets):
            path, channel = self._targets[event.option_index]
            self.post_message(self.DiagnosticChosen(path, channel))
