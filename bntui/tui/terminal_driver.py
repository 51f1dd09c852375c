"""A Textual driver that writes the screen to its own copy of the terminal's descriptor.

Textual draws on file descriptor 2. TensorFlow prints C++ start-up lines straight to fd 2
(they ignore ``TF_CPP_MIN_LOG_LEVEL``), which would scribble over the TUI; the bridge
silences fd 2 while TensorFlow imports. Drawing through a duplicate descriptor keeps the
screen live during those seconds, while real Python errors still reach fd 2 as usual.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from textual.driver import Driver


def terminal_driver_class() -> type[Driver] | None:
    """The driver to use, or None (Textual's default) where it does not apply."""
    if sys.platform == "win32":
        return None
    from textual.drivers.linux_driver import LinuxDriver

    class DuplicateFdDriver(LinuxDriver):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._file = os.fdopen(os.dup(self._file.fileno()), "w", encoding="utf-8", errors="replace")

    return DuplicateFdDriver
