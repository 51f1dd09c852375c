"""Every warning in the model; choosing one jumps to its layer and channel."""

from __future__ import annotations

from rich.text import Text
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from bntui.core.diagnostics import diagnose
from bntui.core.model import ModelInfo


class DiagnosticsList(OptionList):
    """One option per finding: layer path, channels, message and explanation."""

    COMPONENT_CLASSES = OptionList.COMPONENT_CLASSES | {"diagnostics-list--warning", "diagnostics-list--clean"}

    class DiagnosticChosen(Message):
        """The user picked a finding: go to this layer (and channel, if it names one)."""

        def __init__(self, path: str, channel: int | None) -> None:
            super().__init__()
            self.path = path
            self.channel = channel

    model: reactive[ModelInfo | None] = reactive(None)

    def watch_model(self, model: ModelInfo | None) -> None:
        self.clear_options()
        self._targets: list[tuple[str, int | None]] = []
        if model is None:
            return
        for layer in model.layers:
            for finding in diagnose(layer):
                prompt = Text()
                prompt.append(layer.path, style="bold")
                prompt.append(f"  {finding.channel_text()}\n", style="dim")
                prompt.append(f"⚠ {finding.message}\n", style=self.get_component_rich_style("diagnostics-list--warning"))
                prompt.append(f"  {finding.explanation}", style="dim")
                self.add_option(Option(prompt))
                self._targets.append((layer.path, finding.channels[0] if finding.channels else None))
        if not self._targets:
            clean = self.get_component_rich_style("diagnostics-list--clean")
            self.add_option(Option(Text("No findings: every layer's statistics look plausible.", style=clean),
                                   disabled=True))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option_index < len(self._targets):
            path, channel = self._targets[event.option_index]
            self.post_message(self.DiagnosticChosen(path, channel))
