"""What the user is looking at, as one frozen value that the screen hands to every panel.

A panel never asks its siblings for the layer or the input: it receives a :class:`Selection`
and redraws from it. Changing anything makes a new Selection, so a panel can tell what
changed by comparing fields, and a late worker result can tell whether it is still current.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np

from bntui.core.model import BNLayer, ModelInfo

InputKind = Literal["typed", "npy", "captured"]


@dataclass(frozen=True, eq=False)
class InputSource:
    """An input and where it came from: typed text, a ``.npy`` file, or captured at a layer.

    A captured input belongs to the layer it was captured at (:meth:`fits`): another layer's
    real input is a different tensor, so it is never silently reused there.
    """

    kind: InputKind
    text: str = ""
    values: np.ndarray | None = None
    file: Path | None = None
    captured_at: str | None = None
    model_input: str | None = None

    @classmethod
    def typed(cls, text: str) -> InputSource:
        return cls("typed", text=text)

    @classmethod
    def from_npy(cls, file: Path, values: np.ndarray) -> InputSource:
        return cls("npy", values=values, file=file)

    @classmethod
    def captured(cls, layer_path: str, model_input: str, values: np.ndarray) -> InputSource:
        return cls("captured", values=values, captured_at=layer_path, model_input=model_input)

    def fits(self, layer: BNLayer) -> bool:
        """Whether this input may be used for ``layer`` (a captured one only at its own layer)."""
        return self.kind != "captured" or self.captured_at == layer.path

    def describe(self) -> str:
        """One line for the screen: which input is shown."""
        if self.kind == "typed":
            text = self.text.strip()
            return f"input typed: {text if len(text) <= 60 else text[:57] + '…'}"
        shape = tuple(self.values.shape) if self.values is not None else ()
        if self.kind == "npy":
            return f"input from {self.file} (shape {shape})"
        return f"input captured at {self.captured_at} by running the model on {self.model_input} (shape {shape})"


@dataclass(frozen=True, eq=False)
class Selection:
    """The model, its layer and channel shown, and the input (None before any)."""

    model: ModelInfo | None = None
    layer: BNLayer | None = None
    channel: int = 0
    input: InputSource | None = None

    def with_layer(self, layer: BNLayer) -> Selection:
        """Another layer, at channel 0. The input stays: typed values and files are computed
        through the new layer, and a captured input waits for its own layer to come back
        (the Steps panel says so instead of computing it here)."""
        return replace(self, layer=layer, channel=0)

    def with_channel(self, channel: int) -> Selection:
        """Another channel of the same layer, wrapped into range."""
        if self.layer is None:
            return self
        return replace(self, channel=channel % self.layer.channels)

    def with_input(self, source: InputSource | None) -> Selection:
        return replace(self, input=source)
