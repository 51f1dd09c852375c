"""What every panel of the model screen is: a tab that receives the :class:`Selection`.

A panel owns its widgets, its workers (which post typed messages to the panel itself), its
keys and its palette commands. The screen only hands it the selection and asks it for
:meth:`Panel.commands` and :meth:`Panel.export`; a new analysis is one module with one
:class:`Panel` subclass, added to :data:`bntui.tui.panels.PANELS`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual.binding import Binding
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widget import Widget

from bntui.tui.state import Selection

if TYPE_CHECKING:
    from bntui.tui.tensorflow_process import TensorFlowProcess


@dataclass(frozen=True)
class PanelContext:
    """What a panel may need from its host besides the selection: the file, and TensorFlow
    (``verify`` False: the check is off, as in tests and benchmarks)."""

    model_path: str
    tensorflow: TensorFlowProcess
    verify: bool


@dataclass(frozen=True)
class PanelCommand:
    """One entry of the command palette: its title, a line of help, and what it does."""

    title: str
    help: str
    run: Callable[[], object]


class Panel(Vertical):
    """Base of the screen's tabs. Subclasses set the class variables and redraw in
    ``watch_selection``."""

    #: The tab's title, its id (also the panel's CSS id prefix) and the key that shows it.
    TAB_TITLE: ClassVar[str] = ""
    TAB_ID: ClassVar[str] = ""
    TAB_KEY: ClassVar[str] = ""
    #: Keys that work anywhere on the screen (not only with focus inside the panel); their
    #: actions run on the panel. Keys that need the panel's focus go in ``BINDINGS`` as usual.
    SCREEN_BINDINGS: ClassVar[list[Binding]] = []

    selection: reactive[Selection] = reactive(Selection, init=False)

    def __init__(self, context: PanelContext, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.context = context

    def commands(self) -> Iterable[PanelCommand]:
        """The panel's palette commands."""
        return ()

    def export(self, kind: str, directory: Path) -> list[Path]:
        """Write what the panel shows as new files (``kind`` is "csv" or "json")."""
        return []

    def write_file(self, write: Callable[[Path], Path], directory: Path | None) -> Path | None:
        """Run ``write`` on ``directory`` (the current folder by default) and tell the user what
        was written, or why nothing was: the one way a palette export reports."""
        try:
            path = write(directory or Path.cwd())
        except OSError as err:
            self.notify(f"Export failed: {err.strerror or err}", severity="error")
            return None
        self.notify(f"Wrote {path.name} in {path.parent}", title="Exported")
        return path

    def focus_target(self) -> Widget:
        """Where the keyboard goes when the tab is shown."""
        return self
