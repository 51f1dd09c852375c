"""The compare view (``bntui A B``): the two files' BN layers matched, what changed in each pair
and what kind of change it is, the changed channels, and one input through both layers.

The comparison is :func:`bntui.core.analysis.compare.compare_models`, run in a worker on the
two models the guarded reads return; the steps are :func:`bntui.core.steps.compute` on each
side, in another worker. This screen only keeps what is selected (an entry of the list, a
channel, a parameter, a mode and the input) and hands it to its widgets; every worker result
is checked against the current selection before it is shown, so a late answer is dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.command import Provider
from textual.containers import Horizontal, ScrollableContainer, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Label, LoadingIndicator, Static, Tab, TabbedContent, TabPane, Tabs

from bntui.core.analysis.compare import LayerPair, ModelComparison, compare_models
from bntui.core.errors import BntuiError
from bntui.core.guarded_open import PendingRead
from bntui.core.input_parse import load_npy, parse_for_layer, shape_for_layer, value_notes
from bntui.core.model import BNLayer, ModelInfo
from bntui.core.steps import Computation, compute
from bntui.tui.panels.panel import PanelCommand
from bntui.tui.screens.error_screen import ErrorScreen
from bntui.tui.screens.main_commands import ScreenCommands
from bntui.tui.screens.npy_dialog import NpyDialog
from bntui.tui.state import InputSource
from bntui.tui.widgets.channel_diff_table import PARAMETERS, ChannelDiffTable
from bntui.tui.widgets.diff_sparklines import DiffSparklines
from bntui.tui.widgets.input_bar import InputBar
from bntui.tui.widgets.pair_details import PairDetails
from bntui.tui.widgets.pair_list import Entry, PairList, entry_label
from bntui.tui.widgets.side_by_side_steps import SIDES, SideBySideSteps

MODES = ("inference", "training", "both")
TABS = {"channels": "Channels", "steps": "Steps", "summary": "Summary"}
#: The list is fitted to its widest entry, up to this share of the screen width.
SIDEBAR_MAX_SHARE = 0.45
SIDEBAR_MIN = 16
#: Where the keyboard goes when a tab is shown.
_FOCUS = {"channels": "#diff-table", "steps": "#steps-scroll-first", "summary": "#compare-summary-scroll"}
#: Actions bound to printable keys: off while the input box has the keyboard.
_TYPING_KEYS = {"focus_input", "focus_list", "channel", "show_tab", "next_parameter", "cycle_mode", "load_npy", "quit"}


def entry_layers(entry: Entry) -> dict[str, BNLayer | None]:
    """The layer on each side: both for a pair, one for a layer without a partner."""
    if isinstance(entry, LayerPair):
        return {"first": entry.first, "second": entry.second}
    first = entry.finding.code == "only_in_first"
    return {"first": entry.layer if first else None, "second": None if first else entry.layer}


def compute_for(layer: BNLayer, source: InputSource) -> Computation:
    """Shape ``source`` for ``layer`` and compute both modes (a BntuiError if it does not fit)."""
    if source.kind == "typed":
        x = parse_for_layer(source.text, layer.channels, layer.axis)
    else:
        assert source.values is not None
        x = shape_for_layer(source.values, layer.channels, layer.axis, typed_flat=False)
    return compute(layer, x)


class CompareScreen(Screen[None]):
    """Two model files side by side, pair by pair."""

    COMMANDS: ClassVar[set[type[Provider] | Callable[[], type[Provider]]]] = {ScreenCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("i", "focus_input", "Input", priority=True),
        Binding("l", "focus_list", "Layers"),
        Binding("c", "show_tab('channels')", "Channels"),
        Binding("s", "show_tab('steps')", "Steps"),
        Binding("u", "show_tab('summary')", "Summary"),
        Binding("t", "next_parameter", "Next parameter", show=False),
        Binding("n", "channel(1)", "Next channel", show=False),
        Binding("p", "channel(-1)", "Previous channel", show=False),
        Binding("m", "cycle_mode", "Mode"),
        Binding("o", "load_npy", "Load .npy", show=False),
        Binding("f1,question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    def action_help(self) -> None:
        """F1: the same help as the model screen; its last section is this view's keys."""
        from bntui.tui.screens.help_screen import HelpScreen  # Markdown is slow to import: on demand

        self.app.push_screen(HelpScreen())

    class Compared(Message):
        """Worker: both files were read and compared."""

        def __init__(self, comparison: ModelComparison) -> None:
            super().__init__()
            self.comparison = comparison

    class Failed(Message):
        """Worker: a file cannot be read; ``reason`` is one line for the user."""

        def __init__(self, reason: str) -> None:
            super().__init__()
            self.reason = reason

    class StepsComputed(Message):
        """Worker: ``source`` through each side of ``entry``: a computation, or why there is none."""

        def __init__(self, entry: Entry, source: InputSource, results: dict[str, Computation | None],
                     reasons: dict[str, str]) -> None:
            super().__init__()
            self.entry, self.source, self.results, self.reasons = entry, source, results, reasons

    entry: reactive[Entry | None] = reactive(None, init=False)
    channel: reactive[int] = reactive(0, init=False)
    parameter: reactive[str] = reactive(PARAMETERS[0][0], init=False)
    mode: reactive[str] = reactive(MODES[0], init=False)
    source: reactive[InputSource | None] = reactive(None, init=False)

    def __init__(self, first_path: str, second_path: str, *, pending: PendingRead | None = None,
                 second_pending: PendingRead | None = None) -> None:
        super().__init__()
        self.paths = (first_path, second_path)
        self.pending = (pending, second_pending)
        self.comparison: ModelComparison | None = None
        #: The steps shown, per side (None: not computed, or refused).
        self.computations: dict[str, Computation | None] = dict.fromkeys(SIDES)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Opening both models…", id="compare-files")
        with Horizontal(id="compare-body"):
            with Vertical(id="compare-sidebar"):
                yield LoadingIndicator(id="compare-loading")
                yield PairList(id="pair-list")
            with Vertical(id="compare-main"):
                yield PairDetails(id="pair-details")
                with TabbedContent(id="compare-tabs", initial="channels"):
                    with TabPane(TABS["channels"], id="channels"):
                        yield Tabs(*(Tab(heading, id=f"parameter-{name}") for name, heading in PARAMETERS),
                                   id="diff-parameter")
                        yield DiffSparklines(id="diff-sparklines")
                        yield Label("", id="diff-message")
                        yield ChannelDiffTable(id="diff-table")
                    with TabPane(TABS["steps"], id="steps"):
                        yield Label("", id="compare-channel-bar")
                        yield Static("", id="compare-input-line")
                        yield SideBySideSteps(id="side-by-side")
                    with TabPane(TABS["summary"], id="summary"), ScrollableContainer(id="compare-summary-scroll"):
                        yield Static("", id="compare-summary")
        yield InputBar(id="input-bar")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(PairList).display = False
        self.query_one("#compare-main").display = False
        # Reading children are forked here, in the main thread (forking from a thread can deadlock).
        reads = [pending or PendingRead(path) for pending, path in zip(self.pending, self.paths)]
        self.pending = (None, None)
        self.load(reads)

    # -- reading and comparing ---------------------------------------------------------------

    @work(thread=True, exclusive=True, group="load", name="compare")
    def load(self, reads: list[PendingRead]) -> None:
        """Wait for both reads (every one, before the first file's error is shown), then compare."""
        outcomes: list[ModelInfo | BntuiError] = []
        for read in reads:
            try:
                outcomes.append(read.result())
            except BntuiError as err:
                outcomes.append(err)
        errors = [outcome for outcome in outcomes if isinstance(outcome, BntuiError)]
        if errors:
            self.post_message(self.Failed(str(errors[0])))
            return
        first, second = outcomes
        assert isinstance(first, ModelInfo) and isinstance(second, ModelInfo)
        self.post_message(self.Compared(compare_models(first, second)))

    @on(Compared)
    def _compared(self, message: Compared) -> None:
        comparison = self.comparison = message.comparison
        self.query_one("#compare-loading").display = False
        names = self.file_names
        self.sub_title = f"{names[0]} ⟷ {names[1]}"
        self.query_one("#compare-files", Static).update(self._files_line(comparison))
        # The core's own text report, unwrapped (its tables scroll sideways instead of breaking).
        self.query_one("#compare-summary", Static).update(Text(comparison.to_text(), no_wrap=True))
        pair_list = self.query_one(PairList)
        pair_list.display = True
        self.query_one("#compare-main").display = True
        pair_list.show(comparison, *names)
        sidebar = self.query_one("#compare-sidebar")
        sidebar.styles.width = min(max(pair_list.wanted_width() + 4, SIDEBAR_MIN),
                                   int(self.size.width * SIDEBAR_MAX_SHARE))
        self.set_focus(pair_list)
        if not pair_list.entries:
            self.query_one(PairDetails).display = False
            self.query_one("#diff-message", Label).update("Neither file has BatchNormalization layers.")

    @on(Failed)
    def _failed(self, message: Failed) -> None:
        self.app.switch_screen(ErrorScreen("Cannot open this file", message.reason))

    @property
    def file_names(self) -> tuple[str, str]:
        """The two files' names; their folders too where the names alone are the same."""
        first, second = (Path(path) for path in self.paths)
        return (first.name, second.name) if first.name != second.name else (str(first), str(second))

    def _files_line(self, comparison: ModelComparison) -> str:
        """A and B (name, format, Keras version, BN layer count), and how many layers were matched."""
        parts = [f"{label} {name} ({model.format}, {model.keras_version or 'unknown'}, {len(model.layers)} BN)"
                 for label, name, model in zip("AB", self.file_names, (comparison.first, comparison.second))]
        return " · ".join([*parts, f"{len(comparison.pairs)} matched, {len(comparison.unmatched)} unmatched"])

    # -- the selection flowing down -------------------------------------------------------------

    def watch_entry(self, entry: Entry | None) -> None:
        self.query_one(PairDetails).entry = entry
        self.channel = 0
        self._show_parameter()
        self._recompute()

    def watch_parameter(self) -> None:
        self.query_one("#diff-parameter", Tabs).active = f"parameter-{self.parameter}"
        self._show_parameter()

    def watch_channel(self, channel: int) -> None:
        self.query_one(ChannelDiffTable).show_channel(channel)
        self._update_steps_view()

    def watch_mode(self) -> None:
        self._update_steps_view()

    def watch_source(self) -> None:
        self._recompute()

    def _show_parameter(self) -> None:
        entry = self.entry
        pair = entry if isinstance(entry, LayerPair) else None
        self.query_one(DiffSparklines).show(pair)
        table = self.query_one(ChannelDiffTable)
        table.show(pair, self.parameter)
        table.show_channel(self.channel)  # another parameter of the same channel
        message = ""
        if entry is not None and pair is None:
            message = "No partner in the other file: nothing to compare per channel."
        elif pair is not None and pair.parameters is None:
            message = (f"{pair.first.channels} channels against {pair.second.channels}: "
                       "no per-channel comparison.")
        label = self.query_one("#diff-message", Label)
        label.update(message)
        label.display = bool(message)

    @property
    def channel_count(self) -> int:
        """Channels of the entry shown (the larger side, where the counts differ)."""
        if self.entry is None:
            return 1
        return max(layer.channels for layer in entry_layers(self.entry).values() if layer is not None)

    def _update_steps_view(self) -> None:
        self.query_one(SideBySideSteps).set_view(self.channel, self.mode)
        if self.entry is not None:
            self.query_one("#compare-channel-bar", Label).update(
                f"channel {self.channel} of 0-{self.channel_count - 1} (n/p) · {self.mode} (m)")

    def _recompute(self) -> None:
        """Show the input through both layers of the entry (in a worker: an input can be large)."""
        entry, source = self.entry, self.source
        self.computations = dict.fromkeys(SIDES)
        self._update_steps_view()
        if entry is None:
            return
        steps = self.query_one(SideBySideSteps)
        line = self.query_one("#compare-input-line", Static)
        layers = entry_layers(entry)
        for side, name in zip(SIDES, self.file_names):
            layer = layers[side]
            status = "" if layer is not None else "no partner in this file"
            steps.show_side(side, f"{name} · {layer.path if layer else '-'}", None, status)
        if source is None:
            line.update("")
            return
        line.update(f"{source.describe()} · computing…")
        self.run_steps(entry, source)

    @work(thread=True, exclusive=True, group="steps", name="steps")
    def run_steps(self, entry: Entry, source: InputSource) -> None:
        """``source`` through each side's layer: its computation, or why it does not fit."""
        results: dict[str, Computation | None] = {}
        reasons: dict[str, str] = {}
        for side, layer in entry_layers(entry).items():
            results[side] = None
            if layer is None:
                reasons[side] = "no partner in this file"
                continue
            try:
                results[side] = compute_for(layer, source)
            except BntuiError as err:
                reasons[side] = f"not computed: {err}"
        self.post_message(self.StepsComputed(entry, source, results, reasons))

    @on(StepsComputed)
    def _steps_computed(self, message: StepsComputed) -> None:
        if message.entry is not self.entry or message.source is not self.source:
            return
        self.computations = dict(message.results)
        steps = self.query_one(SideBySideSteps)
        layers = entry_layers(message.entry)
        for side, name in zip(SIDES, self.file_names):
            layer = layers[side]
            steps.show_side(side, f"{name} · {layer.path if layer else '-'}", message.results[side],
                            message.reasons.get(side, ""))
        notes = value_notes(message.source.text) if message.source.kind == "typed" else []
        self.query_one("#compare-input-line", Static).update(" · ".join([message.source.describe(), *notes]))
        refused = [reason for side, reason in message.reasons.items() if layers[side] is not None]
        if refused and not any(message.results.values()):
            # Neither side can use it: the reason under the box, and the keyboard back in it.
            self.query_one(InputBar).error = refused[0].removeprefix("not computed: ")
            self.action_focus_input()
        else:
            self.query_one(InputBar).error = ""

    # -- messages coming up ------------------------------------------------------------------------

    @on(PairList.EntryHighlighted)
    def _entry_highlighted(self, event: PairList.EntryHighlighted) -> None:
        entries = self.query_one(PairList).entries
        if 0 <= event.index < len(entries) and entries[event.index] is not self.entry:
            self.entry = entries[event.index]

    @on(Tabs.TabActivated, "#diff-parameter")
    def _parameter_tab(self, event: Tabs.TabActivated) -> None:
        event.stop()
        if event.tab.id is not None:
            self.parameter = event.tab.id.removeprefix("parameter-")

    @on(TabbedContent.TabActivated, "#compare-tabs")
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        """Below 100 columns the Steps tab takes the whole width (the stylesheet hides the list)."""
        self.set_class(event.pane.id == "steps", "-steps-tab")

    @on(ChannelDiffTable.ChannelHighlighted)
    def _channel_highlighted(self, event: ChannelDiffTable.ChannelHighlighted) -> None:
        self.channel = event.channel

    @on(ChannelDiffTable.ChannelChosen)
    def _channel_chosen(self, event: ChannelDiffTable.ChannelChosen) -> None:
        self.channel = event.channel
        self.action_show_tab("steps")

    @on(InputBar.ValuesSubmitted)
    def _values_submitted(self, event: InputBar.ValuesSubmitted) -> None:
        self.submit(event.text)

    @on(InputBar.Left)
    def _input_left(self) -> None:
        self.action_focus_list()

    # -- operations (also for the palette and tests) ------------------------------------------------

    def submit(self, text: str) -> None:
        """Use typed ``text`` as the input through both layers, and show the steps."""
        if not text.strip():
            self.query_one(InputBar).error = "input is empty: type numbers such as 1, 5"
            return
        self.query_one(InputBar).error = ""
        self.source = InputSource.typed(text)
        self.action_show_tab("steps")

    def jump_to(self, index: int) -> None:
        """Show entry ``index`` of the list (a pair, or a layer without a partner)."""
        self.query_one(PairList).select_index(index)

    def commands(self) -> Iterable[PanelCommand]:
        """The palette: every pair and unmatched layer, the parameters, the modes, the tabs."""
        for index, entry in enumerate(self.query_one(PairList).entries):
            yield PanelCommand(f"Layer: {entry_label(entry)}", "Show this pair", partial(self.jump_to, index))
        for name, heading in PARAMETERS:
            yield PanelCommand(f"Parameter: {heading}", "Compare this parameter per channel",
                               partial(self._set_parameter, name))
        for mode in MODES:
            yield PanelCommand(f"Mode: {mode}", f"Show {mode} steps on both sides", partial(self._set_mode, mode))
        for tab, title in TABS.items():
            yield PanelCommand(f"Tab: {title}", f"Show the {title} tab", partial(self.action_show_tab, tab))
        yield PanelCommand("Load .npy", "Use input values from a .npy file on both sides", self.action_load_npy)

    def _set_parameter(self, name: str) -> None:
        self.parameter = name

    def _set_mode(self, mode: str) -> None:
        self.mode = mode

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keys that type characters are off while the input box has the keyboard."""
        return not (action in _TYPING_KEYS and isinstance(self.focused, Input))

    def action_focus_input(self) -> None:
        self.set_focus(self.query_one(InputBar).input)

    def action_focus_list(self) -> None:
        if self.has_class("-narrow", "-steps-tab"):  # the list is hidden there: back to the channels
            self.query_one(TabbedContent).active = "channels"
        self.set_focus(self.query_one(PairList))

    def action_show_tab(self, tab: str) -> None:
        """Switch tab and put the keyboard in it, so arrows act on what is shown."""
        self.query_one(TabbedContent).active = tab
        self.set_focus(self.query_one(_FOCUS[tab]))

    def action_next_parameter(self) -> None:
        names = [name for name, _heading in PARAMETERS]
        self.parameter = names[(names.index(self.parameter) + 1) % len(names)]

    def action_channel(self, step: int) -> None:
        self.channel = (self.channel + step) % self.channel_count

    def action_cycle_mode(self) -> None:
        self.mode = MODES[(MODES.index(self.mode) + 1) % len(MODES)]

    def action_load_npy(self) -> None:
        def loaded(path: Path | None) -> None:
            if path is None:
                return
            try:
                self.source = InputSource.from_npy(path, load_npy(path))
                self.action_show_tab("steps")
            except BntuiError as err:
                self.query_one(InputBar).error = str(err)

        self.app.push_screen(NpyDialog(), loaded)

    def action_quit(self) -> None:
        self.app.exit(0)
