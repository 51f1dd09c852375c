"""One line about the open file: its name, format, Keras version and BN layer count.

At a narrow width the words shrink ("BN layers", no "Keras") before anything is cut.
"""

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
        name, version = Path(model.path).name, model.keras_version or "unknown"
        plural = "s" if count != 1 else ""
        wide = (f"{name} · {model.format} · Keras {version} · "
                + (f"{count} BatchNormalization layer{plural}" if count else "no BatchNormalization layers"))
        if len(wide) <= self.size.width:
            return wide
        return f"{name} · {model.format} · {version} · {count} BN layer{plural}"
