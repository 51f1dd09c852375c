"""The model screen: the layer tree, the panels (one tab each) and the input bar.

It owns one thing, the :class:`Selection` (model, layer, channel, input), and hands it down
to every panel in :meth:`watch_selection`; panels and widgets send messages up when the user
picks a layer, a channel or an input. What a panel computes, and its keys and commands,
stay in the panel (:mod:`bntui.tui.panels`); the palette's commands are in
:mod:`bntui.tui.screens.main_commands`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.command import Provider
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, LoadingIndicator, TabbedContent, TabPane

from bntui.core import BntuiError, ModelInfo
from bntui.core.guarded_open import PendingRead
from bntui.core.input_parse import load_npy
from bntui.core.model import BNLayer
from bntui.core.steps import Computation
from bntui.tui.panels import PANELS, DataPanel, Panel, PanelCommand, PanelContext, StepsPanel
from bntui.tui.screens.channel_dialog import ChannelDialog
from bntui.tui.screens.error_screen import ErrorScreen
from bntui.tui.screens.main_commands import LayerCommands, ScreenCommands
from bntui.tui.screens.npy_dialog import NpyDialog
from bntui.tui.state import InputSource, Selection
from bntui.tui.tensorflow_process import TensorFlowProcess
from bntui.tui.widgets.diagnostics_list import DiagnosticsList
from bntui.tui.widgets.input_bar import InputBar
from bntui.tui.widgets.layer_tree import LayerTree
from bntui.tui.widgets.model_summary import ModelSummary
from bntui.tui.widgets.parameter_table import ParameterTable

#: The sidebar is fitted to the longest layer name, up to this share of the screen width;
#: ``[`` and ``]`` then narrow or widen it by SIDEBAR_STEP columns, up to SIDEBAR_LIMIT_SHARE.
SIDEBAR_MAX_SHARE = 0.4
SIDEBAR_MIN = 16
SIDEBAR_STEP = 4
SIDEBAR_LIMIT_SHARE = 0.7
#: Actions bound to printable keys: off while the input box has the keyboard, so the footer
#: shows only what works there (Escape, F1, ctrl+p).
_TYPING_KEYS = {"focus_input", "focus_layers", "channel", "goto_channel", "export", "load_npy", "quit", "show_tab",
                "panel", "sidebar"}


def _panel_bindings() -> list[Binding]:
    """Every panel's tab key, and its screen-wide keys with their actions sent to the panel."""
    bindings = [Binding(panel.TAB_KEY, f"show_tab({panel.TAB_ID!r})", f"{panel.TAB_TITLE} tab", show=False)
                for panel in PANELS]
    for panel in PANELS:
        bindings += [Binding(b.key, f"panel({panel.TAB_ID!r}, {b.action!r})", b.description, show=b.show)
                     for b in panel.SCREEN_BINDINGS]
    return bindings


class MainScreen(Screen[None]):
    """Browse the BN layers of one model file and compute inputs through them."""

    COMMANDS: ClassVar[set[type[Provider] | Callable[[], type[Provider]]]] = {LayerCommands, ScreenCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        # priority: handled as the key arrives, so the key typed right after it already goes
        # to the input box (check_action turns it off while typing there, so "i" is typed)
        Binding("i", "focus_input", "Input", priority=True),
        Binding("l", "focus_layers", "Layers"),
        Binding("n", "channel(1)", "Next channel", show=False),
        Binding("p", "channel(-1)", "Previous channel", show=False),
        Binding("g", "goto_channel", "Go to channel", show=False),
        Binding("e", "export('csv')", "Export"),
        Binding("f1,question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
        Binding("o", "load_npy", "Load .npy", show=False),
        Binding("left_square_bracket", "sidebar(-1)", "Narrower layer list", show=False),
        Binding("right_square_bracket", "sidebar(1)", "Wider layer list", show=False),
        *_panel_bindings(),
    ]

    class ModelLoaded(Message):
        """Worker: the file was read."""

        def __init__(self, model: ModelInfo) -> None:
            super().__init__()
            self.model = model

    class ModelFailed(Message):
        """Worker: the file cannot be read; ``reason`` is one line for the user."""

        def __init__(self, reason: str) -> None:
            super().__init__()
            self.reason = reason

    selection: reactive[Selection] = reactive(Selection, init=False)

    def __init__(self, model_path: str, *, tensorflow: TensorFlowProcess, verify: bool = True,
                 pending: PendingRead | None = None, initial_input: str | None = None) -> None:
        super().__init__()
        self.model_path = model_path
        self.pending = pending
        self.context = PanelContext(model_path, tensorflow, verify)
        self.initial_input = initial_input

    def compose(self) -> ComposeResult:
        yield Header()
        yield ModelSummary(id="summary")
        with Horizontal(id="body"):
            with Vertical(id="sidebar"):
                yield LoadingIndicator(id="loading")
                yield LayerTree(id="layers")
            with TabbedContent(id="tabs", initial=PANELS[0].TAB_ID):
                for panel in PANELS:
                    with TabPane(panel.TAB_TITLE, id=panel.TAB_ID):
                        yield panel(self.context, id=f"{panel.TAB_ID}-panel")
        yield InputBar(id="input-bar")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(LayerTree).display = False
        pending, self.pending = self.pending or PendingRead(self.model_path), None
        self.load_model(pending)

    # -- what tests, the palette and the benchmarks read ---------------------------------

    @property
    def panels(self) -> list[Panel]:
        return list(self.query(Panel))

    def panel(self, tab_id: str) -> Panel:
        return self.query_one(f"#{tab_id}-panel", Panel)

    @property
    def model(self) -> ModelInfo | None:
        return self.selection.model

    @property
    def bn_layer(self) -> BNLayer | None:
        return self.selection.layer

    @property
    def channel(self) -> int:
        return self.selection.channel

    @property
    def steps(self) -> StepsPanel:
        return self.query_one(StepsPanel)

    @property
    def computation(self) -> Computation | None:
        return self.steps.computation

    @property
    def mode(self) -> str:
        return self.steps.mode

    # -- reading the file ------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="load", name="load")
    def load_model(self, pending: PendingRead) -> None:
        """Wait for the read off the UI thread: the first screen is up before this finishes.
        The reading child was forked in the main thread (forking from a thread can deadlock)."""
        try:
            self.post_message(self.ModelLoaded(pending.result()))
        except BntuiError as err:
            self.post_message(self.ModelFailed(str(err)))

    @on(ModelLoaded)
    def _model_loaded(self, message: ModelLoaded) -> None:
        model = message.model
        self.query_one("#loading").display = False
        tree = self.query_one(LayerTree)
        tree.display = True
        self.query_one(ModelSummary).model = model
        self.sub_title = Path(model.path).name
        self.selection = Selection(model=model)
        if not model.layers:
            self.steps.show_message("This model has no BatchNormalization layers.")
            return
        tree.show_model(model)
        sidebar = self.query_one("#sidebar")
        sidebar.styles.width = min(max(tree.wanted_width() + 3, SIDEBAR_MIN), int(self.size.width * SIDEBAR_MAX_SHARE))
        self.set_focus(tree)
        self.selection = Selection(model=model, layer=model.layers[0])
        if self.initial_input:
            self.submit(self.initial_input)

    @on(ModelFailed)
    def _model_failed(self, message: ModelFailed) -> None:
        self.app.switch_screen(ErrorScreen("Cannot open this file", message.reason))

    # -- the selection flowing down ----------------------------------------------------------

    def watch_selection(self, selection: Selection) -> None:
        for panel in self.panels:
            panel.selection = selection

    # -- messages coming up ------------------------------------------------------------------

    @on(LayerTree.LayerSelected)
    def _layer_selected(self, event: LayerTree.LayerSelected) -> None:
        model = self.selection.model
        if model is not None and (self.bn_layer is None or self.bn_layer.path != event.path):
            self.selection = self.selection.with_layer(model.find(event.path))

    @on(InputBar.ValuesSubmitted)
    def _values_submitted(self, event: InputBar.ValuesSubmitted) -> None:
        self.submit(event.text)

    @on(InputBar.Left)
    def _input_left(self) -> None:
        self.action_focus_layers()

    @on(StepsPanel.InputAccepted)
    def _input_accepted(self) -> None:
        self.query_one(InputBar).error = ""

    @on(StepsPanel.InputRefused)
    def _input_refused(self, event: StepsPanel.InputRefused) -> None:
        """The message goes under the box, and the keyboard back into it, to correct the values."""
        self.query_one(InputBar).error = event.reason
        self.action_focus_input()

    @on(StepsPanel.InputCaptured)
    def _input_captured(self, event: StepsPanel.InputCaptured) -> None:
        self.use_input(event.source)

    @on(ParameterTable.ChannelChosen)
    def _channel_chosen(self, event: ParameterTable.ChannelChosen) -> None:
        self.selection = self.selection.with_channel(event.channel)
        self.action_show_tab(StepsPanel.TAB_ID)

    @on(DataPanel.Left)
    def _data_left(self) -> None:
        self.action_focus_layers()

    @on(DataPanel.StepsRequested)
    def _steps_requested(self, event: DataPanel.StepsRequested) -> None:
        """The Data tab's layer at its worst channel, with the input that reached it there."""
        self.jump_to(event.path, event.channel)
        self.use_input(event.source)

    @on(DiagnosticsList.DiagnosticChosen)
    def _diagnostic_chosen(self, event: DiagnosticsList.DiagnosticChosen) -> None:
        self.jump_to(event.path, event.channel)
        self.action_show_tab(StepsPanel.TAB_ID)

    # -- operations (also used by the command palette and tests) -----------------------------

    def submit(self, text: str) -> None:
        """Use typed ``text`` as the input from now on, and compute it."""
        if self.bn_layer is None:
            self.query_one(InputBar).error = "no BatchNormalization layer to compute"
            return
        if not text.strip():
            self.query_one(InputBar).error = "input is empty: type numbers such as 1, 5"
            return
        self.use_input(InputSource.typed(text))

    def use_input(self, source: InputSource) -> None:
        """Make ``source`` the input and show its steps. An input that was not typed empties the
        box, which would otherwise show old typed values that the steps no longer use."""
        if source.kind != "typed":
            bar = self.query_one(InputBar)
            bar.input.value, bar.error = "", ""
        self.selection = self.selection.with_input(source)
        self.action_show_tab(StepsPanel.TAB_ID)

    def run_capture(self, layer: BNLayer, spec: str) -> None:
        """Capture ``layer``'s real input by running the model on ``spec`` (see the Steps panel)."""
        self.steps.run_capture(layer, spec)

    def jump_to(self, path: str, channel: int | None = None) -> None:
        """Show the layer at ``path`` (and a channel of it)."""
        model = self.selection.model
        if model is None:
            return
        self.query_one(LayerTree).select_path(path)
        selection = self.selection if self.bn_layer is not None and self.bn_layer.path == path else \
            self.selection.with_layer(model.find(path))
        self.selection = selection.with_channel(channel) if channel is not None else selection

    def commands(self) -> Iterable[PanelCommand]:
        """The palette's commands: the screen's own, then every panel's."""
        yield PanelCommand("Export CSV", "Write the parameter and step tables as CSV", self.action_export)
        yield PanelCommand("Export JSON", "Write the layer and its steps as JSON", lambda: self.action_export("json"))
        yield PanelCommand("Go to channel", "Type a channel number", self.action_goto_channel)
        yield PanelCommand("Load .npy", "Use input values from a .npy file", self.action_load_npy)
        yield PanelCommand("Help", "Keys, the formula, inference and training", self.action_help)
        for panel in self.panels:
            yield from panel.commands()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keys that type characters are off while the input box has the keyboard."""
        return not (action in _TYPING_KEYS and isinstance(self.focused, Input))

    async def action_panel(self, tab_id: str, action: str) -> None:
        """Run a panel's screen-wide key (see :attr:`Panel.SCREEN_BINDINGS`)."""
        await self.app.run_action(action, self.panel(tab_id))

    def action_focus_input(self) -> None:
        # set_focus at once (not focus(), which waits a refresh): the key typed right after
        # ``i`` must land in the box, not in the widget that had the keyboard before.
        self.set_focus(self.query_one(InputBar).input)

    def action_focus_layers(self) -> None:
        self.set_focus(self.query_one(LayerTree))

    def action_sidebar(self, step: int) -> None:
        """Narrow or widen the layer list; its names are refitted to the new width."""
        sidebar = self.query_one("#sidebar")
        width = sidebar.outer_size.width + step * SIDEBAR_STEP
        sidebar.styles.width = max(SIDEBAR_MIN // 2, min(width, int(self.size.width * SIDEBAR_LIMIT_SHARE)))
        sidebar.styles.max_width = None

    def action_channel(self, step: int) -> None:
        self.selection = self.selection.with_channel(self.selection.channel + step)

    def action_goto_channel(self) -> None:
        layer = self.bn_layer
        if layer is None:
            return

        def chosen(channel: int | None) -> None:
            if channel is not None and self.bn_layer is layer:
                self.selection = self.selection.with_channel(channel)

        self.app.push_screen(ChannelDialog(layer.channels), chosen)

    def action_show_tab(self, tab: str) -> None:
        """Switch tab and put the keyboard in it, so arrows and Enter act on what is shown."""
        self.query_one(TabbedContent).active = tab
        self.set_focus(self.panel(tab).focus_target())

    def action_quit(self) -> None:
        self.app.exit(0)

    def action_help(self) -> None:
        from bntui.tui.screens.help_screen import HelpScreen  # Markdown is slow to import: only on demand

        self.app.push_screen(HelpScreen())

    def action_export(self, kind: str = "csv", directory: Path | None = None) -> list[Path]:
        """Write what every panel shows (parameters; steps, once computed) as new files."""
        if self.bn_layer is None:
            self.notify("Nothing to export: no layer is shown.", severity="warning")
            return []
        written: list[Path] = []
        try:
            for panel in self.panels:
                written += panel.export(kind, directory or Path.cwd())
        except OSError as err:
            self.notify(f"Export failed: {err.strerror or err}", severity="error")
            return written
        names = " and ".join(path.name for path in written)
        self.notify(f"Wrote {names} in {written[0].parent}", title="Exported")
        return written

    def action_load_npy(self) -> None:
        def loaded(path: Path | None) -> None:
            if path is None:
                return
            try:
                self.use_input(InputSource.from_npy(path, load_npy(path)))
            except BntuiError as err:
                self.query_one(InputBar).error = str(err)

        self.app.push_screen(NpyDialog(), loaded)
