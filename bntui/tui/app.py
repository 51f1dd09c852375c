"""The Textual application, built by :func:`make_app` for the CLI and the tests alike."""

from __future__ import annotations

from textual.app import App

from bntui.core.guarded_open import PendingRead
from bntui.tui.screens.compare_screen import CompareScreen
from bntui.tui.screens.main_screen import MainScreen
from bntui.tui.tensorflow_process import TensorFlowProcess

#: What the bundled demo computes at once, so its first screen answers the seed question.
DEMO_INPUT = "1, 5"


class BntuiApp(App[int]):
    """Hosts one :class:`MainScreen` over one model file, or a :class:`CompareScreen` over two,
    and the TensorFlow process."""

    CSS_PATH = "bntui.tcss"
    TITLE = "bntui"
    # Below 100 columns the stylesheet narrows the sidebar and drops borders (80x24 works).
    # (Textual declares these as instance attributes, so they cannot be ClassVar here.)
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]  # noqa: RUF012
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]  # noqa: RUF012

    def __init__(self, model_path: str, *, verify: bool = True, pending: PendingRead | None = None,
                 initial_input: str | None = None, compare_path: str | None = None,
                 compare_pending: PendingRead | None = None) -> None:
        super().__init__()
        self.model_path = model_path
        self.compare_path = compare_path
        self.compare_pending = compare_pending
        self.verify = verify
        self.pending = pending
        self.initial_input = initial_input
        self.tensorflow = TensorFlowProcess()
        # Before Textual takes over sys.stderr (see bntui.tui.tensorflow_process).
        TensorFlowProcess.prepare()

    def on_mount(self) -> None:
        if self.compare_path is not None:
            self.push_screen(CompareScreen(self.model_path, self.compare_path, pending=self.pending,
                                           second_pending=self.compare_pending))
            return
        self.push_screen(MainScreen(self.model_path, tensorflow=self.tensorflow, verify=self.verify,
                                    pending=self.pending, initial_input=self.initial_input))

    def on_unmount(self) -> None:
        self.tensorflow.close()


def make_app(model_path: str, *, verify: bool = True, pending: PendingRead | None = None,
             initial_input: str | None = None, compare_path: str | None = None,
             compare_pending: PendingRead | None = None) -> BntuiApp:
    """The single factory for the app (CLI and tests).

    ``verify=False`` skips TensorFlow; ``pending`` is a read the caller already started;
    ``initial_input`` is computed as soon as the first layer is shown (the demo passes
    :data:`DEMO_INPUT`). With ``compare_path`` the app opens the compare view of the two files
    instead (``bntui A B``), ``compare_pending`` being the second file's read already started.
    """
    return BntuiApp(model_path, verify=verify, pending=pending, initial_input=initial_input,
                    compare_path=compare_path, compare_pending=compare_pending)
