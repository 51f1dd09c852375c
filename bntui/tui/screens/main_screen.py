"""The main screen: layer tree, layer view (steps, parameters, diagnostics) and input.

It owns the state (model, layer, channel, mode, computation) as reactives, hands pieces of
it down to the widgets in watchers, and handles the messages they send up. Slow work
(reading the file, computing a large input) runs in thread workers whose results and
errors are handled in one place, :meth:`on_worker_state_changed`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Header, Label, LoadingIndicator, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from bntui.core import BntuiError, ModelInfo
from bntui.core.guarded_open import PendingRead
from bntui.core.errors import InputValueError
from bntui.core.export import export_layer
from bntui.core.input_parse import load_npy, parse_for_layer, shape_for_layer
from bntui.core.model import BNLayer
from bntui.core.steps import Computation, compute
from bntui.tui.screens.capture_dialog import CaptureDialog
from bntui.tui.screens.error_screen import ErrorScreen
from bntui.tui.screens.npy_dialog import NpyDialog
from bntui.tui.widgets.diagnostics_list import DiagnosticsList
from bntui.tui.widgets.input_bar import InputBar
from bntui.tui.widgets.layer_settings import LayerSettings
from bntui.tui.widgets.layer_tree import LayerTree
from bntui.tui.widgets.model_summary import ModelSummary
from bntui.tui.widgets.parameter_overview import ParameterOverview
from bntui.tui.widgets.parameter_table import ParameterTable
from bntui.tui.widgets.step_table import StepTable
from bntui.tui.widgets.verification_line import VerificationLine

MODES = ("both", "inference", "training")
InputSource = str | np.ndarray


class MainScreen(Screen[None]):
    """Browse the BN layers of one model file and compute inputs through them."""

    BINDINGS = [
        Binding("i", "focus_input", "Input"),
        Binding("n", "channel(1)", "Next ch"),
        Binding("p", "channel(-1)", "Prev ch"),
        Binding("m", "cycle_mode", "Mode"),
        Binding("e", "export('csv')", "Export"),
        Binding("f1,question_mark", "help", "Help"),
        Binding("q", "app.quit", "Quit"),
        Binding("o", "load_npy", "Load .npy", show=False),
        Binding("c", "capture", "Capture input", show=False),
        Binding("s", "show_tab('steps')", "Steps tab", show=False),
        Binding("a", "show_tab('parameters')", "Parameters tab", show=False),
        Binding("d", "show_tab('diagnostics')", "Diagnostics tab", show=False),
    ]

    model: reactive[ModelInfo | None] = reactive(None)
    bn_layer: reactive[BNLayer | None] = reactive(None)
    channel: reactive[int] = reactive(0)
    mode: reactive[str] = reactive("both")
    computation: reactive[Computation | None] = reactive(None)

    def __init__(self, model_path: str, *, verify: bool = True, pending: PendingRead | None = None) -> None:
        super().__init__()
        self.model_path = model_path
        self.pending = pending
        self.verify_with_tensorflow = verify
        self.source: InputSource | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield ModelSummary(id="summary")
        with Horizontal(id="body"):
            with Vertical(id="sidebar"):
                yield LoadingIndicator(id="loading")
                yield LayerTree(id="layers")
            with TabbedContent(id="tabs", initial="steps"):
                with TabPane("Steps", id="steps"):
                    yield LayerSettings(id="settings")
                    yield Label("", id="channel-bar")
                    with VerticalScroll(id="step-scroll"):
                        yield StepTable(id="step-table")
                    yield VerificationLine(id="verification")
                with TabPane("Parameters", id="parameters"):
                    yield ParameterOverview(id="overview")
                    yield ParameterTable(id="parameter-table")
                with TabPane("Diagnostics", id="diagnostics"):
                    yield DiagnosticsList(id="diagnostic-list")
        yield InputBar(id="input-bar")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#layers", LayerTree).display = False
        self.load_model()

    # -- workers ---------------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="load", name="load")
    def load_model(self) -> ModelInfo:
        """Read the file off the UI thread: the first screen is up before this finishes."""
        pending, self.pending = self.pending, None
        return (pending or PendingRead(self.model_path)).result()

    @work(thread=True, exclusive=True, exit_on_error=False, group="compute", name="compute")
    def run_computation(self, layer: BNLayer, source: InputSource) -> Computation:
        """Shape the input for the layer and compute both modes."""
        if isinstance(source, str):
            x = parse_for_layer(source, layer.channels, layer.axis)
        else:
            x = shape_for_layer(source, layer.channels, layer.axis, typed_flat=False)
        return compute(layer, x)

    @work(thread=True, exclusive=True, exit_on_error=False, group="verify", name="verify")
    def run_verification(self, computation: Computation) -> tuple[Computation, object]:
        """Import TensorFlow (seconds, the first time) and run the real layer."""
        return computation, self.app.tensorflow.verify(computation)

    @work(thread=True, exclusive=True, exit_on_error=False, group="capture", name="capture")
    def run_capture(self, layer: BNLayer, spec: str) -> tuple[BNLayer, str, object]:
        """Run the whole model (safe mode) and record what reaches ``layer``."""
        return layer, spec, self.app.tensorflow.capture(self.model_path, layer.path, spec)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place where worker results and worker errors are handled."""
        worker = event.worker
        line = self.query_one(VerificationLine)
        if event.state == WorkerState.SUCCESS:
            if worker.name == "load":
                self.model = worker.result
            elif worker.name == "compute":
                self.query_one(InputBar).error = ""
                self.computation = worker.result
            elif worker.name == "verify":
                computation, verdict = worker.result
                if computation is self.computation:
                    line.agrees = verdict.agrees
                    line.status = verdict.summary()
            elif worker.name == "capture":
                layer, spec, captured = worker.result
                line.capture_note = (f"input captured at {layer.path} by running the model on {spec} "
                                     f"(shape {captured.layer_input.shape})")
                if layer is self.bn_layer:
                    self.submit(captured.layer_input, keep_capture_note=True)
        elif event.state == WorkerState.ERROR:
            error = worker.error
            if worker.name in ("verify", "capture"):
                # TensorFlow's own failures (a missing install, an odd config) are not ours:
                # they are reported on the line and everything else keeps working.
                if worker.name == "verify":
                    line.agrees = None
                    line.status = f"TensorFlow check unavailable: {error}"
                else:
                    line.capture_note = str(error) if isinstance(error, BntuiError) else f"capture failed: {error}"
                return
            if not isinstance(error, BntuiError):
                raise error  # a bug: let Textual stop and show the traceback rather than hide it
            if worker.name == "load":
                self.app.switch_screen(ErrorScreen("Cannot open this file", str(error)))
            else:
                self.query_one(InputBar).error = str(error)

    # -- state flowing down ---------------------------------------------------------------

    def watch_model(self, model: ModelInfo | None) -> None:
        if model is None:
            return
        self.query_one("#loading").display = False
        tree = self.query_one("#layers", LayerTree)
        tree.display = True
        self.query_one(ModelSummary).model = model
        self.query_one(DiagnosticsList).model = model
        self.sub_title = Path(model.path).name
        if not model.layers:
            self.query_one("#channel-bar", Label).update("This model has no BatchNormalization layers.")
            return
        tree.show_model(model)
        tree.focus()

    def watch_bn_layer(self, layer: BNLayer | None) -> None:
        self.query_one(LayerSettings).bn_layer = layer
        self.query_one(ParameterTable).bn_layer = layer
        self.query_one(ParameterOverview).bn_layer = layer
        self.computation = None
        self.channel = 0
        self._update_channel_bar()
        if layer is not None and self.source is not None:
            self.run_computation(layer, self.source)

    def watch_computation(self, computation: Computation | None) -> None:
        self.query_one(StepTable).computation = computation
        self._update_channel_bar()
        line = self.query_one(VerificationLine)
        line.agrees = None
        if computation is None:
            line.status = ""
        elif self.verify_with_tensorflow:
            already = self.app.tensorflow.started
            line.status = "Checking with TensorFlow…" + ("" if already else " (loading TensorFlow, a few seconds)")
            self.run_verification(computation)
        else:
            line.status = "TensorFlow check off"

    def watch_channel(self, channel: int) -> None:
        self.query_one(StepTable).channel = channel
        self._update_channel_bar()

    def watch_mode(self, mode: str) -> None:
        self.query_one(StepTable).mode = mode
        self._update_channel_bar()

    def _update_channel_bar(self) -> None:
        layer = self.bn_layer
        if layer is None:
            return
        mode = {"both": "inference | training", "inference": "inference only", "training": "training only"}[self.mode]
        self.query_one("#channel-bar", Label).update(
            f"channel {self.channel} (of 0-{layer.channels - 1}, n/p) · {mode} (m)"
        )

    # -- messages coming up ---------------------------------------------------------------

    @on(LayerTree.LayerSelected)
    def _layer_selected(self, event: LayerTree.LayerSelected) -> None:
        if self.model is not None and (self.bn_layer is None or self.bn_layer.path != event.path):
            self.bn_layer = self.model.find(event.path)

    @on(InputBar.ValuesSubmitted)
    def _values_submitted(self, event: InputBar.ValuesSubmitted) -> None:
        self.submit(event.text)

    @on(DiagnosticsList.DiagnosticChosen)
    def _diagnostic_chosen(self, event: DiagnosticsList.DiagnosticChosen) -> None:
        self.jump_to(event.path, event.channel)
        self.query_one(TabbedContent).active = "parameters"
        if event.channel is not None:
            self.query_one(ParameterTable).show_channel(event.channel)

    # -- operations (also used by the command palette and tests) --------------------------

    def submit(self, source: InputSource, *, keep_capture_note: bool = False) -> None:
        """Use ``source`` (typed text or an array) as the input from now on, and compute it."""
        if not keep_capture_note:
            self.query_one(VerificationLine).capture_note = ""
        if self.bn_layer is None:
            self.query_one(InputBar).error = "no BatchNormalization layer to compute"
            return
        if isinstance(source, str) and not source.strip():
            self.query_one(InputBar).error = "input is empty: type numbers such as 1, 5"
            return
        self.source = source
        self.query_one(TabbedContent).active = "steps"
        self.run_computation(self.bn_layer, source)
        self.query_one("#step-scroll").focus()

    def jump_to(self, path: str, channel: int | None = None) -> None:
        """Show the layer at ``path`` (and a channel of it)."""
        self.query_one(LayerTree).select_path(path)
        if self.model is not None:
            self.bn_layer = self.model.find(path)
        if channel is not None:
            self.channel = channel

    def action_focus_input(self) -> None:
        self.query_one(InputBar).focus_input()

    def action_channel(self, step: int) -> None:
        if self.bn_layer is not None:
            self.channel = (self.channel + step) % self.bn_layer.channels

    def action_cycle_mode(self) -> None:
        self.mode = MODES[(MODES.index(self.mode) + 1) % len(MODES)]

    def set_mode(self, mode: str) -> None:
        """Show both modes side by side, or only one."""
        self.mode = mode

    def action_show_tab(self, tab: str) -> None:
        """Switch tab and put the keyboard in it, so arrows and Enter act on what is shown."""
        self.query_one(TabbedContent).active = tab
        target = {"steps": "#step-scroll", "parameters": "#parameter-table", "diagnostics": "#diagnostic-list"}[tab]
        self.query_one(target).focus()

    def action_help(self) -> None:
        from bntui.tui.screens.help_screen import HelpScreen  # Markdown is slow to import: only on demand

        self.app.push_screen(HelpScreen())

    def action_export(self, kind: str = "csv", directory: Path | None = None) -> list[Path]:
        """Write the parameter table (and step table, if computed) next to the user's work."""
        if self.bn_layer is None:
            self.notify("Nothing to export: no layer is shown.", severity="warning")
            return []
        try:
            written = export_layer(self.bn_layer, self.computation, directory or Path.cwd(), kind)
        except OSError as err:
            self.notify(f"Export failed: {err.strerror or err}", severity="error")
            return []
        names = " and ".join(path.name for path in written)
        self.notify(f"Wrote {names} in {written[0].parent}", title="Exported")
        return written

    def action_capture(self) -> None:
        """Ask for a model input, run the model, and use the layer's real input."""
        if self.bn_layer is None:
            return
        layer = self.bn_layer

        def chosen(spec: str | None) -> None:
            if spec:
                self.query_one(VerificationLine).capture_note = f"running the model on {spec} to capture {layer.path}…"
                self.run_capture(layer, spec)

        self.app.push_screen(CaptureDialog(), chosen)

    def action_load_npy(self) -> None:
        def loaded(path: Path | None) -> None:
            if path is None:
                return
            try:
                self.submit(load_npy(path))
                self.query_one(InputBar).error = ""
            except InputValueError as err:
                self.query_one(InputBar).error = str(err)

        self.app.push_screen(NpyDialog(), loaded)
