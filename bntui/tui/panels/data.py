"""The Data tab: run real data through the whole model once, and see where each BN layer's
stored statistics don't fit it (issue 13's drift, the same code as ``bntui MODEL --drift``).

The user types the data (``normal:0:64x32x32x3``, ``x.npy``, a folder of images...) and a
scale; a worker asks the TensorFlow process for :func:`bntui.tf_bridge.drift.measure_drift`,
whose progress comes back as messages that move the progress bar; Esc cancels between two
batches. The layer calls come ranked by drift; the plots show the highlighted one's z and
variance ratio per channel. Enter on a layer captures the input that reached it on the first
samples of the same data and opens its Steps with it, at its most drifted channel.

A panel is a tab, so this is one (not a screen): it shares the layer tree and the selection,
and choosing a layer in the tree moves the table to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Input, ProgressBar, Static

from bntui.core.analysis.drift import DriftResult, LayerDrift
from bntui.core.errors import BntuiError
from bntui.core.export import free_path
from bntui.core.model import ModelInfo
from bntui.core.output import render
from bntui.tui.panels.panel import Panel, PanelCommand, PanelContext
from bntui.tui.state import InputSource, Selection
from bntui.tui.tensorflow_process import DRIFT_INPUT_SAMPLES
from bntui.tui.widgets.data_spec_bar import DataSpecBar
from bntui.tui.widgets.drift_table import DriftTable

if TYPE_CHECKING:
    from bntui.tui.widgets.drift_plot import ChannelDriftPlot

#: Samples per forward pass, as ``--drift`` without ``--batch-size``.
BATCH_SIZE = 32
INTRO = ("Type the data to run through the model and press Enter; Esc stops a run. Then Enter on a layer "
         "shows its steps with the input that really reached it.")


@dataclass(frozen=True, eq=False)
class DataRun:
    """One run the user asked for: its results are shown only while it is the current one."""

    spec: str
    scale: float

    def describe(self) -> str:
        return self.spec if self.scale == 1.0 else f"{self.spec} × {self.scale:g}"


def worst_channel(entry: LayerDrift) -> int:
    """The channel with the largest |z| (a NaN one first: it is the worst fit of all)."""
    magnitudes = np.abs(entry.z)
    nan = np.flatnonzero(np.isnan(magnitudes))
    return int(nan[0]) if nan.size else int(np.argmax(magnitudes)) if magnitudes.size else 0


class DataPanel(Panel):
    """Follows the selected layer in its table; everything else comes from its own runs."""

    TAB_TITLE = "Data"
    TAB_ID = "data"
    TAB_KEY = "r"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "stop", "Stop / leave")]

    class Progressed(Message):
        """Worker: ``done`` of ``total`` samples have passed (``total`` 0: still loading)."""

        def __init__(self, run: DataRun, done: int, total: int) -> None:
            super().__init__()
            self.run, self.done, self.total = run, done, total

    class Measured(Message):
        """Worker: the run's drift (None: it was stopped), or why there is none."""

        def __init__(self, run: DataRun, result: DriftResult | None, reason: str = "") -> None:
            super().__init__()
            self.run, self.result, self.reason = run, result, reason

    class Left(Message):
        """Esc in the data box with no results to go to: the screen gives the keyboard to the layers."""

    class StepsRequested(Message):
        """Show the steps of ``channel`` of the layer at ``path`` with ``source``, the input
        that really reached that layer."""

        def __init__(self, path: str, channel: int, source: InputSource) -> None:
            super().__init__()
            self.path = path
            self.channel = channel
            self.source = source

    class InputTaken(Message):
        """Worker: the input that reached ``entry``'s layer (None: why not, in ``reason``)."""

        def __init__(self, entry: LayerDrift, source: InputSource | None, reason: str = "") -> None:
            super().__init__()
            self.entry, self.source, self.reason = entry, source, reason

    result: reactive[DriftResult | None] = reactive(None)
    running: reactive[bool] = reactive(False)

    def __init__(self, context: PanelContext, *, id: str | None = None) -> None:
        super().__init__(context, id=id)
        #: The run whose messages are shown; a newer one makes an older one's answers stale.
        self.run: DataRun | None = None

    def compose(self) -> ComposeResult:
        yield DataSpecBar(id="data-spec-bar")
        yield Static(INTRO, id="data-status")
        yield ProgressBar(id="data-progress", show_eta=False)
        yield DriftTable(id="drift-table")
        yield Horizontal(id="drift-plots")  # filled by the first result (see _mount_plots)
        yield Static("", id="data-notes")

    def focus_target(self) -> Widget:
        return self.query_one(DriftTable) if self.result is not None else self.query_one(DataSpecBar).spec_input

    # -- the selection flowing down ----------------------------------------------------------

    def watch_selection(self, old: Selection, new: Selection) -> None:
        if new.model is not old.model:
            self.result = None
        if new.layer is not None:
            self.query_one(DriftTable).show_path(new.layer.path)
        self._mark_channel()

    def _mark_channel(self) -> None:
        """The selected channel as a line on the plots, when they show the selected layer."""
        layer = self.selection.layer
        for plot in self._plots():
            shown = plot.entry is not None and layer is not None and plot.entry.path == layer.path
            plot.channel = self.selection.channel if shown else None

    def _plots(self) -> list[ChannelDriftPlot]:
        return list(self.query("#drift-plots > ChannelDriftPlot").results())  # type: ignore[arg-type]

    async def _mount_plots(self) -> None:
        """Plotext takes about 60 ms to import: it loads with the first result, not at start-up."""
        if not self._plots():
            from bntui.tui.widgets.drift_plot import ChannelDriftPlot

            await self.query_one("#drift-plots").mount(ChannelDriftPlot("z", id="drift-z"),
                                                       ChannelDriftPlot("ratio", id="drift-ratio"))

    async def watch_result(self, result: DriftResult | None) -> None:
        if result is not None:
            await self._mount_plots()
        self.set_class(result is not None, "-measured")
        table = self.query_one(DriftTable)
        table.result = result
        self._plot(table.current)
        notes = self.query_one("#data-notes", Static)
        if result is None:
            notes.update("")
            return
        self._status(f"{result.fed_text()}, {result.drifted_text()} · Enter: the layer's steps with its real input")
        notes.update(" · ".join(result.notes))
        # A new ranking opens at its top, the worst fit: it is what the run is for. Choosing a
        # layer in the tree afterwards moves the table to it.

    def watch_running(self, running: bool) -> None:
        self.set_class(running, "-running")
        if running:
            self.query_one(ProgressBar).update(total=None, progress=0)

    def _plot(self, entry: LayerDrift | None) -> None:
        for plot in self._plots():
            plot.entry = entry
        self._mark_channel()

    def _status(self, text: str) -> None:
        self.query_one("#data-status", Static).update(text)

    # -- starting and stopping a run ---------------------------------------------------------

    @on(DataSpecBar.SpecSubmitted)
    def _spec_submitted(self, event: DataSpecBar.SpecSubmitted) -> None:
        self.start(event.spec, event.scale)

    @on(DataSpecBar.SpecRefused)
    def _spec_refused(self, event: DataSpecBar.SpecRefused) -> None:
        self._status(event.reason)

    def start(self, spec: str, scale: float = 1.0) -> None:
        """Run ``spec`` (each value times ``scale``) through the model; a run still going is stopped."""
        model = self.selection.model
        if model is None:
            self._status("The model is still being read.")
            return
        if self.running:
            self.context.tensorflow.cancel_drift()
        self.run = DataRun(spec, scale)
        self.running = True
        loading = "" if self.context.tensorflow.started else "loading TensorFlow, then "
        self._status(f"Running {self.run.describe()}: {loading}loading the model… · Esc stops")
        self.measure(model, self.run)

    def action_stop(self) -> None:
        """Esc: stop the run; without one, leave the data box: for the table when there are
        results, else for the layer list (Esc must always get the keyboard out of a text box,
        or keys such as q would be typed into it)."""
        if self.running:
            if self.context.tensorflow.cancel_drift():
                self._status("Stopping after the current batch…")
        elif isinstance(self.screen.focused, Input):
            if self.result is not None:
                self.query_one(DriftTable).focus()
            else:
                self.post_message(self.Left())

    # -- workers -----------------------------------------------------------------------------

    @work(thread=True, group="drift", name="drift", exit_on_error=False)
    def measure(self, model: ModelInfo, run: DataRun) -> None:
        """Ask the TensorFlow process for the drift; progress arrives as messages."""

        def progressed(done: int, total: int) -> None:
            self.post_message(self.Progressed(run, done, total))

        try:
            result = self.context.tensorflow.drift(model, run.spec, batch_size=BATCH_SIZE, scale=run.scale,
                                                   progress=progressed)
            self.post_message(self.Measured(run, result))
        except BntuiError as err:
            self.post_message(self.Measured(run, None, str(err)))
        except Exception as err:  # noqa: BLE001 - TensorFlow's failures are not ours: shown on the line
            self.post_message(self.Measured(run, None, f"drift failed: {err}"))

    @work(thread=True, exclusive=True, group="drift-input", name="drift-input", exit_on_error=False)
    def take_input(self, entry: LayerDrift, run: DataRun) -> None:
        """Capture what reached the layer on the first samples of the run's data."""
        try:
            values = self.context.tensorflow.drift_input(self.context.model_path, entry.layer, entry.call,
                                                         run.spec, run.scale)
            origin = f"the first {values.shape[0]} samples of the data run {run.describe()}"
            self.post_message(self.InputTaken(entry, InputSource.captured(entry.path, origin, values)))
        except BntuiError as err:
            self.post_message(self.InputTaken(entry, None, str(err)))
        except Exception as err:  # noqa: BLE001 - TensorFlow's failures are not ours: shown on the line
            self.post_message(self.InputTaken(entry, None, f"capture failed: {err}"))

    # -- worker results ----------------------------------------------------------------------

    @on(Progressed)
    def _progressed(self, message: Progressed) -> None:
        if message.run is self.run and self.running:
            self.query_one(ProgressBar).update(total=message.total, progress=message.done)
            self._status(f"Running {message.run.describe()}: {message.done:,} of {message.total:,} samples · Esc stops")

    @on(Measured)
    def _measured(self, message: Measured) -> None:
        if message.run is not self.run:
            return
        self.running = False
        if message.result is not None:
            self.result = message.result
            if isinstance(self.screen.focused, Input):
                self.query_one(DriftTable).focus()
        elif message.reason:
            reason = message.reason  # errors about the data already name it ("x.npy: no such file")
            self._status(reason if reason.startswith(f"{message.run.spec}:") else f"{message.run.describe()}: {reason}")
        else:
            self._status(f"Stopped {message.run.describe()}: nothing measured. Enter runs it again.")

    @on(DriftTable.EntryHighlighted)
    def _entry_highlighted(self, event: DriftTable.EntryHighlighted) -> None:
        self._plot(event.entry)

    @on(DriftTable.EntryChosen)
    def _entry_chosen(self, event: DriftTable.EntryChosen) -> None:
        self.show_steps(event.entry)

    def show_steps(self, entry: LayerDrift) -> None:
        """Capture the entry's real input from the run's data, then show its steps."""
        if self.run is None or self.result is None:
            return
        self._status(f"Taking the input of {entry.label} from the first {DRIFT_INPUT_SAMPLES} samples of "
                     f"{self.run.describe()}…")
        self.take_input(entry, self.run)

    @on(InputTaken)
    def _input_taken(self, message: InputTaken) -> None:
        if message.source is None:
            self._status(f"{message.entry.label}: {message.reason}")
            return
        self._status(f"Steps of {message.entry.label} show {message.source.describe()}")
        self.post_message(self.StepsRequested(message.entry.path, worst_channel(message.entry), message.source))

    # -- commands and export -----------------------------------------------------------------

    async def action_focus_data(self) -> None:
        """Show this tab with the keyboard in the data box."""
        await self.app.run_action(f"screen.show_tab({self.TAB_ID!r})")
        self.query_one(DataSpecBar).spec_input.focus()

    def commands(self) -> Iterable[PanelCommand]:
        yield PanelCommand("Data: run data through the model", "Measure where the stored statistics don't fit "
                           "real data (drift)", self.action_focus_data)
        yield PanelCommand("Data: stop the run", "Stop the data run after its current batch", self.action_stop)
        if self.result is not None and self.query_one(DriftTable).current is not None:
            yield PanelCommand("Data: steps with this layer's real input",
                               "Capture what reached the highlighted layer and show its steps",
                               self._choose_current)

    def _choose_current(self) -> None:
        entry = self.query_one(DriftTable).current
        if entry is not None:
            self.show_steps(entry)

    def export(self, kind: str, directory: Path) -> list[Path]:
        """The drift of every layer and channel (CSV rows, or the JSON of ``--drift --json``)."""
        if self.result is None:
            return []
        target = free_path(directory, "bn-drift", f".{kind}")
        text = render(self.result, "json" if kind == "json" else "csv", indent=True)
        with open(target, "x", encoding="utf-8") as handle:  # "x": never overwrite
            handle.write(text if text.endswith("\n") else text + "\n")
        return [target]

