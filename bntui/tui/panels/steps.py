"""The Steps tab: the channel's numbers at once, then the input through the formula step by
step (inference and training), and TensorFlow's own check of those numbers.

Its workers shape and compute the input, ask the TensorFlow process to verify the result, and
capture a layer's real input; each posts a typed message to this panel, and every result is
checked against the current selection before it is shown, so a late answer for an input or
layer that is no longer shown is dropped instead of drawn.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Label, Static

from bntui.core.errors import BntuiError
from bntui.core.export import export_steps
from bntui.core.input_parse import parse_for_layer, shape_for_layer, value_notes
from bntui.core.model import BNLayer
from bntui.core.steps import Computation, compute
from bntui.tui.panels.panel import Panel, PanelCommand
from bntui.tui.screens.capture_dialog import CaptureDialog
from bntui.tui.state import InputSource, Selection
from bntui.tui.tensorflow_process import Verdict
from bntui.tui.widgets.channel_card import ChannelCard
from bntui.tui.widgets.layer_settings import LayerSettings
from bntui.tui.widgets.step_table import StepTable
from bntui.tui.widgets.verification_line import VerificationLine

MODES = ("both", "inference", "training")
MODE_TEXT = {"both": "inference | training", "inference": "inference only", "training": "training only"}


def _shape(layer: BNLayer, source: InputSource) -> Computation:
    if source.kind == "typed":
        x = parse_for_layer(source.text, layer.channels, layer.axis)
    else:
        assert source.values is not None
        x = shape_for_layer(source.values, layer.channels, layer.axis, typed_flat=False)
    return compute(layer, x)


class StepsPanel(Panel):
    """Set ``selection``; ``mode`` chooses inference, training or both side by side."""

    TAB_TITLE = "Steps"
    TAB_ID = "steps"
    TAB_KEY = "s"
    SCREEN_BINDINGS: ClassVar[list[Binding]] = [
        Binding("m", "cycle_mode", "Mode"),
        Binding("c", "capture", "Capture input", show=False),
    ]

    class Computed(Message):
        """Worker: ``source`` went through ``layer``."""

        def __init__(self, layer: BNLayer, source: InputSource, computation: Computation) -> None:
            super().__init__()
            self.layer, self.source, self.computation = layer, source, computation

    class Refused(Message):
        """Worker: ``source`` does not fit ``layer`` (or is not numbers)."""

        def __init__(self, layer: BNLayer, source: InputSource, reason: str) -> None:
            super().__init__()
            self.layer, self.source, self.reason = layer, source, reason

    class Verified(Message):
        """Worker: TensorFlow's verdict on ``computation`` (a ``Verification``), or why there is none."""

        def __init__(self, computation: Computation, verdict: Verdict | None, reason: str = "") -> None:
            super().__init__()
            self.computation, self.verdict, self.reason = computation, verdict, reason

    class Captured(Message):
        """Worker: the real input of a layer, or why it could not be captured."""

        def __init__(self, source: InputSource | None, reason: str = "") -> None:
            super().__init__()
            self.source, self.reason = source, reason

    class InputAccepted(Message):
        """To the screen: the current input went through the current layer."""

    class InputRefused(Message):
        """To the screen: the current input cannot be used; ``reason`` says why."""

        def __init__(self, reason: str) -> None:
            super().__init__()
            self.reason = reason

    class InputCaptured(Message):
        """To the screen: use this captured input from now on."""

        def __init__(self, source: InputSource) -> None:
            super().__init__()
            self.source = source

    mode: reactive[str] = reactive("both")
    computation: reactive[Computation | None] = reactive(None)

    def compose(self) -> ComposeResult:
        yield LayerSettings(id="settings")
        yield Label("", id="channel-bar")
        yield ChannelCard(id="channel-card")
        yield Static("", id="input-line")
        with VerticalScroll(id="step-scroll"):
            yield StepTable(id="step-table")
        yield VerificationLine(id="verification")

    def focus_target(self) -> Widget:
        return self.query_one("#step-scroll")

    # -- the selection flowing down ---------------------------------------------------------

    def watch_selection(self, old: Selection, new: Selection) -> None:
        self.query_one(LayerSettings).bn_layer = new.layer
        card = self.query_one(ChannelCard)
        card.bn_layer, card.channel = new.layer, new.channel
        self.query_one(StepTable).channel = new.channel
        self._update_channel_bar()
        if new.layer is not old.layer or new.input is not old.input:
            self._recompute(new)

    def _recompute(self, selection: Selection) -> None:
        self.computation = None
        layer, source = selection.layer, selection.input
        line = self.query_one("#input-line", Static)
        if layer is None or source is None:
            line.update("")
            return
        if not source.fits(layer):
            line.update(f"The input captured at {source.captured_at} belongs to that layer: press c to capture "
                        f"this layer's input, or i to type one.")
            return
        line.update(f"{source.describe()} · computing…")
        self.run_computation(layer, source)

    def watch_mode(self, mode: str) -> None:
        self.query_one(StepTable).mode = mode
        self._update_channel_bar()

    def watch_computation(self, computation: Computation | None) -> None:
        self.query_one(StepTable).computation = computation
        self.set_class(computation is not None, "-computed")
        line = self.query_one(VerificationLine)
        line.agrees = None
        if computation is None:
            line.status = ""
        elif not self.context.verify:
            line.status = "TensorFlow check off"
        else:
            loading = "" if self.context.tensorflow.started else " (loading TensorFlow, a few seconds)"
            line.status = f"Checking with TensorFlow…{loading}"
            self.run_verification(computation)

    def _update_channel_bar(self) -> None:
        layer = self.selection.layer
        if layer is None:
            return
        self.query_one("#channel-bar", Label).update(
            f"channel {self.selection.channel} of 0-{layer.channels - 1} (n/p, g: go to) · {MODE_TEXT[self.mode]} (m)"
        )

    def show_message(self, text: str) -> None:
        """A line in place of the channel bar (a model without BN layers)."""
        self.query_one("#channel-bar", Label).update(text)

    # -- workers -----------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="compute", name="compute")
    def run_computation(self, layer: BNLayer, source: InputSource) -> None:
        """Shape the input for the layer and compute both modes (a large input takes a while)."""
        try:
            self.post_message(self.Computed(layer, source, _shape(layer, source)))
        except BntuiError as err:
            self.post_message(self.Refused(layer, source, str(err)))

    @work(thread=True, exclusive=True, group="verify", name="verify")
    def run_verification(self, computation: Computation) -> None:
        """Ask the TensorFlow process (seconds to start, the first time) to run the real layer."""
        try:
            self.post_message(self.Verified(computation, self.context.tensorflow.verify(computation)))
        except Exception as err:  # noqa: BLE001 - TensorFlow's failures are not ours: shown on the line
            self.post_message(self.Verified(computation, None, str(err)))

    @work(thread=True, exclusive=True, group="capture", name="capture")
    def run_capture(self, layer: BNLayer, spec: str) -> None:
        """Run the whole model (Keras safe mode) and record what reaches ``layer``."""
        try:
            captured = self.context.tensorflow.capture(self.context.model_path, layer.path, spec)
            self.post_message(self.Captured(InputSource.captured(layer.path, spec, captured.layer_input)))
        except BntuiError as err:
            self.post_message(self.Captured(None, str(err)))
        except Exception as err:  # noqa: BLE001 - TensorFlow's failures are not ours: shown on the line
            self.post_message(self.Captured(None, f"capture failed: {err}"))

    # -- worker results ----------------------------------------------------------------------

    @on(Computed)
    def _computed(self, message: Computed) -> None:
        if message.layer is self.selection.layer and message.source is self.selection.input:
            self.computation = message.computation
            notes = value_notes(message.source.text) if message.source.kind == "typed" else []
            self.query_one("#input-line", Static).update(" · ".join([message.source.describe(), *notes]))
            self.post_message(self.InputAccepted())

    @on(Refused)
    def _refused(self, message: Refused) -> None:
        if message.layer is self.selection.layer and message.source is self.selection.input:
            self.computation = None
            self.query_one("#input-line", Static).update(
                f"{message.source.describe()} · not computed: {message.reason}")
            self.post_message(self.InputRefused(message.reason))

    @on(Verified)
    def _verified(self, message: Verified) -> None:
        if message.computation is not self.computation:
            return
        line = self.query_one(VerificationLine)
        if message.verdict is None:
            line.agrees = None
            line.status = f"TensorFlow check unavailable: {message.reason}"
            return
        line.agrees = message.verdict.agrees
        line.status = message.verdict.summary()
        self.query_one(StepTable).verification = message.verdict

    @on(Captured)
    def _captured(self, message: Captured) -> None:
        line = self.query_one(VerificationLine)
        if message.source is None:
            line.capture_note = message.reason
            return
        line.capture_note = ""
        self.post_message(self.InputCaptured(message.source))

    # -- actions and commands ----------------------------------------------------------------

    def action_cycle_mode(self) -> None:
        self.mode = MODES[(MODES.index(self.mode) + 1) % len(MODES)]

    def set_mode(self, mode: str) -> None:
        """Show both modes side by side, or only one."""
        self.mode = mode

    def action_capture(self) -> None:
        """Ask for a model input, run the model, and use the layer's real input."""
        layer = self.selection.layer
        if layer is None:
            return

        def chosen(spec: str | None) -> None:
            if spec:
                self.query_one(VerificationLine).capture_note = f"running the model on {spec} to capture {layer.path}…"
                self.run_capture(layer, spec)

        self.app.push_screen(CaptureDialog(), chosen)

    def commands(self) -> Iterable[PanelCommand]:
        for mode in MODES:
            yield PanelCommand(f"Mode: {mode}", f"Show {MODE_TEXT[mode]} steps", partial(self.set_mode, mode))
        yield PanelCommand("Capture input", "Run the whole model and use what really reaches this layer",
                           self.action_capture)

    def export(self, kind: str, directory: Path) -> list[Path]:
        return [export_steps(self.computation, directory, kind)] if self.computation is not None else []
