"""TensorFlow for the TUI, in a separate process started through multiprocessing's public API.

Importing TensorFlow loads shared libraries of hundreds of megabytes while holding Python's
GIL, which would freeze the interface for seconds if done in a thread. One spawned
``multiprocessing.Process`` imports it instead and answers requests over a ``Pipe``; the
TUI's thread workers wait on the pipe without holding the GIL, so every key keeps its
instant response. The child points its own stderr at the null device, so TensorFlow's
start-up log lines never land on the screen, and sends failures back with their traceback.

Spawning a process needs multiprocessing's resource tracker, which inherits the parent's
stderr descriptor. Textual replaces ``sys.stderr`` with an object whose ``fileno()`` is -1,
so :meth:`TensorFlowProcess.prepare` starts the tracker while the real stderr is in place:
the app calls it before Textual takes over the terminal, and nothing swaps the global
``sys.stderr`` later.
"""

from __future__ import annotations

import multiprocessing
import threading
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

    from bntui.core.steps import Computation

#: Seconds :meth:`TensorFlowProcess.close` waits for the terminated child before killing it.
STOP_TIMEOUT = 2.0


class Verdict(Protocol):
    """What the TUI reads of TensorFlow's verification (``bntui.tf_bridge.Verification``)."""

    @property
    def agrees(self) -> bool: ...

    def summary(self) -> str: ...


class CapturedInput(Protocol):
    """What the TUI reads of a capture (``bntui.tf_bridge.Capture``)."""

    @property
    def layer_input(self) -> np.ndarray: ...


class TensorFlowFailed(Exception):
    """TensorFlow raised something other than bntui's own errors; ``remote_traceback`` is
    the child's traceback, so a bug on that side is never reduced to one line."""

    def __init__(self, message: str, remote_traceback: str) -> None:
        super().__init__(message)
        self.remote_traceback = remote_traceback


def _serve(connection: Connection) -> None:
    """The child: answer ``(name, args)`` requests until the pipe closes."""
    from bntui import tf_bridge

    tf_bridge.silence_stderr()
    handlers: dict[str, Callable[..., Any]] = {"verify": tf_bridge.verify, "capture": tf_bridge.capture}
    while True:
        try:
            name, args = connection.recv()
        except EOFError:
            return
        try:
            reply: tuple[str, Any] = ("ok", handlers[name](*args))
        except tf_bridge.CaptureUnavailable as err:
            reply = ("unavailable", (tf_bridge.CaptureUnavailable, str(err)))
        except tf_bridge.TensorFlowUnavailable as err:
            reply = ("unavailable", (tf_bridge.TensorFlowUnavailable, str(err)))
        except Exception as err:  # noqa: BLE001 - sent back whole, raised again in the parent
            reply = ("failed", (f"{type(err).__name__}: {err}", traceback.format_exc()))
        connection.send(reply)


class TensorFlowProcess:
    """Starts on first use, serves one request at a time; :meth:`close` ends it at once."""

    def __init__(self) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._process: BaseProcess | None = None
        self._connection: Connection | None = None
        self._lock = threading.Lock()

    @staticmethod
    def prepare() -> None:
        """Start multiprocessing's resource tracker now, while ``sys.stderr`` is the real one
        (see the module docstring). Cheap: it returns without waiting for the tracker."""
        from multiprocessing import resource_tracker

        resource_tracker.ensure_running()

    @property
    def started(self) -> bool:
        """True once the process has been started (TensorFlow may still be loading)."""
        return self._process is not None

    def _ensure_started(self) -> Connection:
        if self._connection is None:
            ours, theirs = self._context.Pipe()
            process = self._context.Process(target=_serve, args=(theirs,), name="bntui-tensorflow", daemon=True)
            process.start()
            theirs.close()  # only the child holds its end: its death is an EOF here
            self._process, self._connection = process, ours
        return self._connection

    def _call(self, name: str, *args: object) -> Any:
        from bntui.tf_bridge.keras_loader import TensorFlowUnavailable

        with self._lock:
            connection = self._ensure_started()
            try:
                connection.send((name, args))
                status, payload = connection.recv()
            except (EOFError, OSError):
                raise TensorFlowUnavailable("the TensorFlow process ended") from None
        if status == "ok":
            return payload
        if status == "unavailable":
            kind, message = payload
            raise kind(message)
        message, remote = payload
        raise TensorFlowFailed(message, remote)

    def verify(self, computation: Computation) -> Verdict:
        """Blocking: run :func:`bntui.tf_bridge.verify` in the TensorFlow process."""
        result: Verdict = self._call("verify", computation)
        return result

    def capture(self, model_path: str | Path, layer_path: str, spec: str) -> CapturedInput:
        """Blocking: run :func:`bntui.tf_bridge.capture` (safe mode) in the TensorFlow process."""
        result: CapturedInput = self._call("capture", str(model_path), layer_path, spec)
        return result

    def close(self) -> None:
        """Stop the process at once, even in the middle of importing TensorFlow: quitting must
        not wait seconds for an import nobody needs any more. A worker still waiting on the
        pipe gets an EOF and reports the process as ended."""
        process, self._process, self._connection = self._process, None, None
        if process is not None:
            process.terminate()
            process.join(STOP_TIMEOUT)
            if process.exitcode is None:
                process.kill()
