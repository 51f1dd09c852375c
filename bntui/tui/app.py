"""The Textual application, built by :func:`make_app` for the CLI and the tests alike."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

from textual.app import App, SystemCommand
from textual.screen import Screen

from bntui.core.guarded_open import PendingRead
from bntui.tui.commands import LayerCommands
from bntui.tui.tensorflow_process import TensorFlowProcess
from bntui.tui.screens.main_screen import MainScreen


class BntuiApp(App[int]):
    """Hosts one :class:`MainScreen` over one model file."""

    CSS_PATH = "bntui.tcss"
    TITLE = "bntui"
    COMMANDS = App.COMMANDS | {LayerCommands}
    # Below 100 columns the stylesheet narrows the sidebar and drops borders (80x24 works).
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]

    def __init__(self, model_path: str, *, verify: bool = True, pending: PendingRead | None = None) -> None:
        super().__init__()
        self.model_path = model_path
        self.verify = verify
        self.pending = pending
        self.tensorflow = TensorFlowProcess()

    def on_mount(self) -> None:
        self.push_screen(MainScreen(self.model_path, verify=self.verify, pending=self.pending))

    def on_unmount(self) -> None:
        self.tensorflow.close()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if isinstance(screen, MainScreen):
            for mode in ("both", "inference", "training"):
                yield SystemCommand(f"Mode: {mode}", f"Show {mode} steps", partial(screen.set_mode, mode))
            yield SystemCommand("Export CSV", "Write the parameter and step tables as CSV", screen.action_export)
            yield SystemCommand("Export JSON", "Write the layer and its steps as JSON",
                                partial(screen.action_export, "json"))
            yield SystemCommand("Load .npy", "Use input values from a .npy file", screen.action_load_npy)
            yield SystemCommand("Capture input", "Run the whole model and use what really reaches this layer",
                                screen.action_capture)
            yield SystemCommand("Help", "Keys, the formula, inference and training", screen.action_help)


def make_app(model_path: str, *, verify: bool = True, pending: PendingRead | None = None) -> BntuiApp:
    """The single factory for the app (CLI and tests).

    ``verify=False`` skips TensorFlow; ``pending`` is a read the caller already started.
    """
    return BntuiApp(model_path, verify=verify, pending=pending)
