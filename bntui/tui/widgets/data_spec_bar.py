"""Where the user names the data to run through the model (the same specs as ``--drift``) and
the factor every input value is multiplied by (``1/255``: the model's preprocessing given as a
number, never as code).

The factor is read by :class:`fractions.Fraction`, a parser of numbers and quotients only, so
nothing typed is evaluated; a bad factor is refused here, before TensorFlow is asked anything.
"""

from __future__ import annotations

from fractions import Fraction

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, Label

PLACEHOLDER = "normal:0:256 (samples), normal:0:64x32x32x3, uniform:SEED, zeros, ones, x.npy, image folder"


def parse_scale(text: str) -> float | None:
    """``1/255``, ``0.5``, ``2e-3`` -> the factor; None for anything else (or a zero divisor)."""
    try:
        value = float(Fraction(text.strip() or "1"))
    except (ValueError, ZeroDivisionError):
        return None
    return value


class DataSpecBar(Horizontal):
    """A data spec box and a scale box; Enter in either submits both."""

    class SpecSubmitted(Message):
        """The user pressed Enter: run ``spec``, every value multiplied by ``scale``."""

        def __init__(self, spec: str, scale: float) -> None:
            super().__init__()
            self.spec, self.scale = spec, scale

    class SpecRefused(Message):
        """The user pressed Enter on something that cannot be run; ``reason`` says why."""

        def __init__(self, reason: str) -> None:
            super().__init__()
            self.reason = reason

    def compose(self) -> ComposeResult:
        yield Input(placeholder=PLACEHOLDER, id="data-spec")
        yield Label("× scale", id="data-scale-label")
        yield Input(value="1", id="data-scale")

    @property
    def spec_input(self) -> Input:
        return self.query_one("#data-spec", Input)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        spec = self.spec_input.value.strip()
        scale_text = self.query_one("#data-scale", Input).value
        scale = parse_scale(scale_text)
        if not spec:
            self.post_message(self.SpecRefused("type the data to run, e.g. normal:0:64x32x32x3 or x.npy"))
        elif scale is None:
            self.post_message(self.SpecRefused(f"scale {scale_text.strip()!r}: give a number or a quotient "
                                               "such as 1/255"))
        else:
            self.post_message(self.SpecSubmitted(spec, scale))
