"""One line about the open file: its name, format, Keras version and BN layer count."""

from __future__ import annotations

from pathlib import Path

from textual.reactive import reactive
from textual.widgets import Static

from bntui.core.model import ModelInfo


class ModelSummary(Static):
    """Says what was opened, or that it is still loading."""

    model: reactive[ModelInfo | None] = reactive(None)

    def render(self) -> str:
        if self.model is None:
            return "Opening the model…"
        model = self.model
        count = len(model.layers)
        layers = f"{count} BatchNormalization layer{'s' if count != 1 else ''}" if count else "no BatchNormalization layers"
        return f"{Path(model.path).name} · {model.format} · Keras {model.keras_version or 'unknown'} · {layers}"
