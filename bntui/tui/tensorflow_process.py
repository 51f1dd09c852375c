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

A drift pass runs for seconds to minutes, so it is the one request that talks while it works:
the child sends ``("progress", (done, total))`` lines before its answer, and the parent may
send ``("cancel", (request,))`` at any time; the child reads it between two batches and stops.
A cancel names its request, so one that arrives late never stops the next run.
"""

from __future__ import annotations

import itertools
import multiprocessing
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

    from bntui.core.analysis.drift import DriftResult
    from bntui.core.analysis.fold import LayerFold
    from bntui.core.model import BNLayer, FeedingLayer, ModelInfo
    from bntui.core.steps import Computation
    from bntui.tf_bridge.fold_check import FoldCheck

#: Seconds :meth:`TensorFlowProcess.close` waits for the terminated child before killing it.
STOP_TIMEOUT = 2.0
#: The child reports a drift's progress at most this often (seconds), and always at the end.
PROGRESS_INTERVAL = 0.05
#: Samples of the drift data fed again to capture one layer's input for the Steps view.
DRIFT_INPUT_SAMPLES = 8


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


class _ChildDrift:
    """The child's side of a drift: progress lines sent while it runs, a cancel read between
    batches, and the models it loaded kept for the layer inputs asked for afterwards."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.request = -1
        self.last_progress = 0.0
        self.models: dict[str, Any] = {}

    def progress(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done >= total or now - self.last_progress >= PROGRESS_INTERVAL:
            self.last_progress = now
            self.connection.send(("progress", (done, total)))

    def stop(self) -> bool:
        """True once the parent has cancelled this request (late cancels are dropped)."""
        stopped = False
        while self.connection.poll():
            name, args = self.connection.recv()
            stopped = stopped or (name == "cancel" and args == (self.request,))
        return stopped

    def measure(self, request: int, info: ModelInfo, data: str, batch_size: int, scale: float) -> DriftResult:
        from bntui.tf_bridge.drift import measure_drift

        self.request, self.last_progress = request, 0.0
        return measure_drift(info, data, batch_size=batch_size, scale=scale, progress=self.progress, stop=self.stop)

    def layer_input(self, model_path: str, layer_path: str, layer_name: str, call: int, data: str,
                    scale: float) -> np.ndarray:
        from bntui.tf_bridge.drift_inputs import layer_input_from_data
        from bntui.tf_bridge.keras_loader import load_whole_model

        if model_path not in self.models:
            self.models = {model_path: load_whole_model(model_path)}
        return layer_input_from_data(self.models[model_path], layer_path, layer_name, data, call=call, scale=scale,
                                     samples=DRIFT_INPUT_SAMPLES)


def _serve(connection: Connection) -> None:
    """The child: answer ``(name, args)`` requests until the pipe closes."""
    from bntui import tf_bridge
    from bntui.core.errors import BntuiError

    tf_bridge.silence_stderr()
    drift = _ChildDrift(connection)
    from bntui.tf_bridge.fold_check import check_fold, make_input

    def fold_check(layer: Any, feeding: Any, fold: Any, spec: str) -> Any:
        return check_fold(layer, feeding, fold, make_input(feeding, spec))

    handlers: dict[str, Callable[..., Any]] = {"verify": tf_bridge.verify, "capture": tf_bridge.capture,
                                               "drift": drift.measure, "drift_input": drift.layer_input,
                                               "fold_check": fold_check}
    while True:
        try:
            name, args = connection.recv()
        except EOFError:
            return
        if name == "cancel":
            continue  # its run had already ended
        try:
            reply: tuple[str, Any] = ("ok", handlers[name](*args))
        except BntuiError as err:  # bntui's own refusals keep their class
            reply = ("unavailable", (type(err), str(err)))
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
        # Guards sending and the drift in flight, so a cancel never interleaves with a request.
        self._send_lock = threading.Lock()
        self._requests = itertools.count()
        self._drift: tuple[int, threading.Event] | None = None
        self._drift_sent = False

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

    def _call(self, name: str, *args: object, progress: Callable[[int, int], None] | None = None) -> Any:
        with self._lock:
            return self._call_locked(name, *args, progress=progress)

    def _call_locked(self, name: str, *args: object, progress: Callable[[int, int], None] | None = None) -> Any:
        from bntui.tf_bridge.keras_loader import TensorFlowUnavailable

        connection = self._ensure_started()
        try:
            with self._send_lock:
                connection.send((name, args))
                self._drift_sent = name == "drift"
            while True:
                status, payload = connection.recv()
                if status != "progress":
                    break
                if progress is not None:
                    progress(*payload)
        except (EOFError, OSError):
            raise TensorFlowUnavailable("the TensorFlow process ended") from None
        finally:
            with self._send_lock:
                self._drift_sent = False
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

    def fold_check(self, layer: BNLayer, feeding: FeedingLayer, fold: LayerFold, spec: str = "random:0") -> FoldCheck:
        """Blocking: Keras runs the feeding layer + BN against the folded layer on ``spec``'s
        input (:func:`bntui.tf_bridge.fold_check.check_fold`), in the TensorFlow process."""
        result: FoldCheck = self._call("fold_check", layer, feeding, fold, spec)
        return result

    def capture(self, model_path: str | Path, layer_path: str, spec: str) -> CapturedInput:
        """Blocking: run :func:`bntui.tf_bridge.capture` (safe mode) in the TensorFlow process."""
        result: CapturedInput = self._call("capture", str(model_path), layer_path, spec)
        return result

    def drift(self, info: ModelInfo, data: str, *, batch_size: int = 32, scale: float = 1.0,
              progress: Callable[[int, int], None] | None = None) -> DriftResult | None:
        """Blocking: run :func:`bntui.tf_bridge.drift.measure_drift` in the TensorFlow process,
        calling ``progress(done, total)`` as batches pass. None: :meth:`cancel_drift` stopped it."""
        from bntui.tf_bridge.drift import DriftCancelled

        request, stop = next(self._requests), threading.Event()
        self._drift = (request, stop)
        try:
            with self._lock:
                if stop.is_set():
                    return None
                result: DriftResult = self._call_locked("drift", request, info, data, batch_size, scale,
                                                        progress=progress)
                return result
        except DriftCancelled:
            return None
        finally:
            if self._drift is not None and self._drift[0] == request:
                self._drift = None

    def cancel_drift(self) -> bool:
        """Stop the drift pass that runs or waits (at its next batch); False if there is none."""
        with self._send_lock:
            if self._drift is None:
                return False
            request, stop = self._drift
            stop.set()
            if self._drift_sent and self._connection is not None:
                self._connection.send(("cancel", (request,)))
            return True

    def drift_input(self, model_path: str | Path, layer: BNLayer, call: int, data: str, scale: float) -> np.ndarray:
        """Blocking: what reaches ``layer`` (its ``call``-th call) on the first
        :data:`DRIFT_INPUT_SAMPLES` samples of the drift data (see :mod:`bntui.tf_bridge.drift_inputs`)."""
        result: np.ndarray = self._call("drift_input", str(model_path), layer.path, layer.name, call, data, scale)
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
