"""TensorFlow for the TUI, in a separate process.

Importing TensorFlow loads shared libraries of hundreds of megabytes while holding
Python's GIL, which would freeze the interface for seconds if done in a thread. A single
spawned worker process imports it instead; the TUI's thread workers wait on it without
holding the GIL, so every key keeps its instant response. The child silences its own
stderr, so TensorFlow's start-up log lines never land on the screen.
"""

from __future__ import annotations

import multiprocessing
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TypeVar

from bntui import tf_bridge
from bntui.core.steps import Computation

T = TypeVar("T")


class TensorFlowProcess:
    """Starts on first use; :meth:`close` ends it."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=tf_bridge.silence_stderr,
            )
        return self._pool

    @property
    def started(self) -> bool:
        """True once the process has been asked for anything (TensorFlow may still be loading)."""
        return self._pool is not None

    def _run(self, function: Callable[..., T], *args: object) -> T:
        with self._lock:
            first = self._pool is None
            if first:
                # Textual replaces sys.stderr with a capture object without a real file
                # descriptor; multiprocessing hands sys.stderr's descriptor to the helper
                # processes it starts, so give it the real one while they start.
                saved, sys.stderr = sys.stderr, sys.__stderr__
            try:
                future = self._executor().submit(function, *args)
            finally:
                if first:
                    sys.stderr = saved
        return future.result()

    def verify(self, computation: Computation) -> tf_bridge.Verification:
        """Blocking: run :func:`tf_bridge.verify` in the TensorFlow process."""
        return self._run(tf_bridge.verify, computation)

    def capture(self, model_path: str | Path, layer_path: str, spec: str) -> tf_bridge.Capture:
        """Blocking: run :func:`tf_bridge.capture` (safe mode) in the TensorFlow process."""
        return self._run(tf_bridge.capture, str(model_path), layer_path, spec)

    def close(self) -> None:
        """Stop the process at once, even in the middle of importing TensorFlow: quitting
        must not wait seconds for an import nobody needs any more."""
        if self._pool is not None:
            # ProcessPoolExecutor has no public "terminate"; its worker processes are kept in
            # ``_processes`` (unchanged since Python 3.2).
            processes = list(getattr(self._pool, "_processes", {}).values())
            self._pool.shutdown(wait=False, cancel_futures=True)
            for process in processes:
                process.terminate()
            self._pool = None
